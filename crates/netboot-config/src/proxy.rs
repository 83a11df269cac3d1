//! `[proxy]`.

use serde::{Deserialize, Serialize};

use crate::Problems;

/// Settings of the proxy service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {}

impl ProxyConfig {
    pub(crate) fn validate(&self, _problems: &mut Problems) {}
}
