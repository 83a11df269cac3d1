//! The tokio driver: listening sockets, one task per transfer, the sans-IO machine inside.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use netboot_config::{Config, TftpConfig};
use netboot_records::Telemetry;
use netboot_runtime::udp::{enable_destination_info, recv_with_destination, Destination};
use netboot_runtime::udp6::{bind_udp, is_ipv6_unavailable, DualStack};
use netboot_service::{Bound, LocalAddr, Shutdown};
use netboot_tftp::request::{classify, Incoming, Refusal};
use netboot_tftp::{write_error, BlockSize, ErrorCode, TftpLimits};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::arrival::{enable_arrival_stamps, recv_stamped};
use crate::files::RootDir;
use crate::link::{Inbound, Link};
use crate::transfer_socket::TransferSocket;
use crate::upload::UploadDir;
use crate::workers::Workers;

/// Largest request accepted on the listening port; RRQs are a few hundred bytes.
const MAX_REQUEST: usize = 2048;
/// Datagrams a single-port transfer may have queued before more are dropped, as a full
/// socket buffer would.
const INBOX_DEPTH: usize = 32;
/// State shared by the listener and every transfer.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) files: RootDir,
    pub(crate) limits: TftpLimits,
    /// Lower `blksize` to what crosses the path to each client unfragmented.
    fit_blksize_to_mtu: bool,
    /// Where uploads go; `None` refuses every write request.
    pub(crate) uploads: Option<UploadDir>,
    permits: Arc<Semaphore>,
    /// Transfers one client address may run at once.
    max_per_client: usize,
    /// Running transfers per client address (see [`Slot`]).
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// Clients with a transfer in progress, so a retransmitted RRQ does not start a second one.
    active: Mutex<HashSet<SocketAddr>>,
    /// Where transfers are counted and recorded.
    pub(crate) telemetry: Telemetry,
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
        max_window_bytes: config.max_window_bytes,
        default_timeout: Duration::from_millis(config.timeout_ms),
        retries: config.retries,
        retries_before_first_ack: config.retries.min(TftpLimits::default().retries_before_first_ack),
        max_client_timeout: Duration::from_secs(config.max_client_timeout_s),
    })
}

impl TftpServer {
    /// Opens the root (`[tftp] root`, relative paths against the configuration file) and the
    /// upload directory, and binds every `listen` address (port 0 picks a free port).
    pub async fn bind(config: &Config, telemetry: Telemetry) -> anyhow::Result<Self> {
        let tftp = &config.tftp;
        let root = crate::root_of(config);
        crate::log_ipxe_source(config, &root);
        let files = RootDir::new(
            &root,
            tftp.case_insensitive,
            tftp.cache_max_file_bytes,
            tftp.cache_total_bytes,
        )
        .with_context(|| format!("opening tftp root {}", root.display()))?;
        let mut sockets = Vec::new();
        for addr in &tftp.listen {
            // `[::]` beside `0.0.0.0` on the same port takes IPv6 only; alone it takes both.
            let beside_ipv4 = tftp
                .listen
                .iter()
                .any(|other| other.is_ipv4() && other.ip().is_unspecified() && other.port() == addr.port());
            let stack = if beside_ipv4 {
                DualStack::Ipv6Only
            } else {
                DualStack::Both
            };
            let socket = match bind_udp(*addr, stack).and_then(UdpSocket::from_std) {
                Ok(socket) => socket,
                // A host without IPv6 still serves IPv4 on the default `listen`.
                Err(e) if addr.is_ipv6() && beside_ipv4 && is_ipv6_unavailable(&e) => {
                    tracing::warn!("IPv6 is not available on this host: not listening on {addr}");
                    continue;
                }
                Err(e) => return Err(anyhow::Error::new(e).context(format!("binding udp {addr}"))),
            };
            if addr.ip().is_unspecified() {
                // On a wildcard address, learn which address each request was sent to, so
                // replies leave from it (see `Listener`).
                enable_destination_info(&socket, addr.is_ipv6())
                    .with_context(|| format!("enabling IP_PKTINFO on {addr}"))?;
            }
            sockets.push(Arc::new(socket));
        }
        tracing::info!(root = %files.root().display(), single_port = tftp.single_port, "serving");
        let uploads = match crate::upload_dir_of(config) {
            Some(dir) => {
                let uploads = UploadDir::new(&dir, tftp.max_upload_bytes, tftp.upload_overwrite)
                    .with_context(|| format!("opening tftp upload_dir {}", dir.display()))?;
                tracing::info!(upload_dir = %uploads.path().display(), max_bytes = tftp.max_upload_bytes, overwrite = tftp.upload_overwrite, "accepting uploads");
                Some(uploads)
            }
            None => None,
        };
        Ok(Self {
            sockets,
            single_port: tftp.single_port,
            shared: Arc::new(Shared {
                files,
                limits: limits_from_config(tftp)?,
                fit_blksize_to_mtu: tftp.fit_blksize_to_mtu,
                uploads,
                permits: Arc::new(Semaphore::new(tftp.max_transfers)),
                max_per_client: tftp.max_transfers_per_client,
                per_client: Arc::default(),
                active: Mutex::new(HashSet::new()),
                telemetry,
            }),
        })
    }

