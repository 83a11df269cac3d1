//! Typed DHCPv6 options, owned and lossless: every option this module gives a type to
//! re-encodes to the bytes it was parsed from, and any other option is kept as
//! [`Dhcp6Option::Unknown`].

use std::net::Ipv6Addr;

use netboot_core::ClientArch;

use super::raw::{option_field, RawOptions};
use super::{DecodeError, Dhcp6Message, Duid, EncodeError};

/// Option codes this module gives a type to (IANA "DHCPv6 Option Codes").
pub mod code {
    /// Client identifier, a DUID (RFC 8415 21.2).
    pub const CLIENT_ID: u16 = 1;
    /// Server identifier, a DUID (RFC 8415 21.3).
    pub const SERVER_ID: u16 = 2;
    /// Identity association for non-temporary addresses (RFC 8415 21.4).
    pub const IA_NA: u16 = 3;
    /// Identity association for temporary addresses (RFC 8415 21.5).
    pub const IA_TA: u16 = 4;
    /// An address inside an IA (RFC 8415 21.6).
    pub const IA_ADDR: u16 = 5;
    /// Option request: the codes a client wants (RFC 8415 21.7).
    pub const ORO: u16 = 6;
    /// Server preference 0-255 (RFC 8415 21.8).
    pub const PREFERENCE: u16 = 7;
    /// Elapsed time in hundredths of a second (RFC 8415 21.9).
    pub const ELAPSED_TIME: u16 = 8;
    /// A whole relayed message (RFC 8415 21.10).
    pub const RELAY_MSG: u16 = 9;
    /// Server unicast address (RFC 8415 21.12).
    pub const UNICAST: u16 = 12;
    /// Status code and message (RFC 8415 21.13).
    pub const STATUS_CODE: u16 = 13;
    /// Rapid commit, empty (RFC 8415 21.14).
    pub const RAPID_COMMIT: u16 = 14;
    /// User classes (RFC 8415 21.15): iPXE sends `iPXE`.
    pub const USER_CLASS: u16 = 15;
    /// Vendor classes (RFC 8415 21.16): `PXEClient:...` / `HTTPClient:...`, enterprise 343.
    pub const VENDOR_CLASS: u16 = 16;
    /// Vendor-specific information (RFC 8415 21.17).
    pub const VENDOR_OPTS: u16 = 17;
    /// Relay agent's interface id, echoed by servers (RFC 8415 21.18).
    pub const INTERFACE_ID: u16 = 18;
    /// DNS recursive name servers (RFC 3646).
    pub const DNS_SERVERS: u16 = 23;
    /// Domain search list (RFC 3646).
    pub const DOMAIN_LIST: u16 = 24;
    /// Identity association for prefix delegation (RFC 8415 21.21).
    pub const IA_PD: u16 = 25;
    /// A prefix inside an IA_PD (RFC 8415 21.22).
    pub const IA_PREFIX: u16 = 26;
    /// Information refresh time in seconds (RFC 8415 21.23).
    pub const INFORMATION_REFRESH_TIME: u16 = 32;
    /// Echo request: options a relay wants copied into the Relay-reply (RFC 4994).
    pub const ERO: u16 = 43;
    /// Boot file URL (RFC 5970 3.1).
    pub const BOOTFILE_URL: u16 = 59;
    /// Boot file parameters (RFC 5970 3.2).
    pub const BOOTFILE_PARAM: u16 = 60;
    /// Client system architecture types (RFC 5970 3.3, IANA registry as option 93).
    pub const CLIENT_ARCH_TYPE: u16 = 61;
    /// Client network interface identifier (RFC 5970 3.4).
    pub const NII: u16 = 62;
    /// Client link-layer address, added by relay agents (RFC 6939).
    pub const CLIENT_LINKLAYER_ADDR: u16 = 79;
}

/// Status codes (RFC 8415 21.13).
pub mod status {
    /// Success.
    pub const SUCCESS: u16 = 0;
    /// Unspecified failure.
    pub const UNSPEC_FAIL: u16 = 1;
    /// The server has no addresses for this IA.
    pub const NO_ADDRS_AVAIL: u16 = 2;
    /// No binding for this client.
    pub const NO_BINDING: u16 = 3;
    /// The prefix is not on the link.
    pub const NOT_ON_LINK: u16 = 4;
    /// The client must use multicast.
    pub const USE_MULTICAST: u16 = 5;
}

