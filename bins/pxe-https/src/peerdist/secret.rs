//! The server passphrase file: read it, or create it with 32 random bytes (mode 0600).

use std::path::Path;

use anyhow::{Context as _, Result};
use netboot_peerdist::ServerPassphrase;
use netboot_runtime::private_file;

/// Reads the passphrase at `path`, creating it first when it is missing and `create` is set.
/// A file others can read is refused, like every secret of the suite.
pub(crate) fn load_or_create(path: &Path, create: bool) -> Result<ServerPassphrase> {
    let bytes = if create {
        private_file::read_or_create(path, "PeerDist server passphrase", || {
            private_file::random_bytes(ServerPassphrase::GENERATED_LEN)
        })?
    } else {
        private_file::read(path)?
    };
    ServerPassphrase::new(bytes).with_context(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

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
            error.contains("short.secret") && error.contains("chmod 600"),
            "{error}"
        );
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
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
