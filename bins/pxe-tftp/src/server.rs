//! The tokio driver: listening sockets, one task per transfer, the sans-IO machine inside.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use netboot_config::TftpConfig;
use netboot_tftp::request::{classify, Incoming, Refusal};
use netboot_tftp::{negotiate, write_error, BlockSize, ErrorCode, Outcome, ReadTransfer, TftpLimits};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::files::RootDir;

/// Largest request accepted on the listening port; RRQs are a few hundred bytes.
const MAX_REQUEST: usize = 2048;
/// Datagrams a single-port transfer may have queued before more are dropped, as a full
/// socket buffer would.
const INBOX_DEPTH: usize = 32;
/// A datagram handed from the single-port dispatcher to its transfer, copied inline so
/// forwarding an ACK allocates nothing. ACKs are 4 or 5 bytes; ERROR messages are cut to fit.
struct Inbound {
    len: usize,
    bytes: [u8; 516],
}

/// State shared by the listener and every transfer.
#[derive(Debug)]
struct Shared {
    files: RootDir,
    limits: TftpLimits,
    permits: Arc<Semaphore>,
    /// Clients with a transfer in progress, so a retransmitted RRQ does not start a second one.
    active: Mutex<HashSet<SocketAddr>>,
}

/// A bound TFTP server, ready to [`TftpServer::serve`].
#[derive(Debug)]
pub struct TftpServer {
    sockets: Vec<Arc<UdpSocket>>,
    single_port: bool,
    shared: Arc<Shared>,
}

/// Turns `[tftp]` into protocol limits.
pub fn limits_from_config(config: &TftpConfig) -> anyhow::Result<TftpLimits> {
    Ok(TftpLimits {
        max_blksize: BlockSize::try_from(config.max_blksize).context("tftp.max_blksize")?,
        max_window: config.max_window,
        default_timeout: Duration::from_millis(config.timeout_ms),
        retries: config.retries,
    })
}

impl TftpServer {
    /// Opens the root and binds every `listen` address (port 0 picks a free port).
    pub async fn bind(config: &TftpConfig, root: &std::path::Path) -> anyhow::Result<Self> {
        let files = RootDir::new(
            root,
            config.case_insensitive,
            config.cache_max_file_bytes,
            config.cache_total_bytes,
        )
        .with_context(|| format!("opening tftp root {}", root.display()))?;
        let mut sockets = Vec::new();
        for addr in &config.listen {
            let socket = UdpSocket::bind(addr)
                .await
                .with_context(|| format!("binding udp {addr}"))?;
            tracing::info!("listening on {}", socket.local_addr()?);
            sockets.push(Arc::new(socket));
        }
        tracing::info!(root = %files.root().display(), single_port = config.single_port, "serving");
        Ok(Self {
            sockets,
            single_port: config.single_port,
            shared: Arc::new(Shared {
                files,
                limits: limits_from_config(config)?,
                permits: Arc::new(Semaphore::new(config.max_transfers)),
                active: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The bound addresses, in `listen` order.
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.sockets.iter().map(|s| s.local_addr()).collect()
    }

    /// Serves until `shutdown` resolves; transfers still running are then aborted.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let mut listeners = JoinSet::new();
        for socket in self.sockets {
            let shared = self.shared.clone();
            if self.single_port {
                listeners.spawn(listen_single_port(socket, shared));
            } else {
                listeners.spawn(listen(socket, shared));
            }
        }
        tokio::select! {
            () = shutdown => {
                tracing::info!("shutting down");
                Ok(())
            }
            Some(result) = listeners.join_next() => {
                result.context("listener task")?.context("listener")
            }
        }
    }
}

/// Default mode: each transfer gets its own socket and port (RFC 1350's transfer IDs).
async fn listen(socket: Arc<UdpSocket>, shared: Arc<Shared>) -> anyhow::Result<()> {
    let local_ip = socket.local_addr()?.ip();
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut transfers = JoinSet::new();
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (len, peer) = match received {
                    Ok(r) => r,
                    // ICMP errors from earlier sends surface here on Linux; they are not fatal.
                    Err(e) => { tracing::debug!("recv on request port: {e}"); continue; }
                };
                let Some(permit) = admit(&socket, &shared, &buf[..len], peer).await else { continue };
                let request = buf[..len].to_vec();
                let shared = shared.clone();
                transfers.spawn(async move {
                    let link = match UdpSocket::bind(SocketAddr::new(local_ip, 0)).await {
                        Ok(s) => Link::Own(s),
                        Err(e) => { tracing::warn!(%peer, "binding transfer socket: {e}"); return; }
                    };
                    run_transfer(link, peer, request, &shared).await;
                    release(&shared, peer, permit);
                });
            }
            Some(_) = transfers.join_next(), if !transfers.is_empty() => {}
        }
    }
}

