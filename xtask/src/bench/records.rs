//! `cargo xtask bench records`: boot events written per second through the bounded queue,
//! on SQLite and on a private PostgreSQL server (`netboot-records`' `records-bench`
//! example, built in release mode).

use std::process::Command;

use anyhow::{bail, Context, Result};

pub(crate) fn run(args: &[String]) -> Result<()> {
    let status = Command::new("cargo")
        .args(["run", "--quiet", "--release", "-p", "netboot-records", "--example", "records-bench", "--"])
        .args(args)
        .status()
        .context("running the records benchmark")?;
    if !status.success() {
        bail!("records benchmark failed ({status})");
    }
    Ok(())
}
