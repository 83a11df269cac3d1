//! Abuse from the network, on real loopback sockets: one address asking for every transfer
//! slot, a client asking for an enormous timeout, and spoofed requests followed by blind
//! acknowledgements in both transfer modes.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netboot_tftp::{BlockNum, Packet};
use support::{at, tempdir, write_test_file, Server};

fn socket_on(ip: &str) -> UdpSocket {
    let socket = UdpSocket::bind((ip, 0)).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    socket
}

fn rrq(name: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut wire = vec![0, 1];
    wire.extend_from_slice(name.as_bytes());
    wire.extend_from_slice(b"\0octet\0");
    for (k, v) in options {
        wire.extend_from_slice(format!("{k}\0{v}\0").as_bytes());
    }
    wire
}

fn ack(block: u16) -> Vec<u8> {
    let mut wire = vec![0, 4];
    wire.extend_from_slice(&block.to_be_bytes());
    wire
}

fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0; 70_000];
    let (len, from) = socket.recv_from(&mut buf).expect("no reply from pxe-tftp");
    buf.truncate(len);
    (buf, from)
}

fn block_of(reply: &[u8]) -> Option<u16> {
    match Packet::parse(reply).unwrap() {
        Packet::Data { block, .. } => Some(block.0),
        _ => None,
    }
}

fn server_with(settings: &str, files: &[(&str, usize)]) -> (tempfile::TempDir, Server) {
    let dir = tempdir();
    let root = at(dir.path(), "root");
    std::fs::create_dir(&root).unwrap();
    for (i, (name, size)) in files.iter().enumerate() {
        write_test_file(&root.join(name), *size, i as u64 + 1);
    }
    let config = at(dir.path(), "tftp.toml");
    std::fs::write(&config, format!("[tftp]\n{settings}")).unwrap();
    let server = Server::start(&root, &["--config", config.to_str().unwrap()]);
    (dir, server)
}

#[test]
fn one_address_at_its_transfer_limit_never_blocks_another() {
    // Slow retransmissions keep the holders' transfers running for the whole test.
    let (_dir, server) = server_with(
        "max_transfers_per_client = 2\ntimeout_ms = 5000\n",
        &[("small", 600)],
    );
    // 127.0.0.2 fills its quota (loopback accepts any 127/8 source address).
    let holders: Vec<(UdpSocket, SocketAddr)> = (0..2)
        .map(|_| {
            let socket = socket_on("127.0.0.2");
            socket.send_to(&rrq("small", &[]), server.addr).unwrap();
            let (reply, from) = recv(&socket);
            assert_eq!(block_of(&reply), Some(1), "a request within the quota is served");
            (socket, from)
        })
        .collect();
    let over = socket_on("127.0.0.2");
    over.send_to(&rrq("small", &[]), server.addr).unwrap();
    // Another address is served at once. The request port handles datagrams in order, so by
    // the time this reply arrives the request over the quota has been dealt with.
    let other = socket_on("127.0.0.1");
    other.send_to(&rrq("small", &[]), server.addr).unwrap();
    let (reply, _) = recv(&other);
    assert_eq!(block_of(&reply), Some(1), "another address is not blocked");
    over.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1024];
    assert_eq!(
        over.recv_from(&mut buf).map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "a request over the per-client limit is dropped unanswered"
    );
    over.set_nonblocking(false).unwrap();

    // Once one of the address's transfers ends, its next request is served again.
    let (holder, port) = &holders[0];
    holder.send_to(&ack(1), port).unwrap();
    let (reply, _) = recv(holder);
    assert_eq!(block_of(&reply), Some(2));
    holder.send_to(&ack(2), port).unwrap();
    over.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let served = (0..40).any(|_| {
        over.send_to(&rrq("small", &[]), server.addr).unwrap();
        let mut buf = vec![0; 2048];
        over.recv_from(&mut buf)
            .is_ok_and(|(len, _)| block_of(&buf[..len]) == Some(1))
    });
    assert!(served, "the slot of the finished transfer is given back");
}

