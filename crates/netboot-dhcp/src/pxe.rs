//! PXE and iPXE meaning of DHCP options: option 43 sub-options, option 77 user classes,
//! option 175 iPXE features, and the classification of a client message.

use std::net::Ipv4Addr;

use netboot_core::{BootStage, ClientArch, MacAddr, SmbiosUuid};

use crate::wire::{encode_tlv, DecodeError, DhcpMessage, DhcpOption, MessageType, RawOption};

/// PXE option 43 sub-option codes (PXE 2.1 specification).
pub mod sub {
    /// Discovery control bits.
    pub const DISCOVERY_CONTROL: u8 = 6;
    /// Boot servers by type.
    pub const BOOT_SERVERS: u8 = 8;
    /// Boot menu.
    pub const BOOT_MENU: u8 = 9;
    /// Menu prompt.
    pub const MENU_PROMPT: u8 = 10;
    /// Boot item (type and layer) of a boot-server request.
    pub const BOOT_ITEM: u8 = 71;
}

/// Discovery control bit: use the boot file in this offer and skip boot-server discovery.
pub const DISCOVERY_USE_BOOTFILE: u8 = 0x08;

/// A boot server list entry of sub-option 8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootServer {
    /// Boot server type.
    pub kind: u16,
    /// Its addresses.
    pub addresses: Vec<Ipv4Addr>,
}

/// A boot menu entry of sub-option 9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuItem {
    /// Boot server type this entry selects.
    pub kind: u16,
    /// Text shown to the user.
    pub description: Vec<u8>,
}

/// One PXE vendor sub-option.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PxeSubOption {
    /// A PAD byte.
    Pad,
    /// 6: discovery control bits.
    DiscoveryControl(u8),
    /// 8: boot servers.
    BootServers(Vec<BootServer>),
    /// 9: boot menu.
    BootMenu(Vec<MenuItem>),
    /// 10: menu prompt; timeout 0 boots the first item, 255 waits for a choice.
    MenuPrompt {
        /// Seconds.
        timeout: u8,
        /// Prompt text.
        prompt: Vec<u8>,
    },
    /// 71: boot item requested by the client.
    BootItem {
        /// Boot server type.
        kind: u16,
        /// Layer.
        layer: u16,
    },
    /// Any other sub-option.
    Unknown {
        /// Sub-option code.
        code: u8,
        /// Value bytes.
        data: Vec<u8>,
    },
}

/// The PXE sub-options of option 43, lossless (PAD, END presence and trailing bytes kept).
///
/// ```
/// use netboot_dhcp::pxe::{PxeSubOption, PxeVendorOptions};
/// let opts = PxeVendorOptions::parse(&[6, 1, 8, 255]).unwrap();
/// assert_eq!(opts.items, vec![PxeSubOption::DiscoveryControl(8)]);
/// assert_eq!(opts.to_bytes(), vec![6, 1, 8, 255]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PxeVendorOptions {
    /// Sub-options in wire order.
    pub items: Vec<PxeSubOption>,
    /// Whether an END sub-option closed the list (clients often omit it).
    pub has_end: bool,
    /// Bytes after END.
    pub trailer: Vec<u8>,
}

impl PxeVendorOptions {
    /// Parses an option 43 value.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (raw, has_end, trailer) = parse_sub_tlvs(bytes)?;
        let items = raw
            .into_iter()
            .map(|item| match item {
                RawOption::Pad => Ok(PxeSubOption::Pad),
                RawOption::Option { code, data } => decode_sub(code, data),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            items,
            has_end,
            trailer: trailer.to_vec(),
        })
    }

    /// The wire form of the option 43 value.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for item in &self.items {
            encode_sub(item, &mut out);
        }
        if self.has_end {
            out.push(255);
        }
        out.extend_from_slice(&self.trailer);
        out
    }

    /// Sub-option 71, when present.
    pub fn boot_item(&self) -> Option<(u16, u16)> {
        self.items.iter().find_map(|item| match item {
            PxeSubOption::BootItem { kind, layer } => Some((*kind, *layer)),
            _ => None,
        })
    }
}

