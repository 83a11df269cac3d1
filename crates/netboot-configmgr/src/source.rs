//! Data access: the [`SiteDatabase`] trait, its error type, and the column mapping shared by
//! both backends.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::NaiveDateTime;

use crate::rows::{parse_datetime, DeploymentRow, DeviceRow, LastPxeRow, SiteRows, UnknownRow};

/// The lookup keys bound as `@P1..@P3` (see [`crate::sql`]); empty means "do not match".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LookupKeys {
    /// `@P1`: upper-case SMBIOS GUID.
    pub guid: String,
    /// `@P2`: upper-case colon MAC.
    pub mac: String,
    /// `@P3`: unknown-computer CPU type.
    pub cpu_type: String,
}

/// Future returned by [`SiteDatabase::lookup`].
pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = Result<SiteRows, SourceError>> + Send + 'a>>;

/// A ConfigMgr site database (or a fixture shaped like one).
pub trait SiteDatabase: Send + Sync + Debug + 'static {
    /// Reads every row one decision needs.
    fn lookup<'a>(&'a self, keys: &'a LookupKeys) -> LookupFuture<'a>;

    /// Backend name for logs: `configmgr-sql` or `configmgr-sqlite`.
    fn backend(&self) -> &'static str;
}

/// Why the site database could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The connection string or database settings are unusable.
    #[error("invalid database settings: {detail}")]
    Settings {
        /// What is wrong (never contains the password).
        detail: String,
    },
    /// Connecting or logging in failed.
    #[error("connecting to {server}: {source}")]
    Connect {
        /// `host:port` or file.
        server: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server or driver rejected the query.
    #[error("query failed: {0}")]
    Query(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No answer in time; the connection was dropped.
    #[error("no answer from the database within {0:?}")]
    Timeout(Duration),
    /// A column is missing or has a type the mapping cannot read.
    #[error("column {column}: {detail}")]
    Column {
        /// Column name.
        column: &'static str,
        /// What was found instead.
        detail: String,
    },
    /// The batch returned fewer result sets than statements.
    #[error("expected {expected} result sets, got {got}")]
    ResultSets {
        /// Statements sent.
        expected: usize,
        /// Result sets received.
        got: usize,
    },
    /// Applying the fixture migrations failed.
    #[error("migrating {path}: {source}")]
    Migrate {
        /// Migration directory.
        path: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Typed access to one row, implemented by each backend's row type.
pub(crate) trait RowAccess {
    /// Integer column of any width (or BIT); `None` for NULL.
    fn int(&self, column: &'static str) -> Result<Option<i64>, SourceError>;
    /// Text column; `None` for NULL.
    fn text(&self, column: &'static str) -> Result<Option<String>, SourceError>;
    /// `datetime` column, or text in ISO-8601 form; `None` for NULL.
    fn datetime(&self, column: &'static str) -> Result<Option<NaiveDateTime>, SourceError>;

    fn flag(&self, column: &'static str) -> Result<bool, SourceError> {
        Ok(self.int(column)?.unwrap_or(0) != 0)
    }

    fn required_int(&self, column: &'static str) -> Result<i64, SourceError> {
        self.int(column)?.ok_or(SourceError::Column {
            column,
            detail: "NULL".into(),
        })
    }

    fn required_text(&self, column: &'static str) -> Result<String, SourceError> {
        self.text(column)?.ok_or(SourceError::Column {
            column,
            detail: "NULL".into(),
        })
    }

    fn text_datetime(
        &self,
        column: &'static str,
        text: Option<String>,
    ) -> Result<Option<NaiveDateTime>, SourceError> {
        text.map(|t| {
            parse_datetime(&t).ok_or(SourceError::Column {
                column,
                detail: format!("not a date: {t:?}"),
            })
        })
        .transpose()
    }
}

pub(crate) fn device(row: &impl RowAccess) -> Result<DeviceRow, SourceError> {
    Ok(DeviceRow {
        resource_id: row.required_int("ResourceID")?,
        name: row.text("Name0")?,
        smbios_guid: row.text("SMBIOS_GUID0")?,
        obsolete: row.flag("Obsolete0")?,
        decommissioned: row.flag("Decommissioned0")?,
        guid_match: row.flag("GuidMatch")?,
        mac_match: row.flag("MacMatch")?,
    })
}

pub(crate) fn unknown(row: &impl RowAccess) -> Result<UnknownRow, SourceError> {
    Ok(UnknownRow {
        resource_id: row.required_int("ResourceID")?,
        name: row.text("Name0")?,
        cpu_type: row.text("CPUType0")?.unwrap_or_default(),
        site_code: row.text("SiteCode0")?,
    })
}

pub(crate) fn deployment(row: &impl RowAccess) -> Result<DeploymentRow, SourceError> {
    Ok(DeploymentRow {
        resource_id: row.required_int("ResourceID")?,
        advertisement_id: row.required_text("AdvertisementID")?,
        advertisement_name: row.text("AdvertisementName")?,
        collection_id: row.text("CollectionID")?,
        package_id: row.text("PackageID")?,
        // Bit 31 makes the stored int negative; the flags are the raw 32 bits.
        advert_flags: row.int("AdvertFlags")?.unwrap_or(0) as u32,
        offer_type: row.int("OfferType")?,
        present_time: row.datetime("PresentTime")?,
        present_time_enabled: row.flag("PresentTimeEnabled")?,
        present_time_is_gmt: row.flag("PresentTimeIsGMT")?,
        expiration_time: row.datetime("ExpirationTime")?,
        expiration_time_enabled: row.flag("ExpirationTimeEnabled")?,
        expiration_time_is_gmt: row.flag("ExpirationTimeIsGMT")?,
        assigned_schedule_enabled: row.flag("AssignedScheduleEnabled")?,
        task_sequence_name: row.text("TaskSequenceName")?,
        boot_image_id: row.text("BootImageID")?,
        boot_image_name: row.text("BootImageName")?,
        boot_image_architecture: row.text("BootImageArchitecture")?,
    })
}

pub(crate) fn last_pxe(row: &impl RowAccess) -> Result<LastPxeRow, SourceError> {
    Ok(LastPxeRow {
        machine_id: row.int("MachineID")?,
        advertisement_id: row.text("AdvertisementID")?.unwrap_or_default(),
        time: row.datetime("LastPXEAdvertisementTime")?,
    })
}

/// Maps the four result sets (in [`crate::sql::STATEMENTS`] order) to [`SiteRows`].
pub(crate) fn site_rows<R: RowAccess>(sets: Vec<Vec<R>>) -> Result<SiteRows, SourceError> {
    let got = sets.len();
    let [devices, unknowns, deployments, last] =
        <[Vec<R>; 4]>::try_from(sets).map_err(|_| SourceError::ResultSets { expected: 4, got })?;
    Ok(SiteRows {
        devices: devices.iter().map(device).collect::<Result<_, _>>()?,
        unknown: unknowns.iter().map(unknown).collect::<Result<_, _>>()?,
        deployments: deployments.iter().map(deployment).collect::<Result<_, _>>()?,
        last_pxe: last.iter().map(last_pxe).collect::<Result<_, _>>()?,
    })
}
