//! From a [`BootRequest`] to the keys ConfigMgr stores: upper-case colon MAC, upper-case
//! canonical SMBIOS GUID, and the architecture of the unknown-computer object.

use std::collections::HashSet;

use netboot_core::{BootRequest, ClientArch, MacAddr, SmbiosUuid};

/// Firmware family of the client; UEFI only boots a boot image of its own architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Firmware {
    /// Legacy BIOS (option 93 = 0).
    Bios,
    /// UEFI, PXE or HTTP boot.
    Uefi,
}

/// A Windows PE / boot image architecture, as in `v_BootImagePackage.Architecture` and
/// `v_R_UnknownSystem.CPUType0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImageArch {
    /// 32-bit x86.
    X86,
    /// x86-64.
    X64,
    /// 64-bit ARM.
    Arm64,
}

impl ImageArch {
    /// The value ConfigMgr stores (`x86`, `x64`, `arm64`).
    pub fn as_configmgr(&self) -> &'static str {
        match self {
            Self::X86 => "x86",
            Self::X64 => "x64",
            Self::Arm64 => "arm64",
        }
    }

    /// Parses a stored architecture, case-insensitively; `None` for `ia64` and anything else
    /// WinPE no longer runs on.
    pub fn from_configmgr(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "x86" | "i386" => Some(Self::X86),
            "x64" | "amd64" | "x86_64" => Some(Self::X64),
            "arm64" | "aarch64" => Some(Self::Arm64),
            _ => None,
        }
    }
}

/// What the client can boot: firmware family plus the widest architecture it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Platform {
    /// BIOS or UEFI.
    pub firmware: Firmware,
    /// Native architecture (for BIOS: x64 when the CPU is 64-bit capable).
    pub arch: ImageArch,
}

impl Platform {
    /// Derives the platform from DHCP option 93 and what iPXE reported.
    ///
    /// BIOS clients do not say whether their CPU is 64-bit. iPXE's `${buildarch}` of
    /// `x86_64` proves it; otherwise `bios_assume_x64` decides (every PC sold in the last
    /// fifteen years is x64-capable, so the default configuration says yes).
    /// Architectures Windows PE does not run on give `None`.
    pub fn from_request(request: &BootRequest, bios_assume_x64: bool) -> Option<Self> {
        let uefi = |arch| {
            Some(Self {
                firmware: Firmware::Uefi,
                arch,
            })
        };
        match request.arch {
            ClientArch::X86Bios => {
                let reported = request
                    .hardware
                    .buildarch
                    .as_deref()
                    .and_then(ImageArch::from_configmgr);
                let arch = match reported {
                    Some(ImageArch::X64) => ImageArch::X64,
                    _ if bios_assume_x64 => ImageArch::X64,
                    _ => ImageArch::X86,
                };
                Some(Self {
                    firmware: Firmware::Bios,
                    arch,
                })
            }
            ClientArch::EfiIa32 | ClientArch::EfiIa32Http => uefi(ImageArch::X86),
            ClientArch::EfiX64 | ClientArch::EfiBc | ClientArch::EfiX64Http | ClientArch::EfiBcHttp => {
                uefi(ImageArch::X64)
            }
            ClientArch::EfiArm64 | ClientArch::EfiArm64Http => uefi(ImageArch::Arm64),
            _ => None,
        }
    }

    /// How well a boot image fits: `Some(true)` exact, `Some(false)` compatible, `None`
    /// unusable. UEFI needs an exact match; a 64-bit BIOS machine also runs x86 WinPE.
    pub fn image_fit(&self, image: ImageArch) -> Option<bool> {
        if image == self.arch {
            return Some(true);
        }
        match (self.firmware, self.arch, image) {
            (Firmware::Bios, ImageArch::X64, ImageArch::X86) => Some(false),
            _ => None,
        }
    }

    /// Which unknown-computer object stands in for this client: ConfigMgr has only `x86`
    /// and `x64` ones; ARM64 sites may have created an `arm64` one, which is looked up the
    /// same way.
    pub fn unknown_cpu_type(&self) -> &'static str {
        self.arch.as_configmgr()
    }
}

/// SMBIOS UUIDs boards ship with when the vendor never set one. They identify thousands of
/// machines at once, so they must never select a device record.
pub const DUMMY_GUIDS: &[&str] = &[
    "03000200-0400-0500-0006-000700080009",
    "00020003-0004-0005-0006-000700080009",
    "12345678-1234-5678-90AB-CDDEEFAABBCC",
];

/// Identifiers that must not be used to find a device record ("Manage duplicate hardware
/// identifiers" in the ConfigMgr console): shared USB/dock NICs and cloned UUIDs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DuplicateIdentifiers {
    /// MACs shared by many machines (USB NICs, docking stations).
    pub macs: HashSet<MacAddr>,
    /// UUIDs shared by many machines.
    pub uuids: HashSet<SmbiosUuid>,
}

/// The lookup keys in ConfigMgr's text form; an unusable identifier is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// `AA:BB:CC:DD:EE:FF`.
    pub mac: Option<String>,
    /// `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`.
    pub guid: Option<String>,
}

