//! Golden transcripts of read transfers: the sans-IO `ReadTransfer` against a scripted client
//! over a simulated link, in virtual time, written as `testdata/tftp/<case>.trace` (time,
//! direction, decoded packet). `UPDATE_GOLDEN=1 cargo test -p netboot-tftp` rewrites them;
//! review the diff before committing, since a changed trace is a changed protocol behaviour.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write;
use std::time::{Duration, Instant};

use netboot_testkit::link::origin;
use netboot_testkit::{golden, testdata};
use netboot_tftp::request::{classify, Incoming};
use netboot_tftp::{negotiate, BlockNum, MemorySource, Outcome, Packet, ReadTransfer, TftpLimits};

/// One-way delay of the simulated link.
const LINK_DELAY: Duration = Duration::from_millis(1);
/// How long the client waits for data before repeating its last ACK.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
/// Events one case may take; more means the simulation is stuck.
const MAX_EVENTS: usize = 1_000_000;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Dir {
    ToServer,
    ToClient,
}

impl Dir {
    fn arrow(self) -> &'static str {
        match self {
            Self::ToServer => "C->S",
            Self::ToClient => "S->C",
        }
    }
}

/// A packet the link drops the first time it carries it.
#[derive(Clone, Copy)]
enum Loss {
    Data(u16),
    Ack(u16),
}

impl Loss {
    fn matches(self, dir: Dir, packet: &Packet<'_>) -> bool {
        match (self, dir, packet) {
            (Self::Data(n), Dir::ToClient, Packet::Data { block, .. }) => block.0 == n,
            (Self::Ack(n), Dir::ToServer, Packet::Ack { block, .. }) => block.0 == n,
            _ => false,
        }
    }
}

/// How the scripted client behaves.
#[derive(Clone, Copy)]
struct ClientScript {
    /// Answers the OACK with ERROR 8 instead of ACK 0.
    decline_oack: bool,
    /// Stops answering after acknowledging this block index.
    vanish_after: Option<u64>,
    /// With `msftwindow` agreed: the extra byte of each ACK in turn (cycled), which is also the
    /// number of blocks the client then waits for before acknowledging.
    next_windows: &'static [u8],
}

const PLAIN: ClientScript = ClientScript {
    decline_oack: false,
    vanish_after: None,
    next_windows: &[],
};

struct Case {
    name: &'static str,
    summary: &'static str,
    request: &'static [u8],
    file_len: usize,
    client: ClientScript,
    losses: &'static [Loss],
    expected: Outcome,
    /// DATA and ACK packets of blocks outside these wire-number ranges are counted, not listed,
    /// so long transfers keep a short transcript.
    listed_blocks: &'static [(u16, u16)],
}