fn decode_sub(code: u8, data: &[u8]) -> Result<PxeSubOption, DecodeError> {
    let bad = || DecodeError::BadOptionValue {
        code,
        len: data.len(),
    };
    Ok(match code {
        sub::DISCOVERY_CONTROL => match data {
            [bits] => PxeSubOption::DiscoveryControl(*bits),
            _ => return Err(bad()),
        },
        sub::BOOT_SERVERS => {
            let mut servers = Vec::new();
            let mut rest = data;
            while !rest.is_empty() {
                let [k0, k1, count, tail @ ..] = rest else {
                    return Err(bad());
                };
                let len = usize::from(*count) * 4;
                if tail.len() < len {
                    return Err(bad());
                }
                let addresses = tail[..len]
                    .chunks_exact(4)
                    .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                    .collect();
                servers.push(BootServer {
                    kind: u16::from_be_bytes([*k0, *k1]),
                    addresses,
                });
                rest = &tail[len..];
            }
            PxeSubOption::BootServers(servers)
        }
        sub::BOOT_MENU => {
            let mut items = Vec::new();
            let mut rest = data;
            while !rest.is_empty() {
                let [k0, k1, len, tail @ ..] = rest else {
                    return Err(bad());
                };
                let len = usize::from(*len);
                if tail.len() < len {
                    return Err(bad());
                }
                items.push(MenuItem {
                    kind: u16::from_be_bytes([*k0, *k1]),
                    description: tail[..len].to_vec(),
                });
                rest = &tail[len..];
            }
            PxeSubOption::BootMenu(items)
        }
        sub::MENU_PROMPT => match data {
            [timeout, prompt @ ..] => PxeSubOption::MenuPrompt {
                timeout: *timeout,
                prompt: prompt.to_vec(),
            },
            [] => return Err(bad()),
        },
        sub::BOOT_ITEM => match data {
            [k0, k1, l0, l1] => PxeSubOption::BootItem {
                kind: u16::from_be_bytes([*k0, *k1]),
                layer: u16::from_be_bytes([*l0, *l1]),
            },
            _ => return Err(bad()),
        },
        _ => PxeSubOption::Unknown {
            code,
            data: data.to_vec(),
        },
    })
}

fn encode_sub(item: &PxeSubOption, out: &mut Vec<u8>) {
    let mut value = Vec::new();
    let code = match item {
        PxeSubOption::Pad => {
            out.push(0);
            return;
        }
        PxeSubOption::DiscoveryControl(bits) => {
            value.push(*bits);
            sub::DISCOVERY_CONTROL
        }
        PxeSubOption::BootServers(servers) => {
            for server in servers {
                value.extend_from_slice(&server.kind.to_be_bytes());
                value.push(server.addresses.len() as u8);
                server
                    .addresses
                    .iter()
                    .for_each(|a| value.extend_from_slice(&a.octets()));
            }
            sub::BOOT_SERVERS
        }
        PxeSubOption::BootMenu(items) => {
            for item in items {
                value.extend_from_slice(&item.kind.to_be_bytes());
                value.push(item.description.len() as u8);
                value.extend_from_slice(&item.description);
            }
            sub::BOOT_MENU
        }
        PxeSubOption::MenuPrompt { timeout, prompt } => {
            value.push(*timeout);
            value.extend_from_slice(prompt);
            sub::MENU_PROMPT
        }
        PxeSubOption::BootItem { kind, layer } => {
            value.extend_from_slice(&kind.to_be_bytes());
            value.extend_from_slice(&layer.to_be_bytes());
            sub::BOOT_ITEM
        }
        PxeSubOption::Unknown { code, data } => {
            value.extend_from_slice(data);
            *code
        }
    };
    encode_tlv(code, &value, out);
}

/// Splits an encapsulated option value (43, 82, 175) into TLVs: returns the items, whether
/// END was present (it is optional inside an option), and the bytes after END.
fn parse_sub_tlvs(bytes: &[u8]) -> Result<(Vec<RawOption<'_>>, bool, &[u8]), DecodeError> {
    let mut items = Vec::new();
    let mut rest = bytes;
    while let [code, tail @ ..] = rest {
        let offset = bytes.len() - rest.len();
        match code {
            0 => {
                items.push(RawOption::Pad);
                rest = tail;
            }
            255 => return Ok((items, true, tail)),
            _ => {
                let [len, value @ ..] = tail else {
                    return Err(DecodeError::Truncated {
                        needed: 2,
                        got: 1,
                        offset,
                    });
                };
                let len = usize::from(*len);
                if value.len() < len {
                    return Err(DecodeError::Truncated {
                        needed: 2 + len,
                        got: rest.len(),
                        offset,
                    });
                }
                items.push(RawOption::Option {
                    code: *code,
                    data: &value[..len],
                });
                rest = &value[len..];
            }
        }
    }
    Ok((items, false, &[]))
}

