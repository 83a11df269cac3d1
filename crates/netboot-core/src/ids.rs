//! Machine identities: MAC addresses and SMBIOS system UUIDs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a textual MAC address or UUID was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseIdError {
    /// The text does not have the number of hex digits the identity needs.
    #[error("expected {expected} hex digits, found {found}")]
    WrongLength {
        /// Hex digits required.
        expected: usize,
        /// Hex digits found.
        found: usize,
    },
    /// A character that is neither a hex digit nor an accepted separator.
    #[error("unexpected character {0:?}")]
    BadChar(char),
}

fn parse_hex_digits<const N: usize>(text: &str, separators: &[char]) -> Result<[u8; N], ParseIdError> {
    let mut out = [0u8; N];
    let mut nibbles = 0usize;
    for ch in text.trim().chars() {
        if separators.contains(&ch) {
            continue;
        }
        let value = ch.to_digit(16).ok_or(ParseIdError::BadChar(ch))? as u8;
        if nibbles < N * 2 {
            out[nibbles / 2] |= if nibbles % 2 == 0 { value << 4 } else { value };
        }
        nibbles += 1;
    }
    if nibbles != N * 2 {
        return Err(ParseIdError::WrongLength {
            expected: N * 2,
            found: nibbles,
        });
    }
    Ok(out)
}

/// An Ethernet MAC address.
///
/// Displays as lower-case colon form (`52:54:00:12:34:56`); parses colon, dash, dot or no
/// separator in either case. [`MacAddr::to_configmgr`] gives the upper-case form ConfigMgr
/// stores.
///
/// ```
/// use netboot_core::MacAddr;
/// let mac: MacAddr = "52-54-00-AB-CD-EF".parse().unwrap();
/// assert_eq!(mac.to_string(), "52:54:00:ab:cd:ef");
/// assert_eq!(mac.to_configmgr(), "52:54:00:AB:CD:EF");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Upper-case colon form, as ConfigMgr stores `MAC_Addresses0`.
    pub fn to_configmgr(&self) -> String {
        self.to_string().to_ascii_uppercase()
    }

    /// Takes the first six bytes of a DHCP `chaddr` when the hardware length says Ethernet.
    pub fn from_chaddr(chaddr: &[u8], hlen: u8) -> Option<Self> {
        if hlen != 6 || chaddr.len() < 6 {
            return None;
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&chaddr[..6]);
        Some(Self(mac))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex_digits::<6>(s, &[':', '-', '.']).map(Self)
    }
}

/// An SMBIOS system UUID, stored in canonical (RFC 4122 text) byte order.
///
/// DHCP option 97 and SMBIOS tables carry the first three fields little-endian ("mixed
/// endian"); iPXE's `${uuid}` setting and ConfigMgr's `SMBIOS_GUID0` use the canonical text.
/// [`SmbiosUuid::from_wire`] and [`SmbiosUuid::to_wire`] convert.
///
/// ```
/// use netboot_core::SmbiosUuid;
/// let wire = [0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66,
///             0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
/// let uuid = SmbiosUuid::from_wire(wire);
/// assert_eq!(uuid.to_string(), "00112233-4455-6677-8899-aabbccddeeff");
/// assert_eq!(uuid.to_wire(), wire);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SmbiosUuid(pub [u8; 16]);

impl SmbiosUuid {
    /// Converts from the mixed-endian wire layout (DHCP option 97 / SMBIOS).
    pub fn from_wire(wire: [u8; 16]) -> Self {
        Self(swap_mixed_endian(wire))
    }

    /// Converts to the mixed-endian wire layout (DHCP option 97 / SMBIOS).
    pub fn to_wire(&self) -> [u8; 16] {
        swap_mixed_endian(self.0)
    }

    /// Upper-case canonical text, as ConfigMgr stores `SMBIOS_GUID0`.
    pub fn to_configmgr(&self) -> String {
        self.to_string().to_ascii_uppercase()
    }

