//! `cargo xtask e2e`.

use anyhow::{bail, Result};

pub(crate) fn run(_args: &[String]) -> Result<()> {
    bail!("the end-to-end harness is not wired up yet")
}
