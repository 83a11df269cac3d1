//! What a DHCPv6 client message says about its sender: the same classification as DHCPv4
//! ([`crate::pxe::ClientKind`], architecture, UUID), from DHCPv6's options.
//!
//! - **Kind**: user class (15) `iPXE` → iPXE; else a vendor class (16) item starting with
//!   `PXEClient` → firmware PXE, `HTTPClient` → UEFI HTTP Boot. EDK2 and iPXE send enterprise
//!   343; any enterprise is accepted.
//! - **Architecture**: option 61, else the `Arch:` field of the vendor class.
//! - **MAC** (DHCPv6 has no `chaddr`): option 79 of the innermost relay agent (RFC 6939), else
//!   the EUI-64 interface id of the client's link-local address (the packet's source, or the
//!   innermost relay's peer address), else a DUID-LLT/DUID-LL with hardware type 1 (which may
//!   name another NIC of the machine), else what the driver knows: the MAC this client id had
//!   in an earlier message ([`ClientMacs`]) or the neighbour table. EDK2 and iPXE both send a
//!   DUID-UUID and use EUI-64 link-local addresses, but EDK2's port-4011 request comes from its
//!   new global address, so only the memory of its Solicit names its MAC.
//! - **UUID**: from a DUID-UUID. RFC 6355 puts the UUID in network byte order and iPXE does
//!   (`dhcpv6.c` builds it from its `uuid` setting); EDK2 copies the SMBIOS system GUID as it is
//!   in memory, first three fields little-endian, as PXE's DHCPv4 option 97 does
//!   (`Dhcp6Dxe/Dhcp6Utility.c`, `Dhcp6GenerateClientId`). Firmware (PXE, HTTP Boot) DUIDs
//!   are therefore read in the SMBIOS layout and iPXE's in network order; both give the UUID
//!   the machine reports elsewhere.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv6Addr;

use netboot_core::{ClientArch, MacAddr, SmbiosUuid};

use super::wire::{DecodeError, Dhcp6Message, Duid, DuidView, MessageType};
use crate::pxe::{vendor_class_arch, ClientKind};

/// Why a DHCPv6 message is not one this proxy answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// The bytes are not a valid DHCPv6 message.
    #[error("malformed: {0}")]
    Malformed(#[from] DecodeError),
    /// A message type this port does not answer.
    #[error("message type {0:?} is not answered here")]
    UnsupportedMessageType(MessageType),
    /// A Relay-forward whose innermost message is another relay message or missing.
    #[error("relay-forward without a client message")]
    NoRelayedMessage,
    /// Neither `PXEClient`/`HTTPClient` vendor class nor `iPXE` user class.
    #[error("not a PXE, HTTP-boot or iPXE client")]
    NotBootClient,
    /// No client identifier (option 1): a reply could not name its client.
    #[error("no client identifier")]
    NoClientId,
    /// No way to learn the booting NIC's MAC address.
    #[error("no MAC address: no option 79, Ethernet DUID or EUI-64 link-local source")]
    NoMac,
    /// A Request or Information-request naming another server (option 2).
    #[error("addressed to server {0}, not this one")]
    AddressedElsewhere(Duid),
    /// A Request on the DHCPv6 port without a server identifier is for an address server.
    #[error("request without a server identifier is not for a boot server")]
    NoServerId,
    /// iPXE's stateful DHCPv6 (its router advertised M) only takes an Advertise that assigns
    /// an address (`dhcpv6_rx`: the Advertise needs a usable IAADDR), so a boot-only Advertise
    /// would be ignored; its boot file must come from the address server.
    #[error("iPXE solicits addresses; its boot file must come from the site's DHCPv6 server")]
    IpxeSolicit,
}

/// What one client message says about its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientClass6 {
    /// The booting NIC.
    pub mac: MacAddr,
    /// The client's message type.
    pub message_type: MessageType,
    /// Firmware PXE, HTTP Boot or iPXE.
    pub kind: ClientKind,
    /// Option 61 (or the `Arch:` field of the vendor class; x86 BIOS when neither).
    pub arch: ClientArch,
    /// Option 62 `(type, major, minor)`.
    pub ndi: Option<(u8, u8, u8)>,
    /// The SMBIOS UUID from a DUID-UUID client identifier, placeholders included.
    pub uuid: Option<SmbiosUuid>,
    /// The client identifier (option 1).
    pub client_id: Duid,
    /// User classes joined by `,`, lossily decoded.
    pub user_class: Option<String>,
    /// The boot vendor class item (`PXEClient:...`), lossily decoded.
    pub vendor_class: Option<String>,
    /// The client's address as the first relay agent saw it (peer address), when relayed.
    pub relayed_from: Option<Ipv6Addr>,
}

