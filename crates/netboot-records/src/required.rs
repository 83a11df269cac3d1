//! [`RequiredRuns`]: which Required deployments machines ran, so each boots by itself once.
//!
//! A run is recorded as `(MAC, SMBIOS UUID, ResourceID when known, deployment, time)` when the
//! machine has downloaded the deployment's boot image to the end (`pxe-https` decides that).
//! The records live
//!
//! * in the boot records database (`required_runs` table, SQLite or PostgreSQL) when
//!   `[records]` is enabled, so they survive restarts and every host sharing that database
//!   sees every run;
//! * otherwise in `<https.state_dir>/required-runs.sqlite`, a file of this one table created
//!   with mode 0600.
//!
//! The database is opened on first use and opening is retried on the next use after a
//! failure, so a database that is down at start does not stop a service. A machine's runs
//! are those recorded under its MAC address or under its SMBIOS UUID (the same machine
//! booting from another network card); machines that report the same UUID therefore share
//! their runs, which errs on the safe side (offered as Available).
//!
//! ```no_run
//! # async fn demo(config: netboot_config::Config) -> Result<(), netboot_records::StoreError> {
//! use netboot_records::{RequiredRun, RequiredRuns};
//! let runs = RequiredRuns::from_config(&config);
//! let mac = "00:15:5d:00:00:02".parse().unwrap();
//! runs.record(&RequiredRun {
//!     mac, uuid: None, resource_id: Some(16777218), deployment: "PS120002".into(),
//!     boot_image: Some("configmgr/PS100004/boot.wim".into()), client_ip: None, at: chrono::Utc::now(),
//! }).await?;
//! assert_eq!(runs.runs_of(mac, None).await?.len(), 1);
//! let cleared = runs.clear_machine(mac, None, "command line").await?;
//! assert_eq!(cleared[0].deployment, "PS120002");
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use netboot_config::{Config, RecordsDatabase};
use netboot_core::{LedgerFuture, MacAddr, RecordedRun, RunLedger, SmbiosUuid};
use tokio::sync::OnceCell;

use crate::event::Event;
use crate::store::{RequiredRun, Store, StoreError};

/// Name of the standalone file in `https.state_dir`.
pub const REQUIRED_RUNS_FILE: &str = "required-runs.sqlite";

/// Where the runs are kept (see the module documentation). Cheap to clone: clones share one
/// connection pool.
#[derive(Clone)]
pub struct RequiredRuns {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    store: OnceCell<Store>,
}

enum Source {
    /// The records database, the `[records] ca_file` (PostgreSQL only) and the connect timeout.
    Records(RecordsDatabase, Option<PathBuf>, Duration),
    File(PathBuf, Duration),
    Open,
}

impl fmt::Debug for RequiredRuns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequiredRuns").field(&self.location()).finish()
    }
}

impl RequiredRuns {
    /// The records database when `[records]` is enabled, else the file in `https.state_dir`.
    /// Nothing is opened yet.
    #[must_use]
    pub fn from_config(config: &Config) -> Self {
        let timeout = Duration::from_secs(config.records.connect_timeout_secs);
        let database = config
            .records
            .enabled
            .then(|| config.records.parsed_database())
            .flatten();
        let source = match database {
            Some(RecordsDatabase::Sqlite(path)) => {
                Source::Records(RecordsDatabase::Sqlite(config.resolve_path(&path)), None, timeout)
            }
            Some(postgres) => {
                let ca_file = config
                    .records
                    .ca_file
                    .as_deref()
                    .map(|path| config.resolve_path(path));
                Source::Records(postgres, ca_file, timeout)
            }
            None => Source::File(
                config
                    .resolve_path(&config.https.state_dir)
                    .join(REQUIRED_RUNS_FILE),
                timeout,
            ),
        };
        Self::with_source(source, None)
    }

    /// A standalone file (created with mode 0600 on first use).
    #[must_use]
    pub fn in_file(path: &Path) -> Self {
        Self::with_source(Source::File(path.to_path_buf(), Duration::from_secs(5)), None)
    }

