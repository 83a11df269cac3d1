//! `cargo xtask bench tftp`: pxe-tftp side by side with tftpd-hpa, atftpd and dnsmasq.
//!
//! All four servers run at once in a server network namespace, each on its own port, serving
//! the same files; the atftp client (the one Debian client that negotiates `windowsize`) runs
//! in a client namespace across a veth link (MTU 1500, so blksizes above 1468 fragment).
//!
//! - Options probe: before measuring, every server is asked for every blksize/windowsize on a
//!   small file and its OACK is read from atftp's trace. A server that grants something else
//!   (tftpd-hpa and dnsmasq ignore windowsize; dnsmasq caps blksize to the link MTU) shows
//!   `n/a (grants ...)` for that combination instead of a figure for a different transfer.
//! - Single client: file sizes x blksize x windowsize, MB/s and server CPU seconds per GiB
//!   (cpuacct cgroup of the server, so forked transfer processes count). Rounds alternate
//!   between servers, and their order flips every round, so background load hits all alike;
//!   medians are reported with ratios of pxe-tftp against each peer. Sizes of 256 MiB and
//!   more run `--large-rounds` rounds (default 2) to keep the default run bounded, and a
//!   server/combination that stalls (spends half its time in client timeouts, or fails) is
//!   not measured again in later rounds or at larger sizes.
//! - Ping-pong limit: a bare UDP sender/receiver pair in the same namespaces moving 1468-byte
//!   datagrams in the same windows (see `pingpong.rs`), measured in the same rounds;
//!   pxe-tftp's figures at blksize 1468 are shown as a share of it, and the sender's CPU per
//!   GiB at window 1 shows what the kernel alone charges a lock-step transfer.
//! - Storm: N clients fetch one file at once (lock-step, blksize 1468, as PXE ROMs do): wall
//!   time from the first start to the last exit, failed clients, client timeouts (counted
//!   from each atftp client's own `timeout: retrying` messages: the client's view, the same
//!   for every server; see `clients.rs`), and peak resident memory summed over the server and
//!   its children (sampled every 50 ms).
//!
//! The tables are printed and written as markdown to `target/bench-results/tftp-<UTC>.md`,
//! followed by the goals judged from the figures.
//!
//! Clean-up: servers and clients run in process groups of their own, so a Ctrl-C reaches
//! only the benchmark; SIGINT/SIGTERM/SIGHUP set a flag that every wait loop checks, and the
//! unwinding drops kill the servers with everything they forked (through their cgroups),
//! remove the namespaces and the scratch directory. A second Ctrl-C exits at once.
//!
//! tftpd-hpa and atftpd conflict as Debian packages and both start a system service on port
//! 69 when installed, so their `.deb`s are downloaded and unpacked under `target/bench-tools`
//! instead of installed.

mod clients;
mod eta;
mod matrix;
mod pingpong;
mod report;
mod servers;
mod storm;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;

use self::eta::{minutes, Eta};
use self::matrix::{probe_all, single_client_matrix, Stalled};
use self::report::{Combo, SizeTable, StormTable};
use self::servers::Server;
use self::storm::storm_all;

/// `cargo xtask bench tftp [OPTIONS]`
#[derive(Debug, Parser)]
#[command(name = "cargo xtask bench tftp")]
struct Args {
    /// Reduced run: 64 MiB only, blksize 1468, windowsize 1/16/64.
    #[arg(long)]
    quick: bool,
    /// Rounds of every single-client measurement below 256 MiB; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Rounds for file sizes of 256 MiB and more (each round moves the file ~30 times).
    #[arg(long, default_value_t = 2)]
    large_rounds: usize,
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
    /// Measure this pxe-tftp binary instead of building the checkout's (e.g. a saved build
    /// of another revision).
    #[arg(long, value_name = "PATH")]
    pxe_tftp: Option<PathBuf>,
    /// Servers to compare.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "pxe-tftp,tftpd-hpa,atftpd,dnsmasq"
    )]
    servers: Vec<String>,
}

