//! `[tftp]`.

use serde::{Deserialize, Serialize};

use crate::Problems;

/// Settings of the tftp service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TftpConfig {}

impl TftpConfig {
    pub(crate) fn validate(&self, _problems: &mut Problems) {}
}
