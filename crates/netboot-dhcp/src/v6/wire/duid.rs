//! DHCP unique identifiers (RFC 8415 section 11, RFC 6355), kept as the bytes that were sent.

use netboot_core::MacAddr;

/// DUID types.
pub mod duid_type {
    /// Link-layer address plus time (RFC 8415 11.2).
    pub const LLT: u16 = 1;
    /// Enterprise number plus identifier (RFC 8415 11.3).
    pub const EN: u16 = 2;
    /// Link-layer address (RFC 8415 11.4).
    pub const LL: u16 = 3;
    /// UUID (RFC 6355): what EDK2 and iPXE clients send.
    pub const UUID: u16 = 4;
}

/// Hardware type of Ethernet in DUIDs and option 79 (IANA ARP hardware types).
pub const HARDWARE_ETHERNET: u16 = 1;

/// A DUID exactly as sent. The typed view is computed on demand so that odd or short DUIDs
/// (which some clients send) survive a round trip unchanged.
///
/// ```
/// use netboot_dhcp::v6::wire::{Duid, DuidView};
/// let duid = Duid::link_layer([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
/// assert_eq!(duid.0, [0, 3, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56]);
/// assert_eq!(duid.mac().unwrap().to_string(), "52:54:00:12:34:56");
/// assert!(matches!(duid.view(), DuidView::LinkLayer { hardware_type: 1, .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Duid(pub Vec<u8>);

/// What a [`Duid`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DuidView<'a> {
    /// DUID-LLT.
    LinkLayerTime {
        /// Hardware type.
        hardware_type: u16,
        /// Seconds since 2000-01-01 when it was made.
        time: u32,
        /// The address.
        address: &'a [u8],
    },
    /// DUID-EN.
    Enterprise {
        /// Enterprise number.
        enterprise: u32,
        /// Identifier.
        id: &'a [u8],
    },
    /// DUID-LL.
    LinkLayer {
        /// Hardware type.
        hardware_type: u16,
        /// The address.
        address: &'a [u8],
    },
    /// DUID-UUID: 16 bytes whose byte order depends on the client (see
    /// [`crate::v6::class`]).
    Uuid(&'a [u8; 16]),
    /// Any other type, or a DUID too short for its type.
    Other(&'a [u8]),
}

impl Duid {
    /// A DUID-LL for an Ethernet address.
    pub fn link_layer(mac: [u8; 6]) -> Self {
        let mut bytes = Vec::with_capacity(10);
        bytes.extend_from_slice(&duid_type::LL.to_be_bytes());
        bytes.extend_from_slice(&HARDWARE_ETHERNET.to_be_bytes());
        bytes.extend_from_slice(&mac);
        Self(bytes)
    }

    /// The typed view.
    pub fn view(&self) -> DuidView<'_> {
        let bytes = self.0.as_slice();
        let Some((kind, rest)) = bytes.split_first_chunk::<2>() else {
            return DuidView::Other(bytes);
        };
        match (u16::from_be_bytes(*kind), rest) {
            (duid_type::LLT, [h0, h1, t0, t1, t2, t3, address @ ..]) => DuidView::LinkLayerTime {
                hardware_type: u16::from_be_bytes([*h0, *h1]),
                time: u32::from_be_bytes([*t0, *t1, *t2, *t3]),
                address,
            },
            (duid_type::EN, [e0, e1, e2, e3, id @ ..]) => DuidView::Enterprise {
                enterprise: u32::from_be_bytes([*e0, *e1, *e2, *e3]),
                id,
            },
            (duid_type::LL, [h0, h1, address @ ..]) => DuidView::LinkLayer {
                hardware_type: u16::from_be_bytes([*h0, *h1]),
                address,
            },
            (duid_type::UUID, rest) => match <&[u8; 16]>::try_from(rest) {
                Ok(uuid) => DuidView::Uuid(uuid),
                Err(_) => DuidView::Other(bytes),
            },
            _ => DuidView::Other(bytes),
        }
    }

    /// The Ethernet address of a DUID-LLT or DUID-LL with hardware type 1. It names *a* NIC
    /// of the client (the one the DUID was made from), usually but not always the booting one.
    pub fn mac(&self) -> Option<MacAddr> {
        match self.view() {
            DuidView::LinkLayerTime {
                hardware_type: HARDWARE_ETHERNET,
                address,
                ..
            }
            | DuidView::LinkLayer {
                hardware_type: HARDWARE_ETHERNET,
                address,
            } => MacAddr::from_chaddr(address, u8::try_from(address.len()).ok()?),
            _ => None,
        }
    }
}

impl std::fmt::Display for Duid {
    /// Colon-separated hex, as dnsmasq and Kea log DUIDs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}
