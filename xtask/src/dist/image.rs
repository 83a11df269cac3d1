//! `cargo xtask dist --image`: the container image recipe, `contrib/container/Containerfile`,
//! carried out and started once.
//!
//! Podman's runtime (crun) cannot start a container on hosts where the process lacks
//! CAP_SYS_RESOURCE (it fails setting RLIMIT_NOFILE/RLIMIT_NPROC), which is how CI runs.
//! So the recipe's steps are carried out here as a container builder would: `FROM` is the
//! same clean Debian 12 root the package test uses, `COPY` takes files from the build
//! context (`target/dist`), each `RUN` runs in that root under systemd-nspawn, and the image's
//! `USER` and `ENTRYPOINT` then start it with a private network. The check: the entry point
//! runs as that user, with exactly CAP_NET_BIND_SERVICE and CAP_NET_RAW effective (from the
//! file capabilities the recipe sets), and binds its ports.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::container_test::{
    find_child, local_ports, nspawn, status_field, Protocol, EXPECTED_CAP_EFF, PXE_SERVER_PORTS,
};
use super::rootfs;

/// The recipe, relative to the workspace.
const CONTAINERFILE: &str = "contrib/container/Containerfile";
/// How long the entry point may take to bind.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);
/// Ports the image's entry point binds with the packaged configuration: pxe-server's.
const PORTS: &[(Protocol, u16)] = PXE_SERVER_PORTS;

/// One instruction of the recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// `COPY <source pattern> <destination>`.
    Copy { pattern: String, destination: String },
    /// `RUN <shell command>`.
    Run(String),
    /// `USER <name>`.
    User(String),
    /// `ENTRYPOINT ["program", "arg", ...]`.
    Entrypoint(Vec<String>),
}

/// The recipe's steps; `ARG`, `FROM` (the base is the clean root), `VOLUME` and `EXPOSE`
/// change nothing in the file system and are left out. Any other instruction is refused, so
/// the check never passes over a step it does not carry out.
fn parse(recipe: &str) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    let mut logical = String::new();
    for line in recipe.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && logical.is_empty()) {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            logical.push_str(continued);
            logical.push(' ');
            continue;
        }
        logical.push_str(line);
        let instruction = std::mem::take(&mut logical);
        let (keyword, rest) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((&instruction, ""));
        let rest = rest.trim();
        match keyword {
            "ARG" | "FROM" | "VOLUME" | "EXPOSE" => {}
            "COPY" => {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                let [pattern, destination] = parts[..] else {
                    bail!("{CONTAINERFILE}: COPY takes one source and one destination here: {rest}");
                };
                steps.push(Step::Copy {
                    pattern: pattern.to_owned(),
                    destination: destination.to_owned(),
                });
            }
            "RUN" => steps.push(Step::Run(rest.to_owned())),
            "USER" => steps.push(Step::User(rest.to_owned())),
            "ENTRYPOINT" => {
                let words: Vec<String> = serde_json::from_str(rest)
                    .with_context(|| format!("{CONTAINERFILE}: ENTRYPOINT is not a JSON array: {rest}"))?;
                steps.push(Step::Entrypoint(words));
            }
            other => bail!("{CONTAINERFILE}: the image check does not carry out {other}"),
        }
    }
    Ok(steps)
}

