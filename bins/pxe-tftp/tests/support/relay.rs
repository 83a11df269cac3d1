//! A UDP relay in front of the server that loses, duplicates and delays (and so reorders)
//! datagrams, driven by a seeded generator.
//!
//! It behaves like a NAT that mirrors TFTP's port changes: every client gets its own upstream
//! socket, and every port the server answers that client from gets a client-facing port of
//! its own, so per-transfer ports work through it, and answers from the request port come back
//! from the relay's request port (single-port mode stays single-port). Several clients may use
//! it at once. With concurrent clients the order in which they draw from the generator depends
//! on timing, so only a single client's run is exactly reproducible.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::oneshot;

/// What the relay does to datagrams other than the handshake. Requests (RRQ/WRQ), OACKs and
/// ACKs of block 0 are never dropped or duplicated, only delayed: clients retry a lost request
/// only after seconds, and atftp 0.8 aborts on a second OACK ("unexpected OACK"), which is
/// what the server rightly sends when the ACK of its OACK is lost.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Seed of the generator deciding each datagram's fate.
    pub seed: u64,
    /// Percentage of datagrams dropped.
    pub loss_percent: u64,
    /// Percentage of datagrams sent twice.
    pub duplicate_percent: u64,
    /// Percentage of copies held back by up to `max_delay_ms`, which reorders them.
    pub delay_percent: u64,
    /// Longest hold-back.
    pub max_delay_ms: u64,
}

/// What the relay has done so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayCounts {
    /// Copies sent on.
    pub sent: u64,
    /// Datagrams dropped.
    pub dropped: u64,
    /// Datagrams sent twice.
    pub duplicated: u64,
    /// Copies held back.
    pub delayed: u64,
}

impl RelayCounts {
    /// Fails the test unless the relay both duplicated and reordered datagrams, so a run that
    /// passed was really impaired.
    pub fn assert_duplicated_and_reordered(&self) {
        assert!(self.duplicated > 0, "the relay duplicated nothing: {self:?}");
        assert!(
            self.delayed > 0,
            "the relay delayed nothing, so nothing was reordered: {self:?}"
        );
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    delayed: AtomicU64,
}

/// A running relay on its own thread; stopped on drop.
pub struct Relay {
    /// Where clients send their requests.
    pub addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts a relay bound to `bind` (port chosen by the kernel) in front of `server`. With
    /// `namespace`, the relay's thread enters that network namespace first, so all its
    /// sockets live there.
    pub fn start(namespace: Option<&str>, bind: IpAddr, server: SocketAddr, impairment: Impairment) -> Self {
        let counters = Arc::new(Counters::default());
        let (bound, bound_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let namespace = namespace.map(str::to_owned);
        let impairer = Arc::new(Impairer {
            impairment,
            state: Mutex::new(impairment.seed | 1),
            counters: counters.clone(),
        });
        let thread = std::thread::spawn(move || {
            if let Some(namespace) = namespace {
                netboot_testkit::netns::enter(&namespace);
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building the relay's runtime");
            runtime.block_on(async move {
                let front = Arc::new(UdpSocket::bind((bind, 0)).await.expect("binding the relay"));
                let _ = bound.send(front.local_addr().unwrap());
                tokio::select! {
                    _ = stopped => {}
                    () = relay_requests(front, bind, server, impairer) => {}
                }
            });
        });
        let addr = bound_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the relay did not start");
        Self {
            addr,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// What the relay has done so far.
    pub fn counts(&self) -> RelayCounts {
        let c = &self.counters;
        RelayCounts {
            sent: c.sent.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            duplicated: c.duplicated.load(Ordering::Relaxed),
            delayed: c.delayed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Datagrams to the relay's request port: each client gets an upstream socket of its own.
async fn relay_requests(front: Arc<UdpSocket>, bind: IpAddr, server: SocketAddr, impairer: Arc<Impairer>) {
    let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0; 65_536];
    while let Ok((len, client)) = front.recv_from(&mut buf).await {
        let upstream = match upstreams.get(&client) {
            Some(upstream) => upstream.clone(),
            None => {
                let Ok(socket) = UdpSocket::bind((bind, 0)).await else {
                    continue;
                };
                let upstream = Arc::new(socket);
                upstreams.insert(client, upstream.clone());
                tokio::spawn(relay_answers(
                    upstream.clone(),
                    front.clone(),
                    client,
                    bind,
                    server,
                    impairer.clone(),
                ));
                upstream
            }
        };
        impairer.forward(&upstream, &buf[..len], server);
    }
}

/// The server's datagrams to one client, each sent from the relay port mirroring the server
/// port it came from.
async fn relay_answers(
    upstream: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    bind: IpAddr,
    server: SocketAddr,
    impairer: Arc<Impairer>,
) {
    let mut mirrors: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0; 65_536];
    while let Ok((len, from)) = upstream.recv_from(&mut buf).await {
        let toward_client = if from == server {
            front.clone()
        } else if let Some(mirror) = mirrors.get(&from) {
            mirror.clone()
        } else {
            let Ok(socket) = UdpSocket::bind((bind, 0)).await else {
                continue;
            };
            let mirror = Arc::new(socket);
            mirrors.insert(from, mirror.clone());
            tokio::spawn(relay_to_transfer_port(
                mirror.clone(),
                upstream.clone(),
                client,
                from,
                impairer.clone(),
            ));
            mirror
        };
        impairer.forward(&toward_client, &buf[..len], client);
    }
}

/// The client's datagrams to a mirrored port, sent on to the server port it mirrors.
async fn relay_to_transfer_port(
    mirror: Arc<UdpSocket>,
    upstream: Arc<UdpSocket>,
    client: SocketAddr,
    transfer_port: SocketAddr,
    impairer: Arc<Impairer>,
) {
    let mut buf = vec![0; 65_536];
    while let Ok((len, from)) = mirror.recv_from(&mut buf).await {
        if from == client {
            impairer.forward(&upstream, &buf[..len], transfer_port);
        }
    }
}

struct Impairer {
    impairment: Impairment,
    state: Mutex<u64>,
    counters: Arc<Counters>,
}

impl Impairer {
    /// Next value of a xorshift64 generator.
    fn roll(&self) -> u64 {
        let mut state = self.state.lock().unwrap();
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    fn chance(&self, percent: u64) -> bool {
        self.roll() % 100 < percent
    }

    /// Sends `datagram` from `socket` to `dest` through the impaired link.
    fn forward(&self, socket: &Arc<UdpSocket>, datagram: &[u8], dest: SocketAddr) {
        let is_handshake = matches!(datagram, [0, 1 | 2 | 6, ..] | [0, 4, 0, 0, ..]);
        let impairment = &self.impairment;
        let copies = if is_handshake {
            1
        } else if self.chance(impairment.loss_percent) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        } else if self.chance(impairment.duplicate_percent) {
            self.counters.duplicated.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        for _ in 0..copies {
            self.counters.sent.fetch_add(1, Ordering::Relaxed);
            let delay = if self.chance(impairment.delay_percent) {
                self.counters.delayed.fetch_add(1, Ordering::Relaxed);
                1 + self.roll() % impairment.max_delay_ms.max(1)
            } else {
                0
            };
            if delay == 0 {
                // Undelayed copies go out now, in arrival order, unless the socket's buffer
                // is full: then they wait for room like the delayed ones.
                match socket.try_send_to(datagram, dest) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    _ => continue,
                }
            }
            let (socket, datagram) = (socket.clone(), datagram.to_vec());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let _ = socket.send_to(&datagram, dest).await;
            });
        }
    }
}