impl Args {
    fn rounds_for(&self, mib: u64) -> usize {
        if mib >= 256 {
            self.large_rounds.max(1)
        } else {
            self.rounds.max(1)
        }
    }
}

const SUBNET: [u8; 3] = [10, 197, 0];
const SERVER_IP: &str = "10.197.0.1";
const CLIENT_IP: &str = "10.197.0.2";
/// Size of the file the options probe fetches (a few blocks even at blksize 65464).
const PROBE_BYTES: u64 = 256 << 10;

use crate::signals::interrupted;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn run(raw_args: &[String]) -> Result<()> {
    let argv = std::iter::once("cargo xtask bench tftp".to_owned()).chain(raw_args.iter().cloned());
    let mut args = match Args::try_parse_from(argv) {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return Ok(());
        }
        Err(e) => {
            let _ = e.print();
            bail!("bad bench tftp arguments");
        }
    };
    if super::reexec_as_release("tftp", raw_args)? {
        return Ok(());
    }
    crate::signals::install()?;
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
    let tools = servers::unpack_peers(&repo)?;
    let pxe_tftp = match &args.pxe_tftp {
        Some(path) => {
            std::fs::canonicalize(path).with_context(|| format!("--pxe-tftp {}", path.display()))?
        }
        None => {
            crate::ci::run_step(
                "cargo build --release -p pxe-tftp",
                Command::new("cargo")
                    .current_dir(&repo)
                    .args(["build", "--release", "-p", "pxe-tftp"]),
            )?;
            repo.join("target/release/pxe-tftp")
        }
    };
    let measured = describe_pxe_tftp(&args, &pxe_tftp, &repo);
    let scratch = Scratch(std::env::temp_dir().join(format!("netboot-bench-tftp-{}", std::process::id())));
    let files = scratch.0.join("files");
    let logs = scratch.0.join("clients");
    std::fs::create_dir_all(&files)?;
    for &mib in args.sizes.iter().chain(std::iter::once(&args.storm_mib)) {
        let path = files.join(file_name(mib));
        if !path.exists() {
            write_random(&path, mib << 20)?;
        }
    }
    write_random(&files.join("probe.bin"), PROBE_BYTES)?;
    // The peers drop privileges; everything they serve must be world-readable.
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&scratch.0)
        .status()?;
    // Named after this run, so a second benchmark started meanwhile (by someone else on a
    // shared machine) does not take them over as leftovers.
    let namespaces = super::namespaces(&format!("nbt{}", std::process::id() % 100_000), SUBNET)?;
    let config = scratch.0.join("pxe-tftp.toml");
    std::fs::write(&config, "[tftp]\nmax_transfers = 4096\n[log]\nlevel = \"warn\"\n")?;
    let mut running = Vec::new();
    for &server in &servers {
        running.push(servers::start(
            server,
            &pxe_tftp,
            &tools,
            &files,
            &config,
            &namespaces,
        )?);
    }
    std::thread::sleep(Duration::from_millis(500));
    for r in &mut running {
        r.check_alive().context("at start")?;
    }
    let load_before = load_average();
    warn_if_busy(load_before);

    let combos: Vec<Combo> = args
        .blksizes
        .iter()
        .flat_map(|&blksize| args.windows.iter().map(move |&window| Combo { blksize, window }))
        .collect();
    let grants = probe_all(&running, &combos, &namespaces, &logs)?;
    let mut eta = Eta::new(&args, &combos, &grants);
    eprintln!(
        "plan: sizes {:?} MiB ({} round(s) below 256 MiB, {} at 256 MiB and more), {} combinations, \
         storm {} x {} MiB; estimated {}",
        args.sizes,
        args.rounds.max(1),
        args.large_rounds.max(1),
        combos.len(),
        args.storm_clients,
        args.storm_mib,
        minutes(eta.remaining())
    );

    let mut tables = Vec::new();
    let mut stalled: Stalled = vec![vec![None; running.len()]; combos.len()];
    for &mib in &args.sizes {
        let table = single_client_matrix(
            &args,
            mib,
            &combos,
            &grants,
            &mut running,
            &namespaces,
            &logs,
            &mut eta,
            &mut stalled,
        )?;
        println!("\n{}", table.table().text());
        tables.push(table);
    }
    let storm = if args.storm_clients > 0 {
        let table = storm_all(&args, &running, &namespaces, &logs, &mut eta)?;
        println!("\n{}", table.table().text());
        Some(table)
    } else {
        None
    };
    let goals = report::goals(&tables, storm.as_ref());
    println!("\ngoals (pxe-tftp):");
    for goal in &goals {
        println!("  {}", goal.line());
    }
    let notes = run_notes(&args, raw_args, &measured, load_before, eta.started.elapsed());
    println!("\n{notes}");
    let written = write_markdown(&repo, &notes, &tables, storm.as_ref(), &goals)?;
    println!("written to {}", written.display());
    drop(running);
    drop(namespaces);
    drop(scratch);
    Ok(())
}