/// Enterprise number of the PXE vendor class (Intel, as EDK2 and iPXE send it).
pub const PXE_ENTERPRISE: u32 = 343;

/// An identity association with lifetimes: IA_NA (3) and IA_PD (25) share this shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ia {
    /// Identity association id, chosen by the client.
    pub iaid: u32,
    /// Renewal time (T1), seconds.
    pub t1: u32,
    /// Rebinding time (T2), seconds.
    pub t2: u32,
    /// IA_ADDR / IA_PREFIX / status code options inside, in wire order.
    pub options: Vec<Dhcp6Option>,
}

/// An identity association for temporary addresses (no lifetimes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaTa {
    /// Identity association id.
    pub iaid: u32,
    /// Options inside.
    pub options: Vec<Dhcp6Option>,
}

/// An address with lifetimes, inside an IA_NA or IA_TA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaAddr {
    /// The address.
    pub address: Ipv6Addr,
    /// Preferred lifetime, seconds.
    pub preferred_lifetime: u32,
    /// Valid lifetime, seconds.
    pub valid_lifetime: u32,
    /// Options inside (a status code).
    pub options: Vec<Dhcp6Option>,
}

/// A delegated prefix inside an IA_PD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaPrefix {
    /// Preferred lifetime, seconds.
    pub preferred_lifetime: u32,
    /// Valid lifetime, seconds.
    pub valid_lifetime: u32,
    /// Prefix length in bits.
    pub prefix_len: u8,
    /// The prefix.
    pub prefix: Ipv6Addr,
    /// Options inside.
    pub options: Vec<Dhcp6Option>,
}

/// A status code with its (UTF-8, unchecked) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCode {
    /// One of [`status`], or another value.
    pub code: u16,
    /// Human-readable text, as sent.
    pub message: Vec<u8>,
}

/// Vendor classes of one enterprise: each item is one class string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorClass {
    /// IANA enterprise number ([`PXE_ENTERPRISE`] for PXE and HTTP Boot clients).
    pub enterprise: u32,
    /// The class strings, in order.
    pub classes: Vec<Vec<u8>>,
}

/// One option with its value decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dhcp6Option {
    /// 1: client identifier.
    ClientId(Duid),
    /// 2: server identifier.
    ServerId(Duid),
    /// 3: IA_NA.
    IaNa(Ia),
    /// 4: IA_TA.
    IaTa(IaTa),
    /// 5: IA address.
    IaAddr(IaAddr),
    /// 6: requested option codes.
    Oro(Vec<u16>),
    /// 7: server preference.
    Preference(u8),
    /// 8: elapsed time, hundredths of a second.
    ElapsedTime(u16),
    /// 9: the relayed message, parsed.
    RelayMessage(Box<Dhcp6Message>),
    /// 12: server unicast address.
    Unicast(Ipv6Addr),
    /// 13: status code.
    StatusCode(StatusCode),
    /// 14: rapid commit.
    RapidCommit,
    /// 15: user classes (each length-prefixed on the wire).
    UserClass(Vec<Vec<u8>>),
    /// 16: vendor classes.
    VendorClass(VendorClass),
    /// 17: vendor-specific information, raw after the enterprise number.
    VendorOpts {
        /// Enterprise number.
        enterprise: u32,
        /// Encapsulated vendor options, raw.
        data: Vec<u8>,
    },
    /// 18: a relay agent's interface id, opaque.
    InterfaceId(Vec<u8>),
    /// 23: DNS servers.
    DnsServers(Vec<Ipv6Addr>),
    /// 24: domain search list, raw (DNS wire format).
    DomainList(Vec<u8>),
    /// 25: IA_PD.
    IaPd(Ia),
    /// 26: IA prefix.
    IaPrefix(IaPrefix),
    /// 32: information refresh time, seconds.
    InformationRefreshTime(u32),
    /// 43: option codes a relay agent asks the server to echo.
    EchoRequest(Vec<u16>),
    /// 59: boot file URL, e.g. `tftp://[2001:db8::1]/snponly.efi`.
    BootfileUrl(Vec<u8>),
    /// 60: boot file parameters (each length-prefixed on the wire).
    BootfileParam(Vec<Vec<u8>>),
    /// 61: client architectures, in the client's order of preference.
    ClientArch(Vec<ClientArch>),
    /// 62: client network interface identifier.
    Nii {
        /// Interface type, 1 = UNDI.
        kind: u8,
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// 79: the client's link-layer address, as the relay agent saw it.
    ClientLinkLayerAddr {
        /// Hardware type (1 = Ethernet).
        hardware_type: u16,
        /// The address.
        address: Vec<u8>,
    },
    /// Any other option, kept as it was.
    Unknown {
        /// Option code.
        code: u16,
        /// Value bytes.
        data: Vec<u8>,
    },
}