#[test]
fn a_client_timeout_above_the_cap_is_left_out_of_the_oack() {
    let (_dir, server) = server_with("max_client_timeout_s = 2\n", &[("nbp", 5000)]);
    let oack = |options: &[(&str, &str)]| {
        // A socket per request: a repeat from the same port would count as a retransmission.
        let socket = socket_on("127.0.0.1");
        socket.send_to(&rrq("nbp", options), server.addr).unwrap();
        let (reply, from) = recv(&socket);
        // Decline the options: the transfer ends at once.
        socket.send_to(b"\0\x05\0\x08declined\0", from).unwrap();
        match Packet::parse(&reply).unwrap() {
            Packet::Oack(options) => (
                options.get("timeout").map(<[u8]>::to_vec),
                options.get("tsize").map(<[u8]>::to_vec),
            ),
            other => panic!("expected an OACK, got {other:?}"),
        }
    };
    assert_eq!(
        oack(&[("timeout", "255"), ("tsize", "0")]),
        (None, Some(b"5000".to_vec())),
        "declined, the other options still agreed"
    );
    assert_eq!(
        oack(&[("timeout", "2"), ("tsize", "0")]),
        (Some(b"2".to_vec()), Some(b"5000".to_vec())),
        "within the cap the client's value is echoed exactly"
    );
}

/// Bytes that reached a socket, counted by a thread that only counts: the socket stands for
/// the victim of a spoofed request, and nothing the attacker sends depends on what it got.
struct Victim {
    socket: UdpSocket,
    counter: std::thread::JoinHandle<u64>,
    stop: Arc<AtomicBool>,
}

impl Victim {
    fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let reader = socket.try_clone().unwrap();
        reader.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let counter = std::thread::spawn(move || {
            let mut buf = vec![0u8; 70_000];
            let mut total = 0u64;
            while !stopping.load(Ordering::Relaxed) {
                if let Ok(len) = reader.recv(&mut buf) {
                    total += len as u64;
                }
            }
            total
        });
        Self {
            socket,
            counter,
            stop,
        }
    }

    /// Waits until the server has given up on the spoofed transfer (nothing arrives for
    /// `quiet`, a bounded number of times), then returns the bytes that arrived.
    fn total_after_quiet(self, quiet: Duration) -> u64 {
        let probe = self.socket.try_clone().unwrap();
        probe.set_read_timeout(Some(quiet)).unwrap();
        // The counter thread drains the socket; peeking tells whether anything is still coming.
        let mut buf = [0u8; 4];
        for _ in 0..30 {
            if probe.peek(&mut buf).is_err() {
                break;
            }
            std::thread::sleep(quiet);
        }
        self.stop.store(true, Ordering::Relaxed);
        self.counter.join().unwrap()
    }
}

/// What a spoofer makes the server send: an RRQ for `options` with the victim's address as
/// its source, then `acks` sent to the only server port a spoofer knows, the request port,
/// after `pause`. Returns (bytes the spoofer sent, bytes the victim received).
fn reflect(
    server: SocketAddr,
    options: &[(&str, &str)],
    pause: Duration,
    acks: std::ops::RangeInclusive<u16>,
) -> (u64, u64) {
    let victim = Victim::new();
    let mut sent = victim.socket.send_to(&rrq("big", options), server).unwrap() as u64;
    std::thread::sleep(pause);
    for block in acks {
        sent += victim.socket.send_to(&ack(block), server).unwrap() as u64;
    }
    // Longer than the server's longest retransmission interval (timeout_ms below, doubled).
    (sent, victim.total_after_quiet(Duration::from_millis(1000)))
}

const MIB: usize = 1 << 20;
/// ACKs for every block of the file, as a blind spoofer sends them.
const EVERY_BLOCK: std::ops::RangeInclusive<u16> = 0..=(MIB / 1468 + 1) as u16;
const LOCK_STEP: &[(&str, &str)] = &[("blksize", "1468"), ("tsize", "0")];
const WINDOWED: &[(&str, &str)] = &[("blksize", "1468"), ("windowsize", "64"), ("tsize", "0")];

fn spoofing_server(single_port: bool) -> (tempfile::TempDir, Server) {
    server_with(
        &format!("single_port = {single_port}\ntimeout_ms = 200\n"),
        &[("big", MIB)],
    )
}

#[test]
fn spoofed_requests_with_blind_acks_are_not_amplified_in_either_mode() {
    // The default mode sends the victim the OACK and its resends (the ACKs go to the request
    // port, not to the transfer's own); single-port mode, where they reach the transfer,
    // ignores every ACK that outran what it acknowledges.
    let mut measured = Vec::new();
    for single_port in [false, true] {
        let (_dir, server) = spoofing_server(single_port);
        let (sent, reflected) = reflect(server.addr, LOCK_STEP, Duration::ZERO, EVERY_BLOCK);
        let ratio = reflected as f64 / sent as f64;
        eprintln!("lock-step, single_port = {single_port}: spoofer sent {sent} B, victim got {reflected} B ({ratio:.2}x)");
        assert!(
            reflected < 10 * sent,
            "single_port = {single_port}: {reflected} bytes reflected for {sent} sent"
        );
        measured.push((single_port, sent, reflected));
    }
    eprintln!("blind burst, (single_port, sent, reflected): {measured:?}");
}

