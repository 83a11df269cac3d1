//! The DHCPv6 boot-offer responder as pure functions: classify a datagram, let the caller
//! consult its resolver, then build the reply and say where it goes. It hands out boot
//! options only, never addresses (see [`crate::v6`] for which flows real clients accept).
//!
//! ```
//! use std::net::{Ipv6Addr, SocketAddrV6};
//! use netboot_core::{BootDecision, ClientArch};
//! use netboot_dhcp::proxy::{ListenPort, ProxySettings};
//! use netboot_dhcp::v6::class::ClientMacs;
//! use netboot_dhcp::v6::proxy::{classify, Dhcp6Settings, RequestMeta6};
//! use netboot_dhcp::v6::wire::*;
//!
//! let solicit = Dhcp6Message {
//!     msg_type: MessageType::Solicit,
//!     header: Header::Transaction([1, 2, 3]),
//!     options: vec![
//!         Dhcp6Option::ClientId(Duid(vec![0, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])),
//!         Dhcp6Option::ClientArch(vec![ClientArch::EfiX64]),
//!         Dhcp6Option::VendorClass(VendorClass {
//!             enterprise: PXE_ENTERPRISE,
//!             classes: vec![b"PXEClient:Arch:00007:UNDI:003000".to_vec()],
//!         }),
//!     ],
//! };
//! let client: Ipv6Addr = "fe80::5054:ff:fe12:3456".parse().unwrap();
//! let meta = RequestMeta6 {
//!     source: SocketAddrV6::new(client, 546, 0, 2),
//!     server_addr: "2001:db8::1".parse().unwrap(),
//!     port: ListenPort::Dhcp,
//!     source_mac: None,
//! };
//! let settings = Dhcp6Settings::new(Duid::link_layer([2, 0, 0, 0, 0, 1]));
//! let pending = classify(&meta, &solicit.to_bytes().unwrap(), &settings, &ClientMacs::default()).unwrap();
//! assert_eq!(pending.class().mac.to_string(), "52:54:00:12:34:56");
//! // ... the driver asks its resolver about pending.request() here ...
//! let reply = pending.respond(&BootDecision::EXIT, &ProxySettings::default(), &settings).unwrap();
//! assert_eq!(reply.target, meta.source);
//! let advertise = Dhcp6Message::parse(&reply.bytes).unwrap();
//! assert_eq!(advertise.msg_type, MessageType::Advertise);
//! assert_eq!(advertise.bootfile_url(), Some(&b"tftp://[2001:db8::1]/snponly.efi"[..]));
//! assert_eq!(advertise.ia_nas().count(), 0, "never an address");
//! ```

use std::net::{IpAddr, Ipv6Addr, SocketAddrV6};
use std::time::Instant;

use netboot_core::{BootDecision, BootRequest, MacAddr};

use super::class::{ClientClass6, ClientMacs, DropReason};
use super::wire::{
    code, status, Dhcp6Message, Dhcp6Option, Duid, Header, Ia, MessageType, StatusCode, VendorClass,
    PXE_ENTERPRISE,
};
use crate::answer::{self, Answer, Asker};
use crate::chainload::ChainloadGuard;
use crate::proxy::{ListenPort, NoReply, ProxySettings};
use crate::pxe::ClientKind;

/// Where a datagram came from and what it arrived on, as the driver saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestMeta6 {
    /// Sender (a client, or a relay agent) with the receiving interface as scope id, so that
    /// replies to link-local addresses leave through it.
    pub source: SocketAddrV6,
    /// The address this server puts in URLs (`{server}`, TFTP): the configured one or a
    /// routable address of the receiving interface, never link-local.
    pub server_addr: Ipv6Addr,
    /// The DHCPv6 port (547) or the PXE boot-server port (4011).
    pub port: ListenPort,
    /// The sender's MAC as the driver knows it (the neighbour table), asked only when the
    /// message and the client-id memory do not name one.
    pub source_mac: Option<MacAddr>,
}

/// DHCPv6-only settings of the responder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dhcp6Settings {
    /// This server's DUID (option 2 of every reply; clients echo it).
    pub server_duid: Duid,
    /// TFTP server for the `tftp://` URL of a port-4011 Reply; the server address when `None`.
    /// An Advertise on port 547 always names this server, where EDK2 sends its 4011 Request.
    pub tftp_server: Option<Ipv6Addr>,
}

