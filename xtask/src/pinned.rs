//! Builds from pinned upstream source tarballs: verify the tarball's SHA-256, extract it, run
//! a build recipe, and cache the outputs by (tarball hash, recipe) so later runs reuse them.
//!
//! The tarballs are never downloaded: they come from the `shared/ipxe/` directory beside the
//! checkout (or `NETBOOT_SHARED_DIR`), with their hashes pinned here and in
//! `shared/ipxe/README.md`. A cache entry is a directory under `target/pinned/` that appears
//! only once its build finished (built under a temporary name and renamed), so an interrupted
//! build is redone rather than half-used.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use sha2::{Digest as _, Sha256};

/// An upstream release pinned by the SHA-256 of its tarball.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pinned {
    /// File name in `shared/ipxe/`.
    pub(crate) file: &'static str,
    /// Its SHA-256, lower-case hex.
    pub(crate) sha256: &'static str,
}

/// wimboot v2.9.0 (commit e5875648bd52a3b915ae54933d9adf8ac763baca).
pub(crate) const WIMBOOT: Pinned = Pinned {
    file: "wimboot-2.9.0.tar.gz",
    sha256: "9914dfadc79a9ed1c32fe613aeba9753fb6d52db7baa38f140ba92c5c5a86105",
};

/// A build of a pinned tarball: `recipe` names it in the cache (change it whenever `build`
/// changes), `build` runs in the extracted source tree and copies its outputs into the
/// output directory it is given.
pub(crate) fn build_cached(
    workspace: &Path,
    pinned: Pinned,
    recipe: &str,
    build: impl FnOnce(&Path, &Path) -> Result<()>,
) -> Result<PathBuf> {
    let key = cache_key(pinned, recipe);
    let cache = workspace.join("target/pinned");
    let out = cache.join(&key);
    if out.is_dir() {
        return Ok(out);
    }
    let tarball = find_tarball(workspace, pinned.file)?;
    verify(&tarball, pinned.sha256)?;
    let work = cache.join(format!(".build-{key}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let source = work.join("src");
    let staged = work.join("out");
    std::fs::create_dir_all(&source)?;
    std::fs::create_dir_all(&staged)?;
    crate::ci::run_step(
        &format!("extract {}", pinned.file),
        Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&source)
            .arg("--strip-components=1"),
    )?;
    build(&source, &staged).with_context(|| format!("building {} ({recipe})", pinned.file))?;
    // Another run may have finished the same build meanwhile; either copy is good.
    match std::fs::rename(&staged, &out) {
        Ok(()) => {}
        Err(_) if out.is_dir() => {}
        Err(e) => return Err(e).with_context(|| format!("storing {}", out.display())),
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(out)
}

/// `<name>-<first 12 hex of the tarball hash>-<first 12 hex of the recipe's hash>`.
fn cache_key(pinned: Pinned, recipe: &str) -> String {
    let name = pinned.file.trim_end_matches(".tar.gz");
    let recipe_hash = hex(&Sha256::digest(recipe.as_bytes()));
    format!("{name}-{}-{}", &pinned.sha256[..12], &recipe_hash[..12])
}

/// `$NETBOOT_SHARED_DIR/ipxe/<file>`, or `shared/ipxe/<file>` in the nearest ancestor of the
/// workspace that has it (CI lays `shared/` beside the checkout).
fn find_tarball(workspace: &Path, file: &str) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("NETBOOT_SHARED_DIR") {
        let path = PathBuf::from(dir).join("ipxe").join(file);
        if path.is_file() {
            return Ok(path);
        }
        bail!("{} does not exist (NETBOOT_SHARED_DIR)", path.display());
    }
    workspace
        .ancestors()
        .map(|dir| dir.join("shared/ipxe").join(file))
        .find(|path| path.is_file())
        .with_context(|| {
            format!(
                "{file} not found in shared/ipxe/ beside the checkout; set NETBOOT_SHARED_DIR to the directory holding ipxe/{file}"
            )
        })
}

/// Refuses a tarball whose SHA-256 is not the pinned one.
fn verify(tarball: &Path, expected: &str) -> Result<()> {
    let bytes = std::fs::read(tarball).with_context(|| format!("reading {}", tarball.display()))?;
    let actual = hex(&Sha256::digest(&bytes));
    if actual != expected {
        bail!(
            "{} has SHA-256 {actual}, not the pinned {expected}: refusing to build it",
            tarball.display()
        );
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// wimboot for x86_64 (BIOS and UEFI in one hybrid binary). `debug` builds it with `DEBUG=1`,
/// which makes wimboot print every file it is handed (`Using <name> via ... len ...`) and
/// what it does with the WIM: the lab's proof of what reached the client.
pub(crate) fn wimboot(workspace: &Path, debug: bool) -> Result<PathBuf> {
    let recipe = format!("make wimboot.x86_64.efi DEBUG={}", u8::from(debug));
    let dir = build_cached(workspace, WIMBOOT, &recipe, |source, out| {
        let mut make = Command::new("make");
        make.current_dir(source.join("src"))
            .args(["-j2", "wimboot.x86_64.efi"]);
        if debug {
            make.arg("DEBUG=1");
        }
        crate::ci::run_step("build wimboot from the pinned source", &mut make)?;
        std::fs::copy(source.join("src/wimboot.x86_64.efi"), out.join("wimboot"))?;
        Ok(())
    })?;
    Ok(dir.join("wimboot"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_changes_with_the_recipe_and_the_tarball() {
        let a = cache_key(WIMBOOT, "make DEBUG=1");
        assert!(a.starts_with("wimboot-2.9.0-9914dfadc79a-"), "{a}");
        assert_ne!(a, cache_key(WIMBOOT, "make DEBUG=0"));
        let other = Pinned {
            sha256: "0000000000000000000000000000000000000000000000000000000000000000",
            ..WIMBOOT
        };
        assert_ne!(a, cache_key(other, "make DEBUG=1"));
    }

    #[test]
    fn a_tarball_with_another_hash_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join(WIMBOOT.file);
        std::fs::write(&fake, b"not wimboot").unwrap();
        let err = verify(&fake, WIMBOOT.sha256).unwrap_err().to_string();
        assert!(err.contains("refusing"), "{err}");
    }
}