    /// True for the all-zero and all-`FF` values that boards without a real UUID report;
    /// such a UUID identifies nothing and must not be used for lookups.
    pub fn is_placeholder(&self) -> bool {
        self.0.iter().all(|&b| b == 0) || self.0.iter().all(|&b| b == 0xff)
    }
}

fn swap_mixed_endian(mut b: [u8; 16]) -> [u8; 16] {
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

impl fmt::Display for SmbiosUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for SmbiosUuid {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let s = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).unwrap_or(s);
        parse_hex_digits::<16>(s, &['-']).map(Self)
    }
}

macro_rules! serde_via_string {
    ($ty:ty, $what:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse()
                    .map_err(|e| serde::de::Error::custom(format!("invalid {} {text:?}: {e}", $what)))
            }
        }
    };
}
serde_via_string!(MacAddr, "MAC address");
serde_via_string!(SmbiosUuid, "UUID");

// Identifiers and architectures are written as strings (their `Deserialize` is
// hand-written); the format names what the string holds.
#[cfg(feature = "schemars")]
crate::string_schema!(MacAddr, "MacAddr", "mac-address");
#[cfg(feature = "schemars")]
crate::string_schema!(SmbiosUuid, "SmbiosUuid", "uuid");
// A name such as `x64-uefi` or a decimal code: what `ClientArch::from_name` accepts.
#[cfg(feature = "schemars")]
crate::string_schema!(crate::ClientArch, "ClientArch", "client-architecture");
#[cfg(feature = "openapi")]
crate::openapi_string!(MacAddr, "mac-address", "52:54:00:12:34:56");
#[cfg(feature = "openapi")]
crate::openapi_string!(SmbiosUuid, "uuid", "8c4d7a2e-1f3b-4c5d-9e6f-0a1b2c3d4e5f");
#[cfg(feature = "openapi")]
crate::openapi_string!(crate::ClientArch, "client-architecture", "x64-uefi");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mac_forms() {
        for text in [
            "52:54:00:ab:cd:ef",
            "52-54-00-AB-CD-EF",
            "525400abcdef",
            "5254.00ab.cdef",
        ] {
            assert_eq!(
                text.parse::<MacAddr>().unwrap().0,
                [0x52, 0x54, 0, 0xab, 0xcd, 0xef]
            );
        }
        assert_eq!(
            "52:54:00".parse::<MacAddr>(),
            Err(ParseIdError::WrongLength {
                expected: 12,
                found: 6
            })
        );
        assert_eq!(
            "52:54:00:ab:cd:eg".parse::<MacAddr>(),
            Err(ParseIdError::BadChar('g'))
        );
    }

    #[test]
    fn uuid_forms_and_placeholders() {
        let u: SmbiosUuid = "{00112233-4455-6677-8899-AABBCCDDEEFF}".parse().unwrap();
        assert_eq!(u.to_configmgr(), "00112233-4455-6677-8899-AABBCCDDEEFF");
        assert!(SmbiosUuid([0; 16]).is_placeholder());
        assert!(SmbiosUuid([0xff; 16]).is_placeholder());
        assert!(!u.is_placeholder());
    }

    proptest! {
        #[test]
        fn mac_text_round_trip(bytes in any::<[u8; 6]>()) {
            let mac = MacAddr(bytes);
            prop_assert_eq!(mac.to_string().parse::<MacAddr>().unwrap(), mac);
            prop_assert_eq!(mac.to_configmgr().parse::<MacAddr>().unwrap(), mac);
        }

        #[test]
        fn uuid_text_and_wire_round_trip(bytes in any::<[u8; 16]>()) {
            let uuid = SmbiosUuid(bytes);
            prop_assert_eq!(uuid.to_string().parse::<SmbiosUuid>().unwrap(), uuid);
            prop_assert_eq!(SmbiosUuid::from_wire(uuid.to_wire()), uuid);
        }

        #[test]
        fn parse_never_panics(text in ".{0,64}") {
            let _ = text.parse::<MacAddr>();
            let _ = text.parse::<SmbiosUuid>();
        }
    }
}
