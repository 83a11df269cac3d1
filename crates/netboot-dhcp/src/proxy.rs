//! The proxyDHCP responder as pure functions: classify a datagram, let the caller consult
//! its resolver, then build the reply and say where it goes.
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use netboot_core::BootDecision;
//! use netboot_dhcp::proxy::{classify, ListenPort, ProxySettings, ReplyTarget, RequestMeta};
//! use netboot_dhcp::wire::{DhcpMessage, DhcpOption, MessageType};
//! use netboot_core::ClientArch;
//!
//! let mut discover = DhcpMessage::new_request(7, [0x52, 0x54, 0, 0, 0, 1]);
//! discover.options.push(DhcpOption::MessageType(MessageType::Discover));
//! discover.options.push(DhcpOption::VendorClass(b"PXEClient:Arch:00000:UNDI:002001".to_vec()));
//! discover.options.push(DhcpOption::ClientArch(vec![ClientArch::X86Bios]));
//! let server = Ipv4Addr::new(10, 0, 0, 1);
//! let meta = RequestMeta { source: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68), server_addr: server, port: ListenPort::Dhcp };
//! let pending = classify(&meta, &discover.to_bytes()).unwrap();
//! // ... the driver asks its resolver about pending.request() here ...
//! let reply = pending.respond(&BootDecision::EXIT, &ProxySettings::default()).unwrap();
//! assert_eq!(reply.target, ReplyTarget::Broadcast { port: 68 });
//! let offer = DhcpMessage::parse(&reply.bytes).unwrap();
//! assert_eq!(offer.message_type(), Some(MessageType::Offer));
//! assert_eq!(offer.siaddr, server);
//! assert!(offer.file.starts_with(b"undionly.kpxe\0"));
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use netboot_core::{BootDecision, BootRequest, ClientArch};

use crate::answer::{self, Answer, Asker};
use crate::chainload::ChainloadGuard;
use crate::pxe::{
    ClientClass, ClientKind, DropReason, PxeSubOption, PxeVendorOptions, DISCOVERY_USE_BOOTFILE,
};
use crate::wire::{DhcpMessage, DhcpOption, MessageType, BOOTREPLY};

/// BOOTP's minimum message size; shorter replies are padded because some PXE ROMs drop them.
pub const MIN_REPLY_LEN: usize = 300;

/// Which of the proxy's two sockets a datagram arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenPort {
    /// The DHCP port (67): broadcast DISCOVERs, answered with proxy OFFERs.
    Dhcp,
    /// The PXE boot-server port (4011): unicast REQUESTs, answered with ACKs.
    PxeBootServer,
}

impl ListenPort {
    /// The stable label requests and replies on this port are counted under (`dhcp`, `pxe`).
    #[must_use]
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::Dhcp => "dhcp",
            Self::PxeBootServer => "pxe",
        }
    }

    /// What the port is for, as the start-up log names it.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Self::Dhcp => "dhcp",
            Self::PxeBootServer => "pxe boot server",
        }
    }
}

/// Where a datagram came from and what it arrived on, as the driver saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestMeta {
    /// Sender address and port.
    pub source: SocketAddrV4,
    /// The address this server answers as (option 54, `siaddr`): the configured override or
    /// the address of the interface the datagram arrived on.
    pub server_addr: Ipv4Addr,
    /// Which socket.
    pub port: ListenPort,
}

/// Where a reply must be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyTarget {
    /// Unicast to a relay agent (`giaddr`) on the server port.
    Relay(SocketAddrV4),
    /// Unicast to the client.
    Unicast(SocketAddrV4),
    /// Limited broadcast (255.255.255.255) on the interface the request came in on.
    Broadcast {
        /// Destination UDP port.
        port: u16,
    },
}

