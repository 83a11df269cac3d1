//! What the store returns, and how rows of either back end become those types.

use chrono::{DateTime, NaiveDate, Utc};
use netboot_core::{MacAddr, SmbiosUuid};
use serde::Serialize;
use sqlx::{Decode, Row, Type};

use crate::event::{ErrorRecord, EventDetail, Outcome, Stage};

/// A machine as the records know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Machine {
    /// MAC address (the key).
    pub mac: MacAddr,
    /// SMBIOS UUID, once any service saw it.
    pub uuid: Option<SmbiosUuid>,
    /// Firmware kind from its last proxyDHCP request.
    pub firmware: Option<String>,
    /// Every client architecture it has reported.
    pub arches: Vec<String>,
    /// Network interface identifier (UNDI version).
    pub nic: Option<String>,
    /// iPXE platform (`pcbios`, `efi`).
    pub ipxe_platform: Option<String>,
    /// iPXE features it reported.
    pub ipxe_features: Vec<String>,
    /// Whether its iPXE talked TLS to us.
    pub tls: Option<bool>,
    /// SMBIOS manufacturer.
    pub manufacturer: Option<String>,
    /// SMBIOS product name.
    pub product: Option<String>,
    /// SMBIOS serial number.
    pub serial: Option<String>,
    /// SMBIOS asset tag.
    pub asset: Option<String>,
    /// First event.
    pub first_seen: DateTime<Utc>,
    /// Latest event.
    pub last_seen: DateTime<Utc>,
    /// Boots begun (firmware proxyDHCP requests answered).
    pub boot_count: u64,
    /// How far the latest boot got.
    pub last_outcome: Outcome,
}

/// What a client claimed about a machine, from one address, kept beside every other claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claim {
    /// Which fact: `manufacturer`, `product`, `serial` or `asset`.
    pub field: String,
    /// What was claimed.
    pub value: String,
    /// The client address that claimed it (empty when unknown).
    pub source: String,
    /// The first time.
    pub first_seen: DateTime<Utc>,
    /// The latest time.
    pub last_seen: DateTime<Utc>,
    /// How often.
    pub times: u64,
}

/// An event as stored, with its row id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredEvent {
    /// Row id, increasing in insertion order.
    pub id: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The machine.
    pub mac: MacAddr,
    /// The machine's UUID, when the event carried it.
    pub uuid: Option<SmbiosUuid>,
    /// Journey stage.
    pub stage: Stage,
    /// Whether the step succeeded.
    pub ok: bool,
    /// Whether it began a new boot.
    pub boot_start: bool,
    /// Duration of the step, when it has one.
    pub duration_ms: Option<u64>,
    /// The facts.
    pub detail: EventDetail,
    /// The host that recorded it (`[log] host_id`); `None` for events written before hosts
    /// were recorded.
    pub host: Option<String>,
}

/// Boots begun on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayCount {
    /// The day.
    pub day: NaiveDate,
    /// Boots begun that day.
    pub boots: u64,
}

/// A count per label (architecture, outcome).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Count {
    /// The label.
    pub key: String,
    /// How many.
    pub count: u64,
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(crate) fn split_list(text: Option<String>) -> Vec<String> {
    text.unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Decodes a machine row; generic so one function serves SQLite and PostgreSQL rows.
pub(crate) fn machine<R: Row>(row: &R) -> Result<Machine, sqlx::Error>
where
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    let mac: String = row.try_get("mac")?;
    let uuid: Option<String> = row.try_get("uuid")?;
    let outcome: String = row.try_get("last_outcome")?;
    let tls: Option<i64> = row.try_get("tls")?;
    Ok(Machine {
        mac: mac.parse().map_err(|e| decode_error("mac", e))?,
        uuid: uuid.and_then(|u| u.parse().ok()),
        firmware: row.try_get("firmware")?,
        arches: split_list(row.try_get("arches")?),
        nic: row.try_get("nic")?,
        ipxe_platform: row.try_get("ipxe_platform")?,
        ipxe_features: split_list(row.try_get("ipxe_features")?),
        tls: tls.map(|t| t != 0),
        manufacturer: row.try_get("manufacturer")?,
        product: row.try_get("product")?,
        serial: row.try_get("serial")?,
        asset: row.try_get("asset")?,
        first_seen: from_millis(row.try_get("first_seen_ms")?),
        last_seen: from_millis(row.try_get("last_seen_ms")?),
        boot_count: u64::try_from(row.try_get::<i64, _>("boot_count")?).unwrap_or(0),
        last_outcome: Outcome::from_name(&outcome).unwrap_or(Outcome::Failed),
    })
}

/// Decodes a claim row.
pub(crate) fn claim<R: Row>(row: &R) -> Result<Claim, sqlx::Error>
where
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    Ok(Claim {
        field: row.try_get("field")?,
        value: row.try_get("value")?,
        source: row.try_get("source")?,
        first_seen: from_millis(row.try_get("first_seen_ms")?),
        last_seen: from_millis(row.try_get("last_seen_ms")?),
        times: u64::try_from(row.try_get::<i64, _>("times")?).unwrap_or(0),
    })
}

/// Decodes an event row.
pub(crate) fn event<R: Row>(row: &R) -> Result<StoredEvent, sqlx::Error>
where
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    let mac: String = row.try_get("mac")?;
    let uuid: Option<String> = row.try_get("uuid")?;
    let stage_name: String = row.try_get("stage")?;
    let stage = Stage::from_name(&stage_name).unwrap_or(Stage::Https);
    let detail_text: String = row.try_get("detail")?;
    // A row written by a newer version may hold a kind this one does not know: show it as
    // unreadable rather than failing the whole page.
    let detail = serde_json::from_str(&detail_text).unwrap_or_else(|e| {
        EventDetail::Error(ErrorRecord {
            stage,
            cause: format!("unreadable record ({e}): {detail_text}"),
        })
    });
    let duration: Option<i64> = row.try_get("duration_ms")?;
    Ok(StoredEvent {
        id: row.try_get("id")?,
        at: from_millis(row.try_get("at_ms")?),
        mac: mac.parse().map_err(|e| decode_error("mac", e))?,
        uuid: uuid.and_then(|u| u.parse().ok()),
        stage,
        ok: row.try_get::<i64, _>("ok")? != 0,
        boot_start: row.try_get::<i64, _>("boot_start")? != 0,
        duration_ms: duration.and_then(|d| u64::try_from(d).ok()),
        detail,
        host: row.try_get("host")?,
    })
}

pub(crate) fn decode_error(
    column: &str,
    error: impl std::error::Error + Send + Sync + 'static,
) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(error),
    }
}
