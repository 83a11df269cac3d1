//! Placeholder, filled in below.
use anyhow::Result;
use std::path::Path;
pub(crate) fn run(_workspace: &Path, _root: &Path, _deb: &Path) -> Result<()> {
    Ok(())
}
