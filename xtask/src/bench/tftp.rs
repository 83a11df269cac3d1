//! `cargo xtask bench tftp`.

use anyhow::{bail, Result};

pub(crate) fn run(_args: &[String]) -> Result<()> {
    bail!("the tftp benchmark is not implemented yet")
}
