//! `cargo xtask bench <target>`.

use anyhow::{bail, Result};

pub(crate) fn run(target: &str, _args: &[String]) -> Result<()> {
    bail!("unknown benchmark {target:?}")
}
