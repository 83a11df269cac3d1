//! The upload state machine in virtual time: exact packet sequences for lock-step and windowed
//! uploads, then whole uploads from a simulated RFC 7440 client over a seeded lossy,
//! duplicating, reordering link, which must always end with the sink holding the client's bytes.

use std::time::{Duration, Instant};

use netboot_testkit::link::{self, origin, Impairments, Rng};
use netboot_tftp::request::{classify, Incoming};
use netboot_tftp::{BlockSize, ErrorCode, Packet, TftpLimits, WriteOutcome, WriteTransfer};
use proptest::prelude::*;

fn start(wrq: &[u8], max_bytes: u64) -> WriteTransfer {
    let Ok(Incoming::Write(write)) = classify(wrq) else {
        panic!("not a WRQ")
    };
    WriteTransfer::new(&write.request, write.mode, &TftpLimits::default(), max_bytes)
}

fn drain(t: &mut WriteTransfer, now: Instant) -> Vec<Vec<u8>> {
    let mut buf = vec![0; t.max_packet_len()];
    std::iter::from_fn(|| t.poll_transmit(now, &mut buf).map(|n| buf[..n].to_vec())).collect()
}

fn data(block: u16, payload: &[u8]) -> Vec<u8> {
    let mut wire = vec![0, 3];
    wire.extend_from_slice(&block.to_be_bytes());
    wire.extend_from_slice(payload);
    wire
}

fn ack(block: u16) -> Vec<u8> {
    let mut wire = vec![0, 4];
    wire.extend_from_slice(&block.to_be_bytes());
    wire
}

fn error_code(packet: &[u8]) -> ErrorCode {
    match Packet::parse(packet) {
        Ok(Packet::Error { code, .. }) => code,
        other => panic!("expected an ERROR, got {other:?}"),
    }
}

#[test]
fn lock_step_upload_without_options() {
    let mut t = start(b"\x00\x02up.bin\x00octet\x00", 1 << 20);
    let mut sink = Vec::new();
    let now = origin();
    assert_eq!(
        drain(&mut t, now),
        [ack(0)],
        "a WRQ without options is answered with ACK 0"
    );
    t.handle_datagram(now, &data(1, &[1; 512]), &mut sink);
    assert_eq!(drain(&mut t, now), [ack(1)]);
    // A copy of DATA 1 right behind it crossed our ACK: no second ACK, or a client that
    // resends on duplicate ACKs would send every block twice from here on.
    t.handle_datagram(now, &data(1, &[1; 512]), &mut sink);
    assert!(drain(&mut t, now).is_empty());
    // A copy after the client's timeout means ACK 1 was lost: acknowledged again, not stored.
    let now = now + Duration::from_millis(800);
    t.handle_datagram(now, &data(1, &[1; 512]), &mut sink);
    assert_eq!(drain(&mut t, now), [ack(1)]);
    assert_eq!(sink.len(), 512);
    t.handle_datagram(now, &data(2, &[2; 512]), &mut sink);
    assert_eq!(drain(&mut t, now), [ack(2)]);
    t.handle_datagram(now, &data(3, &[]), &mut sink);
    assert_eq!(
        drain(&mut t, now),
        [ack(3)],
        "a multiple of 512 ends with an empty block"
    );
    assert_eq!(t.outcome(), Some(&WriteOutcome::Complete { bytes: 1024 }));
    assert!(!t.is_finished(), "dallies for a retransmitted final block");
    let now = now + Duration::from_secs(1);
    t.handle_datagram(now, &data(3, &[]), &mut sink);
    assert_eq!(
        drain(&mut t, now),
        [ack(3)],
        "the final ACK is repeated while dallying"
    );
    let until = t.poll_timeout().expect("dally deadline");
    t.handle_timeout(until);
    assert!(t.is_finished());
    assert_eq!(sink, [vec![1u8; 512], vec![2u8; 512]].concat());
    assert_eq!(t.duplicate_blocks(), 3);
}