/// Encapsulated sub-options as `(code, value)` pairs, PAD skipped; for option 82 and 175.
pub fn encapsulated(bytes: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, DecodeError> {
    let (items, _, _) = parse_sub_tlvs(bytes)?;
    Ok(items
        .into_iter()
        .filter_map(|item| match item {
            RawOption::Pad => None,
            RawOption::Option { code, data } => Some((code, data.to_vec())),
        })
        .collect())
}

/// The user classes of option 77: RFC 3004 length-prefixed items when the value parses that
/// way exactly, otherwise the whole value as one class (what iPXE sends: plain `iPXE`).
///
/// ```
/// use netboot_dhcp::pxe::user_classes;
/// assert_eq!(user_classes(b"iPXE"), vec![b"iPXE".to_vec()]);
/// assert_eq!(user_classes(b"\x04iPXE\x03foo"), vec![b"iPXE".to_vec(), b"foo".to_vec()]);
/// ```
pub fn user_classes(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut classes = Vec::new();
    let mut rest = raw;
    while let [len, tail @ ..] = rest {
        let len = usize::from(*len);
        if len == 0 || tail.len() < len {
            return vec![raw.to_vec()];
        }
        classes.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    if classes.is_empty() {
        vec![raw.to_vec()]
    } else {
        classes
    }
}

/// iPXE feature flags from option 175 (one sub-option per compiled-in feature).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpxeFeatures {
    /// Sub-option codes present.
    pub codes: Vec<u8>,
}

impl IpxeFeatures {
    /// Feature code for HTTPS support.
    pub const HTTPS: u8 = 0x14;
    /// Feature code for EFI builds.
    pub const EFI: u8 = 0x24;

    /// Reads option 175.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            codes: encapsulated(bytes)?.into_iter().map(|(code, _)| code).collect(),
        })
    }

    /// Whether this iPXE build can fetch `https://` URLs.
    pub fn https(&self) -> bool {
        self.codes.contains(&Self::HTTPS)
    }
}

/// The kind of boot client, from options 60 and 77.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientKind {
    /// Firmware PXE (vendor class `PXEClient...`): needs a boot program over TFTP.
    PxeFirmware,
    /// UEFI HTTP Boot (vendor class `HTTPClient...`): needs a boot program URL.
    HttpBoot,
    /// iPXE already running (user class `iPXE`): needs its script URL.
    Ipxe,
}

impl ClientKind {
    /// The matching decision-seam stage.
    pub fn stage(&self) -> BootStage {
        match self {
            Self::PxeFirmware => BootStage::PxeFirmware,
            Self::HttpBoot => BootStage::UefiHttp,
            Self::Ipxe => BootStage::Ipxe,
        }
    }
}

/// Why a client message is not one this proxy answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// The bytes are not a valid DHCP message.
    #[error("malformed: {0}")]
    Malformed(#[from] DecodeError),
    /// `op` is not BOOTREQUEST.
    #[error("op {0} is not BOOTREQUEST")]
    NotBootRequest(u8),
    /// Not an Ethernet hardware address.
    #[error("hardware type {htype}/length {hlen} is not Ethernet")]
    NotEthernet {
        /// `htype`.
        htype: u8,
        /// `hlen`.
        hlen: u8,
    },
    /// No option 53 (a plain BOOTP client).
    #[error("no DHCP message type")]
    NoMessageType,
    /// A message type this port does not answer.
    #[error("message type {0:?} is not answered here")]
    UnsupportedMessageType(MessageType),
    /// Neither `PXEClient`/`HTTPClient` vendor class nor `iPXE` user class.
    #[error("not a PXE, HTTP-boot or iPXE client")]
    NotBootClient,
    /// A REQUEST on port 67 addressed (option 54) to another server, or to no server.
    #[error("request addressed to {0:?}, not this server")]
    AddressedElsewhere(Option<Ipv4Addr>),
}

impl DropReason {
    /// The stable label this reason is counted under (`netboot_dhcp_drops_total{reason=...}`).
    #[must_use]
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::NotBootRequest(_) => "not_boot_request",
            Self::NotEthernet { .. } => "not_ethernet",
            Self::NoMessageType => "no_message_type",
            Self::UnsupportedMessageType(_) => "unsupported_message_type",
            Self::NotBootClient => "not_boot_client",
            Self::AddressedElsewhere(_) => "addressed_elsewhere",
        }
    }
}