/// Options nested deeper than this are refused, which bounds recursion on hostile input.
/// Each relayed message and each IA, IA address or prefix is one level; real messages need at
/// most 8 relays (RFC 8415 section 7.6, HOP_COUNT_LIMIT) plus 2 levels of IA.
pub const MAX_DEPTH: usize = 24;

/// Decodes every option of an area starting at `base` in the datagram.
pub(crate) fn decode_options(
    area: &[u8],
    base: usize,
    depth: usize,
) -> Result<Vec<Dhcp6Option>, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep(MAX_DEPTH));
    }
    RawOptions::new(area, base)
        .map(|raw| {
            let raw = raw?;
            Dhcp6Option::decode(raw.code, raw.data, raw.offset, depth)
        })
        .collect()
}

/// Splits a value into 16-bit-length-prefixed items (user classes, vendor classes, boot file
/// parameters); `None` when the lengths do not add up exactly.
fn length_prefixed_items(mut data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut items = Vec::new();
    while !data.is_empty() {
        let [hi, lo, rest @ ..] = data else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        items.push(rest.get(..len)?.to_vec());
        data = &rest[len..];
    }
    Some(items)
}

fn u16s(data: &[u8]) -> Option<Vec<u16>> {
    (data.len() % 2 == 0).then(|| {
        data.chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect()
    })
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(data[at..at + 4].try_into().expect("length checked"))
}

fn ipv6_at(data: &[u8], at: usize) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&data[at..at + 16]).expect("length checked"))
}

impl Dhcp6Option {
    /// The option code.
    pub fn code(&self) -> u16 {
        use code::*;
        match self {
            Self::ClientId(_) => CLIENT_ID,
            Self::ServerId(_) => SERVER_ID,
            Self::IaNa(_) => IA_NA,
            Self::IaTa(_) => IA_TA,
            Self::IaAddr(_) => IA_ADDR,
            Self::Oro(_) => ORO,
            Self::Preference(_) => PREFERENCE,
            Self::ElapsedTime(_) => ELAPSED_TIME,
            Self::RelayMessage(_) => RELAY_MSG,
            Self::Unicast(_) => UNICAST,
            Self::StatusCode(_) => STATUS_CODE,
            Self::RapidCommit => RAPID_COMMIT,
            Self::UserClass(_) => USER_CLASS,
            Self::VendorClass(_) => VENDOR_CLASS,
            Self::VendorOpts { .. } => VENDOR_OPTS,
            Self::InterfaceId(_) => INTERFACE_ID,
            Self::DnsServers(_) => DNS_SERVERS,
            Self::DomainList(_) => DOMAIN_LIST,
            Self::IaPd(_) => IA_PD,
            Self::IaPrefix(_) => IA_PREFIX,
            Self::InformationRefreshTime(_) => INFORMATION_REFRESH_TIME,
            Self::EchoRequest(_) => ERO,
            Self::BootfileUrl(_) => BOOTFILE_URL,
            Self::BootfileParam(_) => BOOTFILE_PARAM,
            Self::ClientArch(_) => CLIENT_ARCH_TYPE,
            Self::Nii { .. } => NII,
            Self::ClientLinkLayerAddr { .. } => CLIENT_LINKLAYER_ADDR,
            Self::Unknown { code, .. } => *code,
        }
    }

