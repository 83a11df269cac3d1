//! `[https]`.

use serde::{Deserialize, Serialize};

use crate::Problems;

/// Settings of the https service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpsConfig {}

impl HttpsConfig {
    pub(crate) fn validate(&self, _problems: &mut Problems) {}
}