const ALL_BLOCKS: &[(u16, u16)] = &[(0, u16::MAX)];

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "lockstep-small",
            summary: "RFC 1350 lock-step without options: 512-byte blocks, a short one ends it",
            request: b"\x00\x01pxelinux.0\x00octet\x00",
            file_len: 1300,
            client: PLAIN,
            losses: &[],
            expected: Outcome::Complete,
            listed_blocks: ALL_BLOCKS,
        },
        Case {
            name: "oack-blksize-tsize",
            summary: "blksize and tsize agreed in an OACK, ACK 0 starts the data (SeaBIOS/iPXE style)",
            request: b"\x00\x01undionly.kpxe\x00octet\x00tsize\x000\x00blksize\x001432\x00",
            file_len: 4000,
            client: PLAIN,
            losses: &[],
            expected: Outcome::Complete,
            listed_blocks: ALL_BLOCKS,
        },
        Case {
            name: "window4-lost-block",
            summary: "windowsize 4: DATA 2 is lost and the client's ACK 1 restarts the window; \
                      DATA 9, the last of its window, is lost and the server's timeout resends it; \
                      the final ACK is lost and the client acknowledges the resent window again",
            request: b"\x00\x01boot.efi\x00octet\x00blksize\x00512\x00windowsize\x004\x00",
            file_len: 512 * 10 + 100,
            client: PLAIN,
            losses: &[Loss::Data(2), Loss::Data(9), Loss::Ack(11)],
            expected: Outcome::Complete,
            listed_blocks: ALL_BLOCKS,
        },
        Case {
            name: "declined-oack",
            summary: "a tsize probe: the client only wanted the size and answers the OACK with ERROR 8",
            request: b"\x00\x01snponly.efi\x00octet\x00tsize\x000\x00",
            file_len: 200_000,
            client: ClientScript {
                decline_oack: true,
                ..PLAIN
            },
            losses: &[],
            expected: Outcome::OptionsDeclined {
                code: netboot_tftp::ErrorCode::OptionNegotiation,
            },
            listed_blocks: ALL_BLOCKS,
        },
        Case {
            name: "timeouts-give-up",
            summary: "the client vanishes after ACK 2: DATA 3 is resent on every timeout until the \
                      retries run out",
            request: b"\x00\x01pxelinux.0\x00octet\x00",
            file_len: 512 * 4 + 1,
            client: ClientScript {
                vanish_after: Some(2),
                ..PLAIN
            },
            losses: &[],
            expected: Outcome::TimedOut,
            listed_blocks: ALL_BLOCKS,
        },
        Case {
            name: "msftwindow",
            summary: "Windows Boot Manager's variable window: msftwindow 31416 is answered with 27182, \
                      then each ACK's extra byte sizes the next window (the final one is meaningless); \
                      DATA 13 is lost and the restart uses the size from the ACK that reports it",
            request: b"\x00\x01boot\\x64\\wdsmgfw.efi\x00octet\x00blksize\x001456\x00tsize\x000\x00\
                       windowsize\x004\x00msftwindow\x0031416\x00",
            file_len: 1456 * 60 + 1000,
            client: ClientScript {
                next_windows: &[2, 8, 1, 16, 32, 3],
                ..PLAIN
            },
            losses: &[Loss::Data(13)],
            expected: Outcome::Complete,
            listed_blocks: ALL_BLOCKS,
        },
        Case {
            name: "rollover-tiny-blksize",
            summary: "blksize 8, windowsize 8, 65 541 blocks: numbers wrap from 65535 to 0; the first \
                      DATA 65535 is lost and the restart crosses the wrap",
            request: b"\x00\x01big.img\x00octet\x00blksize\x008\x00windowsize\x008\x00",
            file_len: 8 * 65_540 + 3,
            client: PLAIN,
            losses: &[Loss::Data(65_535)],
            expected: Outcome::Complete,
            listed_blocks: &[(0, 9), (65_526, u16::MAX)],
        },
    ]
}

/// An RFC 7440 client (RFC 1350 when no window is agreed) that also speaks `msftwindow`.
struct Client {
    script: ClientScript,
    blksize: usize,
    window: u64,
    variable_window: bool,
    next_window_index: usize,
    /// Next wire block number wanted.
    expected: BlockNum,
    /// Blocks received in order so far.
    blocks: u64,
    in_window: u64,
    received: Vec<u8>,
    /// The last ACK and whether it acknowledged the final block.
    done: bool,
    vanished: bool,
    /// A gap in the current window has been reported; more out-of-order blocks stay quiet.
    gap_reported: bool,
    last_sent: Option<Vec<u8>>,
    deadline: Option<Instant>,
}

impl Client {
    fn new(script: ClientScript) -> Self {
        Self {
            script,
            blksize: 512,
            window: 1,
            variable_window: false,
            next_window_index: 0,
            expected: BlockNum(1),
            blocks: 0,
            in_window: 0,
            received: Vec::new(),
            done: false,
            vanished: false,
            gap_reported: false,
            last_sent: None,
            deadline: None,
        }
    }

    fn ack(&mut self, block: BlockNum, now: Instant) -> Vec<u8> {
        let mut ack = vec![0, 4];
        ack.extend_from_slice(&block.0.to_be_bytes());
        if self.variable_window {
            let windows = self.script.next_windows;
            let wanted = windows[self.next_window_index % windows.len()];
            self.next_window_index += 1;
            ack.push(wanted);
            // Values the server would cut (0, more than its limit) are unit-tested; this
            // client asks for what it can count on.
            assert!(
                (1..=64).contains(&wanted),
                "the script asks for a window the server grants"
            );
            self.window = u64::from(wanted);
        }
        self.send(ack, now)
    }

    fn send(&mut self, datagram: Vec<u8>, now: Instant) -> Vec<u8> {
        self.last_sent = Some(datagram.clone());
        self.deadline = (!self.done).then_some(now + CLIENT_TIMEOUT);
        datagram
    }