/// The destination of a reply, per RFC 2131 section 4.1:
///
/// "If the 'giaddr' field in a DHCP message from a client is non-zero, the server sends any
/// return messages to the 'DHCP server' port on the BOOTP relay agent whose address appears
/// in 'giaddr'. If the 'giaddr' field is zero and the 'ciaddr' field is nonzero, then the
/// server unicasts DHCPOFFER and DHCPACK messages to the address in 'ciaddr'. If 'giaddr' is
/// zero and 'ciaddr' is zero, and the broadcast bit is set, then the server broadcasts
/// DHCPOFFER and DHCPACK messages to 0xffffffff. If the broadcast bit is not set and 'giaddr'
/// is zero and 'ciaddr' is zero, then the server unicasts DHCPOFFER and DHCPACK messages to
/// the client's hardware address and 'yiaddr' address."
///
/// A proxy never sets `yiaddr`, so that last case is a broadcast too. Port 4011 requests are
/// unicast boot-server requests (PXE 2.1): the answer goes back to the sender's address and
/// port, which is 4011 for EDK2 firmware and 68 for iPXE.
///
/// ```
/// use std::net::{Ipv4Addr, SocketAddrV4};
/// use netboot_dhcp::proxy::{reply_target, ListenPort, ReplyTarget};
/// let zero = Ipv4Addr::UNSPECIFIED;
/// let src = SocketAddrV4::new(zero, 68);
/// assert_eq!(reply_target(ListenPort::Dhcp, src, zero, zero, 68, 67), ReplyTarget::Broadcast { port: 68 });
/// let relay = Ipv4Addr::new(10, 1, 0, 1);
/// assert_eq!(
///     reply_target(ListenPort::Dhcp, src, zero, relay, 68, 67),
///     ReplyTarget::Relay(SocketAddrV4::new(relay, 67))
/// );
/// ```
pub fn reply_target(
    port: ListenPort,
    source: SocketAddrV4,
    ciaddr: Ipv4Addr,
    giaddr: Ipv4Addr,
    client_port: u16,
    relay_port: u16,
) -> ReplyTarget {
    match port {
        ListenPort::PxeBootServer if source.ip().is_unspecified() => {
            ReplyTarget::Broadcast { port: source.port() }
        }
        ListenPort::PxeBootServer => ReplyTarget::Unicast(source),
        ListenPort::Dhcp if !giaddr.is_unspecified() => {
            ReplyTarget::Relay(SocketAddrV4::new(giaddr, relay_port))
        }
        ListenPort::Dhcp if !ciaddr.is_unspecified() => {
            ReplyTarget::Unicast(SocketAddrV4::new(ciaddr, client_port))
        }
        ListenPort::Dhcp => ReplyTarget::Broadcast { port: client_port },
    }
}

/// What the responder hands out, independent of the TOML schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// Boot program (NBP) file name per architecture; HTTP Boot and EBC codes use their PXE
    /// twin's entry ([`ClientArch::boot_program_arch`]).
    pub boot_files: BTreeMap<ClientArch, String>,
    /// TFTP server for `siaddr`; the server address when `None`.
    pub tftp_server: Option<Ipv4Addr>,
    /// The iPXE script URL given to clients already running iPXE. `{server}` is replaced
    /// by the server address.
    pub ipxe_script_url: String,
    /// The script URL for iPXE builds whose option 175 lacks HTTPS support (such as the
    /// iPXE in QEMU's option ROMs and Debian 12); `None` gives them `ipxe_script_url` too.
    pub ipxe_script_url_without_https: Option<String>,
    /// Base URL for UEFI HTTP Boot clients; the boot file name is appended. `{server}` is
    /// replaced by the server address.
    pub http_boot_url: String,
    /// Client port for port-67 replies (68; other values only for tests and labs).
    pub client_port: u16,
    /// Relay agent port for relayed replies (67).
    pub relay_port: u16,
    /// Hand iPXE NIC ROMs (option 60 in the full `PXEClient:Arch:...` form) the boot program
    /// too, so machines run the site's iPXE build rather than the NIC's; the chainloaded iPXE
    /// then gets the script URL (see [`crate::chainload`] for how loops are prevented).
    pub chainload_ipxe_roms: bool,
}

