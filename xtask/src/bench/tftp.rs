//! `cargo xtask bench tftp`: pxe-tftp side by side with tftpd-hpa, atftpd and dnsmasq.
//!
//! All four servers run at once in a server network namespace, each on its own port, serving
//! the same files; the atftp client (the one client that negotiates `windowsize`) runs in a
//! client namespace across a veth link. Rounds alternate between servers so background load
//! hits all alike; medians are reported with ratios against pxe-tftp.
//!
//! - single client: file sizes x blksize x windowsize, MB/s and server CPU seconds per GiB
//!   (utime+stime of the server and its reaped children, from /proc);
//! - storm: N clients fetch one file at once (lock-step, blksize 1468, as PXE ROMs do):
//!   total time, failed clients, peak resident memory of the server and its children.
//!
//! tftpd-hpa and atftpd conflict as Debian packages and both start a system service on port
//! 69 when installed, so their `.deb`s are downloaded and unpacked under `target/bench-tools`
//! instead of installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use super::NetnsPair;

/// `cargo xtask bench tftp [OPTIONS]`
#[derive(Debug, Parser)]
#[command(name = "tftp")]
struct Args {
    /// Reduced run: 64 MiB only, blksize 1468, windowsize 1/16/64.
    #[arg(long)]
    quick: bool,
    /// Rounds of every single-client measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// File sizes in MiB for the single-client runs.
    #[arg(long, value_delimiter = ',', default_value = "64,300")]
    sizes: Vec<u64>,
    /// Block sizes for the single-client runs.
    #[arg(long, value_delimiter = ',', default_value = "512,1468,8192,65464")]
    blksizes: Vec<u32>,
    /// Window sizes for the single-client runs (1 is lock-step).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    windows: Vec<u32>,
    /// Clients in the storm (0 skips it).
    #[arg(long, default_value_t = 200)]
    storm_clients: usize,
    /// Size of the storm file in MiB.
    #[arg(long, default_value_t = 16)]
    storm_mib: u64,
    /// Servers to compare.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "pxe-tftp,tftpd-hpa,atftpd,dnsmasq"
    )]
    servers: Vec<String>,
}

const SUBNET: &str = "10.197.0";
const SERVER_IP: &str = "10.197.0.1";
/// A client that takes longer than this has failed.
const CLIENT_DEADLINE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    PxeTftp,
    TftpdHpa,
    Atftpd,
    Dnsmasq,
}

impl Server {
    fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "pxe-tftp" => Self::PxeTftp,
            "tftpd-hpa" => Self::TftpdHpa,
            "atftpd" => Self::Atftpd,
            "dnsmasq" => Self::Dnsmasq,
            other => bail!("unknown server {other:?}"),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::PxeTftp => "pxe-tftp",
            Self::TftpdHpa => "tftpd-hpa",
            Self::Atftpd => "atftpd",
            Self::Dnsmasq => "dnsmasq",
        }
    }

    fn port(self) -> u16 {
        match self {
            Self::PxeTftp => 1069,
            Self::TftpdHpa => 2069,
            Self::Atftpd => 3069,
            // dnsmasq has no option for its TFTP port; the namespace has 69 free.
            Self::Dnsmasq => 69,
        }
    }

    /// Whether it negotiates RFC 7440 windowsize (the others run lock-step regardless).
    fn windows(self) -> bool {
        matches!(self, Self::PxeTftp | Self::Atftpd)
    }
}

struct Running {
    server: Server,
    child: Child,
    /// A cpuacct cgroup holding the server: it also counts processes that already exited,
    /// which /proc cannot (tftpd-hpa ignores SIGCHLD, so its transfer processes' CPU time is
    /// never added to its own).
    group: Option<PathBuf>,
}

