//! The owned DHCPv6 message: client/server and relay messages with typed options.

use std::net::Ipv6Addr;

use netboot_core::ClientArch;

use super::options::{decode_options, Dhcp6Option, VendorClass};
use super::raw::{array, field, relay_field, Dhcp6Packet, RELAY_FORWARD, RELAY_REPLY};
use super::{DecodeError, Duid, EncodeError};

/// DHCPv6 message types (RFC 8415 section 7.3), open so unknown values survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageType {
    /// 1: a client looks for servers.
    Solicit,
    /// 2: a server offers itself.
    Advertise,
    /// 3: a client asks a chosen server for addresses and options.
    Request,
    /// 4: a client checks its addresses are still on link.
    Confirm,
    /// 5: renewal.
    Renew,
    /// 6: rebinding.
    Rebind,
    /// 7: a server's answer.
    Reply,
    /// 8: a client gives addresses back.
    Release,
    /// 9: a client declines addresses.
    Decline,
    /// 10: a server asks a client to reconfigure.
    Reconfigure,
    /// 11: a client wants options only (stateless DHCPv6).
    InformationRequest,
    /// 12: a relay agent forwards a message to servers.
    RelayForward,
    /// 13: a server's answer to a relay agent.
    RelayReply,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(value: u8) -> Self {
        match value {
            1 => Self::Solicit,
            2 => Self::Advertise,
            3 => Self::Request,
            4 => Self::Confirm,
            5 => Self::Renew,
            6 => Self::Rebind,
            7 => Self::Reply,
            8 => Self::Release,
            9 => Self::Decline,
            10 => Self::Reconfigure,
            11 => Self::InformationRequest,
            RELAY_FORWARD => Self::RelayForward,
            RELAY_REPLY => Self::RelayReply,
            other => Self::Unknown(other),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(value: MessageType) -> Self {
        match value {
            MessageType::Solicit => 1,
            MessageType::Advertise => 2,
            MessageType::Request => 3,
            MessageType::Confirm => 4,
            MessageType::Renew => 5,
            MessageType::Rebind => 6,
            MessageType::Reply => 7,
            MessageType::Release => 8,
            MessageType::Decline => 9,
            MessageType::Reconfigure => 10,
            MessageType::InformationRequest => 11,
            MessageType::RelayForward => RELAY_FORWARD,
            MessageType::RelayReply => RELAY_REPLY,
            MessageType::Unknown(other) => other,
        }
    }
}

impl MessageType {
    /// Whether messages of this type carry the relay header.
    pub fn is_relay(self) -> bool {
        super::raw::is_relay_type(u8::from(self))
    }
}

/// The part of the header after the message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// Client/server messages: the 24-bit transaction id.
    Transaction([u8; 3]),
    /// Relay-forward and Relay-reply.
    Relay {
        /// Relays the message passed through (0 for the first relay).
        hop_count: u8,
        /// An address on the client's link (or unspecified).
        link_address: Ipv6Addr,
        /// The client's or previous relay's address.
        peer_address: Ipv6Addr,
    },
}

/// A complete DHCPv6 message with its options in wire order.
///
/// `Dhcp6Message::parse(b)?.to_bytes()? == b` for every message that parses: options
/// without a type here are kept as [`Dhcp6Option::Unknown`], relayed messages are parsed
/// (and re-encoded) recursively.
///
/// ```
/// use netboot_dhcp::v6::wire::{Dhcp6Message, Dhcp6Option, Duid, Header, MessageType};
/// let solicit = Dhcp6Message {
///     msg_type: MessageType::Solicit,
///     header: Header::Transaction([1, 2, 3]),
///     options: vec![Dhcp6Option::ClientId(Duid::link_layer([2, 0, 0, 0, 0, 1]))],
/// };
/// let bytes = solicit.to_bytes().unwrap();
/// assert_eq!(&bytes[..4], &[1, 1, 2, 3]);
/// assert_eq!(Dhcp6Message::parse(&bytes).unwrap(), solicit);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dhcp6Message {
    /// Message type; relay types go with [`Header::Relay`], all others with
    /// [`Header::Transaction`].
    pub msg_type: MessageType,
    /// Transaction id or relay header.
    pub header: Header,
    /// Options in wire order.
    pub options: Vec<Dhcp6Option>,
}