#[test]
fn options_are_acknowledged_and_windows_acked_at_their_end() {
    let mut t = start(
        b"\x00\x02up\x00octet\x00blksize\x0010\x00tsize\x0035\x00windowsize\x003\x00",
        1 << 20,
    );
    let mut sink = Vec::new();
    let now = origin();
    assert_eq!(
        drain(&mut t, now),
        [b"\x00\x06blksize\x0010\x00tsize\x0035\x00windowsize\x003\x00".to_vec()]
    );
    assert_eq!(t.announced_size(), Some(35));
    for block in 1..=2u16 {
        t.handle_datagram(now, &data(block, &[block as u8; 10]), &mut sink);
        assert!(drain(&mut t, now).is_empty(), "no ACK inside a window");
    }
    t.handle_datagram(now, &data(3, &[3; 10]), &mut sink);
    assert_eq!(
        drain(&mut t, now),
        [ack(3)],
        "the last block of the window is acknowledged"
    );
    t.handle_datagram(now, &data(4, &[4; 5]), &mut sink);
    assert_eq!(drain(&mut t, now), [ack(4)], "the short block ends it early");
    assert_eq!(t.outcome(), Some(&WriteOutcome::Complete { bytes: 35 }));
    assert_eq!(sink.len(), 35);
}

#[test]
fn the_read_only_msftwindow_extension_is_not_agreed_for_uploads() {
    let mut t = start(
        b"\x00\x02up\x00octet\x00msftwindow\x0031416\x00blksize\x00100\x00",
        1 << 20,
    );
    assert_eq!(drain(&mut t, origin()), [b"\x00\x06blksize\x00100\x00".to_vec()]);
}

#[test]
fn a_gap_is_answered_once_with_the_last_in_order_block() {
    let mut t = start(
        b"\x00\x02up\x00octet\x00blksize\x008\x00windowsize\x004\x00",
        1 << 20,
    );
    let mut sink = Vec::new();
    let now = origin();
    drain(&mut t, now);
    t.handle_datagram(now, &data(1, &[1; 8]), &mut sink);
    // Block 2 is lost; 3 and 4 arrive.
    t.handle_datagram(now, &data(3, &[3; 8]), &mut sink);
    assert_eq!(drain(&mut t, now), [ack(1)], "restart after block 1");
    t.handle_datagram(now, &data(4, &[4; 8]), &mut sink);
    assert!(drain(&mut t, now).is_empty(), "one ACK per gap, not per block");
    // The client restarts its window at 2.
    for block in 2..=5u16 {
        t.handle_datagram(now, &data(block, &[block as u8; 8]), &mut sink);
    }
    assert_eq!(drain(&mut t, now), [ack(5)]);
    assert_eq!(sink.len(), 40);
    assert!(sink.chunks(8).enumerate().all(|(i, c)| c == [i as u8 + 1; 8]));
}

#[test]
fn silence_repeats_the_last_ack_then_gives_up() {
    let mut t = start(b"\x00\x02up\x00octet\x00timeout\x002\x00", 1 << 20);
    let mut sink = Vec::new();
    let mut now = origin();
    assert_eq!(drain(&mut t, now), [b"\x00\x06timeout\x002\x00".to_vec()]);
    // A lost OACK is sent again (not ACK 0), after the client's timeout.
    assert_eq!(t.poll_timeout(), Some(now + Duration::from_secs(2)));
    now = t.poll_timeout().unwrap();
    t.handle_timeout(now);
    assert_eq!(drain(&mut t, now), [b"\x00\x06timeout\x002\x00".to_vec()]);
    t.handle_datagram(now, &data(1, &[0; 512]), &mut sink);
    assert_eq!(drain(&mut t, now), [ack(1)]);
    for _ in 0..TftpLimits::default().retries {
        now = t.poll_timeout().unwrap();
        t.handle_timeout(now);
        assert_eq!(drain(&mut t, now), [ack(1)]);
    }
    now = t.poll_timeout().unwrap();
    t.handle_timeout(now);
    assert_eq!(t.outcome(), Some(&WriteOutcome::TimedOut));
    assert!(t.is_finished());
    assert!(drain(&mut t, now).is_empty());
}