    /// Handles one datagram from the server and returns the reply, if any.
    fn receive(&mut self, now: Instant, datagram: &[u8]) -> Option<Vec<u8>> {
        if self.vanished {
            return None;
        }
        match Packet::parse(datagram).expect("the server sends well-formed packets") {
            Packet::Oack(options) if self.blocks == 0 => {
                if self.script.decline_oack {
                    self.done = true;
                    let mut error = vec![0, 5, 0, 8];
                    error.extend_from_slice(b"size probe only\0");
                    return Some(self.send(error, now));
                }
                let number = |name| {
                    options
                        .get(name)
                        .map(|v| std::str::from_utf8(v).unwrap().parse::<u64>().unwrap())
                };
                self.blksize = number("blksize").map_or(512, |b| b as usize);
                self.window = number("windowsize").unwrap_or(1);
                self.variable_window = number("msftwindow") == Some(27182);
                Some(self.ack(BlockNum(0), now))
            }
            Packet::Data { block, data } if block == self.expected && !self.done => {
                self.received.extend_from_slice(data);
                self.expected = block.next();
                self.blocks += 1;
                self.in_window += 1;
                self.gap_reported = false;
                let last = data.len() < self.blksize;
                if !last && self.in_window < self.window {
                    return None;
                }
                self.in_window = 0;
                self.done = last;
                let ack = self.ack(block, now);
                if self.script.vanish_after == Some(self.blocks) {
                    self.vanished = true;
                    self.deadline = None;
                }
                Some(ack)
            }
            // The final ACK was lost and the server resends: acknowledge the end again.
            Packet::Data { .. } if self.done => self.last_sent.clone(),
            Packet::Data { block, .. } if self.expected.distance_to(block) < 0x8000 => {
                // A block after a gap: report the last one in order, once, and the server
                // restarts from there.
                if std::mem::replace(&mut self.gap_reported, true) {
                    return None;
                }
                self.in_window = 0;
                Some(self.ack(BlockNum(self.expected.0.wrapping_sub(1)), now))
            }
            // A duplicate of a block already held.
            _ => None,
        }
    }
}

/// The transcript, with runs of unlisted DATA/ACK lines collapsed into a count.
struct Transcript {
    start: Instant,
    text: String,
    hidden: u64,
    listed_blocks: &'static [(u16, u16)],
}

impl Transcript {
    fn time(&self, now: Instant) -> String {
        let t = now - self.start;
        format!("{:>4}.{:03}s", t.as_secs(), t.subsec_millis())
    }

    fn flush_hidden(&mut self) {
        if self.hidden > 0 {
            let _ = writeln!(
                self.text,
                "          ... {} DATA/ACK packets not listed ...",
                self.hidden
            );
            self.hidden = 0;
        }
    }

    fn packet(&mut self, now: Instant, dir: Dir, datagram: &[u8], lost: bool) {
        let packet = Packet::parse(datagram).expect("only well-formed packets cross the link");
        let block = match packet {
            Packet::Data { block, .. } | Packet::Ack { block, .. } => Some(block.0),
            _ => None,
        };
        if block.is_some_and(|b| !self.listed_blocks.iter().any(|&(lo, hi)| (lo..=hi).contains(&b))) {
            self.hidden += 1;
            return;
        }
        self.flush_hidden();
        let time = self.time(now);
        let lost = if lost { "  [lost]" } else { "" };
        let _ = writeln!(self.text, "{time}  {}  {packet}{lost}", dir.arrow());
    }

    fn event(&mut self, now: Instant, what: &str) {
        self.flush_hidden();
        let time = self.time(now);
        let _ = writeln!(self.text, "{time}  {what}");
    }
}

/// A datagram on its way: arrival time, send order (to keep ties stable), direction, bytes.
type InFlight = Reverse<(Instant, u64, Dir, Vec<u8>)>;

/// The simulated link: a fixed delay, and the scripted losses.
struct Link {
    losses: Vec<Loss>,
    /// Datagrams on their way, by arrival time then send order.
    in_flight: BinaryHeap<InFlight>,
    sequence: u64,
}

impl Link {
    fn send(&mut self, transcript: &mut Transcript, now: Instant, dir: Dir, datagram: Vec<u8>) {
        let packet = Packet::parse(&datagram).unwrap();
        let lost = self.losses.iter().position(|l| l.matches(dir, &packet));
        transcript.packet(now, dir, &datagram, lost.is_some());
        match lost {
            Some(index) => {
                self.losses.remove(index);
            }
            None => {
                self.sequence += 1;
                self.in_flight
                    .push(Reverse((now + LINK_DELAY, self.sequence, dir, datagram)));
            }
        }
    }
}