impl Default for ProxySettings {
    fn default() -> Self {
        let boot_files = [
            (ClientArch::X86Bios, "undionly.kpxe"),
            (ClientArch::EfiIa32, "snponly-i386.efi"),
            (ClientArch::EfiX64, "snponly.efi"),
            (ClientArch::EfiArm32, "snponly-arm32.efi"),
            (ClientArch::EfiArm64, "snponly-arm64.efi"),
        ]
        .into_iter()
        .map(|(arch, name)| (arch, name.to_string()))
        .collect();
        Self {
            boot_files,
            tftp_server: None,
            ipxe_script_url: "https://{server}/boot.ipxe".into(),
            ipxe_script_url_without_https: None,
            http_boot_url: "http://{server}/".into(),
            client_port: 68,
            relay_port: 67,
            chainload_ipxe_roms: true,
        }
    }
}

impl ProxySettings {
    /// The boot program for an architecture.
    pub fn boot_file(&self, arch: ClientArch) -> Option<&str> {
        self.boot_files.get(&arch.boot_program_arch()).map(String::as_str)
    }
}

/// A classified client message waiting for a boot decision.
#[derive(Debug, Clone)]
pub struct PendingClient {
    message: DhcpMessage,
    class: ClientClass,
    meta: RequestMeta,
}

/// Why a classified client gets no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoReply {
    /// The resolver said to ignore this machine.
    #[error("the resolver ignores this machine")]
    Ignored,
    /// No boot program is configured for the client's architecture.
    #[error("no boot file configured for architecture {0}")]
    NoBootFile(ClientArch),
    /// The reply would not fit its length fields (a configured URL over 64 KiB).
    #[error("the reply is too large to encode")]
    ReplyTooLarge,
}

impl NoReply {
    /// The stable label this is counted under (`netboot_dhcp_drops_total{reason=...}`).
    #[must_use]
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Ignored => "ignored_by_resolver",
            Self::NoBootFile(_) => "no_boot_file",
            Self::ReplyTooLarge => "reply_too_large",
        }
    }
}

/// A reply ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The datagram.
    pub bytes: Vec<u8>,
    /// Where it goes.
    pub target: ReplyTarget,
    /// Whether the reply hands out a boot program (over TFTP or HTTP) rather than a script URL.
    pub hands_boot_program: bool,
}

/// Parses and classifies a datagram received on `meta.port`.
pub fn classify(meta: &RequestMeta, bytes: &[u8]) -> Result<PendingClient, DropReason> {
    let message = DhcpMessage::parse(bytes)?;
    let class = ClientClass::of(&message)?;
    match (meta.port, class.message_type) {
        (ListenPort::Dhcp, MessageType::Discover) => {}
        (ListenPort::Dhcp, MessageType::Request) => {
            // A firmware REQUEST on 67 is normally for the address server; answer only the
            // ones that name us.
            let server_id = message.server_id();
            if server_id != Some(meta.server_addr) {
                return Err(DropReason::AddressedElsewhere(server_id));
            }
        }
        (ListenPort::PxeBootServer, MessageType::Request | MessageType::Inform) => {}
        (_, other) => return Err(DropReason::UnsupportedMessageType(other)),
    }
    Ok(PendingClient {
        message,
        class,
        meta: *meta,
    })
}

impl PendingClient {
    /// What the packet says about the client.
    pub fn class(&self) -> &ClientClass {
        &self.class
    }

    /// The parsed message.
    pub fn message(&self) -> &DhcpMessage {
        &self.message
    }

