//! The receive loops and the per-request resolver call.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use netboot_config::Config;
use netboot_core::{BootDecision, BootRequest, BootResolver};
use netboot_dhcp::chainload::ChainloadGuard;
use netboot_dhcp::proxy::{classify, ListenPort, NoReply, PendingClient, ReplyTarget, RequestMeta};
use netboot_records::Telemetry;
use netboot_runtime::udp::Received;
use netboot_service::Shutdown;
use tokio::task::JoinSet;

use crate::first_run::Unanswered;
use crate::reflection::{unicast_destination, DestinationLimiter, Refused};
use crate::socket::DhcpSocket;
use crate::{Answers, BoundProxy};

/// Lookups still waiting for a slow resolver, across all sockets. Beyond this, new
/// requests that cannot be answered at once are dropped; PXE clients retry.
const MAX_PENDING_LOOKUPS: usize = 4096;

/// Large enough for any DHCP message a client sends (they stay within one Ethernet frame).
const RECEIVE_BUFFER: usize = 4096;

/// What every receive loop and answer shares.
#[derive(Debug)]
pub(crate) struct Shared {
    resolver: Arc<dyn BootResolver>,
    deadline: Duration,
    pub(crate) telemetry: Telemetry,
    pending_lookups: AtomicUsize,
    /// Which machines were just handed a boot program, so their chainloaded iPXE gets the
    /// script; shared by DHCPv4 and DHCPv6, since a machine's firmware and its iPXE may boot
    /// over either.
    pub(crate) chainloaded: Mutex<ChainloadGuard>,
    /// Machines left unanswered by the default rules, reported once each.
    unanswered: Unanswered,
    /// Replies per second to each unicast destination.
    pub(crate) destinations: DestinationLimiter,
}

impl Shared {
    pub(crate) fn new(config: &Config, resolver: Arc<dyn BootResolver>, telemetry: Telemetry) -> Self {
        Self {
            resolver,
            deadline: Duration::from_millis(config.resolver.deadline_ms),
            telemetry,
            pending_lookups: AtomicUsize::new(0),
            chainloaded: Mutex::new(ChainloadGuard::default()),
            unanswered: Unanswered::default(),
            destinations: DestinationLimiter::new(config.proxy.max_replies_per_destination),
        }
    }

    /// Counts a classified request left unanswered (over DHCPv4 or DHCPv6) and says why; a
    /// machine no rule names is reported once, with the line that would answer it.
    pub(crate) fn not_answering(
        &self,
        answering: &crate::Answering,
        reason: &NoReply,
        request: &BootRequest,
        vendor_class: Option<&str>,
    ) {
        self.telemetry.metrics.dhcp.drops.inc(reason.metric_label());
        let reported = matches!(reason, NoReply::Ignored)
            && answering
                .silent_rules
                .as_ref()
                .is_some_and(|rules| self.unanswered.report(rules, request, vendor_class));
        if !reported {
            tracing::info!(mac = %request.mac, arch = %request.arch, %reason, "not answering");
        }
    }
}

/// What one receive loop needs.
#[derive(Debug, Clone)]
pub(crate) struct Loop {
    pub(crate) shared: Arc<Shared>,
    pub(crate) answers: Arc<Answers>,
}

