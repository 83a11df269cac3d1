//! `cargo xtask bench <target>`: whole-server benchmarks, run side by side with a peer
//! server in network namespaces the benchmark creates and removes.
//!
//! Each benchmark lives in `bench/<target>.rs` and exposes `run(args)`.

mod dhcp;
mod https;
mod records;
mod tftp;

use std::process::Command;

use anyhow::{bail, Context, Result};

pub(crate) fn run(target: &str, args: &[String]) -> Result<()> {
    match target {
        "dhcp" => dhcp::run(args),
        "tftp" => tftp::run(args),
        "https" => https::run(args),
        "records" => records::run(args),
        other => bail!("unknown benchmark {other:?} (dhcp, tftp, https, records)"),
    }
}

/// Benchmarks measure release builds of both the servers and the load generator: re-runs
/// this xtask from a release build unless it already is one. Returns `Ok(false)` when the
/// caller should go on in this process.
pub(crate) fn reexec_as_release(target: &str, args: &[String]) -> Result<bool> {
    if !cfg!(debug_assertions) {
        return Ok(false);
    }
    // A Ctrl-C reaches both processes; this one waits for the release build to finish its
    // clean-up (stopping servers, removing namespaces) instead of returning the prompt early.
    let _ = signal_hook::flag::register(
        signal_hook::consts::SIGINT,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let status = Command::new("cargo")
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "xtask",
            "--",
            "bench",
            target,
        ])
        .args(args)
        .status()
        .context("starting the release build of xtask")?;
    if !status.success() {
        bail!("benchmark {target} failed ({status})");
    }
    Ok(true)
}

/// A pair of network namespaces joined by a veth link, removed on drop.
pub(crate) struct NetnsPair {
    /// Namespace of the servers under test.
    pub(crate) server: String,
    /// Namespace of the load generator.
    pub(crate) client: String,
}

impl NetnsPair {
    /// Creates `<prefix>-s` (`<prefix>s` at `<subnet>.1`) and `<prefix>-c` (`<prefix>c` at
    /// `<subnet>.2`), replacing leftovers of an interrupted run.
    pub(crate) fn create(prefix: &str, subnet: &str) -> Result<Self> {
        let pair = Self {
            server: format!("{prefix}-s"),
            client: format!("{prefix}-c"),
        };
        pair.remove();
        ip(&["netns", "add", &pair.server])?;
        ip(&["netns", "add", &pair.client])?;
        let (server_if, client_if) = (format!("{prefix}s"), format!("{prefix}c"));
        ip(&[
            "link",
            "add",
            &server_if,
            "netns",
            &pair.server,
            "type",
            "veth",
            "peer",
            "name",
            &client_if,
            "netns",
            &pair.client,
        ])?;
        for (ns, dev, host) in [(&pair.server, &server_if, 1), (&pair.client, &client_if, 2)] {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{subnet}.{host}/24"),
                "dev",
                dev,
            ])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "route", "add", "default", "dev", dev])?;
        }
        Ok(pair)
    }

    fn remove(&self) {
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        self.remove();
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let status = Command::new("ip")
        .args(args)
        .status()
        .context("running ip (iproute2)")?;
    if !status.success() {
        bail!("ip {} failed (benchmarks need root)", args.join(" "));
    }
    Ok(())
}

/// CPU time a process has used, from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CpuTime {
    /// User mode.
    pub(crate) user: std::time::Duration,
    /// Kernel mode, including network stack work done on the process's behalf.
    pub(crate) system: std::time::Duration,
}

impl CpuTime {
    /// User plus system.
    pub(crate) fn total(&self) -> std::time::Duration {
        self.user + self.system
    }
}

impl std::ops::Sub for CpuTime {
    type Output = Self;
    fn sub(self, earlier: Self) -> Self {
        Self {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// CPU time a process has used so far, from `/proc/<pid>/stat`.
pub(crate) fn process_cpu(pid: u32) -> Result<CpuTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks_per_second = clock_ticks_per_second() as f64;
    let seconds = |field: &str| -> Result<std::time::Duration> {
        Ok(std::time::Duration::from_secs_f64(
            field.parse::<u64>()? as f64 / ticks_per_second,
        ))
    };
    Ok(CpuTime {
        user: seconds(fields[11])?,
        system: seconds(fields[12])?,
    })
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// Enters network namespace `name` on the calling thread (threads it spawns inherit it).
pub(crate) fn enter_netns(name: &str) -> Result<()> {
    let file =
        std::fs::File::open(format!("/run/netns/{name}")).with_context(|| format!("opening netns {name}"))?;
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering netns {name}"))
}

/// The `p`-th percentile (0..=100) of sorted samples.
pub(crate) fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
