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
use crate::workers::Workers;

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
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let workers = Arc::new(Workers::start(cores).context("starting transfer worker threads")?);
        let mut listeners = JoinSet::new();
        for socket in self.sockets {
            let (shared, workers) = (self.shared.clone(), workers.clone());
            if self.single_port {
                listeners.spawn(listen_single_port(socket, shared, workers));
            } else {
                listeners.spawn(listen(socket, shared, workers));
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
async fn listen(socket: Arc<UdpSocket>, shared: Arc<Shared>, workers: Arc<Workers>) -> anyhow::Result<()> {
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
                workers.spawn(&mut transfers, async move {
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
async fn listen_single_port(
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    workers: Arc<Workers>,
) -> anyhow::Result<()> {
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
                workers.spawn(&mut transfers, async move {
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

/// Lets new requests from `peer` start transfers again.
fn forget_peer(shared: &Shared, peer: SocketAddr) {
    shared
        .active
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&peer);
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

    fn socket(&self) -> &UdpSocket {
        match self {
            Self::Own(socket) => socket,
            Self::Shared { socket, .. } => socket,
        }
    }

    /// Sends `batch`, a run of datagrams of `segment` bytes each (the last may be shorter).
    /// With UDP GSO the kernel splits one buffer into the datagrams, so a whole window costs
    /// one system call; without it (`gso` false, or the kernel refuses) they go one by one.
    async fn send_batch(
        &self,
        batch: &[u8],
        segment: usize,
        peer: SocketAddr,
        gso: &mut bool,
    ) -> io::Result<()> {
        if batch.len() <= segment {
            return self.send(batch, peer).await;
        }
        if *gso {
            match send_gso(self.socket(), batch, segment, peer).await {
                Ok(()) => return Ok(()),
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(
                            libc_codes::EIO
                                | libc_codes::EINVAL
                                | libc_codes::ENOPROTOOPT
                                | libc_codes::EOPNOTSUPP
                        )
                    ) =>
                {
                    tracing::debug!("UDP GSO unavailable ({e}); sending datagrams one by one");
                    *gso = false;
                }
                Err(e) => return Err(e),
            }
        }
        for datagram in batch.chunks(segment) {
            self.send(datagram, peer).await?;
        }
        Ok(())
    }

    fn is_own(&self) -> bool {
        matches!(self, Self::Own(_))
    }
}

/// Error numbers that mean "this kernel or device cannot do UDP GSO".
mod libc_codes {
    pub(super) const EIO: i32 = nix::errno::Errno::EIO as i32;
    pub(super) const EINVAL: i32 = nix::errno::Errno::EINVAL as i32;
    pub(super) const ENOPROTOOPT: i32 = nix::errno::Errno::ENOPROTOOPT as i32;
    pub(super) const EOPNOTSUPP: i32 = nix::errno::Errno::EOPNOTSUPP as i32;
}

/// Largest UDP payload one GSO send may carry, and the kernel's segment limit.
const GSO_MAX_BYTES: usize = 65_000;
const GSO_MAX_SEGMENTS: usize = 64;

async fn send_gso(socket: &UdpSocket, batch: &[u8], segment: usize, peer: SocketAddr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let segment = u16::try_from(segment).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let address = nix::sys::socket::SockaddrStorage::from(peer);
    socket
        .async_io(tokio::io::Interest::WRITABLE, || {
            let iov = [io::IoSlice::new(batch)];
            let control = [nix::sys::socket::ControlMessage::UdpGsoSegments(&segment)];
            nix::sys::socket::sendmsg(
                socket.as_raw_fd(),
                &iov,
                &control,
                nix::sys::socket::MsgFlags::empty(),
                Some(&address),
            )
            .map_err(io::Error::from)
        })
        .await
        .map(drop)
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
            record_transfer(
                peer,
                &read.path.to_string(),
                None,
                0,
                started.elapsed(),
                0,
                Err(("not_served", e.to_string())),
            );
            let (code, message) = e.to_tftp();
            let mut packet = [0u8; 128];
            let len = write_error(&mut packet, code, message);
            // Forget the client first: it may ask again from the same port as soon as it has
            // this error, and that request must not look like a repeat of this one.
            forget_peer(shared, peer);
            let _ = link.send(&packet[..len], peer).await;
            return;
        }
    };
    let size = netboot_tftp::BlockSource::len(&source);
    let agreed = negotiate(&read.request, Some(size), &shared.limits);
    let mut transfer = ReadTransfer::new(&agreed, size, &shared.limits);
    let metrics = &netboot_records::telemetry().metrics.tftp;
    metrics.active.inc();
    tracing::debug!(%peer, path = %read.path, size, blksize = transfer.blksize(), window = transfer.window(), "transfer started");
    // The only buffers of the transfer, allocated once: blocks are read in place into `out`,
    // a window's worth at a time when windows are negotiated.
    let segment = netboot_tftp::wire::DATA_HEADER_LEN + transfer.blksize();
    let batch_capacity = if transfer.window() > 1 {
        segment
            * (transfer.window() as usize)
                .min(GSO_MAX_SEGMENTS)
                .min(GSO_MAX_BYTES / segment)
                .max(1)
    } else {
        segment
    };
    let packet_room = transfer.max_packet_len();
    let mut out = vec![0u8; batch_capacity + packet_room];
    let mut gso = true;
    let mut incoming = vec![0u8; 1024];
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    loop {
        let now = Instant::now();
        let mut used = 0;
        loop {
            let sent = transfer.poll_transmit(now, &mut source, &mut out[used..used + packet_room]);
            if let Some(len) = sent {
                used += len;
                // Full-size DATA packets accumulate; anything shorter ends a GSO batch.
                if len == segment && used + segment <= batch_capacity {
                    continue;
                }
            }
            if used > 0 {
                if let Err(e) = link.send_batch(&out[..used], segment, peer, &mut gso).await {
                    // ICMP unreachable from an earlier packet, or a full buffer: the
                    // retransmit timer recovers, or the retry limit ends the transfer.
                    tracing::debug!(%peer, "send: {e}");
                }
                used = 0;
            }
            if sent.is_none() {
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
    forget_peer(shared, peer);
    let outcome = transfer.outcome().cloned().unwrap_or(Outcome::TimedOut);
    let elapsed = started.elapsed();
    let resent = transfer.retransmitted_blocks();
    metrics.active.dec();
    let result = match &outcome {
        Outcome::Complete => Ok(()),
        Outcome::OptionsDeclined { .. } => {
            Err(("options_declined", "client declined the options".to_string()))
        }
        Outcome::TimedOut => Err(("timeout", format!("{outcome:?}"))),
        Outcome::ClientError { message, .. } => Err(("client_error", format!("client error: {message}"))),
        other => Err(("failed", format!("{other:?}"))),
    };
    let negotiated = (
        u16::try_from(transfer.blksize()).unwrap_or(u16::MAX),
        u16::try_from(transfer.window()).unwrap_or(u16::MAX),
        size,
    );
    record_transfer(
        peer,
        &read.path.to_string(),
        Some(negotiated),
        transfer.bytes_acked(),
        elapsed,
        resent,
        result,
    );
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

/// Counts a finished transfer and records it on the client's boot timeline. TFTP only knows
/// the client's address; the records find the machine behind it.
fn record_transfer(
    peer: SocketAddr,
    path: &str,
    negotiated: Option<(u16, u16, u64)>,
    bytes: u64,
    elapsed: Duration,
    retransmits: impl TryInto<u32>,
    result: Result<(), (&'static str, String)>,
) {
    let telemetry = netboot_records::telemetry();
    let metrics = &telemetry.metrics.tftp;
    let retransmits = retransmits.try_into().unwrap_or(u32::MAX);
    metrics
        .transfers
        .inc(result.as_ref().map_or_else(|(label, _)| *label, |()| "complete"));
    metrics.bytes_sent.add(bytes);
    metrics.retransmits.add(u64::from(retransmits));
    // Declined options are part of a normal boot: the firmware asks again without them.
    if !telemetry.recorder.is_enabled() || matches!(result, Err(("options_declined", _))) {
        return;
    }
    let transfer = netboot_records::TftpTransfer {
        file: path.to_string(),
        blksize: negotiated.map(|n| n.0),
        windowsize: negotiated.map(|n| n.1),
        tsize: negotiated.map(|n| n.2),
        bytes,
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        retransmits,
        error: result.err().map(|(_, message)| message),
    };
    telemetry
        .recorder
        .record_for_address(peer.ip(), netboot_records::EventDetail::TftpTransfer(transfer));
}