pub(crate) async fn serve(proxy: BoundProxy, shutdown: Shutdown) -> anyhow::Result<()> {
    let shared = Loop {
        shared: Arc::new(proxy.shared),
        answers: proxy.answers,
    };
    let mut loops = JoinSet::new();
    for bound in proxy.sockets {
        loops.spawn(receive_loop(Arc::new(bound.socket), bound.port, shared.clone()));
    }
    if let Some(v6) = proxy.dhcpv6 {
        crate::dhcpv6::spawn(v6, &shared, &mut loops);
    }
    tokio::select! {
        () = shutdown.stop_accepting() => tracing::info!("proxyDHCP: no longer answering"),
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
async fn receive_loop(socket: Arc<DhcpSocket>, port: ListenPort, shared: Loop) -> anyhow::Result<()> {
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

fn handle(shared: &Loop, socket: &Arc<DhcpSocket>, port: ListenPort, received: Received, bytes: &[u8]) {
    let answering = shared.answers.current();
    let Some(server_addr) = answering
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
    let metrics = &shared.shared.telemetry.metrics.dhcp;
    metrics.requests.inc(port.metric_label());
    match classify(&meta, bytes) {
        Ok(pending) => {
            if let Err(refused) = admit(&shared.shared, &answering, port, &received, &pending) {
                metrics.drops.inc(refused.metric_label());
                // Debug only: a flood of forged requests must not flood the log as well.
                tracing::debug!(source = %received.source, reason = %refused, "dropped");
                return;
            }
            answer_inline_or_spawn(
                answer(
                    shared.shared.clone(),
                    answering,
                    socket.clone(),
                    pending,
                    received,
                    port,
                ),
                &shared.shared,
            )
        }
        Err(reason) => {
            metrics.drops.inc(reason.metric_label());
            tracing::debug!(source = %received.source, %reason, "dropped")
        }
    }
}

/// Whether the reply to `pending` may be sent where it would go (see [`crate::reflection`]);
/// decided before the resolver is asked, so refused requests cost no lookup.
fn admit(
    shared: &Shared,
    answering: &crate::Answering,
    port: ListenPort,
    received: &Received,
    pending: &PendingClient,
) -> Result<(), Refused> {
    let destination = unicast_destination(
        port,
        received.source,
        pending.message(),
        &answering.allowed_relays,
    )?;
    match destination {
        Some(destination) if !shared.destinations.take(destination, Instant::now()) => {
            Err(Refused::RateLimited)
        }
        _ => Ok(()),
    }
}

/// Runs the answer at once when the resolver decides without waiting (the static resolver,
/// a warm cache), and moves it to its own task otherwise, so a slow lookup holds no one else.
pub(crate) fn answer_inline_or_spawn(job: impl Future<Output = ()> + Send + 'static, shared: &Arc<Shared>) {
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
    answering: Arc<crate::Answering>,
    socket: Arc<DhcpSocket>,
    pending: PendingClient,
    received: Received,
    port: ListenPort,
) {
    let client_ip = *received.source.ip();
    let request = pending.request();
    let decision = decide(&shared, &request).await;
    let class = pending.class();
    let replied = {
        // A poisoned lock only means another answer panicked mid-update; the map stays usable.
        let mut guard = shared.chainloaded.lock().unwrap_or_else(|e| e.into_inner());
        pending.respond_remembering(&decision, &answering.settings, &mut guard, Instant::now())
    };
    let reply = match replied {
        Ok(reply) => reply,
        Err(reason) => {
            shared.not_answering(&answering, &reason, &request, class.vendor_class.as_deref());
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
            shared.telemetry.metrics.dhcp.replies.inc(port.metric_label());
            if shared.telemetry.recorder.is_enabled() {
                let boot_file = reply
                    .hands_boot_program
                    .then(|| answering.settings.boot_file(class.arch))
                    .flatten();
                let offer = netboot_records::ProxyOffer::answered(class, port, boot_file);
                shared
                    .telemetry
                    .recorder
                    .record(offer.into_event(class, client_ip));
            }
            tracing::info!(
                mac = %class.mac,
                arch = %class.arch,
                client = ?class.kind,
                message = ?class.message_type,
                decision = decision.kind(),
                answer = if reply.hands_boot_program { "boot-file" } else { "script-url" },
                socket = port.metric_label(),
                to = %dest,
                "answered"
            )
        }
        Err(error) => tracing::warn!(mac = %class.mac, to = %dest, %error, "sending reply failed"),
    }
}

/// Asks the resolver within the deadline. Any failure chainloads iPXE: iPXE asks the resolver
/// again for its script, and the HTTPS service applies its own fallback there.
pub(crate) async fn decide(shared: &Shared, request: &BootRequest) -> BootDecision {
    match netboot_runtime::resolve_with_deadline(&shared.resolver, request, shared.deadline).await {
        Ok(decision) => decision,
        Err(error) => {
            tracing::warn!(mac = %request.mac, %error, "resolver failed; chainloading iPXE");
            BootDecision::EXIT
        }
    }
}
