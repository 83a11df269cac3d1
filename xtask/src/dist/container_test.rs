//! `cargo xtask dist --test`: the package on a clean Debian 12, as an administrator meets it.
//!
//! The cached debootstrap root is unpacked and booted with `systemd-nspawn --boot
//! --private-network` (systemd as PID 1, no link to the host's network: the services only
//! bind). Commands run inside through `nsenter`. The test installs the package with apt
//! (its dependencies are already in the root, so nothing is downloaded), checks that
//! `pxe-server` was enabled and started as the `netboot` user with only its two
//! capabilities and listens on its ports, that each single-service unit starts in its place,
//! that a reload keeps it running and a stop frees the ports, then purges the package and
//! compares the file system with the one before the installation.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::rootfs;

/// A name for the container (its host name inside).
const MACHINE: &str = "netboot-dist-test";
/// How long the container's systemd may take to finish booting.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a started unit may take to bind its ports.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Ports each unit listens on with the embedded defaults: (protocol, port).
pub(super) const PXE_SERVER_PORTS: &[(Protocol, u16)] = &[
    (Protocol::Udp, 67),
    (Protocol::Udp, 4011),
    (Protocol::Udp, 69),
    (Protocol::Tcp, 443),
    (Protocol::Tcp, 80),
];
const SINGLE_SERVICE_PORTS: &[(&str, &[(Protocol, u16)])] = &[
    ("pxe-proxy", &[(Protocol::Udp, 67), (Protocol::Udp, 4011)]),
    ("pxe-tftp", &[(Protocol::Udp, 69)]),
    ("pxe-https", &[(Protocol::Tcp, 443), (Protocol::Tcp, 80)]),
];

/// `CapEff` of a service: CAP_NET_BIND_SERVICE (10) and CAP_NET_RAW (13).
pub(super) const EXPECTED_CAP_EFF: u64 = (1 << 10) | (1 << 13);

/// Paths the before/after comparison leaves out: what the system itself changes while it
/// runs (logs, caches, apt's and dpkg's own records, systemd's runtime state).
const CHANGING_BY_ITSELF: &[&str] = &[
    "/var/log/",
    "/var/cache/",
    "/var/lib/apt/",
    "/var/lib/dpkg/",
    "/var/lib/systemd/",
    "/var/lib/private/",
    "/etc/ld.so.cache",
    // adduser and deluser keep the previous account files as backups (passwd-, group-, ...).
    "/etc/passwd-",
    "/etc/group-",
    "/etc/shadow-",
    "/etc/gshadow-",
    "/root/",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Protocol {
    Udp,
    Tcp,
}

impl Protocol {
    pub(super) fn ss_flag(self) -> &'static str {
        match self {
            Self::Udp => "-lnuH",
            Self::Tcp => "-lntH",
        }
    }
}