#[test]
fn a_request_nobody_follows_with_data_is_given_up_early() {
    let limits = TftpLimits::default();
    let mut t = start(b"\x00\x02up\x00octet\x00", 1 << 20);
    let mut now = origin();
    assert_eq!(drain(&mut t, now), [ack(0)]);
    let mut repeated = 0;
    for _ in 0..=limits.retries {
        now = t.poll_timeout().unwrap();
        t.handle_timeout(now);
        if t.is_finished() {
            break;
        }
        assert_eq!(drain(&mut t, now), [ack(0)]);
        repeated += 1;
    }
    assert_eq!(repeated, limits.retries_before_first_ack);
    assert_eq!(t.outcome(), Some(&WriteOutcome::TimedOut));
}

#[test]
fn an_announced_size_over_the_limit_is_refused_before_any_data() {
    let mut t = start(b"\x00\x02big\x00octet\x00tsize\x001001\x00", 1000);
    let sent = drain(&mut t, origin());
    assert_eq!(sent.len(), 1);
    assert_eq!(error_code(&sent[0]), ErrorCode::DiskFull);
    assert!(sent[0].ends_with(b"Disk full or allocation exceeded\0"));
    assert_eq!(t.outcome(), Some(&WriteOutcome::TooLarge { limit: 1000 }));
    assert!(t.is_finished());
}

#[test]
fn data_past_the_limit_is_refused_and_not_stored() {
    let mut t = start(b"\x00\x02big\x00octet\x00", 1000);
    let mut sink = Vec::new();
    let now = origin();
    drain(&mut t, now);
    t.handle_datagram(now, &data(1, &[0; 512]), &mut sink);
    drain(&mut t, now);
    t.handle_datagram(now, &data(2, &[0; 512]), &mut sink);
    let sent = drain(&mut t, now);
    assert_eq!(error_code(&sent[0]), ErrorCode::DiskFull);
    assert_eq!(sink.len(), 512);
    assert_eq!(t.outcome(), Some(&WriteOutcome::TooLarge { limit: 1000 }));
    // Exactly at the limit is fine.
    let mut t = start(b"\x00\x02big\x00octet\x00", 1000);
    let mut sink = Vec::new();
    drain(&mut t, now);
    t.handle_datagram(now, &data(1, &[0; 512]), &mut sink);
    t.handle_datagram(now, &data(2, &[0; 488]), &mut sink);
    assert_eq!(t.outcome(), Some(&WriteOutcome::Complete { bytes: 1000 }));
}

#[test]
fn oversized_blocks_and_client_errors_end_the_transfer() {
    let mut t = start(b"\x00\x02f\x00octet\x00blksize\x00100\x00", 1 << 20);
    let mut sink = Vec::new();
    let now = origin();
    drain(&mut t, now);
    t.handle_datagram(now, &data(1, &[0; 101]), &mut sink);
    assert_eq!(error_code(&drain(&mut t, now)[0]), ErrorCode::IllegalOperation);
    assert_eq!(t.outcome(), Some(&WriteOutcome::IllegalOperation));

    let mut t = start(b"\x00\x02f\x00octet\x00", 1 << 20);
    drain(&mut t, now);
    t.handle_datagram(now, b"\x00\x05\x00\x03disk full\x00", &mut sink);
    assert!(drain(&mut t, now).is_empty(), "an ERROR is never answered");
    assert!(t.is_finished());
    assert!(matches!(
        t.outcome(),
        Some(WriteOutcome::ClientError {
            code: ErrorCode::DiskFull,
            ..
        })
    ));
}

/// A sink that fails: `store` after `ok_bytes`, or `finish`.
struct FailingSink {
    ok_bytes: usize,
    kind: std::io::ErrorKind,
    fail_finish: bool,
}

impl netboot_tftp::BlockSink for FailingSink {
    fn store(&mut self, data: &[u8]) -> std::io::Result<()> {
        if data.len() > self.ok_bytes {
            return Err(self.kind.into());
        }
        self.ok_bytes -= data.len();
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        if self.fail_finish {
            Err(self.kind.into())
        } else {
            Ok(())
        }
    }
}