impl Dhcp6Settings {
    /// Settings with this DUID and TFTP on the server address.
    pub fn new(server_duid: Duid) -> Self {
        Self {
            server_duid,
            tftp_server: None,
        }
    }
}

/// A classified client message waiting for a boot decision.
#[derive(Debug, Clone)]
pub struct PendingClient6 {
    /// The client's message (inside the relay messages, when relayed).
    message: Dhcp6Message,
    /// Relay-forward headers and options, outermost first, each without its Relay Message.
    relays: Vec<Dhcp6Message>,
    class: ClientClass6,
    meta: RequestMeta6,
}

/// A reply ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply6 {
    /// The datagram.
    pub bytes: Vec<u8>,
    /// Where it goes: the sender of the request (client or relay agent), same port.
    pub target: SocketAddrV6,
    /// Whether the reply hands out a boot program rather than a script URL.
    pub hands_boot_program: bool,
    /// The URL the reply carries (option 59).
    pub url: String,
}

/// Parses and classifies a datagram received on `meta.port`. `macs` is the memory of the
/// MACs earlier messages named; callers note each classified client in it
/// ([`PendingClient6::remember_mac`]).
pub fn classify(
    meta: &RequestMeta6,
    bytes: &[u8],
    settings: &Dhcp6Settings,
    macs: &ClientMacs,
) -> Result<PendingClient6, DropReason> {
    let mut message = Dhcp6Message::parse(bytes)?;
    let mut relays = Vec::new();
    while message.msg_type == MessageType::RelayForward && meta.port == ListenPort::Dhcp {
        let position = message
            .options
            .iter()
            .position(|o| matches!(o, Dhcp6Option::RelayMessage(_)))
            .ok_or(DropReason::NoRelayedMessage)?;
        let Dhcp6Option::RelayMessage(inner) = message.options.remove(position) else {
            unreachable!("position found a relay message");
        };
        relays.push(message);
        message = *inner;
    }
    let innermost = relays.last();
    let client_address = match innermost.map(|r| r.header) {
        Some(Header::Relay { peer_address, .. }) => peer_address,
        _ => *meta.source.ip(),
    };
    let relay_mac = innermost.and_then(Dhcp6Message::client_link_layer_mac);
    let known_mac = |id: &Duid| macs.lookup(id).or(meta.source_mac);
    let mut class = ClientClass6::of(&message, client_address, relay_mac, known_mac)?;
    if !relays.is_empty() {
        class.relayed_from = Some(client_address);
    }
    let ours = |id: Option<&Duid>| match id {
        Some(id) if *id != settings.server_duid => Err(DropReason::AddressedElsewhere(id.clone())),
        _ => Ok(()),
    };
    match (meta.port, message.msg_type) {
        (ListenPort::Dhcp, MessageType::Solicit) if class.kind == ClientKind::Ipxe => {
            return Err(DropReason::IpxeSolicit)
        }
        (ListenPort::Dhcp, MessageType::Solicit) => {}
        (ListenPort::Dhcp, MessageType::Request) => {
            ours(Some(message.server_id().ok_or(DropReason::NoServerId)?))?;
        }
        (ListenPort::Dhcp, MessageType::InformationRequest) => ours(message.server_id())?,
        // EDK2's boot-server request (PxeBcRequestBootService) carries the server id of the
        // Advertise it answers; nothing else is sent to this port.
        (ListenPort::PxeBootServer, MessageType::Request | MessageType::InformationRequest) => {}
        (_, other) => return Err(DropReason::UnsupportedMessageType(other)),
    }
    Ok(PendingClient6 {
        message,
        relays,
        class,
        meta: *meta,
    })
}

impl PendingClient6 {
    /// What the packet says about the client.
    pub fn class(&self) -> &ClientClass6 {
        &self.class
    }

    /// The client's message (inside the relay messages, when relayed).
    pub fn message(&self) -> &Dhcp6Message {
        &self.message
    }

    /// Notes this client's MAC under its client id, for its later messages.
    pub fn remember_mac(&self, macs: &mut ClientMacs) {
        macs.remember(self.class.client_id.clone(), self.class.mac);
    }

    /// How many relay agents the message passed through.
    pub fn relay_hops(&self) -> usize {
        self.relays.len()
    }

