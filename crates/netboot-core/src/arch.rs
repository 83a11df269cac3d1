//! IANA "Processor Architecture Types" (DHCP option 93, RFC 4578 as corrected by erratum 4624).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! open_enum {
    ($(#[$meta:meta])* pub enum $name:ident(u16) { $($(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A code without a name here; kept so nothing is lost.
            Unknown(u16),
        }

        impl From<u16> for $name {
            fn from(code: u16) -> Self {
                match code {
                    $($value => Self::$variant,)*
                    other => Self::Unknown(other),
                }
            }
        }

        impl From<$name> for u16 {
            fn from(arch: $name) -> u16 {
                match arch {
                    $($name::$variant => $value,)*
                    $name::Unknown(code) => code,
                }
            }
        }

        impl $name {
            /// Short stable name used in configuration, logs and URLs (`x64-uefi`, `bios`, ...).
            pub fn name(&self) -> std::borrow::Cow<'static, str> {
                match self {
                    $(Self::$variant => std::borrow::Cow::Borrowed($text),)*
                    Self::Unknown(code) => std::borrow::Cow::Owned(format!("arch-{code}")),
                }
            }

            /// Parses [`Self::name`] output or a decimal code.
            pub fn from_name(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)*
                    other => other
                        .strip_prefix("arch-")
                        .unwrap_or(other)
                        .parse::<u16>()
                        .ok()
                        .map(Self::from),
                }
            }
        }
    };
}

open_enum! {
    /// A client's processor architecture and firmware type, from DHCP option 93.
    ///
    /// ```
    /// use netboot_core::ClientArch;
    /// assert_eq!(ClientArch::from(7), ClientArch::EfiX64);
    /// assert_eq!(ClientArch::from(9), ClientArch::EfiBc);
    /// assert_eq!(ClientArch::from(0x42), ClientArch::Unknown(0x42));
    /// assert_eq!(u16::from(ClientArch::EfiArm64), 11);
    /// assert_eq!(ClientArch::from_name("x64-uefi"), Some(ClientArch::EfiX64));
    /// ```
    pub enum ClientArch(u16) {
        /// x86 BIOS (PC/AT).
        X86Bios = 0 => "bios",
        /// NEC PC-98.
        NecPc98 = 1 => "pc98",
        /// Itanium.
        Itanium = 2 => "itanium",
        /// DEC Alpha.
        DecAlpha = 3 => "alpha",
        /// Arc x86.
        ArcX86 = 4 => "arc-x86",
        /// Intel Lean Client.
        IntelLeanClient = 5 => "lean-client",
        /// 32-bit x86 UEFI.
        EfiIa32 = 6 => "x86-uefi",
        /// 64-bit x86 UEFI.
        EfiX64 = 7 => "x64-uefi",
        /// EFI Xscale.
        EfiXscale = 8 => "xscale-uefi",
        /// EFI byte code; some x64 firmware reports this instead of 7.
        EfiBc = 9 => "ebc-uefi",
        /// 32-bit ARM UEFI.
        EfiArm32 = 10 => "arm32-uefi",
        /// 64-bit ARM UEFI.
        EfiArm64 = 11 => "arm64-uefi",
        /// PowerPC Open Firmware.
        PowerPcOpenFirmware = 12 => "ppc-openfirmware",
        /// PowerPC ePAPR.
        PowerPcEpapr = 13 => "ppc-epapr",
        /// POWER OPAL v3.
        PowerOpalV3 = 14 => "power-opal-v3",
        /// 32-bit x86 UEFI HTTP boot.
        EfiIa32Http = 15 => "x86-uefi-http",
        /// 64-bit x86 UEFI HTTP boot.
        EfiX64Http = 16 => "x64-uefi-http",
        /// EBC UEFI HTTP boot.
        EfiBcHttp = 17 => "ebc-uefi-http",
        /// 32-bit ARM UEFI HTTP boot.
        EfiArm32Http = 18 => "arm32-uefi-http",
        /// 64-bit ARM UEFI HTTP boot.
        EfiArm64Http = 19 => "arm64-uefi-http",
        /// PC/AT BIOS HTTP boot.
        X86BiosHttp = 20 => "bios-http",
        /// 32-bit ARM U-Boot.
        UbootArm32 = 21 => "arm32-uboot",
        /// 64-bit ARM U-Boot.
        UbootArm64 = 22 => "arm64-uboot",
        /// 32-bit ARM U-Boot HTTP.
        UbootArm32Http = 23 => "arm32-uboot-http",
        /// 64-bit ARM U-Boot HTTP.
        UbootArm64Http = 24 => "arm64-uboot-http",
        /// 32-bit RISC-V UEFI.
        EfiRiscv32 = 25 => "riscv32-uefi",
        /// 32-bit RISC-V UEFI HTTP.
        EfiRiscv32Http = 26 => "riscv32-uefi-http",
        /// 64-bit RISC-V UEFI.
        EfiRiscv64 = 27 => "riscv64-uefi",
        /// 64-bit RISC-V UEFI HTTP.
        EfiRiscv64Http = 28 => "riscv64-uefi-http",
        /// 128-bit RISC-V UEFI.
        EfiRiscv128 = 29 => "riscv128-uefi",
        /// 128-bit RISC-V UEFI HTTP.
        EfiRiscv128Http = 30 => "riscv128-uefi-http",
        /// s390 basic.
        S390Basic = 31 => "s390-basic",
        /// s390 extended.
        S390Extended = 32 => "s390-extended",
        /// 32-bit MIPS UEFI.
        EfiMips32 = 33 => "mips32-uefi",
        /// 64-bit MIPS UEFI.
        EfiMips64 = 34 => "mips64-uefi",
        /// 32-bit Sunway UEFI.
        EfiSunway32 = 35 => "sunway32-uefi",
        /// 64-bit Sunway UEFI.
        EfiSunway64 = 36 => "sunway64-uefi",
        /// 32-bit LoongArch UEFI.
        EfiLoongArch32 = 37 => "loongarch32-uefi",
        /// 32-bit LoongArch UEFI HTTP.
        EfiLoongArch32Http = 38 => "loongarch32-uefi-http",
        /// 64-bit LoongArch UEFI.
        EfiLoongArch64 = 39 => "loongarch64-uefi",
        /// 64-bit LoongArch UEFI HTTP.
        EfiLoongArch64Http = 40 => "loongarch64-uefi-http",
        /// ARM rpiboot.
        ArmRpiboot = 41 => "arm-rpiboot",
    }
}