fn file_name(mib: u64) -> String {
    format!("{mib}m.bin")
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0)
}

fn warn_if_busy(load: f64) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if load > cores * 0.5 {
        eprintln!("warning: load average {load:.1} on {cores} cores; figures will be noisy");
    }
}

/// Which pxe-tftp is measured, as of its build (others may commit during a long run).
fn describe_pxe_tftp(args: &Args, pxe_tftp: &Path, repo: &Path) -> String {
    if args.pxe_tftp.is_some() {
        return format!("{} (given with --pxe-tftp)", pxe_tftp.display());
    }
    let head = Command::new("git")
        .current_dir(repo)
        .args(["describe", "--always", "--dirty"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("built from the checkout ({head})")
}

/// How the figures were made, for the terminal and the markdown file.
fn run_notes(args: &Args, raw_args: &[String], measured: &str, load_before: f64, took: Duration) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rounds: Vec<String> = args
        .sizes
        .iter()
        .map(|&mib| format!("{mib} MiB: {} round(s)", args.rounds_for(mib)))
        .collect();
    rounds.dedup();
    format!(
        "command: cargo xtask bench tftp {}\npxe-tftp: {measured}\nhost: {cores} cores, load average {load_before:.1} at start, \
         {:.1} at end; run took {}\nrounds: {} (sizes of 256 MiB and more use --large-rounds, \
         default 2, to bound the run; a stalled transfer is not repeated)",
        raw_args.join(" "),
        load_average(),
        minutes(took),
        rounds.join(", ")
    )
}

fn write_markdown(
    repo: &Path,
    notes: &str,
    tables: &[SizeTable],
    storm: Option<&StormTable>,
    goals: &[report::Goal],
) -> Result<PathBuf> {
    let dir = repo.join("target/bench-results");
    std::fs::create_dir_all(&dir)?;
    let stamp = Command::new("date")
        .args(["-u", "+%Y%m%dT%H%M%SZ"])
        .output()
        .context("running date")?;
    let stamp = String::from_utf8_lossy(&stamp.stdout).trim().to_owned();
    let mut md = format!("# TFTP benchmark {stamp}\n\n");
    for line in notes.lines() {
        md.push_str(&format!("- {line}\n"));
    }
    for table in tables {
        md.push_str(&format!("\n{}", table.table().markdown()));
    }
    if let Some(storm) = storm {
        md.push_str(&format!("\n{}", storm.table().markdown()));
    }
    md.push_str("\n## Goals (pxe-tftp)\n\n");
    for goal in goals {
        md.push_str(&format!("- {}\n", goal.line()));
    }
    let path = dir.join(format!("tftp-{stamp}.md"));
    std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn write_random(path: &Path, len: u64) -> Result<()> {
    let len = usize::try_from(len).context("file size")?;
    netboot_testkit::write_test_file(path, len, 0x9e37_79b9_7f4a_7c15_u64 ^ len as u64);
    Ok(())
}
