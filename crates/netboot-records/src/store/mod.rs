//! The database: SQLite (one file, WAL) or PostgreSQL, behind one [`Store`] type.
//!
//! Both back ends share every query (written in the SQL both accept) and have their own
//! migration directory. Timestamps are stored as Unix milliseconds so the two behave the
//! same and day buckets are plain integer division.

mod migrate;
mod read;
mod required;
mod rows;
mod write;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use netboot_config::{Config, RecordsDatabase};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use read::{split_into_boots, BootJourney, MachineQuery};
pub use required::RequiredRun;
pub use rows::{Claim, Count, DayCount, Machine, StoredEvent};
pub use write::MAX_CLAIMS_PER_MACHINE;

/// A database that could not be opened, migrated, written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Connecting (or opening the SQLite file) failed.
    #[error("connecting to {target}: {source}")]
    Connect {
        /// The database, with any password removed.
        target: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the schema migrations failed.
    #[error("migrating the records schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("records query: {0}")]
    Query(#[from] sqlx::Error),
    /// A database file could not be created or given its permissions.
    #[error("creating {path}: {source}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The configured database URL is not one this crate understands.
    #[error("unsupported records database {0:?}")]
    Unsupported(String),
}

/// Which tables a database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// Everything: events, machines, Required runs.
    Records,
    /// Only the Required runs (the standalone file used while records are off).
    RequiredRunsOnly,
}

/// The connection pool of whichever back end is configured.
#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same statement text against whichever pool is open.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($pool) => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// An open, migrated records database. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// Written into every event row's `host` column (`[log] host_id`).
    host: Option<std::sync::Arc<str>>,
}

impl Store {
    /// Opens the database `[records] database` names (relative SQLite paths resolve against
    /// the configuration file's directory) and applies any pending migration.
    /// Events written through it carry this host's `[log] host_id`.
    pub async fn open_config(config: &Config) -> Result<Self, StoreError> {
        let timeout = Duration::from_secs(config.records.connect_timeout_secs);
        let store = match config.records.parsed_database() {
            Some(RecordsDatabase::Sqlite(path)) => {
                Self::open_sqlite(&config.resolve_path(&path), timeout).await
            }
            Some(RecordsDatabase::Postgres(url)) => {
                let ca_file = config
                    .records
                    .ca_file
                    .as_deref()
                    .map(|path| config.resolve_path(path));
                Self::open_postgres(&url, ca_file.as_deref(), timeout).await
            }
            None => Err(StoreError::Unsupported(config.records.database.clone())),
        }?;
        Ok(store.with_host(&config.log.effective_host_id()))
    }

    /// The same store, writing `host` into the events it inserts.
    #[must_use]
    pub fn with_host(mut self, host: &str) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Opens (creating it if needed) a SQLite file in WAL mode and migrates it.
    ///
    /// WAL lets the admin page read while the writer writes, and lets several services on one
    /// host share the file; `busy_timeout` makes a writer wait for another process's commit
    /// instead of failing.
    pub async fn open_sqlite(path: &Path, timeout: Duration) -> Result<Self, StoreError> {
        Self::open_sqlite_schema(path, timeout, Schema::Records).await
    }

    async fn open_sqlite_schema(path: &Path, timeout: Duration, schema: Schema) -> Result<Self, StoreError> {
        let target = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(timeout)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect { target, source })?;
        let store = Self {
            backend: Backend::Sqlite(pool),
            host: None,
        };
        store.migrate(schema).await?;
        Ok(store)
    }

    /// Connects to PostgreSQL and migrates the schema.
    ///
    /// TLS follows the URL's `sslmode` as libpq does (`prefer` when unstated). `ca_file`, a PEM
    /// file of certificate authorities, replaces the system trust store for the server's
    /// certificate; with it an unstated `sslmode` becomes `verify-full`, since naming a CA only
    /// makes sense when the server is checked against it.
    pub async fn open_postgres(
        url: &str,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let target = netboot_config::redact_url_password(url);
        let mut options = PgConnectOptions::from_str(url).map_err(|source| StoreError::Connect {
            target: target.clone(),
            source,
        })?;
        if let Some(path) = ca_file {
            // Read here rather than by the driver at each connection: a missing or unreadable
            // file is reported once, by name, instead of as a connection failure.
            let pem = std::fs::read(path).map_err(|source| StoreError::File {
                path: path.to_path_buf(),
                source,
            })?;
            options = options.ssl_root_cert_from_pem(pem);
            // libpq's PGSSLMODE, which the driver also reads, is a choice stated too.
            if !sslmode_in_url(url) && std::env::var_os("PGSSLMODE").is_none() {
                options = options.ssl_mode(PgSslMode::VerifyFull);
            }
        }
        // The build links rustls with both ring and aws-lc-rs (tiberius brings the latter), so
        // rustls cannot pick a process default by itself, and the driver's certificate
        // verifier asks for one: ring, like every other TLS connection here. A program's own
        // earlier choice stands (`install_default` then fails, harmlessly).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(timeout)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect { target, source })?;
        let store = Self {
            backend: Backend::Postgres(pool),
            host: None,
        };
        store.migrate(Schema::Records).await?;
        Ok(store)
    }

    /// `sqlite` or `postgres`.
    #[must_use]
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    async fn migrate(&self, schema: Schema) -> Result<(), StoreError> {
        match (&self.backend, schema) {
            (Backend::Sqlite(pool), Schema::Records) => migrate::SQLITE.run(pool).await?,
            (Backend::Sqlite(pool), Schema::RequiredRunsOnly) => migrate::SQLITE_RUNS_ONLY.run(pool).await?,
            (Backend::Postgres(pool), _) => migrate::POSTGRES.run(pool).await?,
        }
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }
}

/// Whether the URL states the TLS mode (`sslmode`, or sqlx's `ssl-mode` spelling).
fn sslmode_in_url(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| matches!(pair.split('=').next(), Some("sslmode" | "ssl-mode")))
    })
}

#[cfg(test)]
mod tests {
    use super::sslmode_in_url;

    #[test]
    fn sslmode_is_a_query_parameter() {
        assert!(sslmode_in_url("postgres://u@h/d?sslmode=require"));
        assert!(sslmode_in_url(
            "postgres://u@h/d?application_name=x&ssl-mode=disable"
        ));
        assert!(!sslmode_in_url("postgres://u@h/d?application_name=sslmode"));
        assert!(!sslmode_in_url("postgres://u:pw@h/d"));
    }
}
