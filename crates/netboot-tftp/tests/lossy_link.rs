//! The state machine against a simulated client over a seeded lossy, duplicating, reordering
//! link, in virtual time: every transfer must end with the client holding identical bytes.

use std::time::{Duration, Instant};

use netboot_testkit::link::{self, Impairments};
use netboot_tftp::request::{classify, Incoming};
use netboot_tftp::{negotiate, MemorySource, Outcome, Packet, ReadTransfer, TftpLimits};

/// Where a datagram on the link is headed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Dest {
    Server,
    Client,
}

type Link = link::Link<Dest>;

/// An RFC 7440 client: acknowledges every `window` in-order blocks, acknowledges the last good
/// block when one arrives out of order, and repeats its last ACK when data stops coming.
/// With `variable_windows` it speaks `msftwindow` like Windows Boot Manager: each ACK carries
/// the size of the next window, picked afresh whenever a window completes in order.
struct Client {
    window: u64,
    variable_windows: bool,
    expected: u16,
    received: Vec<u8>,
    in_window: u64,
    blksize: usize,
    done: bool,
    last_ack: Vec<u8>,
    deadline: Instant,
}

impl Client {
    /// Acknowledges `block`; `window_done` says a window completed in order, so a
    /// variable-window client picks the size of the next one.
    fn ack(&mut self, block: u16, window_done: bool, now: Instant, link: &mut Link) {
        self.last_ack = [&[0u8, 4][..], &block.to_be_bytes()].concat();
        if self.variable_windows {
            if window_done {
                self.window = 1 + link.rng().next_u64() % 24;
            }
            self.last_ack.push(self.window as u8);
        }
        self.deadline = now + Duration::from_millis(1500);
        link.send(now, Dest::Server, self.last_ack.clone());
    }

