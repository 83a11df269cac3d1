//! `cargo xtask docs`: the configuration reference, generated from the schema.
//!
//! `netboot_config::reference` walks the JSON Schema that `schemars` derives from the serde
//! types of the configuration and their doc comments; this command writes it to
//! `docs/configuration.md`. With `--check` (what `cargo xtask tidy` runs) it writes nothing
//! and fails when a key has no description or the committed file is not what the schema
//! gives, so the reference cannot drift from the code.

use anyhow::{bail, Context, Result};
use netboot_config::reference::{markdown, REFERENCE_PATH};
use netboot_testkit::golden::first_different_line;

pub(crate) fn run(check: bool) -> Result<()> {
    let generated = markdown().context("generating the configuration reference")?;
    let path = crate::workspace_root().join(REFERENCE_PATH);
    let committed = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if committed.as_deref() == Some(generated.as_str()) {
        eprintln!("{REFERENCE_PATH} is up to date");
        return Ok(());
    }
    if check {
        match committed {
            None => bail!("{REFERENCE_PATH} is missing: run `cargo xtask docs` and commit it"),
            Some(committed) => bail!(
                "{REFERENCE_PATH} differs from the configuration schema (first difference at line {}): \
                 run `cargo xtask docs` and commit the result",
                first_different_line(&committed, &generated) + 1
            ),
        }
    }
    std::fs::write(&path, generated).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {REFERENCE_PATH}");
    Ok(())
}
