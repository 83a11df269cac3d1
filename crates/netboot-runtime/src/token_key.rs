//! The site key for per-boot URL tokens ([`netboot_token`]): one file in a state directory,
//! created with mode 0600 on first start and read on every later start.
//!
//! A key file that others can read or write (any group or other permission bit) is refused
//! rather than used: a token key that leaked lets anyone mint URLs for any machine. Delete
//! the file to rotate the key; tokens already handed out then stop verifying.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use netboot_token::{TokenKey, KEY_LEN};

use crate::private_file;

/// File name of the key inside the state directory.
pub const KEY_FILE: &str = "boot-token.key";

/// Reads `<dir>/boot-token.key`, creating the directory (0700) and the key (0600, from the
/// operating system's random source) when they do not exist.
pub fn load_or_create(dir: &Path) -> Result<(TokenKey, PathBuf)> {
    let path = dir.join(KEY_FILE);
    let text = private_file::read_or_create(&path, "boot token key", || {
        let bytes = private_file::random_bytes(KEY_LEN)?;
        let key = TokenKey::from_bytes(bytes.try_into().expect("KEY_LEN bytes"));
        Ok(key.to_hex().into_bytes())
    })?;
    let text = String::from_utf8_lossy(&text);
    let key = TokenKey::from_hex(&text).with_context(|| format!("{}", path.display()))?;
    Ok((key, path))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

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