#[test]
fn sink_errors_become_tftp_errors_instead_of_the_final_ack() {
    let now = origin();
    for (kind, fail_finish, code) in [
        (std::io::ErrorKind::StorageFull, false, ErrorCode::DiskFull),
        (std::io::ErrorKind::AlreadyExists, true, ErrorCode::FileExists),
        (std::io::ErrorKind::Other, true, ErrorCode::NotDefined),
    ] {
        let mut t = start(b"\x00\x02f\x00octet\x00", 1 << 20);
        let mut sink = FailingSink {
            ok_bytes: if fail_finish { usize::MAX } else { 0 },
            kind,
            fail_finish,
        };
        drain(&mut t, now);
        t.handle_datagram(now, &data(1, b"tail"), &mut sink);
        let sent = drain(&mut t, now);
        assert_eq!(sent.len(), 1, "{kind:?}");
        assert_eq!(error_code(&sent[0]), code, "{kind:?}");
        assert!(matches!(t.outcome(), Some(WriteOutcome::SinkFailed { .. })));
        assert!(t.is_finished());
    }
}

#[test]
fn netascii_uploads_are_stored_in_local_form() {
    let text = b"first line\nsecond\rline\n".repeat(40);
    let wire = netboot_tftp::netascii::encode(&text);
    let mut t = start(b"\x00\x02notes.txt\x00netascii\x00blksize\x0064\x00", 1 << 20);
    let mut sink = Vec::new();
    let now = origin();
    drain(&mut t, now);
    let mut chunks: Vec<&[u8]> = wire.chunks(64).collect();
    if wire.len() % 64 == 0 {
        chunks.push(&[]);
    }
    for (i, chunk) in chunks.iter().enumerate() {
        t.handle_datagram(now, &data(i as u16 + 1, chunk), &mut sink);
        drain(&mut t, now);
    }
    assert_eq!(
        t.outcome(),
        Some(&WriteOutcome::Complete {
            bytes: text.len() as u64
        })
    );
    assert_eq!(sink, text);
}

/// Where a datagram on the link is headed.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Dest {
    Server,
    Client,
}

type Link = link::Link<Dest>;

/// An RFC 7440 sender: sends `window` blocks after the last acknowledged one, starts the next
/// window after any ACK that advances, ignores duplicate ACKs, and resends from the last
/// acknowledged block when ACKs stop coming.
struct Uploader {
    file: Vec<u8>,
    blksize: usize,
    window: u64,
    /// Blocks acknowledged (index); 0 before the OACK or ACK 0.
    acked: u64,
    started: bool,
    last_block: u64,
    done: bool,
    /// Resend the current window on a duplicate ACK (wrong, but some clients do).
    resend_on_duplicate_ack: bool,
    data_sent: u64,
    deadline: Instant,
    timeout: Duration,
}

impl Uploader {
    fn block(&self, index: u64) -> Vec<u8> {
        let from = ((index - 1) as usize * self.blksize).min(self.file.len());
        let to = (from + self.blksize).min(self.file.len());
        data((index & 0xffff) as u16, &self.file[from..to])
    }

    fn send_window(&mut self, now: Instant, link: &mut Link) {
        let end = (self.acked + self.window).min(self.last_block);
        for index in self.acked + 1..=end {
            link.send(now, Dest::Server, self.block(index));
            self.data_sent += 1;
        }
        self.deadline = now + self.timeout;
    }

    fn receive(&mut self, now: Instant, datagram: &[u8], link: &mut Link) {
        match Packet::parse(datagram) {
            Ok(Packet::Oack(_)) if !self.started => {
                self.started = true;
                self.send_window(now, link);
            }
            Ok(Packet::Ack { block, .. }) => {
                if !self.started {
                    if block.0 != 0 {
                        return;
                    }
                    self.started = true;
                    self.send_window(now, link);
                    return;
                }
                let advance = u64::from(block.0.wrapping_sub((self.acked & 0xffff) as u16));
                let sent = (self.acked + self.window).min(self.last_block) - self.acked;
                if advance == 0 && self.resend_on_duplicate_ack {
                    // tftp-hpa's client does this: a duplicate ACK resends the current block.
                    self.send_window(now, link);
                    return;
                }
                if advance == 0 || advance > sent {
                    return;
                }
                self.acked += advance;
                if self.acked == self.last_block {
                    self.done = true;
                } else {
                    self.send_window(now, link);
                }
            }
            Ok(Packet::Error { code, .. }) => panic!("server sent ERROR {code:?}"),
            _ => {}
        }
    }
}

