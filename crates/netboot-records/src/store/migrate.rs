//! Embedded schema migrations, one directory per back end.

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// Migrations compiled into the binary, so a deployed service needs no SQL files on disk.
#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        (*description).into(),
                        MigrationType::Simple,
                        (*sql).into(),
                        false,
                    )
                })
                .collect())
        })
    }
}

const SQLITE_REQUIRED_RUNS: &str = include_str!("../../migrations/sqlite/0002_required_runs.sql");

const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "boot records",
        include_str!("../../migrations/sqlite/0001_boot_records.sql"),
    ),
    (2, "required runs", SQLITE_REQUIRED_RUNS),
    (
        3,
        "event host",
        include_str!("../../migrations/sqlite/0003_event_host.sql"),
    ),
    (
        4,
        "machine claims",
        include_str!("../../migrations/sqlite/0004_machine_claims.sql"),
    ),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "boot records",
        include_str!("../../migrations/postgres/0001_boot_records.sql"),
    ),
    (
        2,
        "required runs",
        include_str!("../../migrations/postgres/0002_required_runs.sql"),
    ),
    (
        3,
        "event host",
        include_str!("../../migrations/postgres/0003_event_host.sql"),
    ),
    (
        4,
        "machine claims",
        include_str!("../../migrations/postgres/0004_machine_claims.sql"),
    ),
];
/// The standalone Required-run file (`https.state_dir`, when records are off): that table only.
const SQLITE_RUNS_ONLY: &[(i64, &str, &str)] = &[(1, "required runs", SQLITE_REQUIRED_RUNS)];

pub(super) async fn sqlite() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded(SQLITE)).await
}

pub(super) async fn sqlite_runs_only() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded(SQLITE_RUNS_ONLY)).await
}

pub(super) async fn postgres() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded(POSTGRES)).await
}
