//! DHCPv6 beside the site's DHCPv6 server: UDP 547 joined to ff02::1:2 (All DHCP Relay Agents
//! and Servers) on every interface with IPv6, or on those in `[proxy] interfaces`, and the PXE
//! boot-server exchange on `[::]:4011`. The protocol is the sans-IO [`netboot_dhcp::v6`]; this
//! module owns the sockets, the group memberships, the choice of the address put in URLs, and
//! the per-client-id MAC memory.
//!
//! Interfaces that come up later are joined within [`MEMBERSHIP_REFRESH`].

use std::net::{Ipv6Addr, SocketAddrV6};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netboot_config::Config;
use netboot_dhcp::proxy::ListenPort;
use netboot_dhcp::v6::class::{ClientMacs, DropReason};
use netboot_dhcp::v6::proxy::{classify, PendingClient6, RequestMeta6};
use netboot_dhcp::v6::wire::Duid;
use netboot_runtime::udp::UdpOptions;
use netboot_runtime::udp6::{
    ipv6_interfaces, is_ipv6_unavailable, is_link_local, Ipv6Interface, Pkt6Socket, Received6,
};
use netboot_service::LocalAddr;
use tokio::task::JoinSet;

use crate::reflection::Refused;
use crate::serve::{self, Loop};
use crate::Answering;

/// All_DHCP_Relay_Agents_and_Servers (RFC 8415 section 7.1).
pub(crate) const ALL_DHCP_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// How often new interfaces are looked for and joined to the DHCPv6 group.
pub(crate) const MEMBERSHIP_REFRESH: Duration = Duration::from_secs(10);

/// Large enough for any DHCPv6 message a client or relay sends in one datagram.
const RECEIVE_BUFFER: usize = 8192;

/// The DHCPv6 sockets, bound and not yet serving.
#[derive(Debug)]
pub(crate) struct BoundDhcp6 {
    sockets: Vec<Socket6>,
}

#[derive(Debug)]
struct Socket6 {
    socket: Arc<Pkt6Socket>,
    port: ListenPort,
    /// The interface it is bound to (`interfaces`), or `None` for every interface.
    interface: Option<String>,
}

/// Binds the DHCPv6 and IPv6 boot-server sockets `[proxy]` asks for; `None` when `dhcpv6`
/// is off or the host has no IPv6 at all.
pub(crate) fn bind(config: &Config, receive_buffer: usize) -> anyhow::Result<Option<BoundDhcp6>> {
    let proxy = &config.proxy;
    if !proxy.dhcpv6 {
        return Ok(None);
    }
    let interfaces: Vec<Option<String>> = if proxy.interfaces.is_empty() {
        vec![None]
    } else {
        proxy.interfaces.iter().cloned().map(Some).collect()
    };
    let mut sockets = Vec::new();
    for (kind, configured) in [
        (ListenPort::Dhcp, proxy.dhcpv6_port),
        (ListenPort::PxeBootServer, proxy.pxe_port),
    ] {
        let mut port = configured;
        for interface in &interfaces {
            let addr = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0);
            let options = UdpOptions {
                broadcast: false,
                device: interface.clone(),
                reuse_address: false,
                receive_buffer: Some(receive_buffer),
            };
            let socket = match Pkt6Socket::bind(addr, &options) {
                Ok(socket) => socket,
                Err(e) if is_ipv6_unavailable(&e) => {
                    tracing::warn!("IPv6 is not available on this host: DHCPv6 is off");
                    return Ok(None);
                }
                Err(e) => {
                    return Err(crate::bind_error(e, &addr.to_string(), interface.as_deref()));
                }
            };
            port = socket.local_addr()?.port();
            sockets.push(Socket6 {
                socket: Arc::new(socket),
                port: kind,
                interface: interface.clone(),
            });
        }
    }
    Ok(Some(BoundDhcp6 { sockets }))
}

/// This server's DUID: a DUID-LL of the first interface with an Ethernet address, so it stays
/// the same across restarts; a fixed locally administered one on a host without any.
pub(crate) fn server_duid() -> Duid {
    let mac = ipv6_interfaces()
        .ok()
        .and_then(|interfaces| interfaces.iter().find_map(|i| i.mac));
    Duid::link_layer(mac.unwrap_or([0x02, 0, 0, 0, 0, 0x01]))
}

impl BoundDhcp6 {
    /// The bound addresses, with which port each serves.
    pub(crate) fn local_addrs(&self) -> Vec<(ListenPort, SocketAddrV6)> {
        self.sockets
            .iter()
            .filter_map(|s| Some((s.port, s.socket.local_addr().ok()?)))
            .collect()
    }

    /// The bound addresses as the `listening on` lines name them.
    pub(crate) fn described_addrs(&self) -> Vec<LocalAddr> {
        self.sockets
            .iter()
            .filter_map(|bound| {
                let what = match bound.port {
                    ListenPort::Dhcp => "dhcpv6",
                    _ => "pxe boot server, IPv6",
                };
                let on = bound
                    .interface
                    .as_deref()
                    .map(|i| format!(" on {i}"))
                    .unwrap_or_default();
                let addr = bound.socket.local_addr().ok()?;
                Some(LocalAddr::new(addr.into(), format!("{what}{on}")))
            })
            .collect()
    }
}