impl Running {
    /// CPU seconds the server (and everything it forked) has used.
    fn cpu_seconds(&self) -> Result<f64> {
        if let Some(group) = &self.group {
            if let Ok(usage) = std::fs::read_to_string(group.join("cpuacct.usage")) {
                return Ok(usage.trim().parse::<f64>().context("cpuacct.usage")? / 1e9);
            }
        }
        cpu_seconds(self.child.id())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(group) = &self.group {
            std::thread::sleep(Duration::from_millis(100));
            let _ = std::fs::remove_dir(group);
        }
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

pub(crate) fn run(raw_args: &[String]) -> Result<()> {
    let mut args = Args::try_parse_from(std::iter::once("tftp".to_string()).chain(raw_args.iter().cloned()))?;
    if super::reexec_as_release("tftp", raw_args)? {
        return Ok(());
    }
    if args.quick {
        args.sizes = vec![64];
        args.blksizes = vec![1468];
    }
    let servers = args
        .servers
        .iter()
        .map(|s| Server::parse(s))
        .collect::<Result<Vec<_>>>()?;
    crate::deps::install_packages(&[
        ("dnsmasq-base", "peer TFTP server"),
        ("atftp", "the benchmark client (negotiates windowsize)"),
        ("iproute2", "namespaces"),
    ])?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("repository root")?
        .to_path_buf();
    let tools = unpack_peers(&repo)?;
    crate::ci::run_step(
        "cargo build --release -p pxe-tftp",
        Command::new("cargo")
            .current_dir(&repo)
            .args(["build", "--release", "-p", "pxe-tftp"]),
    )?;
    let work = std::env::temp_dir().join(format!("netboot-bench-tftp-{}", std::process::id()));
    let files = work.join("files");
    std::fs::create_dir_all(&files)?;
    // The peers drop privileges; everything they serve must be world-readable.
    Command::new("chmod").args(["-R", "a+rX"]).arg(&work).status()?;
    for &mib in args.sizes.iter().chain(std::iter::once(&args.storm_mib)) {
        let path = files.join(format!("{mib}m.bin"));
        if !path.exists() {
            write_random(&path, mib << 20)?;
        }
    }
    Command::new("chmod").args(["-R", "a+rX"]).arg(&work).status()?;
    let namespaces = NetnsPair::create("nbt", SUBNET)?;
    let config = work.join("pxe-tftp.toml");
    std::fs::write(&config, "[tftp]\nmax_transfers = 4096\n[log]\nlevel = \"warn\"\n")?;
    let mut running = Vec::new();
    for &server in &servers {
        running.push(start(server, &repo, &tools, &files, &config, &namespaces)?);
    }
    std::thread::sleep(Duration::from_millis(500));
    for r in &mut running {
        if let Some(status) = r.child.try_wait()? {
            bail!("{} exited at start ({status})", r.server.name());
        }
    }
    warn_if_busy();

    let mut rows = Vec::new();
    for &mib in &args.sizes {
        for &blksize in &args.blksizes {
            for &window in &args.windows {
                let mut samples: Vec<Vec<(f64, f64)>> = vec![Vec::new(); running.len()];
                for _ in 0..args.rounds.max(1) {
                    for (i, r) in running.iter().enumerate() {
                        if window > 1 && !r.server.windows() {
                            continue;
                        }
                        let sample =
                            single(r, &namespaces, &format!("{mib}m.bin"), mib << 20, blksize, window)
                                .with_context(|| {
                                    format!("{} {mib} MiB blksize {blksize} window {window}", r.server.name())
                                })?;
                        samples[i].push(sample);
                    }
                }
                rows.push((
                    format!("{mib:>3} MiB  blksize {blksize:>5}  window {window:>2}"),
                    medians(&samples),
                ));
            }
        }
    }
    let names: Vec<&str> = running.iter().map(|r| r.server.name()).collect();
    println!("\nsingle client (atftp), medians of {} rounds: MB/s | server CPU s/GiB | throughput ratio pxe-tftp/peer", args.rounds);
    for (label, medians) in &rows {
        println!("{label}");
        let ours = medians.first().copied().flatten();
        for (name, median) in names.iter().zip(medians) {
            match median {
                Some((mbps, cpu)) => {
                    let ratio = ours
                        .map(|(o, _)| format!("  x{:.2}", o / mbps))
                        .unwrap_or_default();
                    println!("    {name:<10} {mbps:>8.1} MB/s  {cpu:>6.2} CPU s/GiB{ratio}");
                }
                None => println!("    {name:<10}      n/a (no windowsize)"),
            }
        }
    }
    if args.storm_clients > 0 {
        println!(
            "\nstorm: {} clients x {} MiB at once, blksize 1468, lock-step",
            args.storm_clients, args.storm_mib
        );
        for r in &running {
            let storm = storm(
                r,
                &namespaces,
                &format!("{}m.bin", args.storm_mib),
                args.storm_clients,
            )?;
            println!(
                "    {:<10} {:>7.1} s  failures {:>3}  peak RSS {:>7.1} MiB",
                r.server.name(),
                storm.elapsed.as_secs_f64(),
                storm.failures,
                storm.peak_rss_kib as f64 / 1024.0
            );
        }
    }
    drop(running);
    drop(namespaces);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Downloads and unpacks tftpd-hpa, atftpd and libwrap0 (their shared library).
fn unpack_peers(repo: &Path) -> Result<PathBuf> {
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

fn start(
    server: Server,
    repo: &Path,
    tools: &Path,
    files: &Path,
    config: &Path,
    ns: &NetnsPair,
) -> Result<Running> {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", &ns.server]);
    let address = format!("{SERVER_IP}:{}", server.port());
    let libs = tools.join("usr/lib/x86_64-linux-gnu");
    match server {
        Server::PxeTftp => {
            command
                .arg(repo.join("target/release/pxe-tftp"))
                .arg("--root")
                .arg(files);
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
        .spawn()
        .with_context(|| format!("starting {}", server.name()))?;
    // Children forked later (one per transfer for tftpd-hpa) inherit the group.
    let group = cpu_group(server.name(), child.id());
    Ok(Running { server, child, group })
}

fn client(ns: &NetnsPair, server: Server, file: &str, blksize: u32, window: u32) -> Command {
    let mut command = Command::new("ip");
    command.args([
        "netns",
        "exec",
        &ns.client,
        "timeout",
        &CLIENT_DEADLINE.as_secs().to_string(),
        "atftp",
    ]);
    command.args(["--get", "--remote-file", file, "--local-file", "/dev/null"]);
    command.args(["--option", &format!("blksize {blksize}")]);
    if window > 1 {
        command.args(["--option", &format!("windowsize {window}")]);
    }
    command.args([SERVER_IP, &server.port().to_string()]);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// One transfer: (MB/s, server CPU seconds per GiB).
fn single(
    r: &Running,
    ns: &NetnsPair,
    file: &str,
    bytes: u64,
    blksize: u32,
    window: u32,
) -> Result<(f64, f64)> {
    let cpu_before = r.cpu_seconds()?;
    let started = Instant::now();
    let status = client(ns, r.server, file, blksize, window).status()?;
    let elapsed = started.elapsed();
    if !status.success() {
        bail!("client failed ({status})");
    }
    // Let a forked transfer process finish exiting.
    std::thread::sleep(Duration::from_millis(150));
    let cpu = r.cpu_seconds()? - cpu_before;
    let gib = bytes as f64 / f64::from(1u32 << 30);
    Ok((bytes as f64 / elapsed.as_secs_f64() / 1e6, cpu / gib))
}

fn medians(samples: &[Vec<(f64, f64)>]) -> Vec<Option<(f64, f64)>> {
    samples
        .iter()
        .map(|s| {
            if s.is_empty() {
                return None;
            }
            let median = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            Some((
                median(s.iter().map(|x| x.0).collect()),
                median(s.iter().map(|x| x.1).collect()),
            ))
        })
        .collect()
}

struct Storm {
    elapsed: Duration,
    failures: usize,
    peak_rss_kib: u64,
}

fn storm(r: &Running, ns: &NetnsPair, file: &str, clients: usize) -> Result<Storm> {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak, pid) = (stop.clone(), peak.clone(), r.child.id());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(tree_rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let started = Instant::now();
    let mut children = Vec::with_capacity(clients);
    for _ in 0..clients {
        children.push(client(ns, r.server, file, 1468, 1).spawn()?);
    }
    let mut failures = 0;
    for mut child in children {
        if !child.wait()?.success() {
            failures += 1;
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    Ok(Storm {
        elapsed,
        failures,
        peak_rss_kib: peak.load(Ordering::Relaxed),
    })
}

/// CPU seconds used by `pid` and every process below it: utime+stime of each live (or zombie)
/// process plus cutime+cstime of those already reaped, so forking servers (tftpd-hpa runs one
/// process per transfer) are charged for their transfers whether or not they reaped them yet.
fn cpu_seconds(pid: u32) -> Result<f64> {
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

/// Resident memory of `pid` and all its descendants (forking servers run one process per
/// transfer).
fn tree_rss_kib(pid: u32) -> u64 {
    process_tree(pid)
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

fn write_random(path: &Path, len: u64) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ len;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

fn warn_if_busy() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let one_minute: f64 = load
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if one_minute > cores * 0.5 {
        eprintln!("warning: load average {one_minute:.1} on {cores} cores; figures will be noisy");
    }
}