impl ClientArch {
    /// True for UEFI firmware of any CPU (PXE or HTTP).
    pub fn is_uefi(&self) -> bool {
        self.name().contains("uefi")
    }

    /// True for the UEFI HTTP Boot codes, which expect a URL instead of a TFTP file name.
    pub fn is_http_boot(&self) -> bool {
        matches!(
            self,
            Self::EfiIa32Http
                | Self::EfiX64Http
                | Self::EfiBcHttp
                | Self::EfiArm32Http
                | Self::EfiArm64Http
                | Self::X86BiosHttp
                | Self::UbootArm32Http
                | Self::UbootArm64Http
                | Self::EfiRiscv32Http
                | Self::EfiRiscv64Http
                | Self::EfiRiscv128Http
                | Self::EfiLoongArch32Http
                | Self::EfiLoongArch64Http
        )
    }

    /// The PXE (non-HTTP) architecture a boot program must be built for. HTTP Boot codes map
    /// to their PXE twin, and EBC maps to x64 because firmware that reports EBC runs x64 code.
    pub fn boot_program_arch(&self) -> Self {
        match self {
            Self::EfiIa32Http => Self::EfiIa32,
            Self::EfiX64Http | Self::EfiBc | Self::EfiBcHttp => Self::EfiX64,
            Self::EfiArm32Http => Self::EfiArm32,
            Self::EfiArm64Http => Self::EfiArm64,
            Self::X86BiosHttp => Self::X86Bios,
            Self::UbootArm32Http => Self::UbootArm32,
            Self::UbootArm64Http => Self::UbootArm64,
            Self::EfiRiscv32Http => Self::EfiRiscv32,
            Self::EfiRiscv64Http => Self::EfiRiscv64,
            Self::EfiRiscv128Http => Self::EfiRiscv128,
            Self::EfiLoongArch32Http => Self::EfiLoongArch32,
            Self::EfiLoongArch64Http => Self::EfiLoongArch64,
            other => *other,
        }
    }
}

impl fmt::Display for ClientArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for ClientArch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for ClientArch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_name(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown architecture {text:?} (use a name such as bios, x64-uefi, arm64-uefi, or a number)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for code in 0..=300u16 {
            let arch = ClientArch::from(code);
            assert_eq!(u16::from(arch), code);
            assert_eq!(ClientArch::from_name(&arch.name()), Some(arch));
            assert!(names.insert(arch.name().into_owned()));
        }
        assert_eq!(ClientArch::from(300), ClientArch::Unknown(300));
    }

    #[test]
    fn families() {
        assert!(ClientArch::EfiX64.is_uefi());
        assert!(!ClientArch::X86Bios.is_uefi());
        assert!(ClientArch::EfiArm64Http.is_http_boot());
        assert_eq!(ClientArch::EfiX64Http.boot_program_arch(), ClientArch::EfiX64);
        assert_eq!(ClientArch::EfiBc.boot_program_arch(), ClientArch::EfiX64);
    }
}