/// What the DHCPv6 answers need beyond [`Loop`].
struct State6 {
    /// Which MAC each client id had; EDK2's port-4011 request comes from an address that does
    /// not show it.
    macs: Mutex<ClientMacs>,
    /// The interfaces and their addresses, refreshed with the memberships.
    interfaces: Mutex<Vec<Ipv6Interface>>,
}

/// Starts the receive loops and the membership refresher in `loops`.
pub(crate) fn spawn(bound: BoundDhcp6, shared: &Loop, loops: &mut JoinSet<anyhow::Result<()>>) {
    tracing::info!(duid = %shared.answers.current().settings6.server_duid, "DHCPv6 server identifier");
    let state = Arc::new(State6 {
        macs: Mutex::new(ClientMacs::default()),
        interfaces: Mutex::new(Vec::new()),
    });
    let group_sockets: Vec<(Arc<Pkt6Socket>, Option<String>)> = bound
        .sockets
        .iter()
        .filter(|s| s.port == ListenPort::Dhcp)
        .map(|s| (s.socket.clone(), s.interface.clone()))
        .collect();
    loops.spawn(refresh_memberships(group_sockets, state.clone()));
    for bound in bound.sockets {
        loops.spawn(receive_loop(
            bound.socket,
            bound.port,
            shared.clone(),
            state.clone(),
        ));
    }
}

/// Joins ff02::1:2 on every interface with IPv6 (or the socket's own), now and whenever a new
/// one appears; keeps the address cache current. Never ends by itself.
async fn refresh_memberships(
    sockets: Vec<(Arc<Pkt6Socket>, Option<String>)>,
    state: Arc<State6>,
) -> anyhow::Result<()> {
    let mut joined: Vec<(usize, u32)> = Vec::new();
    let mut ticker = tokio::time::interval(MEMBERSHIP_REFRESH);
    loop {
        ticker.tick().await;
        let interfaces = match ipv6_interfaces() {
            Ok(interfaces) => interfaces,
            Err(error) => {
                tracing::warn!(%error, "listing interfaces");
                continue;
            }
        };
        for (index, (socket, only)) in sockets.iter().enumerate() {
            for interface in interfaces
                .iter()
                .filter(|i| only.as_ref().is_none_or(|name| *name == i.name))
            {
                if joined.contains(&(index, interface.index)) {
                    continue;
                }
                match socket.join_multicast(&ALL_DHCP_RELAY_AGENTS_AND_SERVERS, interface.index) {
                    Ok(()) => tracing::debug!(interface = %interface.name, "joined ff02::1:2"),
                    Err(error) => {
                        tracing::warn!(interface = %interface.name, %error, "joining ff02::1:2");
                        continue;
                    }
                }
                joined.push((index, interface.index));
            }
        }
        // An interface that went away frees its index; forget it so a new one is joined.
        joined.retain(|(_, ifindex)| interfaces.iter().any(|i| i.index == *ifindex));
        *state.interfaces.lock().unwrap_or_else(|e| e.into_inner()) = interfaces;
    }
}

/// Receives and answers until an unrecoverable socket error; cancelled at shutdown.
async fn receive_loop(
    socket: Arc<Pkt6Socket>,
    port: ListenPort,
    shared: Loop,
    state: Arc<State6>,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    loop {
        match socket.recv(&mut buf).await {
            Ok(received) => handle(&shared, &state, &socket, port, received, &buf[..received.len]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tracing::debug!(error = %e, "ignoring ICMPv6 error");
            }
            Err(e) => return Err(anyhow::Error::new(e).context("receiving on the DHCPv6 socket")),
        }
    }
}

fn handle(
    shared: &Loop,
    state: &Arc<State6>,
    socket: &Arc<Pkt6Socket>,
    port: ListenPort,
    received: Received6,
    bytes: &[u8],
) {
    let answering = shared.answers.current();
    let metrics = &shared.shared.telemetry.metrics.dhcp;
    metrics.requests.inc(port_label(port));
    let Some(server_addr) = answering
        .server_address6
        .or_else(|| url_address(state, &received))
    else {
        tracing::warn!(source = %received.source, "no routable IPv6 address on the receiving interface; set proxy.server_address6");
        return;
    };
    let mut meta = RequestMeta6 {
        source: received.source,
        server_addr,
        port,
        source_mac: None,
    };
    let classified = {
        let macs = state.macs.lock().unwrap_or_else(|e| e.into_inner());
        match classify(&meta, bytes, &answering.settings6, &macs) {
            // Last resort: the kernel's neighbour table (a client after a restart of this
            // server, whose Solicit it did not see).
            Err(DropReason::NoMac) => {
                meta.source_mac = netboot_records::neighbours::lookup((*received.source.ip()).into());
                classify(&meta, bytes, &answering.settings6, &macs)
            }
            other => other,
        }
    };
    match classified {
        Ok(pending) => {
            // Replies go back to the request's source (the client, or the relay agent that
            // forwarded it): a forged source must not turn the proxy into a reflector.
            if !shared
                .shared
                .destinations
                .take(*received.source.ip(), Instant::now())
            {
                metrics.drops.inc(Refused::RateLimited.metric_label());
                tracing::debug!(source = %received.source, reason = %Refused::RateLimited, "dropped");
                return;
            }
            pending.remember_mac(&mut state.macs.lock().unwrap_or_else(|e| e.into_inner()));
            serve::answer_inline_or_spawn(
                answer(
                    shared.shared.clone(),
                    answering,
                    socket.clone(),
                    pending,
                    received,
                    port,
                ),
                &shared.shared,
            );
        }
        Err(reason) => {
            metrics.drops.inc(drop_label(&reason));
            tracing::debug!(source = %received.source, %reason, "dropped");
        }
    }
}

