//! The borrowed view of a datagram: header fields by name and the raw option TLVs.
//!
//! nom is used here and nowhere in the public API.

use std::net::Ipv4Addr;

use nom::bytes::complete::take;
use nom::number::complete::be_u8;

use super::{DecodeError, OptionArea};

/// Byte ranges of the fixed BOOTP header (RFC 951, RFC 2131 section 2).
pub(crate) mod field {
    use std::ops::{Range, RangeFrom};
    pub(crate) const OP: usize = 0;
    pub(crate) const HTYPE: usize = 1;
    pub(crate) const HLEN: usize = 2;
    pub(crate) const HOPS: usize = 3;
    pub(crate) const XID: Range<usize> = 4..8;
    pub(crate) const SECS: Range<usize> = 8..10;
    pub(crate) const FLAGS: Range<usize> = 10..12;
    pub(crate) const CIADDR: Range<usize> = 12..16;
    pub(crate) const YIADDR: Range<usize> = 16..20;
    pub(crate) const SIADDR: Range<usize> = 20..24;
    pub(crate) const GIADDR: Range<usize> = 24..28;
    pub(crate) const CHADDR: Range<usize> = 28..44;
    pub(crate) const SNAME: Range<usize> = 44..108;
    pub(crate) const FILE: Range<usize> = 108..236;
    pub(crate) const COOKIE: Range<usize> = 236..240;
    pub(crate) const OPTIONS: RangeFrom<usize> = 240..;
}

/// The DHCP magic cookie, `63 82 53 63`.
pub const MAGIC_COOKIE: u32 = 0x6382_5363;

/// A checked, borrowed view of a BOOTP/DHCP datagram: at least 240 bytes with the magic cookie.
///
/// ```
/// let mut bytes = vec![0u8; 241];
/// bytes[0] = 1;
/// bytes[236..240].copy_from_slice(&[0x63, 0x82, 0x53, 0x63]);
/// bytes[240] = 255;
/// let packet = netboot_dhcp::wire::DhcpPacket::new_checked(&bytes).unwrap();
/// assert_eq!(packet.op(), 1);
/// assert!(netboot_dhcp::wire::DhcpPacket::new_checked(&bytes[..100]).is_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DhcpPacket<'a> {
    bytes: &'a [u8],
}

impl<'a> DhcpPacket<'a> {
    /// Checks the header length and the magic cookie.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < field::OPTIONS.start {
            return Err(DecodeError::Truncated {
                needed: field::OPTIONS.start,
                got: bytes.len(),
                offset: 0,
            });
        }
        let cookie = u32::from_be_bytes(array(&bytes[field::COOKIE]));
        if cookie != MAGIC_COOKIE {
            return Err(DecodeError::BadCookie(cookie));
        }
        Ok(Self { bytes })
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// `op`: 1 BOOTREQUEST, 2 BOOTREPLY.
    pub fn op(&self) -> u8 {
        self.bytes[field::OP]
    }
    /// `htype`: 1 for Ethernet.
    pub fn htype(&self) -> u8 {
        self.bytes[field::HTYPE]
    }
    /// `hlen`: 6 for Ethernet.
    pub fn hlen(&self) -> u8 {
        self.bytes[field::HLEN]
    }
    /// `hops`, incremented by relay agents.
    pub fn hops(&self) -> u8 {
        self.bytes[field::HOPS]
    }
    /// Transaction id.
    pub fn xid(&self) -> u32 {
        u32::from_be_bytes(array(&self.bytes[field::XID]))
    }
    /// Seconds since the client began.
    pub fn secs(&self) -> u16 {
        u16::from_be_bytes(array(&self.bytes[field::SECS]))
    }
    /// Flags; bit 15 is BROADCAST.
    pub fn flags(&self) -> u16 {
        u16::from_be_bytes(array(&self.bytes[field::FLAGS]))
    }
    /// Client address (set when the client already has one).
    pub fn ciaddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(&self.bytes[field::CIADDR]))
    }
    /// "Your" address offered by a server.
    pub fn yiaddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(&self.bytes[field::YIADDR]))
    }
    /// Next server (TFTP) address.
    pub fn siaddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(&self.bytes[field::SIADDR]))
    }
    /// Relay agent address.
    pub fn giaddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(&self.bytes[field::GIADDR]))
    }
    /// Client hardware address field (16 bytes; `hlen` says how many are used).
    pub fn chaddr(&self) -> &'a [u8; 16] {
        self.bytes[field::CHADDR].try_into().expect("checked length")
    }
    /// Server host name field (64 bytes).
    pub fn sname(&self) -> &'a [u8; 64] {
        self.bytes[field::SNAME].try_into().expect("checked length")
    }
    /// Boot file name field (128 bytes).
    pub fn file(&self) -> &'a [u8; 128] {
        self.bytes[field::FILE].try_into().expect("checked length")
    }

    /// The options field after the cookie: its TLVs and the bytes after END.
    pub fn options(&self) -> Result<RawOptions<'a>, DecodeError> {
        parse_area(
            &self.bytes[field::OPTIONS],
            field::OPTIONS.start,
            OptionArea::Options,
        )
    }
}

/// One TLV as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawOption<'a> {
    /// A PAD (0) byte.
    Pad,
    /// Any other option before END.
    Option {
        /// Option code.
        code: u8,
        /// Value bytes (one fragment, if the option was split per RFC 3396).
        data: &'a [u8],
    },
}

/// The options of one area in wire order, and whatever follows END.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOptions<'a> {
    /// Options in wire order, excluding END.
    pub items: Vec<RawOption<'a>>,
    /// Bytes after END (usually zero padding up to the BOOTP minimum of 300 bytes).
    pub trailer: &'a [u8],
}

/// Parses the TLVs of one option area. The number of items is bounded by the area's length.
pub(crate) fn parse_area(
    area_bytes: &[u8],
    base: usize,
    area: OptionArea,
) -> Result<RawOptions<'_>, DecodeError> {
    let mut items = Vec::new();
    let mut rest = area_bytes;
    loop {
        let offset = base + (area_bytes.len() - rest.len());
        let Ok((after_code, code)) = be_u8::<_, nom::error::Error<&[u8]>>(rest) else {
            return Err(DecodeError::MissingEnd { area });
        };
        match code {
            0 => {
                items.push(RawOption::Pad);
                rest = after_code;
            }
            255 => {
                return Ok(RawOptions {
                    items,
                    trailer: after_code,
                })
            }
            _ => {
                let (after_len, len) =
                    be_u8::<_, nom::error::Error<&[u8]>>(after_code).map_err(|_| DecodeError::Truncated {
                        needed: 2,
                        got: 1,
                        offset,
                    })?;
                let (after_data, data) =
                    take::<_, _, nom::error::Error<&[u8]>>(len)(after_len).map_err(|_| {
                        DecodeError::Truncated {
                            needed: 2 + usize::from(len),
                            got: rest.len(),
                            offset,
                        }
                    })?;
                items.push(RawOption::Option { code, data });
                rest = after_data;
            }
        }
    }
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes.try_into().expect("field ranges have fixed lengths")
}
