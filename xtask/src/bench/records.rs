//! `cargo xtask bench records`:
//! * boot events written per second through the bounded queue, on SQLite and on a private
//!   PostgreSQL server (`netboot-records`' `records-bench` example, release build);
//! * the cost of recording on the HTTPS decision path: the release `pxe-https` answering
//!   `/boot.ipxe/decide` under `wrk` load with `[records]` off and on (SQLite), alternated,
//!   and the ratio.
//!
//! Options: `--events N` (default 100000), `--backend sqlite|postgres|both`, `--seconds N`
//! per decision run (default 8), `--rounds N` off/on pairs (default 2).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context as _, Result};
use netboot_testkit::process::Listening;

const MAC: &str = "52-54-00-12-34-56";

pub(crate) fn run(args: &[String]) -> Result<()> {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let mut example_args = Vec::new();
    for flag in ["--events", "--backend"] {
        if let Some(v) = value(flag) {
            example_args.extend([flag.to_string(), v]);
        }
    }
    let seconds: u64 = value("--seconds")
        .map_or(Ok(8), |v| v.parse())
        .context("--seconds")?;
    let rounds: u32 = value("--rounds")
        .map_or(Ok(2), |v| v.parse())
        .context("--rounds")?;

    let status = Command::new("cargo")
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "netboot-records",
            "--example",
            "records-bench",
            "--",
        ])
        .args(&example_args)
        .status()
        .context("running the records benchmark")?;
    if !status.success() {
        bail!("records benchmark failed ({status})");
    }
    decision_cost(seconds, rounds)
}

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn decision_cost(seconds: u64, rounds: u32) -> Result<()> {
    crate::deps::install_packages(&[("wrk", "keep-alive HTTP load generator")])?;
    let status = Command::new("cargo")
        .args(["build", "--quiet", "--release", "-p", "pxe-https"])
        .status()
        .context("building pxe-https")?;
    if !status.success() {
        bail!("building pxe-https failed");
    }
    let binary = PathBuf::from("target/release/pxe-https");
    let dir = std::env::temp_dir().join(format!("netboot-bench-records-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("files"))?;
    let result = (|| -> Result<()> {
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            off.push(decisions_per_second(&binary, &dir, false, seconds)?);
            on.push(decisions_per_second(&binary, &dir, true, seconds)?);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (off, on) = (mean(&off), mean(&on));
        println!(
            "https decisions (plain HTTP, 8 connections, {seconds} s x {rounds}): records off {off:.0}/s, \
             records on (SQLite) {on:.0}/s, on/off = {:.3}",
            on / off
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn decisions_per_second(binary: &Path, dir: &Path, records: bool, seconds: u64) -> Result<f64> {
    let database = dir.join(format!("records-{}.db", std::process::id()));
    let config = format!(
        "[records]\nenabled = {records}\ndatabase = \"sqlite://{}\"\n\n\
         [[resolver.static.actions]]\nid = \"winpe\"\ntitle = \"Windows PE x64\"\n\
         target = {{ kind = \"wimboot\", boot_wim = \"winpe/x64/boot.wim\", bcd = \"winpe/x64/BCD\", boot_sdi = \"winpe/boot.sdi\" }}\n\n\
         [[resolver.static.machines]]\nmac = \"{}\"\nrequired = [\"winpe\"]\n\n\
         [https]\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\nroot = \"files\"\nipxe_dir = \"\"\nstate_dir = \"state\"\n",
        database.display(),
        MAC.replace('-', ":")
    );
    let path = dir.join("netboot.toml");
    std::fs::write(&path, config)?;
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(&path)
        // Per-decision logs off in both runs: this measures recording, not logging.
        .env("RUST_LOG", "warn,pxe_https::server=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting pxe-https")?;
    let stderr = child.stderr.take().context("pxe-https stderr")?;
    let server = Running(child);
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().context("pxe-https exited before listening")??;
        if let Some(listening) = Listening::parse(&line).filter(|l| l.label.contains("(http)")) {
            break listening.addr;
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let url = format!("http://{addr}/boot.ipxe/decide?mac={MAC}&platform=efi&buildarch=x86_64&serial=BENCH");
    let output = Command::new("wrk")
        .args([
            "-t",
            "2",
            "-c",
            "8",
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "5s",
            &url,
        ])
        .output()
        .context("running wrk")?;
    drop(server);
    let text = String::from_utf8_lossy(&output.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .with_context(|| format!("wrk printed no rate:\n{text}"))?;
    if records && !database.exists() {
        bail!("records were on but {} was never created", database.display());
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
    }
    Ok(rps)
}
