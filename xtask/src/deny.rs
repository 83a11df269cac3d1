//! The dependency policy (`deny.toml`): licences, banned and duplicate crates, sources,
//! checked by `cargo deny`, which is installed when missing.
//!
//! The advisories check is not run here: it fetches the RustSec database from GitHub and CI
//! has no network. Run `cargo deny check advisories` where the database can be fetched.

use std::process::Command;

use anyhow::{Context, Result};

use crate::ci::run_step;

/// The cargo-deny release the check is written against (`deny.toml`'s format).
const CARGO_DENY_VERSION: &str = "0.20.2";

/// Runs `cargo deny check licenses bans sources` on the workspace.
pub(crate) fn check() -> Result<()> {
    if !installed()? {
        // Built from source once per machine, unoptimised: its release profile (fat LTO, one
        // codegen unit) took 16 minutes on a busy two-core machine, this takes about 3, and
        // the check still runs in about 2 seconds.
        run_step(
            "cargo install cargo-deny",
            Command::new("cargo").args([
                "install",
                "cargo-deny",
                "--locked",
                "--debug",
                "--version",
                CARGO_DENY_VERSION,
            ]),
        )?;
    }
    let root = crate::fuzz::workspace_root();
    run_step(
        "cargo deny check licenses bans sources",
        Command::new("cargo").current_dir(&root).args([
            "deny",
            "--offline",
            "check",
            "licenses",
            "bans",
            "sources",
        ]),
    )
}

fn installed() -> Result<bool> {
    let output = Command::new("cargo")
        .args(["deny", "--version"])
        .output()
        .context("running cargo")?;
    Ok(output.status.success())
}