/// Uploads `file` through an impaired link; returns what the server stored and its outcome.
fn simulate(
    file: Vec<u8>,
    blksize: u16,
    window: u16,
    impairments: Impairments,
    seed: u64,
) -> (Vec<u8>, Option<WriteOutcome>, bool) {
    let run = simulate_client(file, blksize, window, impairments, seed, false);
    (run.stored, run.outcome, run.client_done)
}

/// What one simulated upload produced.
struct Run {
    stored: Vec<u8>,
    outcome: Option<WriteOutcome>,
    client_done: bool,
    /// DATA packets the client sent, retransmissions included.
    data_sent: u64,
}

fn simulate_client(
    file: Vec<u8>,
    blksize: u16,
    window: u16,
    impairments: Impairments,
    seed: u64,
    resend_on_duplicate_ack: bool,
) -> Run {
    let wrq = format!(
        "\0\x02up.img\0octet\0blksize\0{blksize}\0windowsize\0{window}\0tsize\0{}\0",
        file.len()
    );
    // Impairments this heavy can lose the first exchange several times in a row too.
    let limits = TftpLimits {
        retries: 20,
        retries_before_first_ack: 20,
        max_blksize: BlockSize::try_from(BlockSize::MAX).unwrap(),
        ..TftpLimits::default()
    };
    let Ok(Incoming::Write(write)) = classify(wrq.as_bytes()) else {
        panic!("not a WRQ")
    };
    let mut server = WriteTransfer::new(&write.request, write.mode, &limits, 1 << 30);
    let timeout = Duration::from_secs(1);
    let mut now = origin();
    let mut client = Uploader {
        blksize: usize::from(blksize),
        window: u64::from(window),
        acked: 0,
        started: false,
        last_block: file.len() as u64 / u64::from(blksize) + 1,
        file,
        done: false,
        resend_on_duplicate_ack,
        data_sent: 0,
        // The client retransmits a little slower than the server, as real clients do.
        deadline: now + timeout * 2,
        timeout: timeout * 2,
    };
    let mut link = Link::new(seed, impairments);
    let mut sink = Vec::new();
    let mut buf = vec![0; server.max_packet_len()];
    let mut client_resends = 0;
    for _ in 0..10_000_000 {
        while let Some(len) = server.poll_transmit(now, &mut buf) {
            link.send(now, Dest::Client, buf[..len].to_vec());
        }
        if server.is_finished() {
            break;
        }
        let next_packet = link.next_arrival();
        let server_timer = server.poll_timeout();
        let client_timer = (!client.done).then_some(client.deadline);
        let Some(next) = [next_packet, server_timer, client_timer]
            .into_iter()
            .flatten()
            .min()
        else {
            break;
        };
        now = now.max(next);
        if next_packet == Some(next) {
            let (_, dest, datagram) = link.pop().unwrap();
            match dest {
                Dest::Server => server.handle_datagram(now, &datagram, &mut sink),
                Dest::Client if !client.done => client.receive(now, &datagram, &mut link),
                Dest::Client => {}
            }
        } else if server_timer == Some(next) {
            server.handle_timeout(now);
        } else {
            client_resends += 1;
            assert!(client_resends < 100_000, "client resent forever");
            if client.started {
                client.send_window(now, &mut link);
            } else {
                // The WRQ itself is not resent here: the server repeats its OACK instead.
                client.deadline = now + client.timeout;
            }
        }
    }
    Run {
        stored: sink,
        outcome: server.outcome().cloned(),
        client_done: client.done,
        data_sent: client.data_sent,
    }
}