    /// The question for the resolver, the same as for DHCPv4.
    pub fn request(&self) -> BootRequest {
        let class = &self.class;
        let mut request = BootRequest::new(class.mac, class.arch, class.kind.stage()).with_uuid(class.uuid);
        request.user_class = class.user_class.clone();
        request.remote = Some(IpAddr::V6(*self.meta.source.ip()));
        request
    }

    /// Builds the reply for a decision, without memory of earlier replies.
    pub fn respond(
        &self,
        decision: &BootDecision,
        settings: &ProxySettings,
        v6: &Dhcp6Settings,
    ) -> Result<Reply6, NoReply> {
        self.build(decision, settings, v6, false)
    }

    /// Like [`PendingClient6::respond`], but an iPXE client of a machine that `guard` says
    /// was handed a boot program recently is the chainloaded iPXE and gets the script URL; a
    /// reply handing out a boot program is noted in `guard` at `now`.
    pub fn respond_remembering(
        &self,
        decision: &BootDecision,
        settings: &ProxySettings,
        v6: &Dhcp6Settings,
        guard: &mut ChainloadGuard,
        now: Instant,
    ) -> Result<Reply6, NoReply> {
        let recently = guard.handed_recently(self.class.mac, now);
        let reply = self.build(decision, settings, v6, recently)?;
        if reply.hands_boot_program {
            guard.remember(self.class.mac, now);
        }
        Ok(reply)
    }

    fn build(
        &self,
        decision: &BootDecision,
        settings: &ProxySettings,
        v6: &Dhcp6Settings,
        handed_recently: bool,
    ) -> Result<Reply6, NoReply> {
        if matches!(decision, BootDecision::Ignore) {
            return Err(NoReply::Ignored);
        }
        let asker = Asker {
            kind: self.class.kind,
            arch: self.class.arch,
            // Over DHCPv6 every iPXE sends the full `PXEClient:Arch:...` vendor class, so
            // only the chainload memory tells a ROM from the build this server handed out.
            ipxe_rom: self.class.kind == ClientKind::Ipxe,
            // iPXE reports no features over DHCPv6 (there is no option 175).
            lacks_https: false,
        };
        let server_host = format!("[{}]", self.meta.server_addr);
        let answer = answer::choose(asker, settings, handed_recently, &server_host)?;
        let hands_boot_program = answer.hands_boot_program();
        let (url, vendor_class) = match answer {
            Answer::Script(url) => (url, &b"PXEClient"[..]),
            Answer::TftpProgram(name) => {
                // EDK2 sends its port-4011 Request to the host of the Advertise's URL
                // (`PxeBcRetryDhcp6Binl`) and fetches the file named in that Reply: the
                // Advertise names this server, only the 4011 Reply the TFTP host.
                let tftp = match self.meta.port {
                    ListenPort::Dhcp => self.meta.server_addr,
                    _ => v6.tftp_server.unwrap_or(self.meta.server_addr),
                };
                (
                    answer::join_url(&format!("tftp://[{tftp}]"), &name),
                    &b"PXEClient"[..],
                )
            }
            Answer::HttpProgram(url) => (url, &b"HTTPClient"[..]),
        };
        let reply = self.reply_message(&url, vendor_class, v6);
        let wrapped = self.wrap_for_relays(reply);
        // Every value is bounded by what we put in (a configured URL) or what the client
        // sent in a datagram, so the reply always fits its length fields.
        let bytes = wrapped.to_bytes().map_err(|_| NoReply::ReplyTooLarge)?;
        Ok(Reply6 {
            bytes,
            target: self.meta.source,
            hands_boot_program,
            url,
        })
    }