struct Run {
    outcome: Outcome,
    received: Vec<u8>,
    transcript: String,
}

fn simulate(case: &Case) -> Run {
    let file: Vec<u8> = (0..case.file_len).map(|i| (i * 31 + i / 509) as u8).collect();
    let Ok(Incoming::Read(read)) = classify(case.request) else {
        panic!("{}: request refused", case.name)
    };
    let limits = TftpLimits::default();
    let agreed = negotiate(&read.request, Some(file.len() as u64), &limits);
    let mut server = ReadTransfer::new(&agreed, file.len() as u64, &limits);
    let mut source = MemorySource::new(file.into());
    let mut client = Client::new(case.client);
    let start = origin();
    let mut now = start;
    let mut transcript = Transcript {
        start,
        text: String::new(),
        hidden: 0,
        listed_blocks: case.listed_blocks,
    };
    let _ = writeln!(transcript.text, "# {}: {}", case.name, case.summary);
    let _ = writeln!(
        transcript.text,
        "# file {} bytes; link delay {} ms each way; server timeout {} s, {} retries; client \
         timeout {} s",
        case.file_len,
        LINK_DELAY.as_millis(),
        limits.default_timeout.as_secs(),
        limits.retries,
        CLIENT_TIMEOUT.as_secs(),
    );
    let mut link = Link {
        losses: case.losses.to_vec(),
        in_flight: BinaryHeap::new(),
        sequence: 0,
    };
    let mut buf = vec![0; server.max_packet_len()];
    // The request reaches the server's port 69; the transfer starts there.
    transcript.packet(now, Dir::ToServer, case.request, false);
    now += LINK_DELAY;
    for _ in 0..MAX_EVENTS {
        while let Some(len) = server.poll_transmit(now, &mut source, &mut buf) {
            link.send(&mut transcript, now, Dir::ToClient, buf[..len].to_vec());
        }
        if let Some(outcome) = server.outcome() {
            transcript.event(now, &format!("server: {outcome:?}"));
            let resent = server.retransmitted_blocks();
            let _ = writeln!(
                transcript.text,
                "# outcome {outcome:?}; {resent} blocks resent; the client holds {} bytes",
                client.received.len()
            );
            return Run {
                outcome: outcome.clone(),
                received: client.received,
                transcript: transcript.text,
            };
        }
        let arrival = link.in_flight.peek().map(|Reverse((t, ..))| *t);
        let server_deadline = server.poll_timeout();
        let next = [arrival, server_deadline, client.deadline]
            .into_iter()
            .flatten()
            .min()
            .expect("something is pending until the server ends");
        now = next;
        if arrival == Some(next) {
            let Reverse((_, _, dir, datagram)) = link.in_flight.pop().unwrap();
            match dir {
                Dir::ToServer => server.handle_datagram(now, &datagram),
                Dir::ToClient => {
                    if let Some(reply) = client.receive(now, &datagram) {
                        link.send(&mut transcript, now, Dir::ToServer, reply);
                    }
                }
            }
        } else if server_deadline == Some(next) {
            transcript.event(now, "server: timeout");
            server.handle_timeout(now);
        } else {
            transcript.event(now, "client: timeout, repeats its last packet");
            client.deadline = Some(now + CLIENT_TIMEOUT);
            let again = client.last_sent.clone().expect("a deadline follows a send");
            link.send(&mut transcript, now, Dir::ToServer, again);
        }
    }
    panic!("{}: no outcome after {MAX_EVENTS} events", case.name);
}

#[test]
fn read_transfers_match_their_golden_transcripts() {
    let dir = testdata().join("tftp");
    for case in cases() {
        let run = simulate(&case);
        assert_eq!(run.outcome, case.expected, "{}", case.name);
        if case.expected == Outcome::Complete {
            let file: Vec<u8> = (0..case.file_len).map(|i| (i * 31 + i / 509) as u8).collect();
            assert!(
                run.received == file,
                "{}: the client's bytes differ from the file",
                case.name
            );
        }
        golden::check(
            &dir.join(format!("{}.trace", case.name)),
            run.transcript.as_bytes(),
        );
    }
}
