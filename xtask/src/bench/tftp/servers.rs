//! The four servers under test: how each is started in the server namespace, what it is
//! charged for (CPU through a cpuacct cgroup, memory summed over its process tree), and how
//! everything it started is stopped again.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::SERVER_IP;
use crate::bench::NamespacePair;

/// A server the benchmark compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Server {
    PxeTftp,
    TftpdHpa,
    Atftpd,
    Dnsmasq,
}

impl Server {
    pub(super) fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "pxe-tftp" => Self::PxeTftp,
            "tftpd-hpa" => Self::TftpdHpa,
            "atftpd" => Self::Atftpd,
            "dnsmasq" => Self::Dnsmasq,
            other => bail!("unknown server {other:?} (pxe-tftp, tftpd-hpa, atftpd, dnsmasq)"),
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::PxeTftp => "pxe-tftp",
            Self::TftpdHpa => "tftpd-hpa",
            Self::Atftpd => "atftpd",
            Self::Dnsmasq => "dnsmasq",
        }
    }

    pub(super) fn port(self) -> u16 {
        match self {
            Self::PxeTftp => 1069,
            Self::TftpdHpa => 2069,
            Self::Atftpd => 3069,
            // dnsmasq has no option for its TFTP port; the namespace has 69 free.
            Self::Dnsmasq => 69,
        }
    }
}

/// A started server. Dropping it kills the server and every process it forked (found through
/// its cgroup), then removes the cgroup.
pub(super) struct Running {
    pub(super) server: Server,
    child: Child,
    /// A cpuacct cgroup holding the server: it also counts processes that already exited,
    /// which /proc cannot (tftpd-hpa ignores SIGCHLD, so its transfer processes' CPU time is
    /// never added to its own).
    group: Option<PathBuf>,
}

impl Running {
    /// The server's pid (`ip netns exec` and `env` exec, so it is the server itself).
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds the server (and everything it forked) has used.
    pub(super) fn cpu_seconds(&self) -> Result<f64> {
        if let Some(group) = &self.group {
            if let Ok(usage) = std::fs::read_to_string(group.join("cpuacct.usage")) {
                return Ok(usage.trim().parse::<f64>().context("cpuacct.usage")? / 1e9);
            }
        }
        tree_cpu_seconds(self.child.id())
    }

    /// Fails when the server has exited.
    pub(super) fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status})", self.server.name());
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let Some(group) = &self.group else {
            // Without a cgroup, forked transfer processes are found through the tree (they
            // are reparented once the server is gone, so this is best effort).
            return;
        };
        // Transfer processes a forking server left behind are still in its cgroup.
        for _ in 0..20 {
            let pids = std::fs::read_to_string(group.join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<&str> = pids.split_whitespace().collect();
            if pids.is_empty() {
                break;
            }
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&pids)
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir(group);
    }
}

/// Puts `pid` into a fresh cgroup-v1 cpuacct group, when the hierarchy is there.
fn cpu_group(name: &str, pid: u32) -> Option<PathBuf> {
    let group = PathBuf::from(format!(
        "/sys/fs/cgroup/cpuacct/netboot-bench-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&group).ok()?;
    if std::fs::write(group.join("cgroup.procs"), pid.to_string()).is_err() {
        let _ = std::fs::remove_dir(&group);
        return None;
    }
    Some(group)
}

/// Downloads and unpacks tftpd-hpa, atftpd and libwrap0 (their shared library).
pub(super) fn unpack_peers(repo: &Path) -> Result<PathBuf> {
    let tools = repo.join("target/bench-tools");
    let root = tools.join("root");
    if root.join("usr/sbin/in.tftpd").exists() && root.join("usr/sbin/atftpd").exists() {
        return Ok(root);
    }
    std::fs::create_dir_all(&tools)?;
    crate::ci::run_step(
        "apt-get download tftpd-hpa atftpd libwrap0",
        Command::new("apt-get")
            .current_dir(&tools)
            .args(["download", "tftpd-hpa", "atftpd", "libwrap0"]),
    )?;
    for entry in std::fs::read_dir(&tools)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "deb") {
            crate::ci::run_step(
                "dpkg-deb -x",
                Command::new("dpkg-deb").arg("-x").arg(&path).arg(&root),
            )?;
        }
    }
    Ok(root)
}

/// Starts `server` in the server namespace, serving `files` (`pxe_tftp` is the binary
/// measured for pxe-tftp).
pub(super) fn start(
    server: Server,
    pxe_tftp: &Path,
    tools: &Path,
    files: &Path,
    config: &Path,
    ns: &NamespacePair,
) -> Result<Running> {
    use std::os::unix::process::CommandExt;

    let mut command = Command::new("ip");
    command.args(["netns", "exec", &ns.server]);
    let address = format!("{SERVER_IP}:{}", server.port());
    let libs = tools.join("usr/lib/x86_64-linux-gnu");
    match server {
        Server::PxeTftp => {
            command.arg(pxe_tftp).arg("--root").arg(files);
            command.args(["--listen", &address, "--config"]).arg(config);
        }
        Server::TftpdHpa => {
            command
                .arg("env")
                .arg(format!("LD_LIBRARY_PATH={}", libs.display()));
            command.arg(tools.join("usr/sbin/in.tftpd"));
            command
                .args([
                    "--foreground",
                    "--listen",
                    "--address",
                    &address,
                    "--user",
                    "root",
                    "--secure",
                ])
                .arg(files);
        }
        Server::Atftpd => {
            command
                .arg("env")
                .arg(format!("LD_LIBRARY_PATH={}", libs.display()));
            command.arg(tools.join("usr/sbin/atftpd"));
            command.args([
                "--daemon",
                "--no-fork",
                "--port",
                &server.port().to_string(),
                "--bind-address",
                SERVER_IP,
            ]);
            command
                .args([
                    "--logfile",
                    "/dev/null",
                    "--user",
                    "root.root",
                    "--maxthread",
                    "1000",
                ])
                .arg(files);
        }
        Server::Dnsmasq => {
            command.args([
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                "--enable-tftp",
            ]);
            command.arg(format!("--tftp-root={}", files.display()));
            command.args([
                &format!("--listen-address={SERVER_IP}"),
                "--bind-interfaces",
                "--user=root",
                "--group=root",
                "--pid-file=",
                "--tftp-max=1000",
                "--log-facility=/dev/null",
            ]);
        }
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C reaches only the benchmark, which stops the
        // servers itself after removing nothing they still use.
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", server.name()))?;
    // Children forked later (one per transfer for tftpd-hpa) inherit the group.
    let group = cpu_group(server.name(), child.id());
    Ok(Running { server, child, group })
}

/// CPU seconds used by `pid` and every process below it: utime+stime of each live (or zombie)
/// process plus cutime+cstime of those already reaped. Only used without a cpuacct cgroup.
fn tree_cpu_seconds(pid: u32) -> Result<f64> {
    let mut ticks = 0u64;
    for p in process_tree(pid) {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("malformed stat")?
            .1
            .split_whitespace()
            .collect();
        ticks += fields[11..15]
            .iter()
            .map(|f| f.parse::<u64>().unwrap_or(0))
            .sum::<u64>();
    }
    Ok(ticks as f64 / 100.0)
}

/// `pid` and its descendants.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(p) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok());
            parents.push((p, ppid.unwrap_or(0)));
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    tree
}

/// Resident memory of `pid` and all its descendants, summed (forking servers run one process
/// per transfer; shared pages are counted once per process, as `ps` would).
pub(super) fn tree_rss_kib(pid: u32) -> u64 {
    process_tree(pid)
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}
