//! The borrowed view of a DHCPv6 datagram: header fields by name and the raw option TLVs.
//!
//! Two header layouts exist (RFC 8415 sections 8 and 9): client/server messages start with
//! the message type and a 3-byte transaction id; relay messages (Relay-forward 12,
//! Relay-reply 13) with the type, a hop count and two addresses.

use std::net::Ipv6Addr;

use super::DecodeError;

/// Byte ranges of the client/server header (RFC 8415 section 8).
pub(crate) mod field {
    use std::ops::{Range, RangeFrom};
    /// Message type, in both layouts.
    pub(crate) const MSG_TYPE: usize = 0;
    pub(crate) const TRANSACTION_ID: Range<usize> = 1..4;
    pub(crate) const OPTIONS: RangeFrom<usize> = 4..;
}

/// Byte ranges of the relay header (RFC 8415 section 9).
pub(crate) mod relay_field {
    use std::ops::{Range, RangeFrom};
    pub(crate) const HOP_COUNT: usize = 1;
    pub(crate) const LINK_ADDRESS: Range<usize> = 2..18;
    pub(crate) const PEER_ADDRESS: Range<usize> = 18..34;
    pub(crate) const OPTIONS: RangeFrom<usize> = 34..;
}

/// Byte ranges of one option (RFC 8415 section 21.1).
pub(crate) mod option_field {
    use std::ops::Range;
    pub(crate) const CODE: Range<usize> = 0..2;
    pub(crate) const LEN: Range<usize> = 2..4;
    /// Where the value starts.
    pub(crate) const DATA: usize = 4;
}

/// Relay-forward message type.
pub(crate) const RELAY_FORWARD: u8 = 12;
/// Relay-reply message type.
pub(crate) const RELAY_REPLY: u8 = 13;

/// Whether a message type uses the relay header.
pub(crate) fn is_relay_type(msg_type: u8) -> bool {
    matches!(msg_type, RELAY_FORWARD | RELAY_REPLY)
}

/// A checked, borrowed view of a DHCPv6 datagram: long enough for its header.
///
/// ```
/// use netboot_dhcp::v6::wire::Dhcp6Packet;
/// let solicit = [1, 0xab, 0xcd, 0xef, 0, 8, 0, 2, 0, 0];
/// let packet = Dhcp6Packet::new_checked(&solicit).unwrap();
/// assert_eq!(packet.msg_type(), 1);
/// assert_eq!(packet.transaction_id(), Some(0xabcdef));
/// let options: Vec<_> = packet.options().collect::<Result<_, _>>().unwrap();
/// assert_eq!(options[0].code, 8);
/// assert!(Dhcp6Packet::new_checked(&solicit[..3]).is_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Dhcp6Packet<'a> {
    bytes: &'a [u8],
}

impl<'a> Dhcp6Packet<'a> {
    /// Checks that the datagram holds the header its message type calls for.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let Some(&msg_type) = bytes.get(field::MSG_TYPE) else {
            return Err(DecodeError::Truncated {
                needed: field::OPTIONS.start,
                got: 0,
                offset: 0,
            });
        };
        let needed = if is_relay_type(msg_type) {
            relay_field::OPTIONS.start
        } else {
            field::OPTIONS.start
        };
        if bytes.len() < needed {
            return Err(DecodeError::Truncated {
                needed,
                got: bytes.len(),
                offset: 0,
            });
        }
        Ok(Self { bytes })
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Message type (1 Solicit ... 13 Relay-reply).
    pub fn msg_type(&self) -> u8 {
        self.bytes[field::MSG_TYPE]
    }

    /// Whether this is a Relay-forward or Relay-reply.
    pub fn is_relay(&self) -> bool {
        is_relay_type(self.msg_type())
    }

    /// The 24-bit transaction id of a client/server message; `None` for relay messages.
    pub fn transaction_id(&self) -> Option<u32> {
        if self.is_relay() {
            return None;
        }
        let [a, b, c] = array(&self.bytes[field::TRANSACTION_ID]);
        Some(u32::from_be_bytes([0, a, b, c]))
    }

    /// Hop count of a relay message.
    pub fn hop_count(&self) -> Option<u8> {
        self.is_relay().then(|| self.bytes[relay_field::HOP_COUNT])
    }

    /// Link address of a relay message: an address on the link the client is on.
    pub fn link_address(&self) -> Option<Ipv6Addr> {
        self.is_relay()
            .then(|| Ipv6Addr::from(array::<16>(&self.bytes[relay_field::LINK_ADDRESS])))
    }

    /// Peer address of a relay message: the client's (or the next relay's) address.
    pub fn peer_address(&self) -> Option<Ipv6Addr> {
        self.is_relay()
            .then(|| Ipv6Addr::from(array::<16>(&self.bytes[relay_field::PEER_ADDRESS])))
    }

    /// Offset of the first option.
    pub fn options_offset(&self) -> usize {
        if self.is_relay() {
            relay_field::OPTIONS.start
        } else {
            field::OPTIONS.start
        }
    }

    /// The option TLVs in wire order; an option running past the end is an error.
    pub fn options(&self) -> RawOptions<'a> {
        let start = self.options_offset();
        RawOptions::new(&self.bytes[start..], start)
    }
}

/// One option as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// Option code.
    pub code: u16,
    /// Value bytes.
    pub data: &'a [u8],
    /// Offset of the option's code in the outermost buffer, for error messages.
    pub offset: usize,
}

/// Iterator over the TLVs of an option area (a message body or an encapsulating option's
/// value). It stops after the first error.
#[derive(Debug, Clone)]
pub struct RawOptions<'a> {
    rest: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> RawOptions<'a> {
    /// Options of `area`, which starts at `base` in the datagram.
    pub fn new(area: &'a [u8], base: usize) -> Self {
        Self {
            rest: area,
            offset: base,
            failed: false,
        }
    }
}

impl<'a> Iterator for RawOptions<'a> {
    type Item = Result<RawOption<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let offset = self.offset;
        let Some(header) = self.rest.get(..option_field::DATA) else {
            self.failed = true;
            return Some(Err(DecodeError::Truncated {
                needed: option_field::DATA,
                got: self.rest.len(),
                offset,
            }));
        };
        let code = u16::from_be_bytes(array(&header[option_field::CODE]));
        let len = usize::from(u16::from_be_bytes(array(&header[option_field::LEN])));
        let end = option_field::DATA + len;
        let Some(data) = self.rest.get(option_field::DATA..end) else {
            self.failed = true;
            return Some(Err(DecodeError::Truncated {
                needed: end,
                got: self.rest.len(),
                offset,
            }));
        };
        self.rest = &self.rest[end..];
        self.offset += end;
        Some(Ok(RawOption { code, data, offset }))
    }
}

pub(crate) fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes.try_into().expect("field ranges have fixed lengths")
}
