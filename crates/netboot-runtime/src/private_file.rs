//! Small secret files in a state directory (keys, passphrases): created once with mode 0600
//! in a directory made with mode 0700, read on every later start, and refused rather than used
//! when any group or other permission bit is set, since a secret others could read may already
//! have leaked.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::{bail, Context as _, Result};

/// Largest secret file read.
const MAX_LEN: u64 = 64 * 1024;

/// The contents of the private file at `path`; when it does not exist, first creates it with
/// `generate()`'s bytes (another process creating it at the same time wins, and its bytes are
/// returned). The error names the file and never shows its contents.
pub fn read_or_create(
    path: &Path,
    what: &str,
    generate: impl FnOnce() -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating the state directory {}", dir.display()))?;
        }
        let bytes = generate()?;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut file) => {
                file.write_all(&bytes)
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("writing {}", path.display()))?;
                tracing::info!(path = %path.display(), "created the {what}");
                return Ok(bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    read(path)
}

/// The contents of the private file at `path`, which must exist.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    let metadata = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable or writable by others (mode {mode:03o}); `chmod 600` it, or delete it to make a new one",
            path.display()
        );
    }
    if metadata.len() > MAX_LEN {
        bail!(
            "{}: {} bytes is too long for a secret",
            path.display(),
            metadata.len()
        );
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// `len` bytes from the operating system's random source.
pub fn random_bytes(len: usize) -> Result<Vec<u8>> {
    let mut bytes = vec![0; len];
    getrandom::getrandom(&mut bytes).context("drawing random bytes from the OS")?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_private_once_then_read_and_refused_when_others_can_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/secret");
        let first = read_or_create(&path, "test secret", || random_bytes(32)).unwrap();
        assert_eq!(first.len(), 32);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&path), mode(path.parent().unwrap())), (0o600, 0o700));
        let again = read_or_create(&path, "test secret", || panic!("not generated twice")).unwrap();
        assert_eq!(again, first);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600") && error.contains("secret"), "{error}");
    }
}