/// Files in `dir` whose names match `pattern` (one `*` at most).
fn matching(dir: &Path, pattern: &str) -> Result<Vec<PathBuf>> {
    let (prefix, suffix) = pattern.split_once('*').unwrap_or((pattern, ""));
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.is_file()
                && path.file_name().and_then(|n| n.to_str()).is_some_and(|name| {
                    name.len() >= prefix.len() + suffix.len()
                        && name.starts_with(prefix)
                        && name.ends_with(suffix)
                })
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Carries out the recipe on the clean root and starts its entry point once.
pub(crate) fn run(workspace: &Path, rootfs_tarball: &Path, deb: &Path) -> Result<()> {
    let started = Instant::now();
    let recipe = std::fs::read_to_string(workspace.join(CONTAINERFILE))
        .with_context(|| format!("reading {CONTAINERFILE}"))?;
    let steps = parse(&recipe)?;
    let context = deb.parent().context("the package is in a directory")?;
    let root = workspace.join(super::DIST_DIR).join("image-root");
    rootfs::unpack(rootfs_tarball, &root)?;
    let mut user = "root".to_owned();
    let mut entrypoint = Vec::new();
    for step in steps {
        match step {
            Step::Copy { pattern, destination } => {
                let sources = matching(context, &pattern)?;
                if sources.is_empty() {
                    bail!("COPY {pattern}: nothing in {} matches", context.display());
                }
                let target = root.join(destination.trim_start_matches('/'));
                std::fs::create_dir_all(&target)?;
                for source in sources {
                    std::fs::copy(&source, target.join(source.file_name().context("a file name")?))?;
                }
            }
            Step::Run(script) => {
                // Like a builder's RUN: the host's network (apt may fetch), no init.
                let status = nspawn(&root, &["--pipe"], &["/bin/sh", "-c", &script])?
                    .stdin(Stdio::null())
                    .status()
                    .context("starting systemd-nspawn")?;
                if !status.success() {
                    bail!("RUN {script}: {status}");
                }
            }
            Step::User(name) => user = name,
            Step::Entrypoint(words) => entrypoint = words,
        }
    }
    if entrypoint.is_empty() {
        bail!("{CONTAINERFILE} has no ENTRYPOINT");
    }
    eprintln!(
        "dist image: recipe carried out in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let log = root.with_extension("log");
    let output = std::fs::File::create(&log)?;
    let words: Vec<&str> = entrypoint.iter().map(String::as_str).collect();
    let user_option = format!("--user={user}");
    let child = nspawn(
        &root,
        &[
            "--private-network",
            "--pipe",
            // What a container runtime's stop sends; nspawn's own default is SIGKILL.
            "--kill-signal=SIGTERM",
            &user_option,
        ],
        &words,
    )?
    .stdin(Stdio::null())
    .stdout(output.try_clone()?)
    .stderr(output)
    .spawn()
    .context("starting the image's entry point")?;
    let mut running = Running { child, log };
    let program = Path::new(&entrypoint[0])
        .file_name()
        .and_then(|n| n.to_str())
        .context("the entry point names a program")?
        .to_owned();
    running.check(&program, &user)?;
    running.stop()?;
    std::fs::remove_dir_all(&root)?;
    eprintln!(
        "dist image: {program} started as {user} with CAP_NET_BIND_SERVICE and CAP_NET_RAW, bound \
         {PORTS:?} on a private network; checked in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The image's entry point running under nspawn; stopped on drop.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn check(&mut self, program: &str, user: &str) -> Result<()> {
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        let pid = loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the entry point exited ({status}):\n{}", self.output());
            }
            // nspawn → its inner child → the program (PID 1 inside).
            if let Some(pid) = find_child(self.child.id(), &program[..program.len().min(15)]) {
                break pid;
            }
            if Instant::now() > deadline || crate::signals::interrupted() {
                bail!("{program} did not start:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        loop {
            let listening = listening(pid)?;
            let missing: Vec<_> = PORTS.iter().filter(|p| !listening.contains(p)).collect();
            if missing.is_empty() {
                break;
            }
            if Instant::now() > deadline || crate::signals::interrupted() {
                bail!("{program} does not listen on {missing:?}:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| status_field(&status, name);
        let cap_eff = u64::from_str_radix(field("CapEff:")?, 16)?;
        if cap_eff != EXPECTED_CAP_EFF {
            bail!("{program} has effective capabilities {cap_eff:#x}, expected {EXPECTED_CAP_EFF:#x}");
        }
        let uid = field("Uid:")?
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        if uid == "0" {
            bail!("{program} runs as root, not as {user}");
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the entry point stopped with {status}:\n{}", self.output());
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!(
            "the entry point did not stop within 10 s of SIGTERM:\n{}",
            self.output()
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The (protocol, port) pairs bound in the network namespace of `pid`, read with the host's
/// `ss` entered into that namespace.
fn listening(pid: u32) -> Result<Vec<(Protocol, u16)>> {
    let mut ports = Vec::new();
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        let output = Command::new("nsenter")
            .arg(format!("--target={pid}"))
            .args(["--net", "ss", protocol.ss_flag()])
            .output()
            .context("running ss in the container's network namespace")?;
        let table = String::from_utf8_lossy(&output.stdout);
        ports.extend(local_ports(&table).map(|port| (protocol, port)));
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recipe_parses_into_steps_this_check_carries_out() {
        let recipe = std::fs::read_to_string(crate::workspace_root().join(CONTAINERFILE)).unwrap();
        let steps = parse(&recipe).unwrap();
        assert!(steps.contains(&Step::User("netboot".into())), "{steps:?}");
        assert!(
            steps.iter().any(|s| matches!(s, Step::Run(script) if script.contains("setcap cap_net_bind_service,cap_net_raw=ep"))),
            "{steps:?}"
        );
        assert!(matches!(steps.last(), Some(Step::Entrypoint(words)) if words[0] == "/usr/bin/pxe-server"));
    }

    #[test]
    fn an_instruction_the_check_cannot_carry_out_is_refused() {
        let error = parse("FROM x\nADD https://example.org/x /x\n").unwrap_err();
        assert!(error.to_string().contains("ADD"), "{error}");
    }

    #[test]
    fn continued_lines_are_one_instruction() {
        assert_eq!(parse("RUN a \\\n && b\n").unwrap(), [Step::Run("a  && b".into())]);
    }
}
