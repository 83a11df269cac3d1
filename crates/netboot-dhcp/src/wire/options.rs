//! Typed DHCP options, owned, lossless.

use std::net::Ipv4Addr;

use netboot_core::ClientArch;

use super::DecodeError;

/// Option codes this crate gives a type to.
pub mod code {
    /// Padding.
    pub const PAD: u8 = 0;
    /// Subnet mask.
    pub const SUBNET_MASK: u8 = 1;
    /// Routers.
    pub const ROUTER: u8 = 3;
    /// DNS servers.
    pub const DOMAIN_NAME_SERVER: u8 = 6;
    /// Host name.
    pub const HOST_NAME: u8 = 12;
    /// Vendor-specific information (PXE sub-options when option 60 is `PXEClient`).
    pub const VENDOR_SPECIFIC: u8 = 43;
    /// Requested IP address.
    pub const REQUESTED_IP: u8 = 50;
    /// Lease time.
    pub const LEASE_TIME: u8 = 51;
    /// Option overload.
    pub const OVERLOAD: u8 = 52;
    /// DHCP message type.
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server identifier.
    pub const SERVER_ID: u8 = 54;
    /// Parameter request list.
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    /// Maximum DHCP message size.
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    /// Vendor class identifier.
    pub const VENDOR_CLASS: u8 = 60;
    /// Client identifier.
    pub const CLIENT_ID: u8 = 61;
    /// TFTP server name.
    pub const TFTP_SERVER_NAME: u8 = 66;
    /// Boot file name.
    pub const BOOTFILE_NAME: u8 = 67;
    /// User class.
    pub const USER_CLASS: u8 = 77;
    /// Relay agent information.
    pub const RELAY_AGENT_INFO: u8 = 82;
    /// Client system architecture.
    pub const CLIENT_ARCH: u8 = 93;
    /// Client network interface identifier.
    pub const CLIENT_NDI: u8 = 94;
    /// Client machine identifier (UUID).
    pub const CLIENT_MACHINE_ID: u8 = 97;
    /// iPXE encapsulated options.
    pub const IPXE_ENCAPSULATED: u8 = 175;
    /// End of options.
    pub const END: u8 = 255;
}

