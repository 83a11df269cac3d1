//! `cargo xtask bench <target>`: whole-server benchmarks, run side by side with a peer
//! server in network namespaces the benchmark creates and removes.
//!
//! Each benchmark lives in `bench/<target>.rs` and exposes `run(args)`.

mod dhcp;
mod https;
mod peerdist;
mod records;
mod tftp;

use std::process::Command;

use anyhow::{bail, Context, Result};
pub(crate) use netboot_testkit::netns::NamespacePair;
use netboot_testkit::netns::{self, CLIENT_DEV, SERVER_DEV};

pub(crate) fn run(target: &str, args: &[String]) -> Result<()> {
    match target {
        "dhcp" => dhcp::run(args),
        "tftp" => tftp::run(args),
        "https" => https::run(args),
        "records" => records::run(args),
        "peerdist" => peerdist::run(args),
        other => bail!("unknown benchmark {other:?} (dhcp, tftp, https, records, peerdist)"),
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

/// The namespaces `<prefix>-s` (servers under test, at `<subnet>.1`) and `<prefix>-c` (load
/// generator, at `<subnet>.2`) joined by a veth link, replacing leftovers of an interrupted
/// run; removed on drop. Each side routes everything over the link, so broadcasts and
/// relayed traffic leave through it.
pub(crate) fn namespaces(prefix: &str, subnet: [u8; 3]) -> Result<NamespacePair> {
    let pair = NamespacePair::try_create(&format!("{prefix}-s"), &format!("{prefix}-c"), subnet)
        .map_err(anyhow::Error::msg)?;
    for (namespace, dev) in [(&pair.server, SERVER_DEV), (&pair.client, CLIENT_DEV)] {
        netns::try_ip(&["-n", namespace, "route", "add", "default", "dev", dev])
            .map_err(anyhow::Error::msg)?;
    }
    Ok(pair)
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
    netns::try_enter(name).map_err(anyhow::Error::msg)
}

/// The `p`-th percentile (0..=100) of sorted samples.
pub(crate) fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