    /// Decodes one option from its code and value; `offset` is where the option starts in
    /// the datagram (for errors and nested options), `depth` how deeply it is nested.
    pub fn decode(code: u16, data: &[u8], offset: usize, depth: usize) -> Result<Self, DecodeError> {
        use code::*;
        let bad = || DecodeError::BadOptionValue {
            code,
            len: data.len(),
            offset,
        };
        let value_at = offset + option_field::DATA;
        let nested = |skip: usize| decode_options(&data[skip..], value_at + skip, depth + 1);
        let exact = |len: usize| if data.len() == len { Ok(()) } else { Err(bad()) };
        let at_least = |len: usize| if data.len() >= len { Ok(()) } else { Err(bad()) };
        Ok(match code {
            CLIENT_ID => Self::ClientId(Duid(data.to_vec())),
            SERVER_ID => Self::ServerId(Duid(data.to_vec())),
            IA_NA | IA_PD => {
                at_least(12)?;
                let ia = Ia {
                    iaid: u32_at(data, 0),
                    t1: u32_at(data, 4),
                    t2: u32_at(data, 8),
                    options: nested(12)?,
                };
                if code == IA_NA {
                    Self::IaNa(ia)
                } else {
                    Self::IaPd(ia)
                }
            }
            IA_TA => {
                at_least(4)?;
                Self::IaTa(IaTa {
                    iaid: u32_at(data, 0),
                    options: nested(4)?,
                })
            }
            IA_ADDR => {
                at_least(24)?;
                Self::IaAddr(IaAddr {
                    address: ipv6_at(data, 0),
                    preferred_lifetime: u32_at(data, 16),
                    valid_lifetime: u32_at(data, 20),
                    options: nested(24)?,
                })
            }
            ORO => Self::Oro(u16s(data).ok_or_else(bad)?),
            ERO => Self::EchoRequest(u16s(data).ok_or_else(bad)?),
            PREFERENCE => {
                exact(1)?;
                Self::Preference(data[0])
            }
            ELAPSED_TIME => {
                exact(2)?;
                Self::ElapsedTime(u16::from_be_bytes([data[0], data[1]]))
            }
            RELAY_MSG => Self::RelayMessage(Box::new(Dhcp6Message::parse_nested(data, value_at, depth + 1)?)),
            UNICAST => {
                exact(16)?;
                Self::Unicast(ipv6_at(data, 0))
            }
            STATUS_CODE => {
                at_least(2)?;
                Self::StatusCode(StatusCode {
                    code: u16::from_be_bytes([data[0], data[1]]),
                    message: data[2..].to_vec(),
                })
            }
            RAPID_COMMIT => {
                exact(0)?;
                Self::RapidCommit
            }
            USER_CLASS => Self::UserClass(length_prefixed_items(data).ok_or_else(bad)?),
            VENDOR_CLASS => {
                at_least(4)?;
                Self::VendorClass(VendorClass {
                    enterprise: u32_at(data, 0),
                    classes: length_prefixed_items(&data[4..]).ok_or_else(bad)?,
                })
            }
            VENDOR_OPTS => {
                at_least(4)?;
                Self::VendorOpts {
                    enterprise: u32_at(data, 0),
                    data: data[4..].to_vec(),
                }
            }
            INTERFACE_ID => Self::InterfaceId(data.to_vec()),
            DNS_SERVERS => {
                if data.len() % 16 != 0 {
                    return Err(bad());
                }
                Self::DnsServers(data.chunks_exact(16).map(|c| ipv6_at(c, 0)).collect())
            }
            DOMAIN_LIST => Self::DomainList(data.to_vec()),
            IA_PREFIX => {
                at_least(25)?;
                Self::IaPrefix(IaPrefix {
                    preferred_lifetime: u32_at(data, 0),
                    valid_lifetime: u32_at(data, 4),
                    prefix_len: data[8],
                    prefix: ipv6_at(data, 9),
                    options: nested(25)?,
                })
            }
            INFORMATION_REFRESH_TIME => {
                exact(4)?;
                Self::InformationRefreshTime(u32_at(data, 0))
            }
            BOOTFILE_URL => Self::BootfileUrl(data.to_vec()),
            BOOTFILE_PARAM => Self::BootfileParam(length_prefixed_items(data).ok_or_else(bad)?),
            CLIENT_ARCH_TYPE => Self::ClientArch(
                u16s(data)
                    .ok_or_else(bad)?
                    .into_iter()
                    .map(ClientArch::from)
                    .collect(),
            ),
            NII => match data {
                [kind, major, minor] => Self::Nii {
                    kind: *kind,
                    major: *major,
                    minor: *minor,
                },
                _ => return Err(bad()),
            },
            CLIENT_LINKLAYER_ADDR => {
                at_least(2)?;
                Self::ClientLinkLayerAddr {
                    hardware_type: u16::from_be_bytes([data[0], data[1]]),
                    address: data[2..].to_vec(),
                }
            }
            _ => Self::Unknown {
                code,
                data: data.to_vec(),
            },
        })
    }