    fn receive(&mut self, now: Instant, datagram: &[u8], link: &mut Link) {
        match Packet::parse(datagram).unwrap() {
            Packet::Oack(_) if self.expected == 1 => self.ack(0, true, now, link),
            Packet::Data { block, data } if block.0 == self.expected => {
                self.received.extend_from_slice(data);
                self.expected = self.expected.wrapping_add(1);
                self.in_window += 1;
                let last = data.len() < self.blksize;
                if last || self.in_window == self.window {
                    self.in_window = 0;
                    self.ack(block.0, true, now, link);
                    self.done |= last;
                }
            }
            Packet::Data { .. } if !self.done => {
                // Out of order: tell the server where to restart.
                self.in_window = 0;
                self.ack(self.expected.wrapping_sub(1), false, now, link);
            }
            Packet::Data { .. } => self.ack(self.expected.wrapping_sub(1), false, now, link),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn simulate(seed: u64, impairments: Impairments, size: usize, blksize: u16, window: u16) -> (Outcome, u64) {
    simulate_with(seed, impairments, size, blksize, window, false)
}

fn simulate_with(
    seed: u64,
    impairments: Impairments,
    size: usize,
    blksize: u16,
    window: u16,
    variable_windows: bool,
) -> (Outcome, u64) {
    let file: Vec<u8> = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
    let msftwindow = if variable_windows {
        "msftwindow\x0031416\0"
    } else {
        ""
    };
    let rrq = format!("\0\x01big.bin\0octet\0blksize\0{blksize}\0windowsize\0{window}\0{msftwindow}");
    let Ok(Incoming::Read(read)) = classify(rrq.as_bytes()) else {
        panic!("refused")
    };
    let limits = TftpLimits {
        retries: 30,
        ..TftpLimits::default()
    };
    let agreed = negotiate(&read.request, Some(size as u64), &limits);
    assert_eq!(agreed.variable_window, variable_windows);
    let mut server = ReadTransfer::new(&agreed, size as u64, &limits);
    let mut source = MemorySource::new(file.clone().into());
    let start = link::origin();
    let mut now = start;
    let mut link = Link::new(seed, impairments);
    let mut client = Client {
        window: u64::from(window),
        variable_windows,
        expected: 1,
        received: Vec::with_capacity(size),
        in_window: 0,
        blksize: usize::from(blksize),
        done: false,
        last_ack: Vec::new(),
        deadline: now + Duration::from_millis(1500),
    };
    let mut buf = vec![0; server.max_packet_len()];
    let mut pump = |server: &mut ReadTransfer, link: &mut Link, now: Instant| {
        while let Some(len) = server.poll_transmit(now, &mut source, &mut buf) {
            link.send(now, Dest::Client, buf[..len].to_vec());
        }
    };
    pump(&mut server, &mut link, now);
    // Bounded: a transfer that needs more events than this is stuck.
    for _ in 0..50_000_000u64 {
        if let Some(outcome) = server.outcome() {
            assert!(
                client.done,
                "server finished ({outcome:?}) before the client had everything"
            );
            assert!(client.received == file, "client bytes differ from the file");
            return (outcome.clone(), server.retransmitted_blocks());
        }
        let next_arrival = link.next_arrival();
        let server_deadline = server.poll_timeout();
        let client_deadline = (!client.done && !client.last_ack.is_empty()).then_some(client.deadline);
        let next = [next_arrival, server_deadline, client_deadline]
            .into_iter()
            .flatten()
            .min()
            .expect("something pending");
        now = now.max(next);
        if next_arrival == Some(next) {
            let (_, dest, datagram) = link.pop().unwrap();
            match dest {
                Dest::Server => server.handle_datagram(now, &datagram),
                Dest::Client => client.receive(now, &datagram, &mut link),
            }
        } else if server_deadline == Some(next) {
            server.handle_timeout(now);
        } else {
            let ack = client.last_ack.clone();
            client.deadline = now + Duration::from_millis(1500);
            link.send(now, Dest::Server, ack);
        }
        pump(&mut server, &mut link, now);
    }
    panic!("simulation did not finish");
}

const CLEAN: Impairments = Impairments {
    loss: 0,
    duplicate: 0,
    jitter_ms: 0,
};
const HOSTILE: Impairments = Impairments {
    loss: 8,
    duplicate: 5,
    jitter_ms: 5,
};

#[test]
fn clean_link_sends_each_block_once() {
    for window in [1, 4, 16, 64] {
        let (outcome, retransmitted) = simulate(1, CLEAN, 100_000, 512, window);
        assert_eq!(outcome, Outcome::Complete);
        assert_eq!(retransmitted, 0, "window {window}");
    }
}

#[test]
fn lossy_duplicating_reordering_link_delivers_identical_bytes() {
    for seed in 1..=6u64 {
        for window in [1, 8, 16] {
            let (outcome, retransmitted) =
                simulate(seed * 7919, HOSTILE, 150_000 + seed as usize * 333, 512, window);
            // The very last ACK may be lost for good; the client still has every byte.
            assert!(
                matches!(outcome, Outcome::Complete | Outcome::FinalAckMissing),
                "{outcome:?}"
            );
            assert!(
                retransmitted > 0,
                "seed {seed} window {window}: the link lost nothing?"
            );
        }
    }
}

#[test]
fn block_numbers_roll_over_under_loss() {
    // 70 000 blocks of 8 bytes: the numbers pass 65535 and restart at 0.
    let (outcome, _) = simulate(
        42,
        Impairments {
            loss: 2,
            duplicate: 2,
            jitter_ms: 1,
        },
        8 * 70_000 + 3,
        8,
        16,
    );
    assert!(
        matches!(outcome, Outcome::Complete | Outcome::FinalAckMissing),
        "{outcome:?}"
    );
}

#[test]
fn file_of_exact_block_multiple_ends_with_an_empty_block() {
    let (outcome, _) = simulate(3, CLEAN, 512 * 64, 512, 16);
    assert_eq!(outcome, Outcome::Complete);
}

#[test]
fn variable_windows_under_loss_deliver_identical_bytes() {
    for seed in 1..=4u64 {
        let (outcome, retransmitted) = simulate_with(seed * 104_729, HOSTILE, 120_000, 1456, 4, true);
        assert!(
            matches!(outcome, Outcome::Complete | Outcome::FinalAckMissing),
            "seed {seed}: {outcome:?}"
        );
        assert!(retransmitted > 0, "seed {seed}: the link lost nothing?");
    }
    let (outcome, retransmitted) = simulate_with(5, CLEAN, 1456 * 300, 1456, 4, true);
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(
        retransmitted, 0,
        "a clean link needs no resends whatever the window sizes"
    );
}