/// DHCP message type (option 53), open so unknown values survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageType {
    /// DHCPDISCOVER.
    Discover,
    /// DHCPOFFER.
    Offer,
    /// DHCPREQUEST.
    Request,
    /// DHCPDECLINE.
    Decline,
    /// DHCPACK.
    Ack,
    /// DHCPNAK.
    Nak,
    /// DHCPRELEASE.
    Release,
    /// DHCPINFORM.
    Inform,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(value: u8) -> Self {
        match value {
            1 => Self::Discover,
            2 => Self::Offer,
            3 => Self::Request,
            4 => Self::Decline,
            5 => Self::Ack,
            6 => Self::Nak,
            7 => Self::Release,
            8 => Self::Inform,
            other => Self::Unknown(other),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(value: MessageType) -> Self {
        match value {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
            MessageType::Unknown(other) => other,
        }
    }
}

/// One option with its value decoded. Variants holding `Vec<u8>` keep the bytes exactly as
/// sent; helpers in [`crate::pxe`] interpret them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DhcpOption {
    /// A PAD byte (kept so captured packets re-encode byte for byte).
    Pad,
    /// 1: subnet mask.
    SubnetMask(Ipv4Addr),
    /// 3: routers, in preference order.
    Router(Vec<Ipv4Addr>),
    /// 6: DNS servers.
    DomainNameServer(Vec<Ipv4Addr>),
    /// 12: host name.
    HostName(Vec<u8>),
    /// 43: vendor-specific information; see [`crate::pxe::PxeVendorOptions`].
    VendorSpecific(Vec<u8>),
    /// 50: requested IP address.
    RequestedIp(Ipv4Addr),
    /// 51: lease time in seconds.
    LeaseTime(u32),
    /// 52: option overload (1 `file`, 2 `sname`, 3 both hold options).
    Overload(u8),
    /// 53: message type.
    MessageType(MessageType),
    /// 54: server identifier.
    ServerId(Ipv4Addr),
    /// 55: parameter request list.
    ParameterRequestList(Vec<u8>),
    /// 57: maximum DHCP message size.
    MaxMessageSize(u16),
    /// 60: vendor class identifier, e.g. `PXEClient:Arch:00007:UNDI:003016`.
    VendorClass(Vec<u8>),
    /// 61: client identifier.
    ClientId(Vec<u8>),
    /// 66: TFTP server name.
    TftpServerName(Vec<u8>),
    /// 67: boot file name (or a URL).
    BootfileName(Vec<u8>),
    /// 77: user class, raw (RFC 3004 length-prefixed or iPXE's plain `iPXE`); see
    /// [`crate::pxe::user_classes`].
    UserClass(Vec<u8>),
    /// 82: relay agent information, echoed back verbatim.
    RelayAgentInfo(Vec<u8>),
    /// 93: client system architectures (normally one).
    ClientArch(Vec<ClientArch>),
    /// 94: client network interface identifier (UNDI version).
    ClientNdi {
        /// Interface type, 1 = UNDI.
        kind: u8,
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// 97: client machine identifier; type 0 is followed by a 16-byte SMBIOS UUID.
    ClientMachineId {
        /// Identifier type.
        kind: u8,
        /// Identifier bytes.
        id: Vec<u8>,
    },
    /// 175: iPXE encapsulated options; see [`crate::pxe::IpxeFeatures`].
    IpxeEncapsulated(Vec<u8>),
    /// Any option without a type here.
    Unknown {
        /// Option code (never 0 or 255).
        code: u8,
        /// Value bytes.
        data: Vec<u8>,
    },
}

impl DhcpOption {
    /// The option code; 0 for [`DhcpOption::Pad`].
    pub fn code(&self) -> u8 {
        use code::*;
        match self {
            Self::Pad => PAD,
            Self::SubnetMask(_) => SUBNET_MASK,
            Self::Router(_) => ROUTER,
            Self::DomainNameServer(_) => DOMAIN_NAME_SERVER,
            Self::HostName(_) => HOST_NAME,
            Self::VendorSpecific(_) => VENDOR_SPECIFIC,
            Self::RequestedIp(_) => REQUESTED_IP,
            Self::LeaseTime(_) => LEASE_TIME,
            Self::Overload(_) => OVERLOAD,
            Self::MessageType(_) => MESSAGE_TYPE,
            Self::ServerId(_) => SERVER_ID,
            Self::ParameterRequestList(_) => PARAMETER_REQUEST_LIST,
            Self::MaxMessageSize(_) => MAX_MESSAGE_SIZE,
            Self::VendorClass(_) => VENDOR_CLASS,
            Self::ClientId(_) => CLIENT_ID,
            Self::TftpServerName(_) => TFTP_SERVER_NAME,
            Self::BootfileName(_) => BOOTFILE_NAME,
            Self::UserClass(_) => USER_CLASS,
            Self::RelayAgentInfo(_) => RELAY_AGENT_INFO,
            Self::ClientArch(_) => CLIENT_ARCH,
            Self::ClientNdi { .. } => CLIENT_NDI,
            Self::ClientMachineId { .. } => CLIENT_MACHINE_ID,
            Self::IpxeEncapsulated(_) => IPXE_ENCAPSULATED,
            Self::Unknown { code, .. } => *code,
        }
    }

    /// Decodes one option from its code and complete (concatenated) value.
    pub fn decode(code: u8, data: &[u8]) -> Result<Self, DecodeError> {
        use code::*;
        let bad = || DecodeError::BadOptionValue {
            code,
            len: data.len(),
        };
        let ip = || <[u8; 4]>::try_from(data).map(Ipv4Addr::from).map_err(|_| bad());
        let ips = || {
            if data.is_empty() || data.len() % 4 != 0 {
                return Err(bad());
            }
            Ok(data
                .chunks_exact(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                .collect())
        };
        let bytes = || data.to_vec();
        Ok(match code {
            PAD | END => return Err(bad()),
            SUBNET_MASK => Self::SubnetMask(ip()?),
            ROUTER => Self::Router(ips()?),
            DOMAIN_NAME_SERVER => Self::DomainNameServer(ips()?),
            HOST_NAME => Self::HostName(bytes()),
            VENDOR_SPECIFIC => Self::VendorSpecific(bytes()),
            REQUESTED_IP => Self::RequestedIp(ip()?),
            LEASE_TIME => Self::LeaseTime(u32::from_be_bytes(data.try_into().map_err(|_| bad())?)),
            OVERLOAD => match data {
                [value @ 1..=3] => Self::Overload(*value),
                [other] => return Err(DecodeError::BadOverload(*other)),
                _ => return Err(bad()),
            },
            MESSAGE_TYPE => match data {
                [value] => Self::MessageType(MessageType::from(*value)),
                _ => return Err(bad()),
            },
            SERVER_ID => Self::ServerId(ip()?),
            PARAMETER_REQUEST_LIST => Self::ParameterRequestList(bytes()),
            MAX_MESSAGE_SIZE => Self::MaxMessageSize(u16::from_be_bytes(data.try_into().map_err(|_| bad())?)),
            VENDOR_CLASS => Self::VendorClass(bytes()),
            CLIENT_ID => Self::ClientId(bytes()),
            TFTP_SERVER_NAME => Self::TftpServerName(bytes()),
            BOOTFILE_NAME => Self::BootfileName(bytes()),
            USER_CLASS => Self::UserClass(bytes()),
            RELAY_AGENT_INFO => Self::RelayAgentInfo(bytes()),
            CLIENT_ARCH => {
                if data.is_empty() || data.len() % 2 != 0 {
                    return Err(bad());
                }
                Self::ClientArch(
                    data.chunks_exact(2)
                        .map(|c| ClientArch::from(u16::from_be_bytes([c[0], c[1]])))
                        .collect(),
                )
            }
            CLIENT_NDI => match data {
                [kind, major, minor] => Self::ClientNdi {
                    kind: *kind,
                    major: *major,
                    minor: *minor,
                },
                _ => return Err(bad()),
            },
            CLIENT_MACHINE_ID => match data {
                [kind, id @ ..] => Self::ClientMachineId {
                    kind: *kind,
                    id: id.to_vec(),
                },
                [] => return Err(bad()),
            },
            IPXE_ENCAPSULATED => Self::IpxeEncapsulated(bytes()),
            _ => Self::Unknown { code, data: bytes() },
        })
    }

    /// Appends the value bytes (without code and length).
    pub fn encode_value(&self, out: &mut Vec<u8>) {
        match self {
            Self::Pad => {}
            Self::SubnetMask(ip) | Self::RequestedIp(ip) | Self::ServerId(ip) => {
                out.extend_from_slice(&ip.octets())
            }
            Self::Router(ips) | Self::DomainNameServer(ips) => {
                ips.iter().for_each(|ip| out.extend_from_slice(&ip.octets()))
            }
            Self::HostName(b)
            | Self::VendorSpecific(b)
            | Self::ParameterRequestList(b)
            | Self::VendorClass(b)
            | Self::ClientId(b)
            | Self::TftpServerName(b)
            | Self::BootfileName(b)
            | Self::UserClass(b)
            | Self::RelayAgentInfo(b)
            | Self::IpxeEncapsulated(b)
            | Self::Unknown { data: b, .. } => out.extend_from_slice(b),
            Self::LeaseTime(secs) => out.extend_from_slice(&secs.to_be_bytes()),
            Self::Overload(value) => out.push(*value),
            Self::MessageType(kind) => out.push(u8::from(*kind)),
            Self::MaxMessageSize(size) => out.extend_from_slice(&size.to_be_bytes()),
            Self::ClientArch(archs) => archs
                .iter()
                .for_each(|a| out.extend_from_slice(&u16::from(*a).to_be_bytes())),
            Self::ClientNdi { kind, major, minor } => out.extend_from_slice(&[*kind, *major, *minor]),
            Self::ClientMachineId { kind, id } => {
                out.push(*kind);
                out.extend_from_slice(id);
            }
        }
    }

    /// Appends the whole option: code, length, value. Values over 255 bytes are split into
    /// consecutive instances of the same code (RFC 3396).
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Self::Pad = self {
            out.push(code::PAD);
            return;
        }
        let mut value = Vec::new();
        self.encode_value(&mut value);
        encode_tlv(self.code(), &value, out);
    }
}

/// Appends `code`/`value` as one or more TLVs of at most 255 value bytes each (RFC 3396);
/// an empty value is one TLV of length 0.
pub fn encode_tlv(code: u8, value: &[u8], out: &mut Vec<u8>) {
    if value.is_empty() {
        out.extend_from_slice(&[code, 0]);
        return;
    }
    for chunk in value.chunks(255) {
        out.push(code);
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
}
