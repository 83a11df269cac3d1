//! `[records]`: the boot-records database shared by every service.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Problems;

/// Where and how boot events are stored.
///
/// Every service writes its events through a bounded in-memory queue to one database: a
/// SQLite file (the default, fine for one host) or PostgreSQL (when the services run on
/// several hosts). A slow or unreachable database never delays a client; events that do not
/// fit in the queue are counted as dropped and reported in `/metrics` and the admin API.
///
/// ```
/// let config = netboot_config::Config::from_toml_str(
///     "[records]\nenabled = true\ndatabase = \"postgres://netboot@db.example/netboot\"\n",
/// ).unwrap();
/// assert!(config.records.enabled);
/// assert!(netboot_config::Config::from_toml_str("[records]\ndatabase = \"mysql://x\"\n").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RecordsConfig {
    /// Record boot events. Off by default so a test run or a first start never leaves a
    /// database file behind unasked.
    pub enabled: bool,
    /// `sqlite://<path>` (relative paths resolve against the configuration file's directory)
    /// or `postgres://user:password@host:port/database`. PostgreSQL takes libpq's
    /// `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`) and `sslrootcert`
    /// query parameters, e.g. `postgres://netboot@db.example/netboot?sslmode=verify-full`.
    pub database: String,
    /// PEM file of the certificate authorities that sign the PostgreSQL server's certificate
    /// (relative paths resolve against the configuration file's directory; unset: the system's
    /// trust store). Setting it turns an unstated `sslmode` into `verify-full`.
    pub ca_file: Option<PathBuf>,
    /// Events held in memory while the database catches up; beyond it events are dropped and
    /// counted.
    pub queue_capacity: usize,
    /// Events written per transaction.
    pub batch_size: usize,
    /// Events older than this many days are deleted (0 keeps them forever).
    pub retention_days: u32,
    /// At most this many events are kept, the oldest deleted first (0 = no limit).
    pub max_events: u64,
    /// Seconds between retention passes.
    pub retention_interval_secs: u64,
    /// Seconds to wait for a database connection before counting the batch as dropped.
    pub connect_timeout_secs: u64,
    /// Events each machine, and each client address, may add per minute (bursts of as
    /// many); beyond it they are dropped and counted. A boot records a few dozen, a PeerDist
    /// boot a few hundred.
    pub max_events_per_minute: u32,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            database: "sqlite://records.db".into(),
            ca_file: None,
            queue_capacity: 10_000,
            batch_size: 256,
            retention_days: 90,
            max_events: 5_000_000,
            retention_interval_secs: 3600,
            connect_timeout_secs: 5,
            max_events_per_minute: 3000,
        }
    }
}

/// The database a [`RecordsConfig`] points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordsDatabase {
    /// A SQLite file (relative paths are still relative; see [`crate::Config::resolve_path`]).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl RecordsConfig {
    /// Which database `database` names, or `None` when the scheme is not supported.
    #[must_use]
    pub fn parsed_database(&self) -> Option<RecordsDatabase> {
        let url = self.database.trim();
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or_default();
            return (!path.is_empty()).then(|| RecordsDatabase::Sqlite(Path::new(path).to_path_buf()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Some(RecordsDatabase::Postgres(url.to_string()));
        }
        None
    }

    pub(crate) fn validate(&self, problems: &mut Problems) {
        if self.parsed_database().is_none() {
            problems.push(
                "records.database",
                format!(
                    "{:?} is neither sqlite://<path> nor postgres://...",
                    crate::redact_url_password(&self.database)
                ),
            );
        }
        if self.ca_file.is_some() && matches!(self.parsed_database(), Some(RecordsDatabase::Sqlite(_))) {
            problems.push(
                "records.ca_file",
                "applies to a postgres:// database only (SQLite is a local file)",
            );
        }
        if !(16..=10_000_000).contains(&self.queue_capacity) {
            problems.push(
                "records.queue_capacity",
                format!("{} is outside 16..=10000000", self.queue_capacity),
            );
        }
        if !(1..=10_000).contains(&self.batch_size) {
            problems.push(
                "records.batch_size",
                format!("{} is outside 1..=10000", self.batch_size),
            );
        }
        if self.retention_interval_secs == 0 {
            problems.push("records.retention_interval_secs", "must be at least 1");
        }
        if !(10..=10_000_000).contains(&self.max_events_per_minute) {
            problems.push(
                "records.max_events_per_minute",
                format!("{} is outside 10..=10000000", self.max_events_per_minute),
            );
        }
        if !(1..=300).contains(&self.connect_timeout_secs) {
            problems.push(
                "records.connect_timeout_secs",
                format!("{} is outside 1..=300", self.connect_timeout_secs),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_schemes() {
        let with = |url: &str| {
            RecordsConfig {
                database: url.into(),
                ..RecordsConfig::default()
            }
            .parsed_database()
        };
        assert_eq!(
            with("sqlite://var/records.db"),
            Some(RecordsDatabase::Sqlite("var/records.db".into()))
        );
        assert_eq!(
            with("sqlite:/abs.db"),
            Some(RecordsDatabase::Sqlite("/abs.db".into()))
        );
        assert!(matches!(
            with("postgresql://h/db"),
            Some(RecordsDatabase::Postgres(_))
        ));
        assert_eq!(with("sqlite://"), None);
        assert_eq!(with("mysql://h/db"), None);
    }

    #[test]
    fn ca_file_needs_postgres() {
        let err = crate::Config::from_toml_str("[records]\nca_file = \"ca.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("records.ca_file"), "{err}");
        let config = crate::Config::from_toml_str(
            "[records]\ndatabase = \"postgres://netboot@db.example/netboot\"\nca_file = \"ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(config.records.ca_file.as_deref(), Some(Path::new("ca.pem")));
    }

    #[test]
    fn bad_values_are_named() {
        let err = crate::Config::from_toml_str("[records]\nqueue_capacity = 1\nbatch_size = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("records.queue_capacity") && err.contains("records.batch_size"),
            "{err}"
        );
    }
}