/// Single-port mode: every transfer shares the listening socket; datagrams are routed to
/// transfers by the client's address.
async fn listen_single_port(socket: Arc<UdpSocket>, shared: Arc<Shared>) -> anyhow::Result<()> {
    let routes: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Inbound>>>> = Arc::default();
    let mut buf = vec![0u8; netboot_tftp::wire::MAX_DATAGRAM];
    let mut transfers = JoinSet::new();
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (len, peer) = match received {
                    Ok(r) => r,
                    Err(e) => { tracing::debug!("recv on request port: {e}"); continue; }
                };
                let route = routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&peer).cloned();
                if let Some(inbox) = route {
                    let mut inbound = Inbound { len: len.min(516), bytes: [0; 516] };
                    inbound.bytes[..inbound.len].copy_from_slice(&buf[..inbound.len]);
                    // A full inbox drops the datagram, as a full socket buffer would.
                    let _ = inbox.try_send(inbound);
                    continue;
                }
                let Some(permit) = admit(&socket, &shared, &buf[..len], peer).await else { continue };
                let (sender, inbox) = mpsc::channel(INBOX_DEPTH);
                routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(peer, sender);
                let request = buf[..len].to_vec();
                let (shared, socket, routes) = (shared.clone(), socket.clone(), routes.clone());
                transfers.spawn(async move {
                    run_transfer(Link::Shared { socket, inbox }, peer, request, &shared).await;
                    routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&peer);
                    release(&shared, peer, permit);
                });
            }
            Some(_) = transfers.join_next(), if !transfers.is_empty() => {}
        }
    }
}

/// Decides whether a datagram on the request port starts a transfer; answers refusals.
async fn admit(
    socket: &UdpSocket,
    shared: &Shared,
    datagram: &[u8],
    peer: SocketAddr,
) -> Option<OwnedSemaphorePermit> {
    let refusal = match classify(datagram) {
        Ok(Incoming::Read(_)) => None,
        Ok(Incoming::Write(write)) => {
            tracing::info!(%peer, path = %write.path, "write request refused: uploads are disabled");
            Some((ErrorCode::AccessViolation, "Uploads are disabled"))
        }
        Err(refusal @ Refusal::NotARequest(_)) => {
            tracing::debug!(%peer, "dropped: {refusal}");
            return None;
        }
        Err(refusal) => {
            tracing::info!(%peer, "refused: {refusal}");
            refusal.reply()
        }
    };
    if let Some((code, message)) = refusal {
        send_error(socket, peer, code, message).await;
        return None;
    }
    if !shared
        .active
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(peer)
    {
        tracing::debug!(%peer, "repeated request for a running transfer ignored");
        return None;
    }
    match shared.permits.clone().try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(_) => {
            shared
                .active
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&peer);
            tracing::warn!(%peer, "refused: concurrent transfer limit reached");
            send_error(socket, peer, ErrorCode::NotDefined, "Server busy, try again").await;
            None
        }
    }
}

fn release(shared: &Shared, peer: SocketAddr, permit: OwnedSemaphorePermit) {
    shared
        .active
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&peer);
    drop(permit);
}

async fn send_error(socket: &UdpSocket, peer: SocketAddr, code: ErrorCode, message: &str) {
    let mut packet = [0u8; 128];
    let len = write_error(&mut packet, code, message);
    if let Err(e) = socket.send_to(&packet[..len], peer).await {
        tracing::debug!(%peer, "sending error: {e}");
    }
}

/// How a transfer talks to its client.
enum Link {
    /// Its own socket (default mode).
    Own(UdpSocket),
    /// The shared listening socket, with datagrams routed in by the dispatcher.
    Shared {
        socket: Arc<UdpSocket>,
        inbox: mpsc::Receiver<Inbound>,
    },
}

