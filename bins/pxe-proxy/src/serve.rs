//! The receive loops and the per-request resolver call.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use netboot_core::{BootDecision, BootResolver};
use netboot_dhcp::chainload::ChainloadGuard;
use netboot_dhcp::proxy::{classify, ListenPort, PendingClient, ProxySettings, ReplyTarget, RequestMeta};
use netboot_runtime::udp::{PktInfoSocket, Received};
use tokio::task::JoinSet;

use crate::BoundProxy;

/// Lookups still waiting for a slow resolver, across all sockets. Beyond this, new
/// requests that cannot be answered at once are dropped; PXE clients retry.
const MAX_PENDING_LOOKUPS: usize = 4096;

/// Large enough for any DHCP message a client sends (they stay within one Ethernet frame).
const RECEIVE_BUFFER: usize = 4096;

struct Shared {
    settings: ProxySettings,
    resolver: Arc<dyn BootResolver>,
    deadline: Duration,
    server_address: Option<Ipv4Addr>,
    pending_lookups: AtomicUsize,
    /// Which machines were just handed a boot program, so their chainloaded iPXE gets the script.
    chainloaded: Mutex<ChainloadGuard>,
}

pub(crate) async fn serve(
    proxy: BoundProxy,
    resolver: Arc<dyn BootResolver>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shared = Arc::new(Shared {
        settings: proxy.settings,
        resolver,
        deadline: Duration::from_millis(proxy.config.resolver.deadline_ms),
        server_address: proxy.config.proxy.server_address,
        pending_lookups: AtomicUsize::new(0),
        chainloaded: Mutex::new(ChainloadGuard::default()),
    });
    let mut loops = JoinSet::new();
    for bound in proxy.sockets {
        loops.spawn(receive_loop(Arc::new(bound.socket), bound.port, shared.clone()));
    }
    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => tracing::info!("shutting down"),
        Some(result) = loops.join_next() => {
            loops.shutdown().await;
            result??;
        }
    }
    // The loops hold no state worth finishing; answers already being resolved finish in
    // their own tasks while the runtime lives.
    loops.shutdown().await;
    Ok(())
}

/// Receives and answers until an unrecoverable socket error; cancelled at shutdown.
async fn receive_loop(
    socket: Arc<PktInfoSocket>,
    port: ListenPort,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    loop {
        match socket.recv(&mut buf).await {
            Ok(received) => handle(&shared, &socket, port, received, &buf[..received.len]),
            // ICMP errors from earlier sends surface here on Linux; they concern one client.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tracing::debug!(error = %e, "ignoring ICMP error");
            }
            Err(e) => return Err(anyhow::Error::new(e).context("receiving on the proxy socket")),
        }
    }
}

fn handle(
    shared: &Arc<Shared>,
    socket: &Arc<PktInfoSocket>,
    port: ListenPort,
    received: Received,
    bytes: &[u8],
) {
    let Some(server_addr) = shared
        .server_address
        .or(received.local_addr)
        .filter(|a| !a.is_unspecified())
    else {
        tracing::warn!(source = %received.source, "no local address for the receiving interface; set proxy.server_address");
        return;
    };
    let meta = RequestMeta {
        source: received.source,
        server_addr,
        port,
    };
    let metrics = &netboot_records::telemetry().metrics.dhcp;
    metrics.requests.inc(port_label(port));
    match classify(&meta, bytes) {
        Ok(pending) => answer_inline_or_spawn(
            answer(shared.clone(), socket.clone(), pending, received, port),
            shared,
        ),
        Err(reason) => {
            metrics.drops.inc(drop_label(&reason));
            tracing::debug!(source = %received.source, %reason, "dropped")
        }
    }
}

/// Runs the answer at once when the resolver decides without waiting (the static resolver,
/// a warm cache), and moves it to its own task otherwise, so a slow lookup holds no one else.
fn answer_inline_or_spawn(job: impl Future<Output = ()> + Send + 'static, shared: &Arc<Shared>) {
    let mut job = Box::pin(job);
    if let Poll::Ready(()) = job.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        return;
    }
    if shared.pending_lookups.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING_LOOKUPS {
        shared.pending_lookups.fetch_sub(1, Ordering::Relaxed);
        tracing::warn!("{MAX_PENDING_LOOKUPS} resolver lookups pending; dropping a request");
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        job.await;
        shared.pending_lookups.fetch_sub(1, Ordering::Relaxed);
    });
}

