//! `[runtime]`: how a service process starts and stops.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Problems;

/// How a service stops.
///
/// On SIGTERM or SIGINT every service stops accepting new work at once: the proxy answers
/// no more requests, TFTP starts no new transfer, HTTPS accepts no new connection. Transfers
/// and downloads already running get up to `drain_secs` to finish; TFTP transfers still
/// running then get an ERROR packet, HTTPS connections are closed. Boot records are
/// flushed and the process exits with status 0. A second signal exits at once.
///
/// ```
/// let config = netboot_config::Config::from_toml_str("[runtime]\ndrain_secs = 5\n").unwrap();
/// assert_eq!(config.runtime.drain_secs, 5);
/// assert!(netboot_config::Config::from_toml_str("[runtime]\ndrain_secs = 100000\n").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Seconds in-flight TFTP transfers and HTTPS downloads get to finish after SIGTERM or
    /// SIGINT (0 ends them at once). Keep it below the supervisor's stop timeout (systemd's
    /// `TimeoutStopSec`, 90 s by default). Reloaded on SIGHUP.
    pub drain_secs: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self { drain_secs: 30 }
    }
}

impl RuntimeConfig {
    pub(crate) fn validate(&self, problems: &mut Problems) {
        if self.drain_secs > 3600 {
            problems.push(
                "runtime.drain_secs",
                format!("{} is outside 0..=3600", self.drain_secs),
            );
        }
    }
}
