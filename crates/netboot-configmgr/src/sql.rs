//! The SQL the resolver sends: joins and equality filters over the documented views, nothing
//! vendor-specific, so the same text runs on SQL Server and on the SQLite fixture.
//!
//! Parameters (T-SQL `@Pn`, bound by tiberius as `sp_executesql` arguments):
//! `@P1` SMBIOS GUID (upper-case, `''` when unusable), `@P2` MAC (upper-case colon form,
//! `''` when unusable), `@P3` unknown-computer CPU type (`x86`/`x64`/`arm64`, `''` when
//! unknown-computer support is off).
//!
//! The four statements go to the server as one batch, so a cold lookup costs one round
//! trip; time windows, flags, ranking and ordering are decided in Rust (`rules`).

/// Known systems matching the GUID or the MAC, with which of the two matched.
pub const DEVICES: &str = "\
SELECT s.ResourceID, s.Name0, s.SMBIOS_GUID0, s.Obsolete0, s.Decommissioned0,
       CASE WHEN @P1 <> '' AND s.SMBIOS_GUID0 = @P1 THEN 1 ELSE 0 END AS GuidMatch,
       CASE WHEN EXISTS (SELECT 1 FROM v_RA_System_MACAddresses m
                         WHERE m.ResourceID = s.ResourceID AND m.MAC_Addresses0 = @P2)
            THEN 1 ELSE 0 END AS MacMatch
FROM v_R_System s
WHERE (@P1 <> '' AND s.SMBIOS_GUID0 = @P1)
   OR s.ResourceID IN (SELECT m.ResourceID FROM v_RA_System_MACAddresses m WHERE m.MAC_Addresses0 = @P2)";

/// Unknown-computer objects for the CPU type.
pub const UNKNOWN: &str = "\
SELECT u.ResourceID, u.Name0, u.CPUType0, u.SiteCode0
FROM v_R_UnknownSystem u
WHERE u.CPUType0 = @P3 AND (u.Decommissioned0 = 0 OR u.Decommissioned0 IS NULL)";

/// PXE-visible task-sequence deployments reaching any candidate resource. The literal is
/// `CD_AND_PXE | TARGETTOWINPE | HIDDENINWINPE` (0x30040000) in decimal, which both
/// dialects read as an integer.
pub const DEPLOYMENTS: &str = "\
SELECT fcm.ResourceID, a.AdvertisementID, a.AdvertisementName, a.CollectionID, a.PackageID,
       a.AdvertFlags, a.OfferType,
       a.PresentTime, a.PresentTimeEnabled, a.PresentTimeIsGMT,
       a.ExpirationTime, a.ExpirationTimeEnabled, a.ExpirationTimeIsGMT,
       a.AssignedScheduleEnabled,
       ts.Name AS TaskSequenceName, ts.BootImageID,
       bi.Name AS BootImageName, bi.Architecture AS BootImageArchitecture
FROM v_FullCollectionMembership fcm
JOIN v_Advertisement a ON a.CollectionID = fcm.CollectionID
JOIN v_TaskSequencePackage ts ON ts.PackageID = a.PackageID
LEFT JOIN v_BootImagePackage bi ON bi.PackageID = ts.BootImageID
WHERE (a.AdvertFlags & 805568512) <> 0
  AND fcm.ResourceID IN (
        SELECT s.ResourceID FROM v_R_System s WHERE @P1 <> '' AND s.SMBIOS_GUID0 = @P1
        UNION SELECT m.ResourceID FROM v_RA_System_MACAddresses m WHERE m.MAC_Addresses0 = @P2
        UNION SELECT u.ResourceID FROM v_R_UnknownSystem u WHERE u.CPUType0 = @P3)";

/// Required deployments this MAC or GUID already ran from PXE (ConfigMgr's own record, read
/// only, so the console's "Clear Required PXE Deployments" takes effect here too).
pub const LAST_PXE: &str = "\
SELECT l.MachineID, l.AdvertisementID, l.LastPXEAdvertisementTime
FROM LastPXEAdvertisement l
WHERE l.MAC_Addresses = @P2 OR (@P1 <> '' AND l.SMBIOS_GUID = @P1)";

/// The four statements in result-set order.
pub const STATEMENTS: [&str; 4] = [DEVICES, UNKNOWN, DEPLOYMENTS, LAST_PXE];

/// All four as one T-SQL batch (what tiberius sends).
pub fn batch() -> String {
    STATEMENTS.join(";\n")
}

/// Rewrites T-SQL `@Pn` placeholders to SQLite's numbered `?n` and returns the highest
/// number used (SQLite expects that many bound values).
///
/// ```
/// let (sql, count) = netboot_configmgr::sql::to_sqlite("SELECT 1 WHERE a = @P3 OR b = @P1");
/// assert_eq!(sql, "SELECT 1 WHERE a = ?3 OR b = ?1");
/// assert_eq!(count, 3);
/// ```
pub fn to_sqlite(sql: &str) -> (String, usize) {
    let mut out = String::with_capacity(sql.len());
    let mut highest = 0;
    let mut rest = sql;
    while let Some(at) = rest.find("@P") {
        out.push_str(&rest[..at]);
        let digits: String = rest[at + 2..].chars().take_while(char::is_ascii_digit).collect();
        match digits.parse::<usize>() {
            Ok(n) => {
                highest = highest.max(n);
                out.push('?');
                out.push_str(&digits);
            }
            Err(_) => out.push_str("@P"),
        }
        rest = &rest[at + 2 + digits.len()..];
    }
    out.push_str(rest);
    (out, highest)
}
