//! What the protocol servers know about a booting machine.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{ClientArch, MacAddr, SmbiosUuid};

/// Which program is asking on the machine's behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum BootStage {
    /// The firmware's own PXE stack (BIOS option ROM or UEFI PXE): it needs a boot program.
    PxeFirmware,
    /// UEFI HTTP Boot (vendor class `HTTPClient`): it needs a boot program URL.
    UefiHttp,
    /// iPXE is running and asks for its script.
    Ipxe,
}

/// Hardware facts iPXE reports from SMBIOS, untrusted free text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct HardwareInfo {
    /// `${manufacturer}`.
    pub manufacturer: Option<String>,
    /// `${product}`.
    pub product: Option<String>,
    /// `${serial}`.
    pub serial: Option<String>,
    /// `${asset}`.
    pub asset: Option<String>,
    /// `${platform}`: `pcbios` or `efi`.
    pub platform: Option<String>,
    /// `${buildarch}`: `i386`, `x86_64`, `arm64`.
    pub buildarch: Option<String>,
}

/// A machine asking what to boot.
///
/// Resolvers are called once per protocol step of the same boot (DHCP, the PXE 4011 exchange,
/// HTTPS), so [`crate::BootResolver::resolve`] must be idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootRequest {
    /// The booting NIC's MAC address.
    pub mac: MacAddr,
    /// SMBIOS system UUID, when the client sent a usable one (placeholders are dropped).
    #[serde(default)]
    pub uuid: Option<SmbiosUuid>,
    /// Processor architecture / firmware type.
    pub arch: ClientArch,
    /// Who is asking.
    pub stage: BootStage,
    /// DHCP user class (option 77), e.g. `iPXE`.
    #[serde(default)]
    pub user_class: Option<String>,
    /// The address the request came from (a relay agent for relayed DHCP).
    #[serde(default)]
    pub remote: Option<IpAddr>,
    /// SMBIOS strings, when iPXE reported them.
    #[serde(default)]
    pub hardware: HardwareInfo,
}

impl BootRequest {
    /// A request with only the mandatory fields set.
    pub fn new(mac: MacAddr, arch: ClientArch, stage: BootStage) -> Self {
        Self {
            mac,
            uuid: None,
            arch,
            stage,
            user_class: None,
            remote: None,
            hardware: HardwareInfo::default(),
        }
    }

    /// Sets the UUID unless it is a placeholder (all-zero / all-`FF`).
    pub fn with_uuid(mut self, uuid: Option<SmbiosUuid>) -> Self {
        self.uuid = uuid.filter(|u| !u.is_placeholder());
        self
    }
}