    /// Appends the whole option: code, length, value.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.extend_from_slice(&self.code().to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        self.encode_value(out)?;
        let len = out.len() - start - option_field::DATA;
        let len16 = u16::try_from(len).map_err(|_| EncodeError::TooLong {
            code: self.code(),
            len,
        })?;
        out[start + option_field::LEN.start..start + option_field::LEN.end]
            .copy_from_slice(&len16.to_be_bytes());
        Ok(())
    }

    /// Appends the value bytes (without code and length).
    pub fn encode_value(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let items = |items: &[Vec<u8>], out: &mut Vec<u8>| -> Result<(), EncodeError> {
            for item in items {
                let len = u16::try_from(item.len()).map_err(|_| EncodeError::TooLong {
                    code: self.code(),
                    len: item.len(),
                })?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(item);
            }
            Ok(())
        };
        let nested = |options: &[Self], out: &mut Vec<u8>| -> Result<(), EncodeError> {
            options.iter().try_for_each(|o| o.encode(out))
        };
        match self {
            Self::ClientId(duid) | Self::ServerId(duid) => out.extend_from_slice(&duid.0),
            Self::IaNa(ia) | Self::IaPd(ia) => {
                for value in [ia.iaid, ia.t1, ia.t2] {
                    out.extend_from_slice(&value.to_be_bytes());
                }
                nested(&ia.options, out)?;
            }
            Self::IaTa(ia) => {
                out.extend_from_slice(&ia.iaid.to_be_bytes());
                nested(&ia.options, out)?;
            }
            Self::IaAddr(addr) => {
                out.extend_from_slice(&addr.address.octets());
                out.extend_from_slice(&addr.preferred_lifetime.to_be_bytes());
                out.extend_from_slice(&addr.valid_lifetime.to_be_bytes());
                nested(&addr.options, out)?;
            }
            Self::Oro(codes) | Self::EchoRequest(codes) => {
                codes.iter().for_each(|c| out.extend_from_slice(&c.to_be_bytes()))
            }
            Self::Preference(value) => out.push(*value),
            Self::ElapsedTime(value) => out.extend_from_slice(&value.to_be_bytes()),
            Self::RelayMessage(message) => message.emit(out)?,
            Self::Unicast(addr) => out.extend_from_slice(&addr.octets()),
            Self::StatusCode(status) => {
                out.extend_from_slice(&status.code.to_be_bytes());
                out.extend_from_slice(&status.message);
            }
            Self::RapidCommit => {}
            Self::UserClass(classes) | Self::BootfileParam(classes) => items(classes, out)?,
            Self::VendorClass(vendor) => {
                out.extend_from_slice(&vendor.enterprise.to_be_bytes());
                items(&vendor.classes, out)?;
            }
            Self::VendorOpts { enterprise, data } => {
                out.extend_from_slice(&enterprise.to_be_bytes());
                out.extend_from_slice(data);
            }
            Self::InterfaceId(bytes)
            | Self::DomainList(bytes)
            | Self::BootfileUrl(bytes)
            | Self::Unknown { data: bytes, .. } => out.extend_from_slice(bytes),
            Self::DnsServers(addrs) => addrs.iter().for_each(|a| out.extend_from_slice(&a.octets())),
            Self::IaPrefix(prefix) => {
                out.extend_from_slice(&prefix.preferred_lifetime.to_be_bytes());
                out.extend_from_slice(&prefix.valid_lifetime.to_be_bytes());
                out.push(prefix.prefix_len);
                out.extend_from_slice(&prefix.prefix.octets());
                nested(&prefix.options, out)?;
            }
            Self::InformationRefreshTime(secs) => out.extend_from_slice(&secs.to_be_bytes()),
            Self::ClientArch(archs) => archs
                .iter()
                .for_each(|a| out.extend_from_slice(&u16::from(*a).to_be_bytes())),
            Self::Nii { kind, major, minor } => out.extend_from_slice(&[*kind, *major, *minor]),
            Self::ClientLinkLayerAddr {
                hardware_type,
                address,
            } => {
                out.extend_from_slice(&hardware_type.to_be_bytes());
                out.extend_from_slice(address);
            }
        }
        Ok(())
    }
}
