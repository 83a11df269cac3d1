//! Rows as the site database returns them, independent of which backend read them.
//!
//! Column names in the doc comments are the documented ConfigMgr view columns. Both backends
//! map their native types into these structs: integers of any width become `i64`, `datetime`
//! and ISO-8601 text become [`NaiveDateTime`], SQL `NULL` becomes `None`.

use chrono::NaiveDateTime;

/// `v_R_System` row found by SMBIOS GUID and/or MAC address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceRow {
    /// `ResourceID`.
    pub resource_id: i64,
    /// `Name0`.
    pub name: Option<String>,
    /// `SMBIOS_GUID0`.
    pub smbios_guid: Option<String>,
    /// `Obsolete0 = 1`: replaced by a newer record of the same machine.
    pub obsolete: bool,
    /// `Decommissioned0 = 1`.
    pub decommissioned: bool,
    /// The row matched the request's SMBIOS GUID.
    pub guid_match: bool,
    /// The row matched the request's MAC address.
    pub mac_match: bool,
}

/// `v_R_UnknownSystem` row: an "x86/x64 Unknown Computer" object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnknownRow {
    /// `ResourceID` (the `ItemKey`, e.g. 2046820353).
    pub resource_id: i64,
    /// `Name0`.
    pub name: Option<String>,
    /// `CPUType0`: `x86` or `x64`.
    pub cpu_type: String,
    /// `SiteCode0`: the primary site owning the object.
    pub site_code: Option<String>,
}

/// A PXE-capable task-sequence deployment reaching one resource, joined with its task
/// sequence and boot image (`v_FullCollectionMembership` x `v_Advertisement` x
/// `v_TaskSequencePackage` x `v_BootImagePackage`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentRow {
    /// `v_FullCollectionMembership.ResourceID`: which resource the deployment reaches.
    pub resource_id: i64,
    /// `AdvertisementID` (the deployment or "offer" ID).
    pub advertisement_id: String,
    /// `AdvertisementName`.
    pub advertisement_name: Option<String>,
    /// `CollectionID` targeted.
    pub collection_id: Option<String>,
    /// `PackageID` of the task sequence.
    pub package_id: Option<String>,
    /// `AdvertFlags` (see [`crate::flags`]).
    pub advert_flags: u32,
    /// `OfferType`: 0 required, 2 available; `None` when the view lacks it.
    pub offer_type: Option<i64>,
    /// `PresentTime`: available from.
    pub present_time: Option<NaiveDateTime>,
    /// `PresentTimeEnabled`.
    pub present_time_enabled: bool,
    /// `PresentTimeIsGMT`: `PresentTime` is UTC rather than local time.
    pub present_time_is_gmt: bool,
    /// `ExpirationTime`: available until.
    pub expiration_time: Option<NaiveDateTime>,
    /// `ExpirationTimeEnabled`.
    pub expiration_time_enabled: bool,
    /// `ExpirationTimeIsGMT`.
    pub expiration_time_is_gmt: bool,
    /// `AssignedScheduleEnabled`: a mandatory schedule exists.
    pub assigned_schedule_enabled: bool,
    /// `v_TaskSequencePackage.Name`.
    pub task_sequence_name: Option<String>,
    /// `v_TaskSequencePackage.BootImageID` (empty: none assigned).
    pub boot_image_id: Option<String>,
    /// `v_BootImagePackage.Name`.
    pub boot_image_name: Option<String>,
    /// `v_BootImagePackage.Architecture`: `x86`, `x64`, `arm64`.
    pub boot_image_architecture: Option<String>,
}

/// `LastPXEAdvertisement` row: a required deployment this machine already ran from PXE.
/// Deleted by the console's "Clear Required PXE Deployments".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LastPxeRow {
    /// `MachineID` (the ResourceID).
    pub machine_id: Option<i64>,
    /// `AdvertisementID` that ran.
    pub advertisement_id: String,
    /// `LastPXEAdvertisementTime`.
    pub time: Option<NaiveDateTime>,
}

/// Everything one lookup reads, in one round trip.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SiteRows {
    /// Known systems matching the GUID or MAC.
    pub devices: Vec<DeviceRow>,
    /// Unknown-computer objects for the client's architecture.
    pub unknown: Vec<UnknownRow>,
    /// PXE deployments reaching any of those resources.
    pub deployments: Vec<DeploymentRow>,
    /// Required deployments already run by this MAC or GUID.
    pub last_pxe: Vec<LastPxeRow>,
}

/// Parses the text forms of `datetime` that SQLite fixtures and SQL Server string conversions
/// use: `2024-01-01 08:00:00`, `2024-01-01T08:00:00`, optional fractional seconds, or a bare
/// date.
///
/// ```
/// use netboot_configmgr::rows::parse_datetime;
/// assert!(parse_datetime("2024-01-01 08:00:00").is_some());
/// assert!(parse_datetime("2024-01-01T08:00:00.123").is_some());
/// assert!(parse_datetime("2024-01-01").is_some());
/// assert!(parse_datetime("yesterday").is_none());
/// ```
pub fn parse_datetime(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(value) = NaiveDateTime::parse_from_str(text, format) {
            return Some(value);
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn datetime_text_round_trip(secs in 0i64..4_102_444_800, millis in 0u32..1000) {
            let t = chrono::DateTime::from_timestamp(secs, millis * 1_000_000).unwrap().naive_utc();
            prop_assert_eq!(parse_datetime(&t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()), Some(t));
            prop_assert_eq!(parse_datetime(&t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()), Some(t));
        }

        #[test]
        fn datetime_parse_never_panics(text in ".{0,40}") {
            let _ = parse_datetime(&text);
        }
    }
}