    /// An open records database.
    #[must_use]
    pub fn over(store: Store) -> Self {
        Self::with_source(Source::Open, Some(store))
    }

    fn with_source(source: Source, store: Option<Store>) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                store: OnceCell::new_with(store),
            }),
        }
    }

    /// Where the runs are kept, for logs (passwords removed).
    #[must_use]
    pub fn location(&self) -> String {
        match &self.inner.source {
            Source::Records(RecordsDatabase::Sqlite(path), ..) => {
                format!("records database sqlite://{}", path.display())
            }
            Source::Records(RecordsDatabase::Postgres(url), ..) => {
                format!("records database {}", netboot_config::redact_url_password(url))
            }
            Source::File(path, _) => format!("file {}", path.display()),
            Source::Open => "records database".into(),
        }
    }

    async fn store(&self) -> Result<&Store, StoreError> {
        self.inner
            .store
            .get_or_try_init(|| async {
                match &self.inner.source {
                    Source::Records(RecordsDatabase::Sqlite(path), _, timeout) => {
                        Store::open_sqlite(path, *timeout).await
                    }
                    Source::Records(RecordsDatabase::Postgres(url), ca_file, timeout) => {
                        Store::open_postgres(url, ca_file.as_deref(), *timeout).await
                    }
                    Source::File(path, timeout) => Store::open_required_runs_file(path, *timeout).await,
                    Source::Open => unreachable!("an open store is set at construction"),
                }
            })
            .await
    }

    /// Records that a machine ran a deployment.
    pub async fn record(&self, run: &RequiredRun) -> Result<(), StoreError> {
        self.store().await?.insert_required_run(run).await
    }

    /// The machine's runs: under its MAC, or under its UUID; newest first.
    pub async fn runs_of(
        &self,
        mac: MacAddr,
        uuid: Option<SmbiosUuid>,
    ) -> Result<Vec<RequiredRun>, StoreError> {
        self.store().await?.required_runs_of(mac, uuid).await
    }

    /// Deletes the machine's runs ([`RequiredRuns::runs_of`] plus those under any UUID
    /// recorded with this MAC), so its Required deployments boot by themselves again.
    pub async fn clear(
        &self,
        mac: MacAddr,
        uuid: Option<SmbiosUuid>,
    ) -> Result<Vec<RequiredRun>, StoreError> {
        self.store().await?.delete_required_runs(mac, uuid).await
    }

    /// What administrators call (admin API, page, command line): clears the machine's runs,
    /// using the UUID the boot records know for it, and writes one "cleared by `by`" event
    /// per run on its timeline in `records`. A failure to write the events is logged; the
    /// runs are cleared regardless.
    pub async fn clear_machine(
        &self,
        mac: MacAddr,
        records: Option<&Store>,
        by: &str,
    ) -> Result<Vec<RequiredRun>, StoreError> {
        let uuid = match records {
            Some(store) => store.machine(mac).await?.and_then(|m| m.uuid),
            None => None,
        };
        let cleared = self.clear(mac, uuid).await?;
        tracing::info!(%mac, cleared = cleared.len(), by, "Required runs cleared");
        if let Some(store) = records.filter(|_| !cleared.is_empty()) {
            let events: Vec<Event> = cleared
                .iter()
                .map(|run| Event::required_cleared(run, by))
                .collect();
            if let Err(error) = store.insert(&events).await {
                tracing::warn!(%mac, %error, "recording the clear on the timeline failed");
            }
        }
        Ok(cleared)
    }
}

impl RunLedger for RequiredRuns {
    fn runs_of<'a>(&'a self, mac: MacAddr, uuid: Option<SmbiosUuid>) -> LedgerFuture<'a> {
        Box::pin(async move {
            let runs = Self::runs_of(self, mac, uuid).await?;
            Ok(runs
                .into_iter()
                .map(|run| RecordedRun {
                    deployment: run.deployment,
                    at: SystemTime::from(run.at),
                })
                .collect())
        })
    }
}