    /// The question for the resolver.
    pub fn request(&self) -> BootRequest {
        let mut request = BootRequest::new(self.class.mac, self.class.arch, self.class.kind.stage())
            .with_uuid(self.class.uuid);
        request.user_class = self.class.user_class.clone();
        request.remote = Some(IpAddr::V4(self.class.relay.unwrap_or(*self.meta.source.ip())));
        request
    }

    /// Builds the reply for a decision, without memory of earlier replies: an iPXE NIC ROM is
    /// chainloaded whenever [`ProxySettings::chainload_ipxe_roms`] says so. Servers use
    /// [`PendingClient::respond_remembering`] instead, which also stops UEFI chainload loops.
    ///
    /// Any decision but `Ignore` chainloads iPXE (or hands a running iPXE its script URL):
    /// what to boot is decided again when iPXE fetches its script.
    pub fn respond(&self, decision: &BootDecision, settings: &ProxySettings) -> Result<Reply, NoReply> {
        self.build(decision, settings, false)
    }

    /// Like [`PendingClient::respond`], but an iPXE client of a machine that `guard` says was
    /// handed a boot program recently is the chainloaded iPXE and gets the script URL; a reply
    /// handing out a boot program is noted in `guard` at `now`.
    pub fn respond_remembering(
        &self,
        decision: &BootDecision,
        settings: &ProxySettings,
        guard: &mut ChainloadGuard,
        now: Instant,
    ) -> Result<Reply, NoReply> {
        let recently = guard.handed_recently(self.class.mac, now);
        let reply = self.build(decision, settings, recently)?;
        if reply.hands_boot_program {
            guard.remember(self.class.mac, now);
        }
        Ok(reply)
    }

    /// Whether the client is iPXE running from a NIC option ROM rather than a chainloaded
    /// build: ROMs send the full `PXEClient:Arch:...` vendor class, chainloaded BIOS iPXE
    /// plain `PXEClient` (UEFI builds send the full form either way).
    pub fn is_ipxe_rom(&self) -> bool {
        self.class.kind == ClientKind::Ipxe
            && self
                .class
                .vendor_class
                .as_deref()
                .is_some_and(|v| v.starts_with("PXEClient:Arch:"))
    }

    fn answer(&self, settings: &ProxySettings, handed_recently: bool) -> Result<Answer, NoReply> {
        let asker = Asker {
            kind: self.class.kind,
            arch: self.class.arch,
            ipxe_rom: self.is_ipxe_rom(),
            lacks_https: self.class.ipxe_features.as_ref().is_some_and(|f| !f.https()),
        };
        answer::choose(
            asker,
            settings,
            handed_recently,
            &self.meta.server_addr.to_string(),
        )
    }