fn test_file(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

#[test]
fn uploads_survive_loss_duplication_and_reordering() {
    let impaired = Impairments {
        loss: 10,
        duplicate: 10,
        jitter_ms: 30,
    };
    for (seed, (len, blksize, window)) in [
        (0, 1, 1),
        (512, 512, 1),
        (10_000, 512, 1),
        (100_000, 1468, 4),
        (100_001, 1024, 16),
        (65_464 * 3, 65_464, 8),
    ]
    .into_iter()
    .enumerate()
    {
        let file = test_file(len, seed as u64 + 7);
        let (stored, outcome, client_done) = simulate(file.clone(), blksize, window, impaired, seed as u64);
        assert_eq!(
            outcome,
            Some(WriteOutcome::Complete { bytes: len as u64 }),
            "len {len} blksize {blksize} window {window}"
        );
        assert!(stored == file, "len {len}: stored bytes differ");
        assert!(client_done, "len {len}: the client never saw the final ACK");
    }
}

#[test]
fn duplicated_blocks_do_not_set_off_the_sorcerers_apprentice() {
    // Every fifth packet duplicated, nothing lost: if each copy of a block got its own ACK, a
    // client that resends on duplicate ACKs would send every block twice from the first
    // duplicate on.
    let impairments = Impairments {
        loss: 0,
        duplicate: 20,
        jitter_ms: 0,
    };
    let file = test_file(512 * 2000 + 100, 3);
    let run = simulate_client(file.clone(), 512, 1, impairments, 4, true);
    assert_eq!(
        run.outcome,
        Some(WriteOutcome::Complete {
            bytes: file.len() as u64
        })
    );
    assert!(run.stored == file);
    // Duplicated ACKs still cost this client one resend each (about a fifth more packets);
    // the apprentice would double them all.
    let blocks = 2001;
    assert!(
        run.data_sent < blocks * 3 / 2,
        "{} DATA packets for {blocks} blocks",
        run.data_sent
    );
}

#[test]
fn block_numbers_roll_over_after_65535() {
    // 70 000 blocks of 8 bytes: numbers wrap past 65535 to 0.
    let file = test_file(8 * 70_000 + 3, 5);
    let clean = Impairments {
        loss: 0,
        duplicate: 0,
        jitter_ms: 0,
    };
    for window in [1, 16] {
        let (stored, outcome, client_done) = simulate(file.clone(), 8, window, clean, 1);
        assert_eq!(
            outcome,
            Some(WriteOutcome::Complete {
                bytes: file.len() as u64
            })
        );
        assert!(stored == file);
        assert!(client_done);
    }
    let lossy = Impairments {
        loss: 3,
        duplicate: 3,
        jitter_ms: 5,
    };
    let (stored, outcome, _) = simulate(file.clone(), 8, 8, lossy, 2);
    assert_eq!(
        outcome,
        Some(WriteOutcome::Complete {
            bytes: file.len() as u64
        })
    );
    assert!(stored == file);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_impaired_upload_completes_with_identical_bytes(
        len in 0usize..20_000,
        blksize in 8u16..1500,
        window in 1u16..20,
        loss in 0u64..25,
        duplicate in 0u64..25,
        jitter_ms in 0u64..40,
        seed: u64,
    ) {
        let file = test_file(len, seed);
        let impairments = Impairments { loss, duplicate, jitter_ms };
        let (stored, outcome, _) = simulate(file.clone(), blksize, window, impairments, seed);
        prop_assert_eq!(outcome, Some(WriteOutcome::Complete { bytes: len as u64 }));
        prop_assert!(stored == file);
    }

    #[test]
    fn arbitrary_datagrams_never_panic_or_store_past_the_limit(
        packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..40),
    ) {
        let mut session = Vec::new();
        let wrq = b"\x00\x02f\x00octet\x00blksize\x0016\x00windowsize\x004\x00";
        session.extend_from_slice(&(wrq.len() as u16).to_be_bytes());
        session.push(0);
        session.extend_from_slice(wrq);
        for (i, packet) in packets.iter().enumerate() {
            session.extend_from_slice(&(packet.len() as u16).to_be_bytes());
            session.push((i % 7 == 3) as u8);
            session.extend_from_slice(packet);
        }
        netboot_tftp::fuzzing::write_session(origin(), &session);
    }
}

#[test]
fn fuzz_function_accepts_the_committed_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/tftp/corpus/tftp_write_session");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        netboot_tftp::fuzzing::write_session(origin(), &bytes);
        count += 1;
    }
    assert!(count >= 5, "corpus has only {count} files");
}
