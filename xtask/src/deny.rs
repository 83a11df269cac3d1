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
        // Built from source once per machine. Its release profile asks for fat LTO and one
        // codegen unit, which on two cores costs several times the compile itself; a check
        // that runs in seconds does not need them.
        run_step(
            "cargo install cargo-deny",
            Command::new("cargo")
                .args([
                    "install",
                    "cargo-deny",
                    "--locked",
                    "--version",
                    CARGO_DENY_VERSION,
                ])
                .env("CARGO_PROFILE_RELEASE_LTO", "false")
                .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"),
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