async fn answer(
    shared: Arc<Shared>,
    socket: Arc<PktInfoSocket>,
    pending: PendingClient,
    received: Received,
    port: ListenPort,
) {
    let client_ip = *received.source.ip();
    let request = pending.request();
    let decision =
        match netboot_runtime::resolve_with_deadline(&shared.resolver, &request, shared.deadline).await {
            Ok(decision) => decision,
            Err(error) => {
                // iPXE asks the resolver again for its script; the HTTPS service applies its
                // own fallback there.
                tracing::warn!(mac = %request.mac, %error, "resolver failed; chainloading iPXE");
                BootDecision::EXIT
            }
        };
    let class = pending.class();
    let replied = {
        // A poisoned lock only means another answer panicked mid-update; the map stays usable.
        let mut guard = shared.chainloaded.lock().unwrap_or_else(|e| e.into_inner());
        pending.respond_remembering(&decision, &shared.settings, &mut guard, Instant::now())
    };
    let reply = match replied {
        Ok(reply) => reply,
        Err(reason) => {
            netboot_records::telemetry().metrics.dhcp.drops.inc(match reason {
                netboot_dhcp::proxy::NoReply::Ignored => "ignored_by_resolver",
                _ => "no_boot_file",
            });
            tracing::info!(mac = %class.mac, arch = %class.arch, %reason, "not answering");
            return;
        }
    };
    let (dest, from) = match reply.target {
        ReplyTarget::Broadcast { port } => (SocketAddrV4::new(Ipv4Addr::BROADCAST, port), received),
        // Unicasts follow the routing table; only the source address is pinned.
        ReplyTarget::Unicast(dest) | ReplyTarget::Relay(dest) => (
            dest,
            Received {
                ifindex: 0,
                ..received
            },
        ),
    };
    match socket.send(&reply.bytes, dest, Some(&from)).await {
        Ok(_) => {
            record_offer(&shared.settings, class, port, client_ip, reply.hands_boot_program);
            tracing::info!(
                mac = %class.mac,
                arch = %class.arch,
                client = ?class.kind,
                message = ?class.message_type,
                decision = decision.kind(),
                answer = if reply.hands_boot_program { "boot-file" } else { "script-url" },
                socket = port_label(port),
                to = %dest,
                "answered"
            )
        }
        Err(error) => tracing::warn!(mac = %class.mac, to = %dest, %error, "sending reply failed"),
    }
}

fn port_label(port: ListenPort) -> &'static str {
    match port {
        ListenPort::Dhcp => "dhcp",
        _ => "pxe",
    }
}

/// A stable metrics label per drop reason.
fn drop_label(reason: &netboot_dhcp::pxe::DropReason) -> &'static str {
    use netboot_dhcp::pxe::DropReason;
    match reason {
        DropReason::Malformed(_) => "malformed",
        DropReason::NotBootRequest(_) => "not_boot_request",
        DropReason::NotEthernet { .. } => "not_ethernet",
        DropReason::NoMessageType => "no_message_type",
        DropReason::UnsupportedMessageType(_) => "unsupported_message_type",
        DropReason::NotBootClient => "not_boot_client",
        DropReason::AddressedElsewhere(_) => "addressed_elsewhere",
        _ => "other",
    }
}

/// Counts the reply and records the offer on the machine's boot timeline.
fn record_offer(
    settings: &ProxySettings,
    class: &netboot_dhcp::pxe::ClientClass,
    port: ListenPort,
    client_ip: Ipv4Addr,
    hands_boot_program: bool,
) {
    use netboot_dhcp::pxe::{ClientKind, IpxeFeatures};
    let telemetry = netboot_records::telemetry();
    telemetry.metrics.dhcp.replies.inc(port_label(port));
    if !telemetry.recorder.is_enabled() {
        return;
    }
    let firmware = match class.kind {
        ClientKind::PxeFirmware if class.arch.is_uefi() => "uefi-pxe",
        ClientKind::PxeFirmware => "bios-pxe",
        ClientKind::HttpBoot => "uefi-http",
        ClientKind::Ipxe => "ipxe",
        _ => "other",
    };
    let features = class.ipxe_features.as_ref().map_or_else(Vec::new, |features| {
        features
            .codes
            .iter()
            .map(|code| match *code {
                IpxeFeatures::HTTPS => "HTTPS".to_string(),
                IpxeFeatures::EFI => "EFI".to_string(),
                other => format!("0x{other:02x}"),
            })
            .collect()
    });
    let offer = netboot_records::ProxyOffer {
        arch: class.arch,
        stage: class.kind.stage(),
        firmware: firmware.into(),
        relay: class.relay.map(std::net::IpAddr::V4),
        nic: class.ndi.map(|(kind, major, minor)| {
            format!("{} {major}.{minor}", if kind == 1 { "UNDI" } else { "NDI" })
        }),
        boot_file: (hands_boot_program && class.kind != ClientKind::HttpBoot)
            .then(|| settings.boot_file(class.arch))
            .flatten()
            .map(str::to_string),
        server_port: match port {
            ListenPort::Dhcp => 67,
            _ => 4011,
        },
        ipxe_features: features,
    };
    let event = netboot_records::Event::now(class.mac, netboot_records::EventDetail::ProxyOffer(offer))
        .with_uuid(class.uuid)
        // A relayed request's source is the relay agent, not the machine.
        .with_ip(class.relay.is_none().then_some(std::net::IpAddr::V4(client_ip)));
    telemetry.recorder.record(event);
}