    /// The bound addresses, in `listen` order.
    pub fn bound_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.sockets.iter().map(|s| s.local_addr()).collect()
    }
}

impl Bound for TftpServer {
    fn local_addrs(&self) -> Vec<LocalAddr> {
        self.sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .map(|addr| LocalAddr::new(addr, "tftp"))
            .collect()
    }

    /// Serves until `shutdown` says to stop accepting: from then on requests are left
    /// unanswered (firmware retries, and may reach the restarted server), transfers in
    /// flight go on until they end or `shutdown` says to stop now, when each sends its
    /// client an ERROR.
    async fn serve(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let workers = Arc::new(Workers::start(cores).context("starting transfer worker threads")?);
        let mut listeners = JoinSet::new();
        for socket in self.sockets {
            let (shared, workers, shutdown) = (self.shared.clone(), workers.clone(), shutdown.clone());
            if self.single_port {
                listeners.spawn(listen_single_port(socket, shared, workers, shutdown));
            } else {
                listeners.spawn(listen(socket, shared, workers, shutdown));
            }
        }
        while let Some(ended) = listeners.join_next().await {
            if let Err(error) = ended.context("listener task").and_then(|r| r.context("listener")) {
                listeners.shutdown().await;
                return Err(error);
            }
        }
        Ok(())
    }
}

/// Default mode: each transfer gets its own socket and port (RFC 1350's transfer IDs).
///
/// Each transfer socket is bound to the address the request was sent to: on a wildcard
/// listening address of a multi-homed host, a socket bound to the wildcard too could send
/// from another of the host's addresses, and clients drop DATA from an address they did not
/// ask.
async fn listen(
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    workers: Arc<Workers>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let listener = Listener::new(socket)?;
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut transfers = JoinSet::new();
    let stop_accepting = shutdown.stop_accepting();
    tokio::pin!(stop_accepting);
    let mut accepting = true;
    loop {
        tokio::select! {
            () = &mut stop_accepting, if accepting => {
                accepting = false;
                log_draining(listener.local, transfers.len());
            }
            received = listener.recv(&mut buf), if accepting => {
                let (len, peer, destination, _) = match received {
                    Ok(r) => r,
                    // ICMP errors from earlier sends surface here on Linux; they are not fatal.
                    Err(e) => { tracing::debug!("recv on request port: {e}"); continue; }
                };
                let Some(slot) = admit(&listener.socket, destination, &shared, &buf[..len], peer).await else { continue };
                let request = buf[..len].to_vec();
                let (shared, shutdown) = (shared.clone(), shutdown.clone());
                let bind_to = listener.transfer_address(destination);
                workers.spawn(&mut transfers, async move {
                    let link = match TransferSocket::bind(bind_to) {
                        Ok(s) => Link::Own(s),
                        Err(e) => { tracing::warn!(%peer, "binding transfer socket to {bind_to}: {e}"); forget_peer(&shared, peer); return; }
                    };
                    let limits = shared.limits_toward(peer, bind_to.ip(), destination);
                    run_request(link, peer, request, &shared, &limits, &shutdown).await;
                    release(&shared, peer, slot);
                });
            }
            Some(_) = transfers.join_next(), if !transfers.is_empty() => {}
        }
        if !accepting && transfers.is_empty() {
            return Ok(());
        }
    }
}

fn log_draining(listener: SocketAddr, transfers: usize) {
    tracing::info!(%listener, transfers, "tftp: no new transfers; waiting for the running ones");
}

