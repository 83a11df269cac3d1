//! Schema migrations, one directory per back end, embedded at compile time by
//! `sqlx::migrate!` so a deployed service needs no SQL files on disk.
//!
//! A migration's version is its file's number and its checksum the SHA-384 of the file's
//! text, exactly what the hand-built list these replace recorded: databases it migrated are
//! recognised as up to date.

use sqlx::migrate::Migrator;

pub(super) static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");

pub(super) static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// The standalone Required-run file (`https.state_dir`, when records are off): that table
/// only, as its version 1. The directory holds a link to the SQLite directory's
/// `0002_required_runs.sql`, so the two cannot drift apart.
pub(super) static SQLITE_RUNS_ONLY: Migrator = sqlx::migrate!("./migrations/sqlite-required-runs");

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::SqlitePool;

    /// The embedded lists as the code before `sqlx::migrate!` built them, by hand from
    /// `include_str!`: what the databases in the field were migrated with.
    const OLD_SQLITE: &[(i64, &str, &str)] = &[
        (
            1,
            "boot records",
            include_str!("../../migrations/sqlite/0001_boot_records.sql"),
        ),
        (
            2,
            "required runs",
            include_str!("../../migrations/sqlite/0002_required_runs.sql"),
        ),
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
    const OLD_POSTGRES: &[(i64, &str, &str)] = &[
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
    const OLD_SQLITE_RUNS_ONLY: &[(i64, &str, &str)] = &[(
        1,
        "required runs",
        include_str!("../../migrations/sqlite/0002_required_runs.sql"),
    )];

    #[derive(Debug)]
    struct Old(&'static [(i64, &'static str, &'static str)]);

    impl Old {
        fn migrations(&self) -> Vec<Migration> {
            self.0
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect()
        }
    }

    impl MigrationSource<'static> for Old {
        fn resolve(
            self,
        ) -> futures::future::BoxFuture<'static, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
            Box::pin(async move { Ok(self.migrations()) })
        }
    }

    #[test]
    fn versions_and_checksums_are_the_old_ones() {
        for (old, new) in [
            (OLD_SQLITE, &super::SQLITE),
            (OLD_POSTGRES, &super::POSTGRES),
            (OLD_SQLITE_RUNS_ONLY, &super::SQLITE_RUNS_ONLY),
        ] {
            let old = Old(old).migrations();
            let new: Vec<_> = new.iter().collect();
            assert_eq!(old.len(), new.len());
            for (old, new) in old.iter().zip(new) {
                assert_eq!(
                    (
                        old.version,
                        &old.description,
                        &old.checksum,
                        old.no_tx,
                        old.migration_type
                    ),
                    (
                        new.version,
                        &new.description,
                        &new.checksum,
                        new.no_tx,
                        new.migration_type
                    ),
                );
            }
        }
    }

    async fn old_database(
        dir: &std::path::Path,
        name: &str,
        old: &'static [(i64, &'static str, &'static str)],
    ) -> SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(dir.join(name))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        Migrator::new(Old(old)).await.unwrap().run(&pool).await.unwrap();
        pool
    }

    #[tokio::test]
    async fn databases_migrated_by_the_old_list_open_as_up_to_date() {
        let dir = tempfile::tempdir().unwrap();
        for (name, old, new) in [
            ("records.db", OLD_SQLITE, &super::SQLITE),
            ("runs.db", OLD_SQLITE_RUNS_ONLY, &super::SQLITE_RUNS_ONLY),
        ] {
            let pool = old_database(dir.path(), name, old).await;
            // Validates every applied migration's checksum, applies nothing new.
            new.run(&pool).await.unwrap();
            let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(applied, i64::try_from(old.len()).unwrap(), "{name}");
            pool.close().await;
        }
    }

    #[tokio::test]
    async fn a_database_part_way_through_the_old_list_is_completed() {
        let dir = tempfile::tempdir().unwrap();
        let pool = old_database(dir.path(), "records.db", &OLD_SQLITE[..2]).await;
        super::SQLITE.run(&pool).await.unwrap();
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(applied, [1, 2, 3, 4]);
        pool.close().await;
    }
}
