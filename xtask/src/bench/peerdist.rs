//! `cargo xtask bench peerdist`: how fast the release `pxe-https` computes BranchCache Content
//! Information, beside `sha256sum` on the same file in the same run.
//!
//! For each size (default 1 and 5 GiB) it writes a file of incompressible bytes (deleted
//! afterwards), reads it once so that both hashers start from the page cache, times
//! `sha256sum` on it (best of two), then asks a running `pxe-https` for it with iPXE's PeerDist
//! headers every 50 ms until the answer is Content Information. The server hashes the file
//! in the background meanwhile (SHA-256 for version 1.0 and SHA-512 for 2.0, in one pass, on
//! one thread). Then it changes one byte of the file and measures the same again.
//!
//! Reported: the server's hashing MB/s (its own time, from its log) and its ratio to
//! `sha256sum` (target: at least 0.8), the same per CPU second (on a busy machine the
//! niced hashing thread gets less of a core than `sha256sum`), the time from the first request to the first PeerDist
//! answer (a file never seen, and a file just changed), the server's peak RSS before and after
//! (VmHWM), and its CPU time over the wall time of the computation (at most one core).
//!
//! Options: `--sizes-gib 1,5`, `--dir DIR` (where the files go; default the system temporary
//! directory; needs the largest size free).