/// What one client message says about its sender, computed once per packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientClass {
    /// The booting NIC.
    pub mac: MacAddr,
    /// Option 53.
    pub message_type: MessageType,
    /// Firmware PXE, HTTP boot or iPXE.
    pub kind: ClientKind,
    /// Option 93 (or the `Arch:` field of option 60; x86 BIOS when neither is present).
    pub arch: ClientArch,
    /// Option 94 `(type, major, minor)`.
    pub ndi: Option<(u8, u8, u8)>,
    /// Option 97 as an SMBIOS UUID (type 0, 16 bytes), placeholders included.
    pub uuid: Option<SmbiosUuid>,
    /// Relay agent address (`giaddr`), when relayed.
    pub relay: Option<Ipv4Addr>,
    /// Option 77 classes joined by `,`, lossily decoded.
    pub user_class: Option<String>,
    /// Option 60, lossily decoded.
    pub vendor_class: Option<String>,
    /// PXE sub-option 43.71 the client asked for.
    pub boot_item: Option<(u16, u16)>,
    /// iPXE features of option 175, when iPXE sent it.
    pub ipxe_features: Option<IpxeFeatures>,
}

impl ClientClass {
    /// Classifies a parsed client message.
    pub fn of(message: &DhcpMessage) -> Result<Self, DropReason> {
        if message.op != crate::wire::BOOTREQUEST {
            return Err(DropReason::NotBootRequest(message.op));
        }
        let mac = message.client_mac().ok_or(DropReason::NotEthernet {
            htype: message.htype,
            hlen: message.hlen,
        })?;
        let message_type = message.message_type().ok_or(DropReason::NoMessageType)?;
        let vendor = message.vendor_class();
        let classes = message.user_class().map(user_classes).unwrap_or_default();
        let is_ipxe = classes.iter().any(|c| c == b"iPXE");
        let kind = if is_ipxe {
            ClientKind::Ipxe
        } else if vendor.is_some_and(|v| v.starts_with(b"PXEClient")) {
            ClientKind::PxeFirmware
        } else if vendor.is_some_and(|v| v.starts_with(b"HTTPClient")) {
            ClientKind::HttpBoot
        } else {
            return Err(DropReason::NotBootClient);
        };
        let arch = message
            .client_arch()
            .or_else(|| vendor.and_then(vendor_class_arch))
            .unwrap_or(ClientArch::X86Bios);
        let uuid = match message.client_machine_id() {
            Some(DhcpOption::ClientMachineId { kind: 0, id }) => <[u8; 16]>::try_from(id.as_slice())
                .ok()
                .map(SmbiosUuid::from_wire),
            _ => None,
        };
        let boot_item = message
            .vendor_specific()
            .and_then(|v| PxeVendorOptions::parse(v).ok()?.boot_item());
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Ok(Self {
            mac,
            message_type,
            kind,
            arch,
            ndi: message.client_ndi(),
            uuid,
            relay: (!message.giaddr.is_unspecified()).then_some(message.giaddr),
            user_class: (!classes.is_empty())
                .then(|| classes.iter().map(|c| lossy(c)).collect::<Vec<_>>().join(",")),
            vendor_class: vendor.map(lossy),
            boot_item,
            ipxe_features: message
                .ipxe_encapsulated()
                .and_then(|b| IpxeFeatures::parse(b).ok()),
        })
    }
}

/// The architecture in a vendor class such as `PXEClient:Arch:00007:UNDI:003016`.
///
/// ```
/// use netboot_core::ClientArch;
/// use netboot_dhcp::pxe::vendor_class_arch;
/// assert_eq!(vendor_class_arch(b"HTTPClient:Arch:00016:UNDI:003000"), Some(ClientArch::EfiX64Http));
/// assert_eq!(vendor_class_arch(b"PXEClient"), None);
/// ```
pub fn vendor_class_arch(vendor_class: &[u8]) -> Option<ClientArch> {
    let text = std::str::from_utf8(vendor_class).ok()?;
    let mut fields = text.split(':');
    while let Some(field) = fields.next() {
        if field == "Arch" {
            let digits = fields.next()?;
            if digits.len() != 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            return digits.parse::<u16>().ok().map(ClientArch::from);
        }
    }
    None
}