/// The address to put in URLs for a request: the one it was sent to when that is routable
/// (a relay's or a port-4011 unicast), else a routable address of the receiving interface.
fn url_address(state: &State6, received: &Received6) -> Option<Ipv6Addr> {
    if let Some(destination) = received.destination {
        if !destination.is_multicast() && !is_link_local(&destination) && !destination.is_loopback() {
            return Some(destination);
        }
    }
    let near = Some(received.source.ip()).filter(|ip| !is_link_local(ip));
    let pick = |interfaces: &[Ipv6Interface]| {
        interfaces
            .iter()
            .find(|i| i.index == received.ifindex)
            .and_then(|i| i.routable_address(near))
    };
    let cached = pick(&state.interfaces.lock().unwrap_or_else(|e| e.into_inner()));
    cached.or_else(|| {
        // An interface or address newer than the last refresh.
        let fresh = ipv6_interfaces().ok()?;
        let found = pick(&fresh);
        *state.interfaces.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        found
    })
}

async fn answer(
    shared: Arc<serve::Shared>,
    answering: Arc<Answering>,
    socket: Arc<Pkt6Socket>,
    pending: PendingClient6,
    received: Received6,
    port: ListenPort,
) {
    let request = pending.request();
    let decision = serve::decide(&shared, &request).await;
    let class = pending.class();
    let replied = {
        let mut guard = shared.chainloaded.lock().unwrap_or_else(|e| e.into_inner());
        pending.respond_remembering(
            &decision,
            &answering.settings,
            &answering.settings6,
            &mut guard,
            Instant::now(),
        )
    };
    let reply = match replied {
        Ok(reply) => reply,
        Err(reason) => {
            shared.not_answering(&answering, &reason, &request, class.vendor_class.as_deref());
            return;
        }
    };
    // Answer from the address the request was sent to, unless that was the multicast group.
    let source = received
        .destination
        .filter(|d| !d.is_multicast())
        .unwrap_or(Ipv6Addr::UNSPECIFIED);
    let ifindex = if is_link_local(reply.target.ip()) {
        received.ifindex
    } else {
        0
    };
    if let Err(error) = socket.send(&reply.bytes, reply.target, source, ifindex).await {
        tracing::warn!(mac = %class.mac, to = %reply.target, %error, "sending reply failed");
        return;
    }
    let telemetry = &shared.telemetry;
    let sender = *received.source.ip();
    let relayed = pending.relay_hops() > 0;
    if !relayed && !is_link_local(&sender) {
        // TFTP and HTTP requests come from this address: name the machine behind it.
        telemetry
            .identities
            .remember(sender.into(), class.mac, class.uuid);
    }
    telemetry.metrics.dhcp.replies.inc(port_label(port));
    if telemetry.recorder.is_enabled() {
        let boot_file = reply
            .hands_boot_program
            .then(|| answering.settings.boot_file(class.arch))
            .flatten();
        let relay = relayed.then_some(sender);
        let offer = netboot_records::ProxyOffer::answered6(class, port, boot_file, relay);
        telemetry
            .recorder
            .record(offer.into_event6(class, class.relayed_from.unwrap_or(sender)));
    }
    tracing::info!(
        mac = %class.mac,
        arch = %class.arch,
        client = ?class.kind,
        message = ?class.message_type,
        decision = decision.kind(),
        answer = if reply.hands_boot_program { "boot-file" } else { "script-url" },
        socket = port_label(port),
        to = %reply.target,
        url = %reply.url,
        relays = pending.relay_hops(),
        "answered"
    );
}

fn port_label(port: ListenPort) -> &'static str {
    match port {
        ListenPort::Dhcp => "dhcpv6",
        _ => "pxe6",
    }
}

/// A stable metrics label per drop reason.
fn drop_label(reason: &DropReason) -> &'static str {
    match reason {
        DropReason::Malformed(_) => "malformed",
        DropReason::UnsupportedMessageType(_) => "unsupported_message_type",
        DropReason::NoRelayedMessage => "no_relayed_message",
        DropReason::NotBootClient => "not_boot_client",
        DropReason::NoClientId => "no_client_id",
        DropReason::NoMac => "no_mac",
        DropReason::AddressedElsewhere(_) => "addressed_elsewhere",
        DropReason::NoServerId => "no_server_id",
        DropReason::IpxeSolicit => "ipxe_solicit",
        _ => "other",
    }
}