    fn build(
        &self,
        decision: &BootDecision,
        settings: &ProxySettings,
        handed_recently: bool,
    ) -> Result<Reply, NoReply> {
        if matches!(decision, BootDecision::Ignore) {
            return Err(NoReply::Ignored);
        }
        let server = self.meta.server_addr;
        let answer = self.answer(settings, handed_recently)?;
        let hands_boot_program = answer.hands_boot_program();
        let (boot_file, vendor_class) = match answer {
            Answer::Script(url) => (url, &b"PXEClient"[..]),
            Answer::TftpProgram(name) => (name, &b"PXEClient"[..]),
            Answer::HttpProgram(url) => (url, &b"HTTPClient"[..]),
        };
        let request = &self.message;
        let answer_type = match self.class.message_type {
            MessageType::Discover => MessageType::Offer,
            _ => MessageType::Ack,
        };
        let mut reply = DhcpMessage::new_request(request.xid, [0; 6]);
        reply.op = BOOTREPLY;
        reply.htype = request.htype;
        reply.hlen = request.hlen;
        reply.chaddr = request.chaddr;
        reply.flags = request.flags;
        reply.giaddr = request.giaddr;
        if answer_type == MessageType::Ack {
            reply.ciaddr = request.ciaddr;
        }
        reply.siaddr = match (hands_boot_program, self.class.kind) {
            // EDK2 sends its port-4011 request to the offer's siaddr: that must be this server
            // even when another host serves TFTP (the ACK then names the TFTP server).
            (true, ClientKind::PxeFirmware) if self.asks_boot_server_again() => server,
            (true, ClientKind::PxeFirmware | ClientKind::Ipxe) => settings.tftp_server.unwrap_or(server),
            _ => server,
        };
        if boot_file.len() < reply.file.len() {
            reply.file[..boot_file.len()].copy_from_slice(boot_file.as_bytes());
        }

        let options = &mut reply.options;
        options.push(DhcpOption::MessageType(answer_type));
        options.push(DhcpOption::ServerId(server));
        options.push(DhcpOption::VendorClass(vendor_class.to_vec()));
        if let Some(machine_id) = request.client_machine_id() {
            options.push(machine_id);
        }
        if let Some(vendor) = self.vendor_options() {
            options.push(DhcpOption::VendorSpecific(vendor.to_bytes()));
        }
        options.push(DhcpOption::BootfileName(boot_file.into_bytes()));
        if let Some(relay_info) = request.relay_agent_info() {
            options.push(DhcpOption::RelayAgentInfo(relay_info.to_vec()));
        }

        let mut bytes = Vec::with_capacity(MIN_REPLY_LEN + 64);
        reply.emit(&mut bytes);
        if bytes.len() < MIN_REPLY_LEN {
            bytes.resize(MIN_REPLY_LEN, 0);
        }
        let target = reply_target(
            self.meta.port,
            self.meta.source,
            request.ciaddr,
            request.giaddr,
            settings.client_port,
            settings.relay_port,
        );
        Ok(Reply {
            bytes,
            target,
            hands_boot_program,
        })
    }

    /// Whether this is a port-67 offer to UEFI PXE firmware, which follows up with the
    /// boot-server REQUEST on port 4011 (see [`Self::vendor_options`]).
    fn asks_boot_server_again(&self) -> bool {
        self.class.kind == ClientKind::PxeFirmware
            && self.class.arch.is_uefi()
            && self.meta.port == ListenPort::Dhcp
    }