impl Identity {
    /// Normalises the request's identifiers, dropping placeholders, vendor dummies and the
    /// configured duplicates.
    ///
    /// ```
    /// use netboot_configmgr::identity::{DuplicateIdentifiers, Identity};
    /// use netboot_core::*;
    /// let uuid: SmbiosUuid = "4c4c4544-0001-4a10-8000-b1c04f000001".parse().unwrap();
    /// let req = BootRequest::new("00:15:5d:00:00:01".parse().unwrap(), ClientArch::EfiX64, BootStage::Ipxe)
    ///     .with_uuid(Some(uuid));
    /// let id = Identity::from_request(&req, &DuplicateIdentifiers::default());
    /// assert_eq!(id.mac.as_deref(), Some("00:15:5D:00:00:01"));
    /// assert_eq!(id.guid.as_deref(), Some("4C4C4544-0001-4A10-8000-B1C04F000001"));
    /// ```
    pub fn from_request(request: &BootRequest, duplicates: &DuplicateIdentifiers) -> Self {
        let mac = Some(request.mac)
            .filter(|mac| !duplicates.macs.contains(mac) && mac.0 != [0; 6] && mac.0 != [0xff; 6])
            .map(|mac| mac.to_configmgr());
        let guid = request
            .uuid
            .filter(|uuid| !uuid.is_placeholder() && !duplicates.uuids.contains(uuid))
            .map(|uuid| uuid.to_configmgr())
            .filter(|text| !DUMMY_GUIDS.contains(&text.as_str()));
        Self { mac, guid }
    }

    /// True when neither identifier is usable, so no device record can match.
    pub fn is_empty(&self) -> bool {
        self.mac.is_none() && self.guid.is_none()
    }
}

#[cfg(test)]
mod tests {
    use netboot_core::{BootStage, HardwareInfo};

    use super::*;

    fn request(arch: ClientArch) -> BootRequest {
        BootRequest::new("00:15:5d:00:00:01".parse().unwrap(), arch, BootStage::PxeFirmware)
    }

    #[test]
    fn option_97_and_ipxe_text_give_the_same_guid() {
        // Option 97 carries the first three fields little-endian; iPXE's ${uuid} is canonical.
        let wire = [
            0x44, 0x45, 0x4c, 0x4c, 0x01, 0x00, 0x10, 0x4a, 0x80, 0x00, 0xb1, 0xc0, 0x4f, 0x00, 0x00, 0x01,
        ];
        let from_dhcp = request(ClientArch::EfiX64).with_uuid(Some(SmbiosUuid::from_wire(wire)));
        let from_ipxe = request(ClientArch::EfiX64)
            .with_uuid(Some("4c4c4544-0001-4a10-8000-b1c04f000001".parse().unwrap()));
        let none = DuplicateIdentifiers::default();
        let a = Identity::from_request(&from_dhcp, &none);
        assert_eq!(a, Identity::from_request(&from_ipxe, &none));
        assert_eq!(a.guid.as_deref(), Some("4C4C4544-0001-4A10-8000-B1C04F000001"));
    }

    #[test]
    fn placeholder_dummy_and_duplicate_identifiers_are_dropped() {
        let none = DuplicateIdentifiers::default();
        for text in [
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
        ] {
            let mut req = request(ClientArch::EfiX64);
            req.uuid = Some(text.parse().unwrap());
            assert_eq!(Identity::from_request(&req, &none).guid, None, "{text}");
        }
        let mut req = request(ClientArch::EfiX64);
        req.uuid = Some("03000200-0400-0500-0006-000700080009".parse().unwrap());
        assert_eq!(Identity::from_request(&req, &none).guid, None);

        let dongle: MacAddr = "00:15:5d:00:00:99".parse().unwrap();
        let dup = DuplicateIdentifiers {
            macs: [dongle].into(),
            uuids: HashSet::new(),
        };
        let mut req = request(ClientArch::EfiX64);
        req.mac = dongle;
        let id = Identity::from_request(&req, &dup);
        assert_eq!(id.mac, None);
        assert!(id.is_empty());
    }

    #[test]
    fn platforms_and_image_fit() {
        let bios = Platform::from_request(&request(ClientArch::X86Bios), true).unwrap();
        assert_eq!(
            bios,
            Platform {
                firmware: Firmware::Bios,
                arch: ImageArch::X64
            }
        );
        assert_eq!(bios.image_fit(ImageArch::X64), Some(true));
        assert_eq!(bios.image_fit(ImageArch::X86), Some(false));
        assert_eq!(bios.image_fit(ImageArch::Arm64), None);

        let old_bios = Platform::from_request(&request(ClientArch::X86Bios), false).unwrap();
        assert_eq!(old_bios.arch, ImageArch::X86);
        assert_eq!(old_bios.image_fit(ImageArch::X64), None);
        let mut ipxe64 = request(ClientArch::X86Bios);
        ipxe64.hardware = HardwareInfo {
            buildarch: Some("x86_64".into()),
            ..HardwareInfo::default()
        };
        assert_eq!(
            Platform::from_request(&ipxe64, false).unwrap().arch,
            ImageArch::X64
        );

        let uefi = Platform::from_request(&request(ClientArch::EfiX64), true).unwrap();
        assert_eq!(uefi.image_fit(ImageArch::X64), Some(true));
        assert_eq!(uefi.image_fit(ImageArch::X86), None, "UEFI needs an exact match");
        for arch in [ClientArch::EfiBc, ClientArch::EfiX64Http] {
            assert_eq!(Platform::from_request(&request(arch), true), Some(uefi));
        }
        let ia32 = Platform::from_request(&request(ClientArch::EfiIa32), true).unwrap();
        assert_eq!(ia32.unknown_cpu_type(), "x86");
        let arm = Platform::from_request(&request(ClientArch::EfiArm64), true).unwrap();
        assert_eq!(arm.unknown_cpu_type(), "arm64");
        assert_eq!(arm.image_fit(ImageArch::X64), None);
        assert_eq!(
            Platform::from_request(&request(ClientArch::PowerPcEpapr), true),
            None
        );
    }

    #[test]
    fn stored_architectures() {
        assert_eq!(ImageArch::from_configmgr(" X64 "), Some(ImageArch::X64));
        assert_eq!(ImageArch::from_configmgr("ARM64"), Some(ImageArch::Arm64));
        assert_eq!(ImageArch::from_configmgr("ia64"), None);
    }
}
