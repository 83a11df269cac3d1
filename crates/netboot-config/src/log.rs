//! `[log]`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Problems;

/// How the services log, and the name they go by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `debug`, `netboot_tftp=trace,info`, ... `RUST_LOG` overrides
    /// it. Checked at start and by `--check-config`; a filter that does not parse is refused.
    /// Reloaded on SIGHUP.
    pub level: String,
    /// How each log line is written.
    pub format: LogFormat,
    /// The name this host's boot records and metrics carry (`host` column of the events,
    /// `netboot_host_info{host=...}`), so several hosts writing to one PostgreSQL database
    /// stay apart. Unset: the host name.
    pub host_id: Option<String>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
            host_id: None,
        }
    }
}

impl LogConfig {
    /// `host_id`, or the host name (`localhost` when it cannot be read).
    #[must_use]
    pub fn effective_host_id(&self) -> String {
        if let Some(id) = &self.host_id {
            return id.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "localhost".into())
    }

    pub(crate) fn validate(&self, problems: &mut Problems) {
        if self.level.trim().is_empty() {
            problems.push("log.level", "must not be empty");
        }
        if let Some(id) = &self.host_id {
            let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
            if id.is_empty() || id.len() > 253 || !id.chars().all(allowed) {
                problems.push(
                    "log.host_id",
                    format!("{id:?} must be 1 to 253 letters, digits, '-', '_', '.' or ':'"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn host_id_defaults_to_the_host_name_and_is_checked() {
        let config = Config::default();
        assert!(!config.log.effective_host_id().is_empty());
        let named = Config::from_toml_str("[log]\nhost_id = \"pxe-01.site\"\n").unwrap();
        assert_eq!(named.log.effective_host_id(), "pxe-01.site");
        let err = Config::from_toml_str("[log]\nhost_id = \"two words\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("log.host_id"), "{err}");
    }
}