    /// The reply to the client itself: server and client ids, then the boot file URL and the
    /// vendor class. No IA and no status code at the top: EDK2 drops an Advertise whose IA or
    /// top-level status code says anything but success (`Dhcp6SeekStsOption`), and classifies
    /// an Advertise without an address as a proxy offer. No preference option: a preference of
    /// 255 makes EDK2's DHCPv6 driver pick that Advertise at once (`Dhcp6HandleAdvertiseMsg`),
    /// before the address server's has arrived. The URL is followed by another option so that
    /// EDK2 HTTP Boot, which reads option 59 with `AsciiStrLen`, finds a zero byte after it
    /// (the high byte of the next option code).
    fn reply_message(&self, url: &str, vendor_class: &[u8], v6: &Dhcp6Settings) -> Dhcp6Message {
        let request = &self.message;
        let msg_type = match request.msg_type {
            MessageType::Solicit => MessageType::Advertise,
            _ => MessageType::Reply,
        };
        let mut options = vec![
            Dhcp6Option::ServerId(v6.server_duid.clone()),
            Dhcp6Option::ClientId(self.class.client_id.clone()),
        ];
        // A Request that chose this server asks for addresses it will not get; RFC 8415
        // section 18.3.2 says to answer each IA with NoAddrsAvail inside it.
        if request.msg_type == MessageType::Request && self.meta.port == ListenPort::Dhcp {
            options.extend(request.ia_nas().map(|ia| {
                Dhcp6Option::IaNa(Ia {
                    iaid: ia.iaid,
                    t1: 0,
                    t2: 0,
                    options: vec![Dhcp6Option::StatusCode(StatusCode {
                        code: status::NO_ADDRS_AVAIL,
                        message: b"boot options only".to_vec(),
                    })],
                })
            }));
        }
        options.push(Dhcp6Option::BootfileUrl(url.as_bytes().to_vec()));
        options.push(Dhcp6Option::VendorClass(VendorClass {
            enterprise: PXE_ENTERPRISE,
            classes: vec![vendor_class.to_vec()],
        }));
        Dhcp6Message {
            msg_type,
            header: request.header,
            options,
        }
    }

