//! The owned DHCP message.

use std::net::Ipv4Addr;

use netboot_core::{ClientArch, MacAddr};

use super::options::{code, DhcpOption, MessageType};
use super::raw::{field, parse_area, DhcpPacket, RawOption, MAGIC_COOKIE};
use super::{DecodeError, OptionArea};

/// BOOTREQUEST, the `op` of every client message.
pub const BOOTREQUEST: u8 = 1;
/// BOOTREPLY, the `op` of every server message.
pub const BOOTREPLY: u8 = 2;
/// The BROADCAST bit of `flags`.
pub const FLAG_BROADCAST: u16 = 0x8000;

/// A complete BOOTP/DHCPv4 message.
///
/// Options are kept in wire order, PAD included, and the bytes after END are kept in
/// `trailer`, so `DhcpMessage::parse(b)?.to_bytes() == b` for every message whose long
/// options are split at 255 bytes, as RFC 3396 encoders do. When option 52 (overload) is
/// present, `file` and `sname` hold further options; they are validated on parse, kept raw,
/// and searched by the typed accessors.
///
/// ```
/// use netboot_dhcp::wire::{DhcpMessage, DhcpOption, MessageType};
/// let mut msg = DhcpMessage::new_request(0x1234_5678, [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
/// msg.options.push(DhcpOption::MessageType(MessageType::Discover));
/// msg.options.push(DhcpOption::VendorClass(b"PXEClient".to_vec()));
/// let bytes = msg.to_bytes();
/// let parsed = DhcpMessage::parse(&bytes).unwrap();
/// assert_eq!(parsed, msg);
/// assert_eq!(parsed.message_type(), Some(MessageType::Discover));
/// assert_eq!(parsed.vendor_class(), Some(&b"PXEClient"[..]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpMessage {
    /// 1 BOOTREQUEST, 2 BOOTREPLY.
    pub op: u8,
    /// Hardware type (1 = Ethernet).
    pub htype: u8,
    /// Hardware address length.
    pub hlen: u8,
    /// Relay hops.
    pub hops: u8,
    /// Transaction id.
    pub xid: u32,
    /// Seconds since the client began.
    pub secs: u16,
    /// Flags (bit 15 BROADCAST).
    pub flags: u16,
    /// Client address.
    pub ciaddr: Ipv4Addr,
    /// "Your" address.
    pub yiaddr: Ipv4Addr,
    /// Next-server address.
    pub siaddr: Ipv4Addr,
    /// Relay agent address.
    pub giaddr: Ipv4Addr,
    /// Client hardware address.
    pub chaddr: [u8; 16],
    /// Server host name, NUL padded (or options, under overload).
    pub sname: [u8; 64],
    /// Boot file name, NUL padded (or options, under overload).
    pub file: [u8; 128],
    /// Options of the options field in wire order (END excluded).
    pub options: Vec<DhcpOption>,
    /// Bytes after END.
    pub trailer: Vec<u8>,
}

impl DhcpMessage {
    /// An empty BOOTREQUEST from an Ethernet client.
    pub fn new_request(xid: u32, mac: [u8; 6]) -> Self {
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&mac);
        Self {
            op: BOOTREQUEST,
            htype: 1,
            hlen: 6,
            hops: 0,
            xid,
            secs: 0,
            flags: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr,
            sname: [0; 64],
            file: [0; 128],
            options: Vec::new(),
            trailer: Vec::new(),
        }
    }

    /// Parses and validates a datagram, including options carried in `file`/`sname`.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let packet = DhcpPacket::new_checked(bytes)?;
        let raw = packet.options()?;
        let options = merge_and_decode(&raw.items)?;
        let message = Self {
            op: packet.op(),
            htype: packet.htype(),
            hlen: packet.hlen(),
            hops: packet.hops(),
            xid: packet.xid(),
            secs: packet.secs(),
            flags: packet.flags(),
            ciaddr: packet.ciaddr(),
            yiaddr: packet.yiaddr(),
            siaddr: packet.siaddr(),
            giaddr: packet.giaddr(),
            chaddr: *packet.chaddr(),
            sname: *packet.sname(),
            file: *packet.file(),
            options,
            trailer: raw.trailer.to_vec(),
        };
        message.overloaded_options()?;
        Ok(message)
    }

    /// Appends the wire form to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + field::OPTIONS.start, 0);
        let header = &mut out[start..];
        header[field::OP] = self.op;
        header[field::HTYPE] = self.htype;
        header[field::HLEN] = self.hlen;
        header[field::HOPS] = self.hops;
        header[field::XID].copy_from_slice(&self.xid.to_be_bytes());
        header[field::SECS].copy_from_slice(&self.secs.to_be_bytes());
        header[field::FLAGS].copy_from_slice(&self.flags.to_be_bytes());
        header[field::CIADDR].copy_from_slice(&self.ciaddr.octets());
        header[field::YIADDR].copy_from_slice(&self.yiaddr.octets());
        header[field::SIADDR].copy_from_slice(&self.siaddr.octets());
        header[field::GIADDR].copy_from_slice(&self.giaddr.octets());
        header[field::CHADDR].copy_from_slice(&self.chaddr);
        header[field::SNAME].copy_from_slice(&self.sname);
        header[field::FILE].copy_from_slice(&self.file);
        header[field::COOKIE].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        for option in &self.options {
            option.encode(out);
        }
        out.push(code::END);
        out.extend_from_slice(&self.trailer);
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(field::OPTIONS.start + 64 + self.trailer.len());
        self.emit(&mut out);
        out
    }

    /// Options carried in `file` and `sname` under option 52, in RFC 3396 order (file, then
    /// sname); empty without overload.
    pub fn overloaded_options(&self) -> Result<Vec<DhcpOption>, DecodeError> {
        let overload = self.options.iter().find_map(|o| match o {
            DhcpOption::Overload(value) => Some(*value),
            _ => None,
        });
        let Some(overload) = overload else {
            return Ok(Vec::new());
        };
        let mut raw = Vec::new();
        if overload & 1 != 0 {
            raw.extend(parse_area(&self.file, field::FILE.start, OptionArea::File)?.items);
        }
        if overload & 2 != 0 {
            raw.extend(parse_area(&self.sname, field::SNAME.start, OptionArea::Sname)?.items);
        }
        merge_and_decode(&raw)
    }

    /// Every option of the message: the options field, then `file`/`sname` under overload.
    pub fn all_options(&self) -> impl Iterator<Item = DhcpOption> + '_ {
        self.options
            .iter()
            .cloned()
            .chain(self.overloaded_options().unwrap_or_default())
    }

    fn find<T>(&self, pick: impl Fn(&DhcpOption) -> Option<T>) -> Option<T> {
        self.options
            .iter()
            .find_map(&pick)
            .or_else(|| self.overloaded_options().ok()?.iter().find_map(&pick))
    }

    /// Option 53.
    pub fn message_type(&self) -> Option<MessageType> {
        self.find(|o| match o {
            DhcpOption::MessageType(t) => Some(*t),
            _ => None,
        })
    }

    /// Option 54.
    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.find(|o| match o {
            DhcpOption::ServerId(ip) => Some(*ip),
            _ => None,
        })
    }
}

