//! The `required_runs` table: written when a machine finished downloading a Required
//! deployment's boot image, read for decisions that hold a Required installation, cleared by
//! administrators. See [`crate::RequiredRuns`] for the API the services use.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use netboot_core::{MacAddr, SmbiosUuid};
use serde::Serialize;
use sqlx::{Decode, Row, Type};

use super::rows::{decode_error, from_millis};
use super::{on_pool, Schema, Store, StoreError};

/// One machine's run of one Required deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequiredRun {
    /// The MAC address the machine booted with.
    pub mac: MacAddr,
    /// Its SMBIOS UUID, when it reported one.
    pub uuid: Option<SmbiosUuid>,
    /// The deciding system's id of the machine (a ConfigMgr ResourceID), when known.
    pub resource_id: Option<i64>,
    /// The deployment (action) id.
    pub deployment: String,
    /// The boot image whose complete download counted as the run (path below the file root).
    pub boot_image: Option<String>,
    /// The address it downloaded from.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub client_ip: Option<IpAddr>,
    /// When the download finished.
    pub at: DateTime<Utc>,
}

const COLUMNS: &str = "mac, deployment, uuid, resource_id, boot_image, client_ip, at_ms";

/// A machine's runs: those under its MAC and those under its UUID (another network card of
/// the same machine).
const MATCHES_MACHINE: &str = "mac = $1 OR (CAST($2 AS TEXT) IS NOT NULL AND uuid = $2)";

/// Most runs returned for one machine; a machine has a handful.
const MAX_RUNS: i64 = 1000;

fn run<R: Row>(row: &R) -> Result<RequiredRun, sqlx::Error>
where
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    let mac: String = row.try_get("mac")?;
    let uuid: Option<String> = row.try_get("uuid")?;
    let client_ip: Option<String> = row.try_get("client_ip")?;
    Ok(RequiredRun {
        mac: mac.parse().map_err(|e| decode_error("mac", e))?,
        uuid: uuid.and_then(|u| u.parse().ok()),
        resource_id: row.try_get("resource_id")?,
        deployment: row.try_get("deployment")?,
        boot_image: row.try_get("boot_image")?,
        client_ip: client_ip.and_then(|ip| ip.parse().ok()),
        at: from_millis(row.try_get("at_ms")?),
    })
}

/// Creates `path` (and its directory) readable by this user only, before SQLite opens it;
/// SQLite gives its `-wal` and `-shm` files the database file's permissions.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating it with mode 0600) the standalone Required-run file.
    pub(crate) async fn open_required_runs_file(path: &Path, timeout: Duration) -> Result<Self, StoreError> {
        create_private_file(path).map_err(|source| StoreError::File {
            path: path.to_path_buf(),
            source,
        })?;
        Self::open_sqlite_schema(path, timeout, Schema::RequiredRunsOnly).await
    }

    /// Records a run; a second run of the same deployment by the same MAC replaces the first.
    pub(crate) async fn insert_required_run(&self, run: &RequiredRun) -> Result<(), StoreError> {
        let sql =
            "INSERT INTO required_runs (mac, deployment, uuid, resource_id, boot_image, client_ip, at_ms) \
            VALUES ($1, $2, $3, $4, $5, $6, $7) \
            ON CONFLICT (mac, deployment) DO UPDATE SET \
            uuid = COALESCE(excluded.uuid, required_runs.uuid), \
            resource_id = COALESCE(excluded.resource_id, required_runs.resource_id), \
            boot_image = excluded.boot_image, client_ip = excluded.client_ip, at_ms = excluded.at_ms";
        on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(run.mac.to_string())
                .bind(&run.deployment)
                .bind(run.uuid.map(|u| u.to_string()))
                .bind(run.resource_id)
                .bind(&run.boot_image)
                .bind(run.client_ip.map(|ip| ip.to_string()))
                .bind(run.at.timestamp_millis())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The runs of the machine with this MAC or this UUID, newest first.
    pub(crate) async fn required_runs_of(
        &self,
        mac: MacAddr,
        uuid: Option<SmbiosUuid>,
    ) -> Result<Vec<RequiredRun>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM required_runs WHERE {MATCHES_MACHINE} ORDER BY at_ms DESC, deployment LIMIT $3"
        );
        on_pool!(self, pool => {
            let found = sqlx::query(&sql)
                .bind(mac.to_string())
                .bind(uuid.map(|u| u.to_string()))
                .bind(MAX_RUNS)
                .fetch_all(pool)
                .await?;
            Ok(found.iter().map(run).collect::<Result<_, _>>()?)
        })
    }

    /// Deletes the machine's runs (as [`Store::required_runs_of`] finds them, plus those
    /// under any UUID recorded with this MAC) and returns them.
    pub(crate) async fn delete_required_runs(
        &self,
        mac: MacAddr,
        uuid: Option<SmbiosUuid>,
    ) -> Result<Vec<RequiredRun>, StoreError> {
        let sql = format!(
            "DELETE FROM required_runs WHERE {MATCHES_MACHINE} \
             OR uuid IN (SELECT uuid FROM required_runs WHERE mac = $1 AND uuid IS NOT NULL) \
             RETURNING {COLUMNS}"
        );
        let mut cleared: Vec<RequiredRun> = on_pool!(self, pool => {
            let found = sqlx::query(&sql)
                .bind(mac.to_string())
                .bind(uuid.map(|u| u.to_string()))
                .fetch_all(pool)
                .await?;
            found.iter().map(run).collect::<Result<_, _>>()?
        });
        cleared.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.deployment.cmp(&b.deployment)));
        Ok(cleared)
    }
}