use std::io::{Read as _, Seek as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::https::{build_release_pxe_https, spawn_pxe_https, write_test_file};

/// Longest wait for one Content Information (5 GiB at a slow 20 MB/s is 270 s).
const WAIT: Duration = Duration::from_secs(900);
const POLL: Duration = Duration::from_millis(50);

struct Options {
    sizes_gib: Vec<u64>,
    dir: PathBuf,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        sizes_gib: vec![1, 5],
        dir: std::env::temp_dir(),
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value = iter.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sizes-gib" => {
                options.sizes_gib = value
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .context("--sizes-gib")?;
            }
            "--dir" => options.dir = PathBuf::from(value),
            other => bail!("unknown option {other} (use --sizes-gib, --dir)"),
        }
    }
    Ok(options)
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    if super::reexec_as_release("peerdist", args)? {
        return Ok(());
    }
    crate::deps::install_packages(&[("coreutils", "sha256sum, the reference hasher")])?;
    let workspace = build_release_pxe_https()?;
    let dir = options
        .dir
        .join(format!("netboot-bench-peerdist-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("root"))?;
    let result = bench(&workspace, &dir, &options);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn bench(workspace: &Path, dir: &Path, options: &Options) -> Result<()> {
    let config = dir.join("netboot.toml");
    std::fs::write(
        &config,
        "[log]\nlevel = \"info\"\n[https]\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n\
         root = \"root\"\nipxe_dir = \"\"\nstate_dir = \"state\"\n",
    )?;
    let log = dir.join("pxe-https.log");
    let (server, port) = spawn_pxe_https(workspace, &config, &log, "(http)")?;
    let pid = server.0.id();
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    println!(
        "PeerDist Content Information by the release pxe-https (versions 1.0 and 2.0 in one pass: \
         SHA-256 and SHA-512 over every byte, one thread at nice 10), beside sha256sum on the same file"
    );
    for &gib in &options.sizes_gib {
        let name = format!("boot-{gib}gib.wim");
        let file = dir.join("root").join(&name);
        write_test_file(&file, gib * 1024, gib)?;
        let result = measure(&file, &name, address, pid, &log);
        let _ = std::fs::remove_file(&file);
        let m = result?;
        let mb = (gib << 30) as f64 / 1e6;
        println!();
        println!("{gib} GiB ({:.0} MB):", mb);
        println!(
            "  sha256sum                        {:>7.2} s  {:>6.0} MB/s",
            m.sha256sum.as_secs_f64(),
            mb / m.sha256sum.as_secs_f64()
        );
        println!(
            "  pxe-https hashing (its log)      {:>7.2} s  {:>6.0} MB/s   ratio to sha256sum {:.2}",
            m.hashing,
            mb / m.hashing,
            m.sha256sum.as_secs_f64() / m.hashing
        );
        println!(
            "  per CPU second: sha256sum {:.0} MB/s, pxe-https {:.0} MB/s (whole process)   ratio {:.2}",
            mb / m.sha256sum_cpu.as_secs_f64(),
            mb / m.cpu.as_secs_f64(),
            m.sha256sum_cpu.as_secs_f64() / m.cpu.as_secs_f64()
        );
        println!(
            "  first PeerDist answer, new file  {:>7.2} s after the first request",
            m.first_answer.as_secs_f64()
        );
        println!(
            "  first PeerDist answer, changed   {:>7.2} s after the change",
            m.after_change.as_secs_f64()
        );
        println!(
            "  pxe-https peak RSS               {:>7.1} MiB before, {:.1} MiB after",
            m.rss_before_kib as f64 / 1024.0,
            m.rss_after_kib as f64 / 1024.0
        );
        println!(
            "  pxe-https CPU while hashing      {:>7.2} cores (CPU time / wall time)",
            m.cores
        );
    }
    drop(server);
    Ok(())
}

struct Measurement {
    sha256sum: Duration,
    sha256sum_cpu: Duration,
    /// Seconds the server reports for its computation.
    hashing: f64,
    /// The server's CPU time from the first request to the first answer.
    cpu: Duration,
    first_answer: Duration,
    after_change: Duration,
    rss_before_kib: u64,
    rss_after_kib: u64,
    cores: f64,
}

fn measure(file: &Path, name: &str, address: SocketAddr, pid: u32, log: &Path) -> Result<Measurement> {
    // Into the page cache, so neither hasher waits for the disk.
    std::io::copy(&mut std::fs::File::open(file)?, &mut std::io::sink())?;
    let runs = [time_sha256sum(file)?, time_sha256sum(file)?];
    let sha256sum = runs.iter().map(|(wall, _)| *wall).min().expect("two runs");
    let sha256sum_cpu = runs.iter().map(|(_, cpu)| *cpu).min().expect("two runs");
    let rss_before_kib = peak_rss_kib(pid)?;
    let cpu_before = super::process_cpu(pid)?;
    let started = Instant::now();
    let first_answer = wait_for_content_information(address, name)?;
    let cpu = (super::process_cpu(pid)? - cpu_before).total();
    let cores = cpu.as_secs_f64() / started.elapsed().as_secs_f64();
    let rss_after_kib = peak_rss_kib(pid)?;
    let hashing = hashing_seconds(log, name, 1)?;

    // Change one byte in the middle: same size, new modification time.
    let mut handle = std::fs::OpenOptions::new().read(true).write(true).open(file)?;
    handle.seek(std::io::SeekFrom::Start(std::fs::metadata(file)?.len() / 2))?;
    let mut byte = [0];
    handle.read_exact(&mut byte)?;
    handle.seek(std::io::SeekFrom::Current(-1))?;
    handle.write_all(&[byte[0] ^ 0xff])?;
    handle.sync_all()?;
    drop(handle);
    let after_change = wait_for_content_information(address, name)?;
    hashing_seconds(log, name, 2)?;
    Ok(Measurement {
        sha256sum,
        sha256sum_cpu,
        hashing,
        cpu,
        first_answer,
        after_change,
        rss_before_kib,
        rss_after_kib,
        cores,
    })
}

/// Wall time and CPU time (user + system) of one `sha256sum` run.
fn time_sha256sum(file: &Path) -> Result<(Duration, Duration)> {
    let cpu_before = children_cpu()?;
    let started = Instant::now();
    let output = Command::new("sha256sum")
        .arg(file)
        .output()
        .context("running sha256sum")?;
    let wall = started.elapsed();
    if !output.status.success() {
        bail!("sha256sum failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok((wall, children_cpu()?.saturating_sub(cpu_before)))
}

/// CPU time of every waited-for child process so far.
fn children_cpu() -> Result<Duration> {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let seconds = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    Ok(seconds(usage.user_time()) + seconds(usage.system_time()))
}

/// Asks for `/name` with iPXE's PeerDist headers every [`POLL`] until the answer is Content
/// Information; returns how long that took from the first request.
fn wait_for_content_information(address: SocketAddr, name: &str) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if answer_is_content_information(address, name)? {
            return Ok(started.elapsed());
        }
        if started.elapsed() > WAIT {
            bail!("no Content Information for {name} within {WAIT:?}");
        }
        std::thread::sleep(POLL);
    }
}

/// One request; only the response head is read (a plain answer is abandoned unread).
fn answer_is_content_information(address: SocketAddr, name: &str) -> Result<bool> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET /{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: peerdist\r\n\
         X-P2P-PeerDist: Version=1.1\r\n\
         X-P2P-PeerDistEx: MinContentInformation=1.0, MaxContentInformation=2.0\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 || head.len() > 16 * 1024 {
            bail!("bad response head: {}", String::from_utf8_lossy(&head));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        bail!("unexpected answer: {head}");
    }
    Ok(head.contains("\r\ncontent-encoding: peerdist\r\n"))
}

/// The server's own time for the `nth` computation of `name`, from its log.
fn hashing_seconds(log: &Path, name: &str, nth: usize) -> Result<f64> {
    let text = std::fs::read_to_string(log)?;
    let line = text
        .lines()
        .filter(|line| line.contains("PeerDist Content Information ready") && line.contains(name))
        .nth(nth - 1)
        .with_context(|| {
            format!(
                "no 'Content Information ready' line #{nth} for {name} in {}",
                log.display()
            )
        })?;
    let value = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("seconds="))
        .context("no seconds= in the ready line")?;
    value.trim_matches('"').parse().context("seconds=")
}

/// VmHWM, the process's peak resident set, in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .context("no VmHWM in /proc status")
}