/// Single-port mode: every transfer shares the listening socket; datagrams are routed to
/// transfers by the client's address.
async fn listen_single_port(
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    workers: Arc<Workers>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let listener = Listener::new(socket)?.with_arrival_stamps()?;
    let routes: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Inbound>>>> = Arc::default();
    let mut buf = vec![0u8; netboot_tftp::wire::MAX_DATAGRAM];
    let mut transfers = JoinSet::new();
    let stop_accepting = shutdown.stop_accepting();
    tokio::pin!(stop_accepting);
    let mut accepting = true;
    loop {
        tokio::select! {
            () = &mut stop_accepting, if accepting => {
                accepting = false;
                log_draining(listener.local, transfers.len());
            }
            // Running transfers receive through this socket: it is read while they last.
            received = listener.recv(&mut buf) => {
                let (len, peer, destination, arrival) = match received {
                    Ok(r) => r,
                    Err(e) => { tracing::debug!("recv on request port: {e}"); continue; }
                };
                let route = routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&peer).cloned();
                if let Some(inbox) = route {
                    // A full inbox drops the datagram, as a full socket buffer would.
                    let _ = inbox.try_send(Inbound::copy_of(&buf[..len], arrival));
                    continue;
                }
                if !accepting {
                    continue;
                }
                let Some(slot) = admit(&listener.socket, destination, &shared, &buf[..len], peer).await else { continue };
                let (sender, inbox) = mpsc::channel(INBOX_DEPTH);
                routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(peer, sender);
                let request = buf[..len].to_vec();
                let (shared, socket, routes) = (shared.clone(), listener.socket.clone(), routes.clone());
                let shutdown = shutdown.clone();
                let local = listener.transfer_address(destination).ip();
                workers.spawn(&mut transfers, async move {
                    let limits = shared.limits_toward(peer, local, destination);
                    let link = Link::Shared { socket, inbox, peer, source: destination };
                    run_request(link, peer, request, &shared, &limits, &shutdown).await;
                    routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&peer);
                    release(&shared, peer, slot);
                });
            }
            Some(_) = transfers.join_next(), if !transfers.is_empty() => {}
        }
        if !accepting && transfers.is_empty() {
            return Ok(());
        }
    }
}

/// The right to run one transfer: a permit of the global limit and one of the client
/// address's share; both are given back when it is dropped, however the transfer ends.
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    client: IpAddr,
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self
            .per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

/// The address a client's transfers are counted under: an IPv4 client reaching a dual-stack
/// socket counts as its IPv4 address.
fn client_key(peer: SocketAddr) -> IpAddr {
    peer.ip().to_canonical()
}

/// Decides whether a datagram on the request port starts a transfer; answers refusals.
async fn admit(
    socket: &UdpSocket,
    destination: Option<Destination>,
    shared: &Shared,
    datagram: &[u8],
    peer: SocketAddr,
) -> Option<Slot> {
    let refusal = match classify(datagram) {
        Ok(Incoming::Read(_)) => None,
        Ok(Incoming::Write(_)) if shared.uploads.is_some() => None,
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
        send_error(socket, destination, peer, code, message).await;
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
    let client = client_key(peer);
    let acquired = {
        let mut counts = shared
            .per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let running = counts.get(&client).copied().unwrap_or(0);
        if running >= shared.max_per_client {
            Err(Some(running))
        } else if let Ok(permit) = shared.permits.clone().try_acquire_owned() {
            counts.insert(client, running + 1);
            Ok(Slot {
                _permit: permit,
                client,
                per_client: shared.per_client.clone(),
            })
        } else {
            Err(None)
        }
    };
    match acquired {
        Ok(slot) => Some(slot),
        Err(Some(running)) => {
            forget_peer(shared, peer);
            // Dropped, not answered: the request's source address can be forged, and a
            // "server busy" ERROR to every request of a flood would turn the server into a
            // reflector at that address. A real client never has this many transfers running
            // (firmware runs one or two); its retransmitted request is served once one ends.
            tracing::debug!(%peer, running, "dropped: per-client transfer limit reached");
            None
        }
        Err(None) => {
            forget_peer(shared, peer);
            tracing::warn!(%peer, "refused: concurrent transfer limit reached");
            send_error(
                socket,
                destination,
                peer,
                ErrorCode::NotDefined,
                "Server busy, try again",
            )
            .await;
            None
        }
    }
}

/// Runs the transfer an admitted request asks for, within `limits`, until it ends or
/// `shutdown` says to stop now.
async fn run_request(
    link: Link,
    peer: SocketAddr,
    request: Vec<u8>,
    shared: &Shared,
    limits: &TftpLimits,
    shutdown: &Shutdown,
) {
    match classify(&request) {
        Ok(Incoming::Read(read)) => {
            crate::read::run_transfer(link, peer, read, shared, limits, shutdown).await
        }
        Ok(Incoming::Write(write)) => {
            crate::upload::run_upload(link, peer, write, shared, limits, shutdown).await;
        }
        Err(_) => {}
    }
}

/// What a client whose transfer is cut short by a stop gets.
pub(crate) const SHUTTING_DOWN: (ErrorCode, &str) = (ErrorCode::NotDefined, "Server shutting down");

impl Shared {
    /// The limits of a transfer from `local` to `peer`, whose request arrived as
    /// `destination` says: the configured ones, with `blksize` fitted to the path MTU when
    /// configured (kept as configured when the MTU cannot be learnt).
    fn limits_toward(&self, peer: SocketAddr, local: IpAddr, destination: Option<Destination>) -> TftpLimits {
        if !self.fit_blksize_to_mtu {
            return self.limits;
        }
        let ifindex = destination.map_or(0, |d| d.ifindex);
        match netboot_runtime::udp::path_mtu(local, peer, ifindex) {
            Ok(mtu) => self.limits.fitting_mtu(mtu, peer.ip().to_canonical().is_ipv6()),
            Err(e) => {
                tracing::debug!(%peer, "path MTU unknown, blksize not fitted to it: {e}");
                self.limits
            }
        }
    }
}

/// Lets new requests from `peer` start transfers again.
pub(crate) fn forget_peer(shared: &Shared, peer: SocketAddr) {
    shared
        .active
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&peer);
}