impl ClientClass6 {
    /// Classifies a client message. `source` is the client's address: the datagram's source,
    /// or for relayed messages the innermost relay's peer address; `relay_mac` is option 79
    /// of the innermost relay agent; `known_mac` is asked last, with the client id.
    pub fn of(
        message: &Dhcp6Message,
        source: Ipv6Addr,
        relay_mac: Option<MacAddr>,
        known_mac: impl FnOnce(&Duid) -> Option<MacAddr>,
    ) -> Result<Self, DropReason> {
        let user_classes: Vec<&[u8]> = message.user_classes().collect();
        let is_ipxe = user_classes.contains(&&b"iPXE"[..]);
        let boot_vendor = message
            .vendor_classes()
            .flat_map(|v| v.classes.iter())
            .map(Vec::as_slice)
            .find(|c| c.starts_with(b"PXEClient") || c.starts_with(b"HTTPClient"));
        let kind = match boot_vendor {
            _ if is_ipxe => ClientKind::Ipxe,
            Some(class) if class.starts_with(b"PXEClient") => ClientKind::PxeFirmware,
            Some(_) => ClientKind::HttpBoot,
            None => return Err(DropReason::NotBootClient),
        };
        let client_id = message.client_id().ok_or(DropReason::NoClientId)?.clone();
        let mac = relay_mac
            .or_else(|| eui64_mac(source))
            .or_else(|| client_id.mac())
            .or_else(|| known_mac(&client_id))
            .ok_or(DropReason::NoMac)?;
        let arch = message
            .client_arch()
            .or_else(|| boot_vendor.and_then(vendor_class_arch))
            .unwrap_or(ClientArch::X86Bios);
        let uuid = match client_id.view() {
            DuidView::Uuid(bytes) if kind == ClientKind::Ipxe => Some(SmbiosUuid(*bytes)),
            DuidView::Uuid(bytes) => Some(SmbiosUuid::from_wire(*bytes)),
            _ => None,
        };
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Ok(Self {
            mac,
            message_type: message.msg_type,
            kind,
            arch,
            ndi: message.nii(),
            uuid,
            client_id,
            user_class: (!user_classes.is_empty()).then(|| {
                user_classes
                    .iter()
                    .map(|c| lossy(c))
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            vendor_class: boot_vendor.map(lossy),
            relayed_from: None,
        })
    }
}

/// The MAC inside an EUI-64 interface identifier of a link-local address
/// (`fe80::5054:ff:fe12:3456` → `52:54:00:12:34:56`, RFC 4291 appendix A).
///
/// ```
/// use netboot_dhcp::v6::class::eui64_mac;
/// let mac = eui64_mac("fe80::5054:ff:fee2:6000".parse().unwrap()).unwrap();
/// assert_eq!(mac.to_string(), "52:54:00:e2:60:00");
/// assert_eq!(eui64_mac("fe80::1".parse().unwrap()), None);
/// assert_eq!(eui64_mac("fd00::5054:ff:fee2:6000".parse().unwrap()), None);
/// ```
pub fn eui64_mac(address: Ipv6Addr) -> Option<MacAddr> {
    let o = address.octets();
    let link_local = o[0] == 0xfe && o[1] & 0xc0 == 0x80;
    if !link_local || o[11] != 0xff || o[12] != 0xfe {
        return None;
    }
    Some(MacAddr([o[8] ^ 0x02, o[9], o[10], o[13], o[14], o[15]]))
}

/// Which MAC each client id had in its last message, bounded in size: EDK2 sends its
/// port-4011 request from a global address whose interface id is not the MAC, with the client
/// id of its Solicit. The oldest entry is forgotten first; a forgotten client falls back to the
/// driver's neighbour lookup.
#[derive(Debug, Clone)]
pub struct ClientMacs {
    macs: HashMap<Duid, MacAddr>,
    order: VecDeque<Duid>,
    capacity: usize,
}

impl Default for ClientMacs {
    fn default() -> Self {
        Self::new(65_536)
    }
}

impl ClientMacs {
    /// A memory of at most `capacity` clients (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            macs: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Notes that `client_id` is the machine with `mac`.
    ///
    /// ```
    /// use netboot_dhcp::v6::class::ClientMacs;
    /// use netboot_dhcp::v6::wire::Duid;
    /// let mut macs = ClientMacs::new(1);
    /// let (a, b) = (Duid(vec![0, 4, 1]), Duid(vec![0, 4, 2]));
    /// macs.remember(a.clone(), "52:54:00:00:00:01".parse().unwrap());
    /// assert!(macs.lookup(&a).is_some());
    /// macs.remember(b.clone(), "52:54:00:00:00:02".parse().unwrap());
    /// assert!(macs.lookup(&a).is_none(), "capacity 1: the oldest is forgotten");
    /// assert!(macs.lookup(&b).is_some());
    /// ```
    pub fn remember(&mut self, client_id: Duid, mac: MacAddr) {
        if self.macs.insert(client_id.clone(), mac).is_none() {
            self.order.push_back(client_id);
            while self.order.len() > self.capacity {
                if let Some(oldest) = self.order.pop_front() {
                    self.macs.remove(&oldest);
                }
            }
        }
    }

    /// The MAC `client_id` had when last seen.
    pub fn lookup(&self, client_id: &Duid) -> Option<MacAddr> {
        self.macs.get(client_id).copied()
    }

    /// Clients remembered.
    pub fn len(&self) -> usize {
        self.macs.len()
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.macs.is_empty()
    }
}