impl Dhcp6Message {
    /// Parses and validates a datagram, relayed messages included.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::parse_nested(bytes, 0, 0)
    }

    /// Parses a message found at `base` in the outermost datagram, `depth` levels down.
    pub(crate) fn parse_nested(bytes: &[u8], base: usize, depth: usize) -> Result<Self, DecodeError> {
        let packet = Dhcp6Packet::new_checked(bytes).map_err(|e| match e {
            DecodeError::Truncated { needed, got, offset } => DecodeError::Truncated {
                needed,
                got,
                offset: offset + base,
            },
            other => other,
        })?;
        let header = if packet.is_relay() {
            Header::Relay {
                hop_count: bytes[relay_field::HOP_COUNT],
                link_address: Ipv6Addr::from(array::<16>(&bytes[relay_field::LINK_ADDRESS])),
                peer_address: Ipv6Addr::from(array::<16>(&bytes[relay_field::PEER_ADDRESS])),
            }
        } else {
            Header::Transaction(array(&bytes[field::TRANSACTION_ID]))
        };
        let start = packet.options_offset();
        Ok(Self {
            msg_type: MessageType::from(packet.msg_type()),
            header,
            options: decode_options(&bytes[start..], base + start, depth)?,
        })
    }

    /// Appends the wire form to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.msg_type.is_relay() != matches!(self.header, Header::Relay { .. }) {
            return Err(EncodeError::HeaderMismatch(self.msg_type));
        }
        out.push(u8::from(self.msg_type));
        match self.header {
            Header::Transaction(id) => out.extend_from_slice(&id),
            Header::Relay {
                hop_count,
                link_address,
                peer_address,
            } => {
                out.push(hop_count);
                out.extend_from_slice(&link_address.octets());
                out.extend_from_slice(&peer_address.octets());
            }
        }
        self.options.iter().try_for_each(|o| o.encode(out))
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(256);
        self.emit(&mut out)?;
        Ok(out)
    }

    /// The transaction id as a number, for client/server messages.
    pub fn transaction_id(&self) -> Option<u32> {
        match self.header {
            Header::Transaction([a, b, c]) => Some(u32::from_be_bytes([0, a, b, c])),
            Header::Relay { .. } => None,
        }
    }

    /// The first option of a code.
    pub fn option(&self, code: u16) -> Option<&Dhcp6Option> {
        self.options.iter().find(|o| o.code() == code)
    }

    /// Option 1.
    pub fn client_id(&self) -> Option<&Duid> {
        self.options.iter().find_map(|o| match o {
            Dhcp6Option::ClientId(duid) => Some(duid),
            _ => None,
        })
    }

    /// Option 2.
    pub fn server_id(&self) -> Option<&Duid> {
        self.options.iter().find_map(|o| match o {
            Dhcp6Option::ServerId(duid) => Some(duid),
            _ => None,
        })
    }

    /// Every user class of every option 15, in order.
    pub fn user_classes(&self) -> impl Iterator<Item = &[u8]> {
        self.options
            .iter()
            .filter_map(|o| match o {
                Dhcp6Option::UserClass(classes) => Some(classes),
                _ => None,
            })
            .flatten()
            .map(Vec::as_slice)
    }

    /// Every option 16 (one per enterprise).
    pub fn vendor_classes(&self) -> impl Iterator<Item = &VendorClass> {
        self.options.iter().filter_map(|o| match o {
            Dhcp6Option::VendorClass(vendor) => Some(vendor),
            _ => None,
        })
    }

    /// Option 61, first architecture.
    pub fn client_arch(&self) -> Option<ClientArch> {
        self.options.iter().find_map(|o| match o {
            Dhcp6Option::ClientArch(archs) => archs.first().copied(),
            _ => None,
        })
    }

    /// Option 62 as `(type, major, minor)`.
    pub fn nii(&self) -> Option<(u8, u8, u8)> {
        self.options.iter().find_map(|o| match o {
            Dhcp6Option::Nii { kind, major, minor } => Some((*kind, *major, *minor)),
            _ => None,
        })
    }

    /// Option 59.
    pub fn bootfile_url(&self) -> Option<&[u8]> {
        self.options.iter().find_map(|o| match o {
            Dhcp6Option::BootfileUrl(url) => Some(url.as_slice()),
            _ => None,
        })
    }

    /// Option 9: the message a relay message carries.
    pub fn relayed(&self) -> Option<&Self> {
        self.options.iter().find_map(|o| match o {
            Dhcp6Option::RelayMessage(inner) => Some(inner.as_ref()),
            _ => None,
        })
    }

    /// Whether option 14 is present.
    pub fn rapid_commit(&self) -> bool {
        self.options.iter().any(|o| matches!(o, Dhcp6Option::RapidCommit))
    }

    /// The IA_NA options.
    pub fn ia_nas(&self) -> impl Iterator<Item = &super::Ia> {
        self.options.iter().filter_map(|o| match o {
            Dhcp6Option::IaNa(ia) => Some(ia),
            _ => None,
        })
    }

    /// Whether an option of `code` is present.
    pub fn has(&self, option_code: u16) -> bool {
        self.option(option_code).is_some()
    }

    /// Option 79 of a relay message, when it names an Ethernet address.
    pub fn client_link_layer_mac(&self) -> Option<netboot_core::MacAddr> {
        self.options.iter().find_map(|o| match o {
            Dhcp6Option::ClientLinkLayerAddr {
                hardware_type: super::HARDWARE_ETHERNET,
                address,
            } => netboot_core::MacAddr::from_chaddr(address, u8::try_from(address.len()).ok()?),
            _ => None,
        })
    }

    /// Option 18 (interface id); servers echo it in the Relay-reply.
    pub fn interface_id(&self) -> Option<&[u8]> {
        self.options.iter().find_map(|o| match o {
            Dhcp6Option::InterfaceId(id) => Some(id.as_slice()),
            _ => None,
        })
    }
}
