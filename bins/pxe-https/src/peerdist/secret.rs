//! The server passphrase file: read it, or create it with 32 random bytes (mode 0600).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use netboot_peerdist::ServerPassphrase;

/// Reads the passphrase at `path`, creating it first when it is missing and `create` is set.
pub(crate) fn load_or_create(path: &Path, create: bool) -> Result<ServerPassphrase> {
    match std::fs::metadata(path) {
        Ok(_) => load(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => match generate(path) {
            Ok(passphrase) => {
                tracing::info!(file = %path.display(), "created a new PeerDist server passphrase");
                Ok(passphrase)
            }
            // Another server process sharing the directory made it first.
            Err(e)
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::AlreadyExists) =>
            {
                load(path)
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn load(path: &Path) -> Result<ServerPassphrase> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > ServerPassphrase::MAX_LEN as u64 {
        bail!(
            "{}: {} bytes is too long for a server passphrase",
            path.display(),
            meta.len()
        );
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            file = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the PeerDist server passphrase is readable by other users; chmod 600 it"
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ServerPassphrase::new(bytes).with_context(|| path.display().to_string())
}

fn generate(path: &Path) -> Result<ServerPassphrase> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut bytes = vec![0; ServerPassphrase::GENERATED_LEN];
    getrandom::getrandom(&mut bytes).context("reading random bytes for the server passphrase")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(anyhow::Error::from)?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(ServerPassphrase::new(bytes).expect("generated length is valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_mode_600_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/peerdist.secret");
        assert!(
            load_or_create(&path, false).is_err(),
            "not created without permission"
        );
        let first = load_or_create(&path, true).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 32);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(load_or_create(&path, true).unwrap(), first);
    }

    #[test]
    fn unusable_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short.secret");
        std::fs::write(&short, b"too short").unwrap();
        let error = format!("{:#}", load_or_create(&short, true).unwrap_err());
        assert!(
            error.contains("short.secret") && error.contains("9 bytes"),
            "{error}"
        );
        assert!(
            !error.contains("too short"),
            "the passphrase itself is never shown: {error}"
        );
    }
}