/// The window of 1468-byte blocks single-port mode sends before any data is acknowledged,
/// and the OACK with its resends.
const WINDOW_BYTES: u64 = netboot_tftp::PROVISIONAL_WINDOW_BYTES / 1468 * (1468 + 4);
const OACKS_BYTES: u64 = 3 * 64;

#[test]
fn a_windowed_blind_burst_gets_at_most_the_provisional_window_in_single_port_mode() {
    // With windows, the blind ACK 0 can arrive after the OACK left when the spoofer's two
    // sends are far enough apart (a busy host); then the first, provisional window goes out,
    // and its resends before the first data ACK, as for the patient spoofer below. Never
    // more: the ACKs that outran the window are ignored.
    let (_dir, server) = spoofing_server(true);
    let (sent, reflected) = reflect(server.addr, WINDOWED, Duration::ZERO, EVERY_BLOCK);
    eprintln!(
        "windowed, single_port = true: spoofer sent {sent} B, victim got {reflected} B ({:.2}x)",
        reflected as f64 / sent as f64
    );
    let resends = 2;
    assert!(
        reflected <= OACKS_BYTES + (1 + resends) * WINDOW_BYTES,
        "{reflected} bytes"
    );
}

#[test]
fn a_patient_spoofer_gets_at_most_the_provisional_window_and_its_resends() {
    // The residual risk of single-port mode, measured: an RRQ, then one ACK 0 sent once the
    // OACK has surely left passes the timing proof. What follows is bounded by the provisional
    // window and its resends before the first data ACK, not by the agreed window or the file.
    // The default mode, for comparison, sends the OACK and its resends.
    for single_port in [false, true] {
        let (_dir, server) = spoofing_server(single_port);
        let (sent, reflected) = reflect(server.addr, WINDOWED, Duration::from_millis(300), 0..=0);
        eprintln!(
            "windowed, ACK 0 after 300 ms, single_port = {single_port}: spoofer sent {sent} B, victim got {reflected} B ({:.0}x)",
            reflected as f64 / sent as f64
        );
        let resends = 2;
        let bound = if single_port {
            OACKS_BYTES + (1 + resends) * WINDOW_BYTES
        } else {
            OACKS_BYTES
        };
        assert!(reflected <= bound, "{reflected} bytes, more than {bound}");
    }
}

#[test]
fn a_real_client_still_downloads_in_single_port_mode() {
    let (_dir, server) = server_with("single_port = true\n", &[("nbp", 200_000)]);
    let socket = socket_on("127.0.0.1");
    socket
        .send_to(
            &rrq("nbp", &[("blksize", "1468"), ("windowsize", "8")]),
            server.addr,
        )
        .unwrap();
    let (reply, from) = recv(&socket);
    assert!(matches!(Packet::parse(&reply).unwrap(), Packet::Oack(_)));
    assert_eq!(from, server.addr, "single-port answers from the request port");
    socket.send_to(&ack(0), server.addr).unwrap();
    // An RFC 7440 receiver: it acknowledges each full window, the last block, and, when its
    // timer fires, whatever it has (the provisional first window is shorter than agreed).
    socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut received = 0usize;
    let mut expected = 1u16;
    let mut buf = vec![0u8; 2048];
    // Bounded: 200 kB is 137 blocks; resent windows and timeouts add a few rounds.
    for _ in 0..1000 {
        let Ok((len, _)) = socket.recv_from(&mut buf) else {
            socket.send_to(&ack(expected - 1), server.addr).unwrap();
            continue;
        };
        let Packet::Data { block, data } = Packet::parse(&buf[..len]).unwrap() else {
            panic!("expected DATA")
        };
        if block == BlockNum(expected) {
            received += data.len();
            expected += 1;
            let last = data.len() < 1468;
            if (expected - 1) % 8 == 0 || last {
                socket.send_to(&ack(block.0), server.addr).unwrap();
            }
            if last {
                break;
            }
        }
    }
    assert_eq!(received, 200_000);
}