    /// Option 43 for the reply; a requested boot item (43.71) is echoed.
    ///
    /// BIOS PXE ROMs are told to use this offer's boot file without boot-server discovery
    /// (43.6 = 8; many ROMs want option 43 present). UEFI PXE firmware gets no discovery
    /// sub-options, which makes the offer a "ProxyBinl" offer for EDK2: it then takes its
    /// address from the site's DHCP server and asks this server on port 4011 for the boot file,
    /// the exchange WDS and dnsmasq use. Any discovery sub-option (43.6-10) would make it a
    /// "PXE10" offer, which EDK2 boots from directly without the 4011 request.
    fn vendor_options(&self) -> Option<PxeVendorOptions> {
        let mut items = Vec::new();
        if self.class.kind == ClientKind::PxeFirmware
            && !self.class.arch.is_uefi()
            && self.meta.port == ListenPort::Dhcp
        {
            items.push(PxeSubOption::DiscoveryControl(DISCOVERY_USE_BOOTFILE));
        }
        if let Some((kind, layer)) = self.class.boot_item {
            items.push(PxeSubOption::BootItem { kind, layer });
        }
        (!items.is_empty()).then_some(PxeVendorOptions {
            items,
            has_end: true,
            trailer: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DhcpOption;

    /// An arbitrary origin; the code under test never reads the clock itself.
    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    const ZERO: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    #[test]
    fn reply_target_follows_rfc_2131() {
        let from_client = SocketAddrV4::new(ZERO, 68);
        let relay = Ipv4Addr::new(10, 2, 0, 1);
        let ciaddr = Ipv4Addr::new(10, 0, 0, 50);
        // giaddr wins over everything.
        assert_eq!(
            reply_target(ListenPort::Dhcp, from_client, ciaddr, relay, 68, 67),
            ReplyTarget::Relay(SocketAddrV4::new(relay, 67))
        );
        assert_eq!(
            reply_target(ListenPort::Dhcp, from_client, ciaddr, ZERO, 68, 67),
            ReplyTarget::Unicast(SocketAddrV4::new(ciaddr, 68))
        );
        assert_eq!(
            reply_target(ListenPort::Dhcp, from_client, ZERO, ZERO, 68, 67),
            ReplyTarget::Broadcast { port: 68 }
        );
        // 4011: back to the sender, whatever its port.
        let ovmf = SocketAddrV4::new(ciaddr, 4011);
        assert_eq!(
            reply_target(ListenPort::PxeBootServer, ovmf, ciaddr, relay, 68, 67),
            ReplyTarget::Unicast(ovmf)
        );
        assert_eq!(
            reply_target(
                ListenPort::PxeBootServer,
                SocketAddrV4::new(ZERO, 68),
                ZERO,
                ZERO,
                68,
                67
            ),
            ReplyTarget::Broadcast { port: 68 }
        );
    }

    fn message(kind: MessageType, vendor: &[u8]) -> DhcpMessage {
        let mut message = DhcpMessage::new_request(1, [2, 0, 0, 0, 0, 1]);
        message.options = vec![
            DhcpOption::MessageType(kind),
            DhcpOption::VendorClass(vendor.to_vec()),
        ];
        message
    }

    fn meta(port: ListenPort) -> RequestMeta {
        RequestMeta {
            source: SocketAddrV4::new(ZERO, 68),
            server_addr: SERVER,
            port,
        }
    }

    #[test]
    fn ports_accept_only_their_message_types() {
        let discover = message(MessageType::Discover, b"PXEClient").to_bytes();
        assert!(classify(&meta(ListenPort::Dhcp), &discover).is_ok());
        assert_eq!(
            classify(&meta(ListenPort::PxeBootServer), &discover).unwrap_err(),
            DropReason::UnsupportedMessageType(MessageType::Discover)
        );

        let mut request = message(MessageType::Request, b"PXEClient");
        assert_eq!(
            classify(&meta(ListenPort::Dhcp), &request.to_bytes()).unwrap_err(),
            DropReason::AddressedElsewhere(None)
        );
        assert!(classify(&meta(ListenPort::PxeBootServer), &request.to_bytes()).is_ok());
        request.options.push(DhcpOption::ServerId(SERVER));
        assert!(classify(&meta(ListenPort::Dhcp), &request.to_bytes()).is_ok());

        let release = message(MessageType::Release, b"PXEClient").to_bytes();
        assert!(classify(&meta(ListenPort::Dhcp), &release).is_err());
        let windows = message(MessageType::Discover, b"MSFT 5.0").to_bytes();
        assert_eq!(
            classify(&meta(ListenPort::Dhcp), &windows).unwrap_err(),
            DropReason::NotBootClient
        );
    }

    #[test]
    fn arch_falls_back_to_the_vendor_class_and_long_urls_go_to_option_67_only() {
        let mut discover = message(MessageType::Discover, b"HTTPClient:Arch:00019:UNDI:003000");
        let pending = classify(&meta(ListenPort::Dhcp), &discover.to_bytes()).unwrap();
        assert_eq!(pending.class().arch, ClientArch::EfiArm64Http);

        discover.options.push(DhcpOption::UserClass(b"iPXE".to_vec()));
        let pending = classify(&meta(ListenPort::Dhcp), &discover.to_bytes()).unwrap();
        let long = format!("https://{{server}}/{}", "x".repeat(200));
        let settings = ProxySettings {
            ipxe_script_url: long,
            ..ProxySettings::default()
        };
        let reply =
            DhcpMessage::parse(&pending.respond(&BootDecision::EXIT, &settings).unwrap().bytes).unwrap();
        assert_eq!(reply.file, [0; 128], "too long for the file field");
        assert_eq!(
            reply.bootfile_name().unwrap().len(),
            "https://10.0.0.1/".len() + 200
        );
    }

    fn ipxe_discover(vendor: &[u8], arch: ClientArch) -> Vec<u8> {
        let mut discover = message(MessageType::Discover, vendor);
        discover.options.push(DhcpOption::UserClass(b"iPXE".to_vec()));
        discover.options.push(DhcpOption::ClientArch(vec![arch]));
        discover.to_bytes()
    }

    fn answer_of(reply: &Reply) -> (Ipv4Addr, String) {
        let offer = DhcpMessage::parse(&reply.bytes).unwrap();
        let file = String::from_utf8(offer.bootfile_name().unwrap().to_vec()).unwrap();
        (offer.siaddr, file)
    }

    #[test]
    fn bios_ipxe_rom_is_chainloaded_once_then_gets_the_script() {
        let settings = ProxySettings {
            tftp_server: Some(Ipv4Addr::new(10, 0, 0, 9)),
            ..ProxySettings::default()
        };
        let mut guard = ChainloadGuard::default();
        let t0 = origin();
        let rom = ipxe_discover(b"PXEClient:Arch:00000:UNDI:002001", ClientArch::X86Bios);
        let pending = classify(&meta(ListenPort::Dhcp), &rom).unwrap();
        assert!(pending.is_ipxe_rom());
        let reply = pending
            .respond_remembering(&BootDecision::EXIT, &settings, &mut guard, t0)
            .unwrap();
        assert!(reply.hands_boot_program);
        assert_eq!(
            answer_of(&reply),
            (Ipv4Addr::new(10, 0, 0, 9), "undionly.kpxe".to_string())
        );

        // The chainloaded undionly.kpxe sends plain PXEClient: the script, memory or not.
        let chained = ipxe_discover(b"PXEClient", ClientArch::X86Bios);
        let pending = classify(&meta(ListenPort::Dhcp), &chained).unwrap();
        assert!(!pending.is_ipxe_rom());
        let reply = pending.respond(&BootDecision::EXIT, &settings).unwrap();
        assert!(!reply.hands_boot_program);
        assert_eq!(
            answer_of(&reply),
            (SERVER, "https://10.0.0.1/boot.ipxe".to_string())
        );

        // Had it kept the ROM's vendor class, the memory still breaks the loop...
        let again = classify(&meta(ListenPort::Dhcp), &rom).unwrap();
        let soon = t0 + std::time::Duration::from_secs(20);
        let reply = again
            .respond_remembering(&BootDecision::EXIT, &settings, &mut guard, soon)
            .unwrap();
        assert_eq!(answer_of(&reply).1, "https://10.0.0.1/boot.ipxe");
        // ... and a reboot long after chainloads again.
        let later = t0 + crate::chainload::DEFAULT_WINDOW * 2;
        let reply = again
            .respond_remembering(&BootDecision::EXIT, &settings, &mut guard, later)
            .unwrap();
        assert_eq!(answer_of(&reply).1, "undionly.kpxe");
    }

    #[test]
    fn uefi_ipxe_after_a_firmware_nbp_gets_the_script() {
        let settings = ProxySettings::default();
        let mut guard = ChainloadGuard::default();
        let t0 = origin();
        let mut firmware = message(MessageType::Discover, b"PXEClient:Arch:00007:UNDI:003000");
        firmware
            .options
            .push(DhcpOption::ClientArch(vec![ClientArch::EfiX64]));
        let reply = classify(&meta(ListenPort::Dhcp), &firmware.to_bytes())
            .unwrap()
            .respond_remembering(&BootDecision::EXIT, &settings, &mut guard, t0)
            .unwrap();
        assert_eq!(answer_of(&reply).1, "snponly.efi");
        // snponly.efi's iPXE sends the full vendor class too; it is the chainloaded one.
        let snponly = ipxe_discover(b"PXEClient:Arch:00007:UNDI:003010", ClientArch::EfiX64);
        let reply = classify(&meta(ListenPort::Dhcp), &snponly)
            .unwrap()
            .respond_remembering(&BootDecision::EXIT, &settings, &mut guard, t0)
            .unwrap();
        assert_eq!(answer_of(&reply).1, "https://10.0.0.1/boot.ipxe");
    }

    #[test]
    fn chainloading_roms_can_be_turned_off() {
        let settings = ProxySettings {
            chainload_ipxe_roms: false,
            ..ProxySettings::default()
        };
        let rom = ipxe_discover(b"PXEClient:Arch:00000:UNDI:002001", ClientArch::X86Bios);
        let reply = classify(&meta(ListenPort::Dhcp), &rom)
            .unwrap()
            .respond_remembering(
                &BootDecision::EXIT,
                &settings,
                &mut ChainloadGuard::default(),
                origin(),
            )
            .unwrap();
        assert!(!reply.hands_boot_program);
        assert_eq!(answer_of(&reply).1, "https://10.0.0.1/boot.ipxe");
    }

    #[test]
    fn uefi_pxe_offers_lead_to_the_4011_exchange_and_bios_offers_do_not() {
        let vendor_of = |reply: &Reply| {
            DhcpMessage::parse(&reply.bytes)
                .unwrap()
                .vendor_specific()
                .map(|v| PxeVendorOptions::parse(v).unwrap())
        };
        let mut uefi = message(MessageType::Discover, b"PXEClient:Arch:00007:UNDI:003000");
        uefi.options
            .push(DhcpOption::ClientArch(vec![ClientArch::EfiX64]));
        let tftp = Ipv4Addr::new(10, 0, 0, 9);
        let settings = ProxySettings {
            tftp_server: Some(tftp),
            ..ProxySettings::default()
        };
        let offer = classify(&meta(ListenPort::Dhcp), &uefi.to_bytes())
            .unwrap()
            .respond(&BootDecision::EXIT, &settings)
            .unwrap();
        // No discovery sub-option: EDK2 classifies it ProxyBinl and asks on 4011 of siaddr,
        // which is therefore this server even with TFTP elsewhere.
        assert_eq!(vendor_of(&offer), None);
        assert_eq!(answer_of(&offer), (SERVER, "snponly.efi".to_string()));

        let mut request = message(MessageType::Request, b"PXEClient:Arch:00007:UNDI:003000");
        request
            .options
            .push(DhcpOption::ClientArch(vec![ClientArch::EfiX64]));
        request.ciaddr = Ipv4Addr::new(10, 0, 0, 50);
        let source = SocketAddrV4::new(request.ciaddr, 4011);
        let meta_4011 = RequestMeta {
            source,
            ..meta(ListenPort::PxeBootServer)
        };
        let ack = classify(&meta_4011, &request.to_bytes())
            .unwrap()
            .respond(&BootDecision::EXIT, &settings)
            .unwrap();
        let parsed = DhcpMessage::parse(&ack.bytes).unwrap();
        assert_eq!(parsed.message_type(), Some(MessageType::Ack));
        assert_eq!(ack.target, ReplyTarget::Unicast(source));
        assert_eq!(answer_of(&ack), (tftp, "snponly.efi".to_string()));

        let bios = message(MessageType::Discover, b"PXEClient:Arch:00000:UNDI:002001");
        let offer = classify(&meta(ListenPort::Dhcp), &bios.to_bytes())
            .unwrap()
            .respond(&BootDecision::EXIT, &ProxySettings::default())
            .unwrap();
        assert_eq!(
            vendor_of(&offer).unwrap().items,
            vec![PxeSubOption::DiscoveryControl(DISCOVERY_USE_BOOTFILE)]
        );
    }
}
