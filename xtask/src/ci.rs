//! `cargo xtask ci`: the project's one test command.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// Runs a command, failing with its name when it fails.
pub(crate) fn run_step(name: &str, command: &mut Command) -> Result<()> {
    eprintln!("==> {name}");
    let status = command.status().with_context(|| format!("starting {name}"))?;
    if !status.success() {
        bail!("{name} failed with {status}");
    }
    Ok(())
}

pub(crate) fn run() -> Result<()> {
    crate::deps::install()?;
    run_step(
        "cargo fmt --check",
        Command::new("cargo").args(["fmt", "--all", "--", "--check"]),
    )?;
    run_step(
        "cargo clippy",
        Command::new("cargo").args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    run_step("cargo test", Command::new("cargo").args(["test", "--workspace"]))?;
    // Sans-IO protocol crates, documented published crates, cargo doc, the fuzz crate's
    // clippy, and 20 s of fuzzing per target.
    crate::tidy::run(20)?;
    // The OpenSSL compatibility listener is behind a feature the workspace build leaves off.
    run_step(
        "cargo clippy (pxe-https --features openssl-compat)",
        Command::new("cargo").args([
            "clippy",
            "-p",
            "pxe-https",
            "--features",
            "openssl-compat",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    // What the feature changes: the library (its checks) and the listener's own tests; the
    // other integration tests ran above and do not touch it.
    run_step(
        "cargo test (pxe-https --features openssl-compat)",
        Command::new("cargo").args([
            "test",
            "-p",
            "pxe-https",
            "--features",
            "openssl-compat",
            "--lib",
            "--test",
            "compat_tls",
        ]),
    )?;
    end_to_end()
}

/// Boots the default real-firmware scenarios (`cargo xtask e2e`). They need root for network
/// namespaces and tap devices: CI (which runs as root) fails without it, a developer's
/// unprivileged run skips them with a note.
fn end_to_end() -> Result<()> {
    if !crate::deps::is_root() {
        if std::env::var_os("CI").is_some() {
            bail!("the end-to-end boots need root (network namespaces, tap devices)");
        }
        eprintln!("==> skipping cargo xtask e2e: it needs root (network namespaces, tap devices)");
        return Ok(());
    }
    eprintln!("==> cargo xtask e2e");
    crate::e2e::run(&[])
}
