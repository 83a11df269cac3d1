//! The receive loops and the per-request resolver call.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use netboot_core::{BootDecision, BootResolver};
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
    match classify(&meta, bytes) {
        Ok(pending) => {
            answer_inline_or_spawn(answer(shared.clone(), socket.clone(), pending, received), shared)
        }
        Err(reason) => tracing::debug!(source = %received.source, %reason, "dropped"),
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

async fn answer(shared: Arc<Shared>, socket: Arc<PktInfoSocket>, pending: PendingClient, received: Received) {
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
    let reply = match pending.respond(&decision, &shared.settings) {
        Ok(reply) => reply,
        Err(reason) => {
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
        Ok(_) => tracing::info!(
            mac = %class.mac,
            arch = %class.arch,
            client = ?class.kind,
            message = ?class.message_type,
            decision = decision.kind(),
            to = %dest,
            "answered"
        ),
        Err(error) => tracing::warn!(mac = %class.mac, to = %dest, %error, "sending reply failed"),
    }
}
