//! The site key for per-boot URL tokens ([`netboot_token`]): one file in a state directory,
//! created with mode 0600 on first start and read on every later start.
//!
//! A key file that others can read or write (any group or other permission bit) is refused
//! rather than used: a token key that leaked lets anyone mint URLs for any machine. Delete
//! the file to rotate the key; tokens already handed out then stop verifying.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use netboot_token::{TokenKey, KEY_LEN};

/// File name of the key inside the state directory.
pub const KEY_FILE: &str = "boot-token.key";

/// Reads `<dir>/boot-token.key`, creating the directory (0700) and the key (0600, from the
/// operating system's random source) when they do not exist.
pub fn load_or_create(dir: &Path) -> Result<(TokenKey, PathBuf)> {
    let path = dir.join(KEY_FILE);
    if !path.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the state directory {}", dir.display()))?;
        let mut bytes = [0u8; KEY_LEN];
        getrandom::getrandom(&mut bytes).context("drawing a token key from the OS")?;
        let key = TokenKey::from_bytes(bytes);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(key.to_hex().as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("writing {}", path.display()))?;
                tracing::info!(path = %path.display(), "created the boot token key");
                return Ok((key, path));
            }
            // Another process created it first: read theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    let metadata = std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable or writable by others (mode {mode:03o}); `chmod 600` it, or delete it to make a new key",
            path.display()
        );
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let key = TokenKey::from_hex(&text).with_context(|| format!("{}", path.display()))?;
    Ok((key, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_private_once_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (first, path) = load_or_create(&state).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let (second, _) = load_or_create(&state).unwrap();
        assert_eq!(first.to_hex(), second.to_hex());
    }

    #[test]
    fn a_readable_or_broken_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, path) = load_or_create(dir.path()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "not a key\n").unwrap();
        let err = format!("{:#}", load_or_create(dir.path()).unwrap_err());
        assert!(err.contains("hexadecimal"), "{err}");
    }
}
