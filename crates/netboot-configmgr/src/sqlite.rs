//! SQLite backend: a fixture database with the site database's view and column names.
//!
//! Used by the tests, by the demo configuration (so the ConfigMgr menu can be seen without a
//! site server) and as the store behind the TDS test endpoint. The schema and seed data are
//! plain SQL migrations (`testdata/configmgr/migrations`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::NaiveDateTime;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::Row;
use tokio::sync::OnceCell;

use crate::source::{site_rows, LookupFuture, LookupKeys, RowAccess, SiteDatabase, SourceError};
use crate::sql;

/// The fixture database.
#[derive(Clone)]
pub struct SqliteSite {
    pool: SqlitePool,
    location: String,
}

impl fmt::Debug for SqliteSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteSite")
            .field("location", &self.location)
            .finish()
    }
}

impl SqliteSite {
    /// Opens `location` (a file path, `sqlite://...` URL or `:memory:`) and, when
    /// `migrations` is given, applies the migrations in that directory first (creating the
    /// file if needed). Without migrations the file is opened read-only.
    pub async fn open(location: &str, migrations: Option<&Path>) -> Result<Self, SourceError> {
        let memory = location == ":memory:" || location == "sqlite::memory:";
        let url = if memory || location.starts_with("sqlite:") {
            location.to_string()
        } else {
            format!("sqlite://{location}")
        };
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|e| SourceError::Settings {
                detail: format!("sqlite location {location:?}: {e}"),
            })?
            .create_if_missing(migrations.is_some())
            .read_only(migrations.is_none() && !memory);
        // An in-memory database lives as long as its one connection, so keep exactly one.
        let pool_options = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(4)
        };
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(|e| SourceError::Connect {
                server: location.to_string(),
                source: Box::new(e),
            })?;
        if let Some(dir) = migrations {
            let migrate_error = |e: sqlx::migrate::MigrateError| SourceError::Migrate {
                path: dir.display().to_string(),
                source: Box::new(e),
            };
            let migrator = sqlx::migrate::Migrator::new(dir).await.map_err(migrate_error)?;
            migrator.run(&pool).await.map_err(migrate_error)?;
        }
        Ok(Self {
            pool,
            location: location.to_string(),
        })
    }

    /// The connection pool, for tests that change the fixture (e.g. clearing
    /// `LastPXEAdvertisement`).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn run(&self, keys: &LookupKeys) -> Result<Vec<Vec<SqliteRow>>, SourceError> {
        let mut conn = self.pool.acquire().await.map_err(|e| SourceError::Connect {
            server: self.location.clone(),
            source: Box::new(e),
        })?;
        let params = [&keys.guid, &keys.mac, &keys.cpu_type];
        let mut sets = Vec::with_capacity(sql::STATEMENTS.len());
        for statement in sql::STATEMENTS {
            let (text, count) = sql::to_sqlite(statement);
            let mut query = sqlx::query(&text);
            for value in params.iter().take(count) {
                query = query.bind(value.as_str());
            }
            sets.push(
                query
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(|e| SourceError::Query(Box::new(e)))?,
            );
        }
        Ok(sets)
    }
}

impl SiteDatabase for SqliteSite {
    fn lookup<'a>(&'a self, keys: &'a LookupKeys) -> LookupFuture<'a> {
        Box::pin(async move { site_rows(self.run(keys).await?) })
    }

    fn backend(&self) -> &'static str {
        "configmgr-sqlite"
    }
}

fn column_error(column: &'static str, e: sqlx::Error) -> SourceError {
    SourceError::Column {
        column,
        detail: e.to_string(),
    }
}

impl RowAccess for SqliteRow {
    fn int(&self, column: &'static str) -> Result<Option<i64>, SourceError> {
        self.try_get::<Option<i64>, _>(column)
            .map_err(|e| column_error(column, e))
    }

    fn text(&self, column: &'static str) -> Result<Option<String>, SourceError> {
        self.try_get::<Option<String>, _>(column)
            .map_err(|e| column_error(column, e))
    }

    fn datetime(&self, column: &'static str) -> Result<Option<NaiveDateTime>, SourceError> {
        let text = self.text(column)?;
        self.text_datetime(column, text)
    }
}

/// A [`SqliteSite`] opened on first use, so it can be built outside an async context.
/// A failed open is retried on the next lookup.
#[derive(Debug)]
pub struct LazySqliteSite {
    location: String,
    migrations: Option<PathBuf>,
    site: OnceCell<SqliteSite>,
}

impl LazySqliteSite {
    /// Remembers where the database is; see [`SqliteSite::open`].
    pub fn new(location: impl Into<String>, migrations: Option<PathBuf>) -> Self {
        Self {
            location: location.into(),
            migrations,
            site: OnceCell::new(),
        }
    }
}

impl SiteDatabase for LazySqliteSite {
    fn lookup<'a>(&'a self, keys: &'a LookupKeys) -> LookupFuture<'a> {
        Box::pin(async move {
            let site = self
                .site
                .get_or_try_init(|| SqliteSite::open(&self.location, self.migrations.as_deref()))
                .await?;
            site.lookup(keys).await
        })
    }

    fn backend(&self) -> &'static str {
        "configmgr-sqlite"
    }
}
