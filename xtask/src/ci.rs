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
    Ok(())
}
