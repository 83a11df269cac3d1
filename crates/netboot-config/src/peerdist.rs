//! `[peerdist]`: BranchCache Content Information for the boot files `pxe-https` serves.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Problems;

/// BranchCache (PeerDist) on the server side: clients that ask with the PeerDist headers (iPXE
/// built with PeerDist, Windows BranchCache clients) get the file's Content Information
/// (segment and block hashes, [MS-PCCRC]) instead of its bytes, fetch the blocks from peers in
/// their branch and the rest from the server as ordinary range requests, and verify every block.
///
/// Content Information is computed once per file version in the background and kept under
/// `https.state_dir`; until it is ready clients get the plain file.
///
/// ```
/// let config = netboot_config::Config::from_toml_str(
///     "[peerdist]\nsecret_file = \"/etc/netboot/peerdist.secret\"\nmin_file_bytes = 4194304\n",
/// ).unwrap();
/// assert!(config.peerdist.enabled);
/// assert!(netboot_config::Config::from_toml_str("[peerdist]\nsecret_file = \"\"\n").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PeerDistConfig {
    /// Answer PeerDist requests with Content Information.
    pub enabled: bool,
    /// The server passphrase (the secret every server of a site must share so that their
    /// Content Information is identical). Default: `<https.state_dir>/peerdist.secret`, created
    /// with 32 random bytes and mode 0600 when missing. Relative paths are taken from the
    /// configuration file's directory.
    pub secret_file: Option<PathBuf>,
    /// Files smaller than this are always sent as bytes.
    pub min_file_bytes: u64,
}

impl Default for PeerDistConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            secret_file: None,
            min_file_bytes: 1024 * 1024,
        }
    }
}

impl PeerDistConfig {
    pub(crate) fn validate(&self, problems: &mut Problems) {
        if self
            .secret_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            problems.push(
                "peerdist.secret_file",
                "must be a path (leave it out for the default)",
            );
        }
        if self.min_file_bytes == 0 {
            problems.push(
                "peerdist.min_file_bytes",
                "must be at least 1 (an empty file has no Content Information)",
            );
        }
    }
}
