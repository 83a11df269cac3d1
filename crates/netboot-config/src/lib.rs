//! One configuration schema for every netboot binary.
//!
//! The same TOML file can be deployed to every host: `pxe-proxy` reads `[proxy]`, `pxe-tftp`
//! reads `[tftp]`, `pxe-https` reads `[https]`, the proxy and HTTPS services read
//! `[resolver]`, and every binary reads `[log]`, `[records]`, `[runtime]` and `[metrics]`.
//! Unknown keys are rejected, and [`Config::validate`] reports every bad value with its key
//! path, so a typo never silently falls back to a default.
//!
//! ```
//! let config = netboot_config::Config::from_toml_str("[log]\nlevel = \"debug\"\n").unwrap();
//! assert_eq!(config.log.level, "debug");
//! assert!(netboot_config::Config::from_toml_str("[log]\nlevle = \"debug\"\n").is_err());
//! ```

#![deny(missing_docs)]

use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod admin;
mod auth;
mod handoff;
mod https;
mod ipxe_dir;
mod listen;
mod log;
mod metrics;
mod peerdist;
mod proxy;
#[cfg(test)]
mod readme;
mod records;
pub mod reference;
mod resolver;
mod runtime;
mod secrets;
mod tftp;

pub use admin::{AdminConfig, MIN_PASSWORD_CHARS};
pub use auth::{
    AuthBackend, AuthConfig, AuthMethod, AuthRequire, LdapConfig, LdapUserMode, DEFAULT_USER_FILTER,
    USER_PLACEHOLDER,
};
pub use handoff::{BootImageHandoff, ConfigMgrHandoffConfig, DistributionPointConfig, DpAuth};
pub use https::{HttpsConfig, ResolverFallback};
pub use ipxe_dir::{IpxeBuildManifest, IpxeDir, BUILD_MANIFEST, DEBIAN_IPXE_DIR, SITE_IPXE_SUBDIR};
pub use log::{LogConfig, LogFormat};
pub use metrics::MetricsConfig;
pub use peerdist::PeerDistConfig;
pub use proxy::{Ipv4Prefix, ProxyConfig};
pub use records::{RecordsConfig, RecordsDatabase};
pub use resolver::{
    parse_utc_offset, CacheConfig, ConfigMgrBackend, ConfigMgrConfig, MenuOrderConfig, NothingDeployedConfig,
    ResolverConfig, ResolverKind, Secret, WebhookConfig,
};
pub use runtime::RuntimeConfig;
pub use secrets::redact_url_password;
pub use tftp::TftpConfig;

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[log]`: level and format of the logs.
    pub log: LogConfig,
    /// `[proxy]`: the proxyDHCP service.
    pub proxy: ProxyConfig,
    /// `[tftp]`: the TFTP service.
    pub tftp: TftpConfig,
    /// `[https]`: the HTTPS boot-script and file service.
    pub https: HttpsConfig,
    /// `[peerdist]`: BranchCache Content Information for `pxe-https`' boot files.
    pub peerdist: PeerDistConfig,
    /// `[resolver]`: where boot decisions come from.
    pub resolver: ResolverConfig,
    /// `[records]`: the boot-records database.
    pub records: RecordsConfig,
    /// `[admin]`: reports page, JSON API and metrics.
    pub admin: AdminConfig,
    /// `[auth]`: logins at the boot console before a machine may boot.
    pub auth: AuthConfig,
    /// `[runtime]`: how the process stops (drain time).
    pub runtime: RuntimeConfig,
    /// `[metrics]`: the Prometheus `/metrics` and `/healthz` listener of any binary.
    pub metrics: MetricsConfig,
    /// Directory of the file this was loaded from; relative paths in the file are resolved
    /// against it. Not a TOML key.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

/// A configuration that could not be read, parsed or validated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    // The parser's message is part of this one, not a separate `source`, so that error
    // chains printed with `{:#}` do not repeat it.
    #[error("{}{message}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Parse {
        /// The file, when there is one.
        path: Option<PathBuf>,
        /// The parser's message, which names the key and line; without the line's text when
        /// that may hold a secret.
        message: String,
    },
    /// Values that parse but are not acceptable.
    #[error("invalid configuration:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Invalid>),
}

/// One unacceptable value, named by its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Dotted key path, e.g. `tftp.max_blksize`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Collects validation failures; each section adds its own with its key prefix.
#[derive(Debug, Default)]
pub struct Problems(Vec<Invalid>);

impl Problems {
    /// Records that `key` is invalid.
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Invalid {
            key: key.into(),
            message: message.into(),
        });
    }

    /// Whether nothing was found wrong.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was found wrong, else every problem as [`ConfigError::Invalid`].
    pub fn into_result(self) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(self.0))
        }
    }
}

impl Config {
    /// Parses TOML text (no file, so relative paths stay relative to the working directory).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: None,
            message: secrets::parse_error_message(text, &error),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates a file; `None` gives the embedded defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            let config = Self::default();
            config.validate()?;
            return Ok(config);
        };
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.into(),
            error,
        })?;
        let mut config: Self = toml::from_str(&text).map_err(|error| ConfigError::Parse {
            path: Some(path.into()),
            message: secrets::parse_error_message(&text, &error),
        })?;
        config.base_dir = path.parent().map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
            .to_path_buf()
        });
        config.validate()?;
        Ok(config)
    }

    /// Checks every section and returns all problems at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        self.log.validate(&mut problems);
        self.proxy.validate(&mut problems);
        self.tftp.validate(&mut problems);
        self.https.validate(&mut problems);
        self.peerdist.validate(&mut problems);
        self.resolver.validate(&mut problems);
        self.records.validate(&mut problems);
        self.admin.validate(&mut problems);
        self.auth.validate(&mut problems);
        self.runtime.validate(&mut problems);
        problems.into_result()
    }

    /// Resolves a path from the file against the file's directory.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        match &self.base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::load(None).unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml_str("[tftp]\nnot_a_key = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not_a_key"), "{err}");
    }

    #[test]
    fn every_testdata_config_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/config");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Config::load(Some(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                count += 1;
            }
        }
        assert!(count > 0, "no configs in {}", dir.display());
    }

    #[test]
    fn readme_operations_example_keeps_the_runtime_defaults() {
        let example = readme::example_starting_with("[log]\nhost_id");
        let config = Config::from_toml_str(&example.file).unwrap();
        assert_eq!(config.log.host_id.as_deref(), Some("pxe01"));
        assert_eq!(config.runtime, RuntimeConfig::default());
        assert_eq!(config.metrics.listen.unwrap().port(), 9181);
    }
}