impl Link {
    async fn send(&self, datagram: &[u8], peer: SocketAddr) -> io::Result<()> {
        match self {
            Self::Own(socket) => socket.send_to(datagram, peer).await.map(drop),
            Self::Shared { socket, .. } => socket.send_to(datagram, peer).await.map(drop),
        }
    }

    /// Next datagram for this transfer and who sent it.
    async fn recv(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            Self::Own(socket) => socket.recv_from(buf).await,
            Self::Shared { inbox, socket } => match inbox.recv().await {
                Some(inbound) => {
                    buf[..inbound.len].copy_from_slice(&inbound.bytes[..inbound.len]);
                    Ok((inbound.len, socket.local_addr()?))
                }
                None => Err(io::Error::other("dispatcher stopped")),
            },
        }
    }

    fn is_own(&self) -> bool {
        matches!(self, Self::Own(_))
    }
}

/// Opens the file and runs one read transfer to its end.
async fn run_transfer(mut link: Link, peer: SocketAddr, request: Vec<u8>, shared: &Shared) {
    let Ok(Incoming::Read(read)) = classify(&request) else {
        return;
    };
    let started = Instant::now();
    let mut source = match shared.files.open_mode(&read.path, read.mode) {
        Ok(source) => source,
        Err(e) => {
            tracing::info!(%peer, path = %read.path, "not served: {e}");
            let (code, message) = e.to_tftp();
            let mut packet = [0u8; 128];
            let len = write_error(&mut packet, code, message);
            let _ = link.send(&packet[..len], peer).await;
            return;
        }
    };
    let size = netboot_tftp::BlockSource::len(&source);
    let agreed = negotiate(&read.request, Some(size), &shared.limits);
    let mut transfer = ReadTransfer::new(&agreed, size, &shared.limits);
    tracing::debug!(%peer, path = %read.path, size, blksize = transfer.blksize(), window = transfer.window(), "transfer started");
    // The only buffers of the transfer, allocated once: blocks are read into `out` in place.
    let mut out = vec![0u8; transfer.max_packet_len()];
    let mut incoming = vec![0u8; 1024];
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    loop {
        let now = Instant::now();
        while let Some(len) = transfer.poll_transmit(now, &mut source, &mut out) {
            if let Err(e) = link.send(&out[..len], peer).await {
                // ICMP unreachable from an earlier packet, or a full buffer: the retransmit
                // timer recovers, or the retry limit ends the transfer.
                tracing::debug!(%peer, "send: {e}");
                break;
            }
        }
        if transfer.outcome().is_some() {
            break;
        }
        let deadline = transfer.poll_timeout().unwrap_or(now + Duration::from_secs(60));
        timer.as_mut().reset(tokio::time::Instant::from_std(deadline));
        tokio::select! {
            received = link.recv(&mut incoming) => match received {
                Ok((len, from)) if from == peer || !link.is_own() => transfer.handle_datagram(Instant::now(), &incoming[..len]),
                Ok((_, stranger)) => {
                    // RFC 1350: a packet from another port gets ERROR 5 and the transfer goes on.
                    let mut packet = [0u8; 64];
                    let len = write_error(&mut packet, ErrorCode::UnknownTransferId, "Unknown transfer ID");
                    let _ = link.send(&packet[..len], stranger).await;
                }
                Err(e) if link.is_own() => tracing::debug!(%peer, "recv: {e}"),
                Err(_) => break,
            },
            () = &mut timer => transfer.handle_timeout(Instant::now()),
        }
    }
    let outcome = transfer.outcome().cloned().unwrap_or(Outcome::TimedOut);
    let elapsed = started.elapsed();
    let resent = transfer.retransmitted_blocks();
    match outcome {
        Outcome::Complete => tracing::info!(%peer, path = %read.path, size, ?elapsed, resent, "sent"),
        Outcome::OptionsDeclined { code } => {
            tracing::debug!(%peer, path = %read.path, ?code, "client declined the options")
        }
        other => {
            tracing::warn!(%peer, path = %read.path, acked = transfer.bytes_acked(), ?other, "transfer ended early")
        }
    }
}