fn release(shared: &Shared, peer: SocketAddr, slot: Slot) {
    shared
        .active
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&peer);
    drop(slot);
}

async fn send_error(
    socket: &UdpSocket,
    destination: Option<Destination>,
    peer: SocketAddr,
    code: ErrorCode,
    message: &str,
) {
    let mut packet = [0u8; 128];
    let len = write_error(&mut packet, code, message);
    let sent = match destination {
        Some(destination) => {
            let source = netboot_runtime::udp::SourceInfo::new(&destination);
            let address = nix::sys::socket::SockaddrStorage::from(peer);
            socket
                .async_io(tokio::io::Interest::WRITABLE, || {
                    nix::sys::socket::sendmsg(
                        socket.as_raw_fd(),
                        &[io::IoSlice::new(&packet[..len])],
                        &[source.control_message()],
                        nix::sys::socket::MsgFlags::empty(),
                        Some(&address),
                    )
                    .map_err(io::Error::from)
                })
                .await
        }
        None => socket.send_to(&packet[..len], peer).await,
    };
    if let Err(e) = sent {
        tracing::debug!(%peer, "sending error: {e}");
    }
}

/// A listening socket and what it needs to answer from the right address.
struct Listener {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    /// The kernel stamps each datagram's arrival (single-port mode, see [`crate::arrival`]).
    stamped: bool,
}

impl Listener {
    fn new(socket: Arc<UdpSocket>) -> io::Result<Self> {
        let local = socket.local_addr()?;
        Ok(Self {
            socket,
            local,
            stamped: false,
        })
    }

    /// Has the kernel stamp each datagram with its arrival.
    fn with_arrival_stamps(mut self) -> io::Result<Self> {
        enable_arrival_stamps(&*self.socket)?;
        self.stamped = true;
        Ok(self)
    }

    /// Next datagram, its sender, (on a wildcard address) which address it was sent to, and
    /// when it arrived (with stamps on; otherwise when it was read).
    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<Destination>, Instant)> {
        let (len, peer, destination, arrival) = if self.stamped {
            self.socket
                .async_io(tokio::io::Interest::READABLE, || {
                    recv_stamped(self.socket.as_raw_fd(), buf)
                })
                .await?
        } else if !self.local.ip().is_unspecified() {
            let (len, peer) = self.socket.recv_from(buf).await?;
            return Ok((len, peer, None, Instant::now()));
        } else {
            let (len, peer, destination) = self
                .socket
                .async_io(tokio::io::Interest::READABLE, || {
                    recv_with_destination(self.socket.as_raw_fd(), buf)
                })
                .await?;
            (len, peer, destination, Instant::now())
        };
        if !self.local.ip().is_unspecified() {
            return Ok((len, peer, None, arrival));
        }
        // Answering from a multicast or broadcast address is impossible: such requests get
        // answered as before, from the address the kernel picks.
        let destination = destination.filter(|d| is_unicast(d.addr)).map(|d| Destination {
            addr: match (d.addr, self.local.ip()) {
                // An IPv4 request on a dual-stack socket: its reply goes out over IPv6
                // APIs to the IPv4-mapped client address.
                (IpAddr::V4(v4), IpAddr::V6(_)) => IpAddr::V6(v4.to_ipv6_mapped()),
                (addr, _) => addr,
            },
            ifindex: d.ifindex,
        });
        Ok((len, peer, destination, arrival))
    }

    /// Where a transfer answering a request sent to `destination` binds its own socket.
    fn transfer_address(&self, destination: Option<Destination>) -> SocketAddr {
        match destination.map(|d| (d.addr, d.ifindex)) {
            // A link-local IPv6 address needs its interface to be bound.
            Some((IpAddr::V6(addr), ifindex)) if addr.is_unicast_link_local() => {
                SocketAddr::V6(SocketAddrV6::new(addr, 0, 0, ifindex))
            }
            Some((addr, _)) => SocketAddr::new(addr, 0),
            None => SocketAddr::new(self.local.ip(), 0),
        }
    }
}

fn is_unicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}