macro_rules! bytes_accessors {
    ($($(#[$meta:meta])* $name:ident => $variant:ident,)*) => {
        impl DhcpMessage {
            $($(#[$meta])*
            pub fn $name(&self) -> Option<&[u8]> {
                self.options.iter().find_map(|o| match o {
                    DhcpOption::$variant(bytes) => Some(bytes.as_slice()),
                    _ => None,
                })
            })*
        }
    };
}

bytes_accessors! {
    /// Option 60 from the options field.
    vendor_class => VendorClass,
    /// Option 77 from the options field, raw.
    user_class => UserClass,
    /// Option 43 from the options field, raw.
    vendor_specific => VendorSpecific,
    /// Option 82 from the options field, raw.
    relay_agent_info => RelayAgentInfo,
    /// Option 175 from the options field, raw.
    ipxe_encapsulated => IpxeEncapsulated,
    /// Option 67 from the options field.
    bootfile_name => BootfileName,
}

impl DhcpMessage {
    /// Option 93, first architecture.
    pub fn client_arch(&self) -> Option<ClientArch> {
        self.find(|o| match o {
            DhcpOption::ClientArch(archs) => archs.first().copied(),
            _ => None,
        })
    }

    /// Option 94 as `(type, major, minor)`.
    pub fn client_ndi(&self) -> Option<(u8, u8, u8)> {
        self.find(|o| match o {
            DhcpOption::ClientNdi { kind, major, minor } => Some((*kind, *major, *minor)),
            _ => None,
        })
    }

    /// Option 97, the whole option (type and identifier).
    pub fn client_machine_id(&self) -> Option<DhcpOption> {
        self.find(|o| matches!(o, DhcpOption::ClientMachineId { .. }).then(|| o.clone()))
    }

    /// The client's MAC address, when `htype`/`hlen` say Ethernet.
    pub fn client_mac(&self) -> Option<MacAddr> {
        if self.htype != 1 {
            return None;
        }
        MacAddr::from_chaddr(&self.chaddr, self.hlen)
    }

    /// True when the client asked for broadcast replies.
    pub fn wants_broadcast(&self) -> bool {
        self.flags & FLAG_BROADCAST != 0
    }
}

/// Joins adjacent fragments of one option that were split at 255 bytes (RFC 3396), then
/// decodes each option. Fragments split elsewhere stay separate, so nothing is lost.
fn merge_and_decode(items: &[RawOption<'_>]) -> Result<Vec<DhcpOption>, DecodeError> {
    let mut options = Vec::with_capacity(items.len());
    let mut index = 0;
    while index < items.len() {
        match items[index] {
            RawOption::Pad => {
                options.push(DhcpOption::Pad);
                index += 1;
            }
            RawOption::Option { code, data } => {
                let mut value = data.to_vec();
                let mut last_len = data.len();
                index += 1;
                while last_len == 255 {
                    match items.get(index) {
                        Some(RawOption::Option {
                            code: next,
                            data: more,
                        }) if *next == code && !more.is_empty() => {
                            value.extend_from_slice(more);
                            last_len = more.len();
                            index += 1;
                        }
                        _ => break,
                    }
                }
                options.push(DhcpOption::decode(code, &value)?);
            }
        }
    }
    Ok(options)
}