/// Runs the whole test.
pub(crate) fn run(workspace: &Path, rootfs_tarball: &Path, deb: &Path) -> Result<()> {
    let started = Instant::now();
    let root = workspace.join(super::DIST_DIR).join("test-root");
    rootfs::unpack(rootfs_tarball, &root)?;
    let deb_name = deb.file_name().context("the package has a file name")?;
    std::fs::copy(deb, root.join("root").join(deb_name)).context("copying the package into the root")?;
    let container = Container::boot(&root)?;
    eprintln!(
        "dist test: container booted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let result = check_package(&container, &format!("/root/{}", deb_name.to_string_lossy()));
    let stopped = container.stop();
    result?;
    stopped?;
    std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    eprintln!(
        "dist test: passed in {:.0} s (install, start, listen, reload, stop, purge)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn check_package(container: &Container, deb: &str) -> Result<()> {
    let before = container.file_list()?;

    container.sh(&format!("apt-get install -y -q {deb}"))?;
    eprintln!("dist test: installed");
    for unit in super::UNITS {
        let state = container
            .sh_status(&format!("systemctl is-enabled {}", unit.file_name()))?
            .1;
        let expected = if unit.enabled_by_default {
            "enabled"
        } else {
            "disabled"
        };
        if state.trim() != expected {
            bail!(
                "{} is {} after installation, expected {expected}",
                unit.file_name(),
                state.trim()
            );
        }
    }
    // The package's postinst started it.
    container.wait_listening("pxe-server", PXE_SERVER_PORTS)?;
    check_unprivileged(container, "pxe-server")?;
    let state = container.sh("stat -c '%U:%G %a' /var/lib/netboot")?;
    if state.trim() != "netboot:netboot 750" {
        bail!(
            "/var/lib/netboot is {}, expected netboot:netboot 750",
            state.trim()
        );
    }
    container
        .sh("test -s /var/lib/netboot/site-ca.crt")
        .context("pxe-server made no site CA in its state directory")?;
    // The README's way to the CA for the site's iPXE build.
    container.sh("runuser -u netboot -- pxe-server site-ca export --out /var/lib/netboot/site-ca.pem")?;
    container
        .sh("grep -q 'BEGIN CERTIFICATE' /var/lib/netboot/site-ca.pem")
        .context("site-ca export wrote no certificate")?;
    let check = container.sh("pxe-server --config /etc/netboot/netboot.toml --check-config")?;
    eprintln!("dist test: the conffile passes --check-config: {}", check.trim());

    let pid = container.main_pid("pxe-server")?;
    container.sh("systemctl reload pxe-server.service && sleep 1")?;
    if container.main_pid("pxe-server")? != pid || !container.is_active("pxe-server")? {
        bail!(
            "pxe-server did not survive a reload: {}",
            container.status("pxe-server")
        );
    }
    eprintln!("dist test: pxe-server runs as netboot with CAP_NET_BIND_SERVICE, CAP_NET_RAW; reload kept it");

    for (binary, ports) in SINGLE_SERVICE_PORTS {
        // Conflicts=pxe-server.service: starting it stops pxe-server.
        container.sh(&format!("systemctl start {binary}.service"))?;
        container.wait_listening(binary, ports)?;
        check_unprivileged(container, binary)?;
        if container.is_active("pxe-server")? {
            bail!("{binary} started while pxe-server kept running");
        }
        container.sh(&format!("systemctl stop {binary}.service"))?;
    }
    eprintln!("dist test: pxe-proxy, pxe-tftp and pxe-https each start and listen in pxe-server's place");

    container.sh("systemctl start pxe-server.service")?;
    container.wait_listening("pxe-server", PXE_SERVER_PORTS)?;
    container.sh("systemctl stop pxe-server.service")?;
    let listening = container.listening()?;
    if let Some(port) = PXE_SERVER_PORTS.iter().find(|p| listening.contains(p)) {
        bail!("port {port:?} is still bound after systemctl stop");
    }
    eprintln!("dist test: stopped; its ports are free");

    let uid = container.sh("id -u netboot")?.trim().to_owned();
    container.sh("apt-get purge -y -q netboot")?;
    if container.sh_status("getent passwd netboot")?.0 || container.sh_status("getent group netboot")?.0 {
        bail!("the netboot user or group is left after purge");
    }
    let owned = container.sh(&format!("find / -xdev -uid {uid} -print -quit"))?;
    if !owned.trim().is_empty() {
        bail!("{} still belongs to the purged user's id {uid}", owned.trim());
    }
    let after = container.file_list()?;
    let added: Vec<_> = after.difference(&before).collect();
    let removed: Vec<_> = before.difference(&after).collect();
    if !added.is_empty() || !removed.is_empty() {
        bail!("purge did not restore the file system: left behind {added:?}, gone {removed:?}");
    }
    eprintln!(
        "dist test: purged; nothing is left behind ({} paths compared)",
        after.len()
    );
    Ok(())
}

/// The service's main process runs as `netboot` with exactly the two capabilities.
fn check_unprivileged(container: &Container, binary: &str) -> Result<()> {
    let pid = container.main_pid(binary)?;
    let status = container.sh(&format!("cat /proc/{pid}/status"))?;
    let field = |name: &str| status_field(&status, name);
    let user = container.sh(&format!("ps -o user= -p {pid}"))?;
    if user.trim() != "netboot" {
        bail!("{binary} runs as {}, not netboot", user.trim());
    }
    let cap_eff = u64::from_str_radix(field("CapEff:")?, 16)?;
    let cap_bnd = u64::from_str_radix(field("CapBnd:")?, 16)?;
    if cap_eff != EXPECTED_CAP_EFF || cap_bnd != EXPECTED_CAP_EFF {
        bail!("{binary} has capabilities effective {cap_eff:#x}, bounding {cap_bnd:#x}; expected {EXPECTED_CAP_EFF:#x}");
    }
    if field("NoNewPrivs:")? != "1" {
        bail!("{binary} runs without NoNewPrivileges");
    }
    Ok(())
}

/// A booted container; stopped (and its processes gone) by [`Container::stop`] or on drop.
struct Container {
    nspawn: Option<Child>,
    /// The container's PID 1 (systemd), as the host sees it.
    leader: u32,
    log: PathBuf,
}

impl Container {
    fn boot(root: &Path) -> Result<Self> {
        let log = root.with_extension("console.log");
        let console = std::fs::File::create(&log)?;
        let nspawn = nspawn(root, &["--boot", "--private-network", "--console=passive"], &[])?
            .stdin(Stdio::null())
            // Its own process group: a Ctrl-C reaches only xtask, which then halts the container.
            .process_group(0)
            .stdout(console.try_clone()?)
            .stderr(console)
            .spawn()
            .context("starting systemd-nspawn")?;
        let mut container = Self {
            leader: 0,
            nspawn: Some(nspawn),
            log,
        };
        let deadline = Instant::now() + BOOT_TIMEOUT;
        while container.leader == 0 {
            if let Some(status) = container.nspawn.as_mut().and_then(|c| c.try_wait().transpose()) {
                bail!("systemd-nspawn exited ({}): {}", status?, container.console());
            }
            container.leader =
                find_child(container.nspawn.as_ref().map_or(0, Child::id), "systemd").unwrap_or(0);
            if Instant::now() > deadline || crate::signals::interrupted() {
                bail!("the container's systemd did not start: {}", container.console());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // PID 1 exists before its control socket does; systemctl cannot wait for it.
        while !container.sh_status("test -S /run/systemd/private")?.0 {
            if Instant::now() > deadline || crate::signals::interrupted() {
                bail!(
                    "the container's systemd never opened its control socket: {}",
                    container.console()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let (_, state) = container.sh_status(&format!(
            "timeout {} systemctl is-system-running --wait",
            BOOT_TIMEOUT.as_secs()
        ))?;
        if state.trim() != "running" {
            let failed = container.sh_status("systemctl --failed --no-legend")?.1;
            bail!("the container booted {}: failed units:\n{failed}", state.trim());
        }
        Ok(container)
    }

    fn console(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn command(&self, script: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--target={}", self.leader))
            .args([
                "--mount", "--uts", "--ipc", "--net", "--pid", "--root", "--wd", "--",
            ])
            .args([
                "/usr/bin/env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG=C.UTF-8",
            ])
            .args(["DEBIAN_FRONTEND=noninteractive", "/bin/sh", "-c", script]);
        command
    }

    /// Runs `script` inside; whether it succeeded, and its output (stdout, then stderr).
    fn sh_status(&self, script: &str) -> Result<(bool, String)> {
        let output = self
            .command(script)
            .output()
            .with_context(|| format!("running {script:?} in the container"))?;
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        Ok((output.status.success(), text))
    }

    /// Runs `script` inside; its standard output, or an error with all it printed.
    fn sh(&self, script: &str) -> Result<String> {
        let output = self
            .command(script)
            .output()
            .with_context(|| format!("running {script:?} in the container"))?;
        if !output.status.success() {
            bail!(
                "{script:?} failed in the container ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn is_active(&self, binary: &str) -> Result<bool> {
        Ok(self
            .sh_status(&format!("systemctl is-active --quiet {binary}.service"))?
            .0)
    }

    fn status(&self, binary: &str) -> String {
        let status = self.sh_status(&format!(
            "systemctl status --no-pager --lines=30 {binary}.service"
        ));
        status.map(|(_, text)| text).unwrap_or_default()
    }

    fn main_pid(&self, binary: &str) -> Result<u32> {
        let pid = self.sh(&format!(
            "systemctl show --property=MainPID --value {binary}.service"
        ))?;
        match pid.trim().parse() {
            Ok(0) | Err(_) => bail!("{binary} has no main process: {}", self.status(binary)),
            Ok(pid) => Ok(pid),
        }
    }

    /// The (protocol, port) pairs something listens on.
    fn listening(&self) -> Result<BTreeSet<(Protocol, u16)>> {
        let mut ports = BTreeSet::new();
        for protocol in [Protocol::Udp, Protocol::Tcp] {
            let table = self.sh(&format!("ss {}", protocol.ss_flag()))?;
            ports.extend(local_ports(&table).map(|port| (protocol, port)));
        }
        Ok(ports)
    }

    /// Waits until `binary`'s unit is active and every one of `ports` is bound.
    fn wait_listening(&self, binary: &str, ports: &[(Protocol, u16)]) -> Result<()> {
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        loop {
            let listening = self.listening()?;
            let missing: Vec<_> = ports.iter().filter(|p| !listening.contains(p)).collect();
            if missing.is_empty() && self.is_active(binary)? {
                return Ok(());
            }
            if Instant::now() > deadline || crate::signals::interrupted() {
                bail!(
                    "{binary} does not listen on {missing:?} after {} s:\n{}",
                    LISTEN_TIMEOUT.as_secs(),
                    self.status(binary)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Every path on the root file system, minus what changes by itself.
    fn file_list(&self) -> Result<BTreeSet<String>> {
        let list = self.sh("find / -xdev")?;
        Ok(list
            .lines()
            .filter(|path| {
                !CHANGING_BY_ITSELF
                    .iter()
                    .any(|prefix| path.starts_with(prefix) || format!("{path}/") == *prefix)
            })
            .map(str::to_owned)
            .collect())
    }

    /// Powers the container off and waits for nspawn to exit.
    fn stop(mut self) -> Result<()> {
        let Some(mut nspawn) = self.nspawn.take() else {
            return Ok(());
        };
        let _ = self.command("systemctl poweroff --no-block").output();
        let deadline = Instant::now() + Duration::from_secs(30);
        while nspawn.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = nspawn.kill();
                nspawn.wait()?;
                bail!("the container did not power off within 30 s: {}", self.console());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(mut nspawn) = self.nspawn.take() {
            // SIGTERM asks nspawn to halt the container; SIGKILL if that takes too long.
            let _ = Command::new("kill")
                .args(["-TERM", &nspawn.id().to_string()])
                .stderr(Stdio::null())
                .status();
            for _ in 0..100 {
                if matches!(nspawn.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = nspawn.kill();
            let _ = nspawn.wait();
        }
    }
}

/// The local ports in `ss -H` output (State Recv-Q Send-Q Local:Port Peer:Port).
pub(super) fn local_ports(ss: &str) -> impl Iterator<Item = u16> + '_ {
    ss.lines().filter_map(|line| {
        let local = line.split_whitespace().nth(3)?;
        local.rsplit_once(':')?.1.parse().ok()
    })
}

/// A field of a `/proc/<pid>/status` text, such as `CapEff:`.
pub(super) fn status_field<'a>(status: &'a str, name: &str) -> Result<&'a str> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .map(str::trim)
        .with_context(|| format!("no {name} in the process status"))
}

/// `systemd-nspawn` on `root` with `options`, running `payload` (none with `--boot`), not
/// registered with the host's systemd (there may be none).
pub(super) fn nspawn(root: &Path, options: &[&str], payload: &[&str]) -> Result<Command> {
    // nspawn needs /run/systemd/nspawn on a tmpfs, which a host without systemd lacks; a
    // private mount namespace gives it one without touching the host's /run.
    std::fs::create_dir_all("/run/systemd/nspawn").context("creating /run/systemd/nspawn")?;
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs tmpfs /run/systemd/nspawn && root=$1 && shift && \
             exec systemd-nspawn --quiet --keep-unit --register=no --directory=\"$root\" \"$@\"",
        )
        .arg("sh")
        .arg(root)
        .arg(format!("--machine={MACHINE}"))
        .args(options);
    if !payload.is_empty() {
        command.arg("--").args(payload);
    }
    Ok(command)
}

/// The first descendant of `parent` (up to three levels down) whose name is `name`.
pub(super) fn find_child(parent: u32, name: &str) -> Option<u32> {
    let mut generation = vec![parent];
    for _ in 0..3 {
        let mut next = Vec::new();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
            let Some((head, tail)) = stat.rsplit_once(')') else {
                continue;
            };
            let ppid = tail.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
            if ppid.is_some_and(|p| generation.contains(&p)) {
                if head.split_once('(').is_some_and(|(_, comm)| comm == name) {
                    return Some(pid);
                }
                next.push(pid);
            }
        }
        generation = next;
    }
    None
}