    /// Wraps the reply in one Relay-reply per relay agent (RFC 8415 section 19.3): the same
    /// hop count, link and peer address as the Relay-forward, its Interface-Id echoed, and the
    /// options its Echo Request option (RFC 4994) names.
    fn wrap_for_relays(&self, reply: Dhcp6Message) -> Dhcp6Message {
        self.relays.iter().rev().fold(reply, |inner, forward| {
            let mut options = vec![Dhcp6Option::RelayMessage(Box::new(inner))];
            if let Some(id) = forward.interface_id() {
                options.push(Dhcp6Option::InterfaceId(id.to_vec()));
            }
            let echoed: Vec<u16> = forward
                .options
                .iter()
                .filter_map(|o| match o {
                    Dhcp6Option::EchoRequest(codes) => Some(codes.clone()),
                    _ => None,
                })
                .flatten()
                .filter(|c| ![code::RELAY_MSG, code::INTERFACE_ID, code::ERO].contains(c))
                .collect();
            options.extend(
                forward
                    .options
                    .iter()
                    .filter(|o| echoed.contains(&o.code()))
                    .cloned(),
            );
            Dhcp6Message {
                msg_type: MessageType::RelayReply,
                header: forward.header,
                options,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use netboot_core::ClientArch;

    use super::*;
    use crate::v6::wire::{code, Duid};

    const CLIENT_LL: &str = "fe80::5054:ff:fe12:3456";
    const MAC: &str = "52:54:00:12:34:56";

    fn ours() -> Dhcp6Settings {
        Dhcp6Settings::new(Duid::link_layer([2, 0, 0, 0, 0, 1]))
    }

    fn meta(source: &str, port: ListenPort) -> RequestMeta6 {
        RequestMeta6 {
            source: SocketAddrV6::new(
                source.parse().unwrap(),
                if port == ListenPort::Dhcp { 546 } else { 4011 },
                0,
                2,
            ),
            server_addr: "2001:db8::1".parse().unwrap(),
            port,
            source_mac: None,
        }
    }

    fn client(msg_type: MessageType, vendor: &[u8], arch: ClientArch) -> Dhcp6Message {
        Dhcp6Message {
            msg_type,
            header: Header::Transaction([0xab, 0xcd, 0xef]),
            options: vec![
                Dhcp6Option::ClientId(Duid([&[0, 4][..], &[7; 16]].concat())),
                Dhcp6Option::IaNa(Ia {
                    iaid: 9,
                    t1: 0,
                    t2: 0,
                    options: Vec::new(),
                }),
                Dhcp6Option::ClientArch(vec![arch]),
                Dhcp6Option::VendorClass(VendorClass {
                    enterprise: PXE_ENTERPRISE,
                    classes: vec![vendor.to_vec()],
                }),
            ],
        }
    }

    fn ipxe(msg_type: MessageType) -> Dhcp6Message {
        let mut message = client(msg_type, b"PXEClient:Arch:00007:UNDI:003010", ClientArch::EfiX64);
        message
            .options
            .push(Dhcp6Option::UserClass(vec![b"iPXE".to_vec()]));
        message
    }

    fn classify_it(message: &Dhcp6Message, meta: &RequestMeta6) -> Result<PendingClient6, DropReason> {
        classify(
            meta,
            &message.to_bytes().unwrap(),
            &ours(),
            &ClientMacs::default(),
        )
    }

    fn answer(pending: &PendingClient6) -> (Reply6, Dhcp6Message) {
        let reply = pending
            .respond(&BootDecision::EXIT, &ProxySettings::default(), &ours())
            .unwrap();
        let parsed = Dhcp6Message::parse(&reply.bytes).unwrap();
        (reply, parsed)
    }

    #[test]
    fn firmware_solicits_get_a_boot_only_advertise_edk2_accepts() {
        let solicit = client(
            MessageType::Solicit,
            b"PXEClient:Arch:00007:UNDI:003000",
            ClientArch::EfiX64,
        );
        let pending = classify_it(&solicit, &meta(CLIENT_LL, ListenPort::Dhcp)).unwrap();
        assert_eq!(pending.class().mac.to_string(), MAC);
        assert_eq!(
            pending.class().uuid,
            Some(netboot_core::SmbiosUuid::from_wire([7; 16]))
        );
        let (reply, advertise) = answer(&pending);
        assert_eq!(reply.target.to_string(), format!("[{CLIENT_LL}%2]:546"));
        assert!(reply.hands_boot_program);
        assert_eq!(advertise.msg_type, MessageType::Advertise);
        assert_eq!(advertise.header, solicit.header);
        let codes: Vec<u16> = advertise.options.iter().map(Dhcp6Option::code).collect();
        // No IA, status code or preference; the URL is followed by another option.
        assert_eq!(
            codes,
            [
                code::SERVER_ID,
                code::CLIENT_ID,
                code::BOOTFILE_URL,
                code::VENDOR_CLASS
            ]
        );
        assert_eq!(advertise.client_id(), solicit.client_id());
        assert_eq!(
            advertise.bootfile_url(),
            Some(&b"tftp://[2001:db8::1]/snponly.efi"[..])
        );
        let vendor = advertise.vendor_classes().next().unwrap();
        assert_eq!(vendor.classes, [b"PXEClient".to_vec()]);

        let http = client(
            MessageType::Solicit,
            b"HTTPClient:Arch:00016:UNDI:003000",
            ClientArch::EfiX64Http,
        );
        let (_, advertise) = answer(&classify_it(&http, &meta(CLIENT_LL, ListenPort::Dhcp)).unwrap());
        assert_eq!(
            advertise.bootfile_url(),
            Some(&b"http://[2001:db8::1]/snponly.efi"[..])
        );
        assert_eq!(
            advertise.vendor_classes().next().unwrap().classes,
            [b"HTTPClient".to_vec()]
        );

        let mut tftp_elsewhere = ours();
        tftp_elsewhere.tftp_server = Some("2001:db8::69".parse().unwrap());
        let reply = pending
            .respond(&BootDecision::EXIT, &ProxySettings::default(), &tftp_elsewhere)
            .unwrap();
        assert_eq!(
            reply.url, "tftp://[2001:db8::1]/snponly.efi",
            "the Advertise names the boot server EDK2 asks next, on port 4011"
        );
        let at_4011 = PendingClient6 {
            meta: meta(CLIENT_LL, ListenPort::PxeBootServer),
            ..pending.clone()
        };
        let reply = at_4011
            .respond(&BootDecision::EXIT, &ProxySettings::default(), &tftp_elsewhere)
            .unwrap();
        assert_eq!(reply.url, "tftp://[2001:db8::69]/snponly.efi");
        assert_eq!(
            pending.respond(&BootDecision::Ignore, &ProxySettings::default(), &ours()),
            Err(NoReply::Ignored)
        );
    }

    #[test]
    fn requests_on_the_dhcp_port_are_answered_only_when_they_name_this_server() {
        let mut request = client(
            MessageType::Request,
            b"PXEClient:Arch:00007:UNDI:003000",
            ClientArch::EfiX64,
        );
        let on_547 = meta(CLIENT_LL, ListenPort::Dhcp);
        assert_eq!(
            classify_it(&request, &on_547).unwrap_err(),
            DropReason::NoServerId
        );
        let site = Duid(vec![0, 1, 0, 1, 9, 9, 9, 9, 1, 2, 3, 4, 5, 6]);
        request.options.push(Dhcp6Option::ServerId(site.clone()));
        assert_eq!(
            classify_it(&request, &on_547).unwrap_err(),
            DropReason::AddressedElsewhere(site)
        );
        request.options.pop();
        request.options.push(Dhcp6Option::ServerId(ours().server_duid));
        let (_, reply) = answer(&classify_it(&request, &on_547).unwrap());
        assert_eq!(reply.msg_type, MessageType::Reply);
        let ia = reply.ia_nas().next().expect("the IA is answered");
        assert_eq!(ia.iaid, 9);
        assert_eq!(
            ia.options,
            [Dhcp6Option::StatusCode(StatusCode {
                code: status::NO_ADDRS_AVAIL,
                message: b"boot options only".to_vec()
            })]
        );
    }

    #[test]
    fn edk2s_port_4011_request_from_its_new_address_is_known_by_its_client_id() {
        let solicit = client(
            MessageType::Solicit,
            b"PXEClient:Arch:00007:UNDI:003000",
            ClientArch::EfiX64,
        );
        let mut macs = ClientMacs::default();
        let settings = ours();
        classify(
            &meta(CLIENT_LL, ListenPort::Dhcp),
            &solicit.to_bytes().unwrap(),
            &settings,
            &macs,
        )
        .unwrap()
        .remember_mac(&mut macs);
        let mut request = client(
            MessageType::Request,
            b"PXEClient:Arch:00007:UNDI:003000",
            ClientArch::EfiX64,
        );
        request.options.retain(|o| o.code() != code::IA_NA);
        request
            .options
            .push(Dhcp6Option::ServerId(settings.server_duid.clone()));
        let from_global = meta("2001:db8::1b7", ListenPort::PxeBootServer);
        let bytes = request.to_bytes().unwrap();
        assert_eq!(
            classify(&from_global, &bytes, &settings, &ClientMacs::default()).unwrap_err(),
            DropReason::NoMac
        );
        let pending = classify(&from_global, &bytes, &settings, &macs).unwrap();
        assert_eq!(pending.class().mac.to_string(), MAC);
        let (reply, parsed) = answer(&pending);
        assert_eq!(reply.target, from_global.source);
        assert_eq!(parsed.msg_type, MessageType::Reply);
        assert_eq!(parsed.ia_nas().count(), 0);
        // The driver's neighbour lookup is the last resort.
        let with_neighbour = RequestMeta6 {
            source_mac: Some(MAC.parse().unwrap()),
            ..from_global
        };
        assert!(classify(&with_neighbour, &bytes, &settings, &ClientMacs::default()).is_ok());
    }

    #[test]
    fn ipxe_gets_its_script_in_stateless_dhcpv6_only() {
        let on_547 = meta(CLIENT_LL, ListenPort::Dhcp);
        assert_eq!(
            classify_it(&ipxe(MessageType::Solicit), &on_547).unwrap_err(),
            DropReason::IpxeSolicit
        );
        let pending = classify_it(&ipxe(MessageType::InformationRequest), &on_547).unwrap();
        assert_eq!(pending.request().stage, netboot_core::BootStage::Ipxe);
        // The same machine's firmware was just handed snponly.efi: this is the chainloaded iPXE.
        let mut guard = ChainloadGuard::default();
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        guard.remember(pending.class().mac, now);
        let reply = pending
            .respond_remembering(
                &BootDecision::EXIT,
                &ProxySettings::default(),
                &ours(),
                &mut guard,
                now,
            )
            .unwrap();
        assert_eq!(reply.url, "https://[2001:db8::1]/boot.ipxe");
        assert!(!reply.hands_boot_program);
        let parsed = Dhcp6Message::parse(&reply.bytes).unwrap();
        assert_eq!(parsed.msg_type, MessageType::Reply);
        assert_eq!(parsed.transaction_id(), Some(0xabcdef));
    }

    #[test]
    fn relayed_requests_are_answered_through_every_relay() {
        let solicit = client(
            MessageType::Solicit,
            b"PXEClient:Arch:00011:UNDI:003000",
            ClientArch::EfiArm64,
        );
        let first = Dhcp6Message {
            msg_type: MessageType::RelayForward,
            header: Header::Relay {
                hop_count: 0,
                link_address: "2001:db8:1::1".parse().unwrap(),
                peer_address: "fe80::9".parse().unwrap(),
            },
            options: vec![
                Dhcp6Option::ClientLinkLayerAddr {
                    hardware_type: 1,
                    address: vec![0x52, 0x54, 0, 0xaa, 0xbb, 0xcc],
                },
                Dhcp6Option::InterfaceId(b"vlan10".to_vec()),
                Dhcp6Option::Unknown {
                    code: 37,
                    data: vec![1, 2, 3],
                },
                Dhcp6Option::EchoRequest(vec![37]),
                Dhcp6Option::RelayMessage(Box::new(solicit)),
            ],
        };
        let second = Dhcp6Message {
            msg_type: MessageType::RelayForward,
            header: Header::Relay {
                hop_count: 1,
                link_address: "::".parse().unwrap(),
                peer_address: "2001:db8:1::1".parse().unwrap(),
            },
            options: vec![Dhcp6Option::RelayMessage(Box::new(first.clone()))],
        };
        let from_relay = RequestMeta6 {
            source: SocketAddrV6::new("2001:db8:2::1".parse().unwrap(), 547, 0, 0),
            ..meta(CLIENT_LL, ListenPort::Dhcp)
        };
        let pending = classify_it(&second, &from_relay).unwrap();
        assert_eq!(pending.relay_hops(), 2);
        assert_eq!(
            pending.class().mac.to_string(),
            "52:54:00:aa:bb:cc",
            "option 79 wins"
        );
        assert_eq!(pending.class().relayed_from, Some("fe80::9".parse().unwrap()));
        assert_eq!(
            pending.request().remote,
            Some(IpAddr::V6("2001:db8:2::1".parse().unwrap()))
        );
        let (reply, outer) = answer(&pending);
        assert_eq!(reply.target, from_relay.source);
        assert_eq!(outer.msg_type, MessageType::RelayReply);
        assert_eq!(outer.header, second.header);
        let inner = outer.relayed().unwrap();
        assert_eq!(inner.msg_type, MessageType::RelayReply);
        assert_eq!(inner.header, first.header);
        assert_eq!(inner.interface_id(), Some(&b"vlan10"[..]));
        assert!(inner.options.contains(&Dhcp6Option::Unknown {
            code: 37,
            data: vec![1, 2, 3]
        }));
        assert!(
            !inner.has(code::CLIENT_LINKLAYER_ADDR),
            "only what the relay asked for is echoed"
        );
        let advertise = inner.relayed().unwrap();
        assert_eq!(advertise.msg_type, MessageType::Advertise);
        assert_eq!(
            advertise.bootfile_url(),
            Some(&b"tftp://[2001:db8::1]/snponly-arm64.efi"[..])
        );

        // Relay messages are for the DHCPv6 port only; anything else there is dropped.
        assert!(classify_it(&second, &meta(CLIENT_LL, ListenPort::PxeBootServer)).is_err());
        let empty = Dhcp6Message {
            options: Vec::new(),
            ..second
        };
        assert_eq!(
            classify_it(&empty, &from_relay).unwrap_err(),
            DropReason::NoRelayedMessage
        );
    }

    #[test]
    fn other_clients_and_messages_are_dropped() {
        let on_547 = meta(CLIENT_LL, ListenPort::Dhcp);
        let mut windows = client(MessageType::Solicit, b"MSFT 5.0", ClientArch::EfiX64);
        assert_eq!(
            classify_it(&windows, &on_547).unwrap_err(),
            DropReason::NotBootClient
        );
        windows.msg_type = MessageType::Renew;
        assert!(classify_it(&windows, &on_547).is_err());
        let mut anonymous = client(MessageType::Solicit, b"PXEClient", ClientArch::EfiX64);
        anonymous.options.retain(|o| o.code() != code::CLIENT_ID);
        assert_eq!(
            classify_it(&anonymous, &on_547).unwrap_err(),
            DropReason::NoClientId
        );
        let release = client(MessageType::Release, b"PXEClient", ClientArch::EfiX64);
        assert_eq!(
            classify_it(&release, &on_547).unwrap_err(),
            DropReason::UnsupportedMessageType(MessageType::Release)
        );
        let solicit = client(MessageType::Solicit, b"PXEClient", ClientArch::EfiX64);
        assert_eq!(
            classify_it(&solicit, &meta("2001:db8::5", ListenPort::Dhcp)).unwrap_err(),
            DropReason::NoMac,
            "a global source without EUI-64 and no DUID MAC"
        );
    }
}
