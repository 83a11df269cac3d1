//! The per-transfer state machine of a read request (the server sends the file).
//!
//! Drive it like a quinn-proto connection:
//! 1. feed every datagram from the client's address to [`ReadTransfer::handle_datagram`], with
//!    the instant it was received;
//! 2. when the instant from [`ReadTransfer::poll_timeout`] passes, call
//!    [`ReadTransfer::handle_timeout`];
//! 3. after either, call [`ReadTransfer::poll_transmit`] until it returns `None`, sending each
//!    packet to the client;
//! 4. stop when [`ReadTransfer::outcome`] is `Some`.
//!
//! Window semantics (RFC 7440): the server sends `windowsize` blocks, then waits. An ACK for
//! the last block of the window opens the next window; an ACK for an earlier block of the window
//! restarts sending right after it; an ACK for a block already acknowledged is a duplicate and is
//! ignored (retransmitting on duplicates is the Sorcerer's Apprentice bug). A timeout resends the
//! window from the first unacknowledged block, waiting twice as long each time unless the
//! client chose the timeout ([`crate::Retransmission`]); after `retries` timeouts in a row the
//! transfer is abandoned. Until the client has acknowledged a data block, only
//! `retries_before_first_ack` timeouts are allowed ([`TftpLimits::retries_before_first_ack`]): a
//! request nobody answers (spoofed, or its client gone) ends within seconds instead of holding
//! its transfer slot for the full retry budget.
//!
//! Proof of receipt ([`ReadTransfer::with_proof_of_receipt`], for a server answering from its
//! request port): there the client is known only by its address, which a request can forge, so
//! a spoofer could acknowledge blocks it never receives and have the file sent to its victim.
//! With the proof required, every ACK must arrive *after* the packet it acknowledges was first
//! sent (ACK 0 after the OACK, ACK n after DATA n); an ACK that arrives earlier, or
//! acknowledges a packet never sent, cannot come from a client that received it and is
//! ignored: it moves nothing and resets no timer. Nothing goes out before the first packet
//! (the OACK, or DATA 1 without options) is acknowledged so. A transfer that gives up before
//! any data was acknowledged, having ignored such ACKs, ends with [`Outcome::BlindAck`].
//! Ignoring rather than ending keeps a real client going whatever made one of its ACKs look
//! early (a late ACK of an earlier transfer from the same port, a wall-clock step under the
//! driver's arrival stamps): it loses one timeout and its next ACK counts. For this the driver
//! must pass, as `now` of [`ReadTransfer::handle_datagram`], the instant the datagram was
//! received, not the instant it is processed (they differ when datagrams wait in a queue),
//! and send what [`ReadTransfer::poll_transmit`] returns after the `now` it passed there.
//!
//! The proof is timing, not a secret (TFTP has no field only a receiver could know): it stops
//! blind bursts, which outrun the server, but a spoofer that paces its blind ACKs behind the
//! server's sending passes it. So until the client has acknowledged a data block, the window
//! is also held to [`PROVISIONAL_WINDOW_BYTES`] (at least one block): what a spoofer gets from
//! two packets (RRQ, then ACK 0 once the OACK has surely left) is that much plus
//! `retries_before_first_ack` resends of it, not a full window of up to `max_window_bytes`
//! three times. A client that asked for a wider window receives fewer blocks than agreed at
//! first; RFC 7440 receivers acknowledge what they have when their timer fires, so that costs
//! such a client one timeout per transfer. Beyond that a spoofer must keep acknowledging, one
//! ACK per window, as a client would; the embedder bounds the rest (transfers per client
//! address).
//!
//! Variable windows (Microsoft's `msftwindow`, when negotiated): every ACK carries one extra byte,
//! the number of blocks the client wants in the next window. It is clamped to
//! `1..=max_window` (narrowed by `max_window_bytes` for large blocks); an ACK without it falls back to the negotiated window. The extra byte of the
//! final ACK is meaningless and ignored, as is the byte of a duplicate ACK.

use std::collections::VecDeque;
use std::time::Instant;

use crate::backoff::Retransmission;
use crate::options::{Negotiated, TftpLimits};
use crate::source::BlockSource;
use crate::wire::{write_data_header, ErrorCode, Packet, DATA_HEADER_LEN};
use crate::BlockNum;

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The client acknowledged the last block.
    Complete,
    /// The client answered the OACK with an ERROR (RFC 2347 refusal, or a `tsize` probe that
    /// only wanted the size).
    OptionsDeclined {
        /// The error code the client sent, normally 8.
        code: ErrorCode,
    },
    /// The client sent an ERROR during the transfer.
    ClientError {
        /// Its code.
        code: ErrorCode,
        /// Its message, lossily decoded.
        message: String,
    },
    /// Every block was sent but the final ACK never came; the client probably has the file.
    FinalAckMissing,
    /// The client stopped answering before the end.
    TimedOut,
    /// Reading the file failed or it shrank while being served; the client got an ERROR.
    ReadFailed,
    /// While the client had to prove it receives ([`ReadTransfer::with_proof_of_receipt`]), it
    /// acknowledged no data before the retries ran out, and sent ACKs a receiving client
    /// cannot send (before the packet they acknowledge was sent, or for a packet not sent):
    /// the request was likely spoofed.
    BlindAck,
}

impl Outcome {
    /// The stable label a transfer ending this way is counted under
    /// (`netboot_tftp_transfers_total{outcome=...}`).
    #[must_use]
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::OptionsDeclined { .. } => "options_declined",
            Self::ClientError { .. } => "client_error",
            Self::TimedOut => "timeout",
            Self::FinalAckMissing | Self::ReadFailed => "failed",
            Self::BlindAck => "blind_ack",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for ACK 0 of the OACK.
    Oack { unsent: bool },
    /// Sending data blocks.
    Data,
    /// An ERROR is queued, then the transfer ends with the outcome.
    Failing,
    /// Over.
    Done,
}

/// When each packet an ACK may still acknowledge was first sent, for the proof of receipt.
#[derive(Debug, Default)]
struct SendTimes {
    /// The OACK's first sending.
    oack: Option<Instant>,
    /// First sending of each block after the acknowledged ones, in order: `blocks[0]` is block
    /// `acked + 1`. At most a window long.
    blocks: VecDeque<Instant>,
    /// ACKs ignored because no receiving client could have sent them.
    ignored: u64,
}

/// Payload bytes of a window while the client has not yet acknowledged a data block, with the
/// proof of receipt required: 5 blocks of 1468 bytes, 16 of 512 (EDK2's default window of 4
/// fits whole), one block of anything above 8 KiB.
pub const PROVISIONAL_WINDOW_BYTES: u64 = 8192;

/// Half the block-number space: an ACK less than this far ahead of the acknowledged block
/// acknowledges a later block, anything further is an old one from before a wrap.
const AHEAD: u16 = 1 << 15;

/// A read transfer: sends one file to one client.
#[derive(Debug)]
pub struct ReadTransfer {
    blksize: usize,
    /// Blocks in the current window.
    window: u64,
    /// The window agreed in the options (1 without `windowsize`).
    negotiated_window: u64,
    /// Largest window a variable-window ACK may ask for.
    max_window: u64,
    /// `msftwindow` was agreed: ACKs carry the next window's size.
    variable_window: bool,
    timeout: Retransmission,
    max_retries: u32,
    size: u64,
    /// 1-based index of the final block: the first block shorter than `blksize`.
    last_block: u64,
    /// Highest block index the client acknowledged.
    acked: u64,
    /// Next block index to send.
    next_send: u64,
    /// Last block index of the current window.
    window_end: u64,
    oack: Vec<u8>,
    phase: Phase,
    outcome: Option<Outcome>,
    deadline: Option<Instant>,
    retries: u32,
    /// Timeouts allowed before the client acknowledged a data block.
    max_retries_unacknowledged: u32,
    /// Set when the client must prove it receives (see the module documentation).
    proof: Option<SendTimes>,
    retransmitted_blocks: u64,
}

impl ReadTransfer {
    /// Starts sending a file of `size` bytes with the agreed options. `negotiated.oack` is sent
    /// first when it is not empty; otherwise block 1 goes out at once (RFC 2347).
    #[must_use]
    pub fn new(negotiated: &Negotiated, size: u64, limits: &TftpLimits) -> Self {
        let blksize = negotiated.blksize.bytes();
        let mut oack = Vec::new();
        if !negotiated.oack.is_empty() {
            let options = negotiated
                .oack
                .iter()
                .map(|(n, v)| crate::wire::RawOption { name: n, value: v })
                .collect();
            // Option names and values come from the client's request or are decimal digits,
            // neither of which can contain NUL, so encoding cannot fail.
            Packet::Oack(crate::wire::Options(options))
                .emit(&mut oack)
                .expect("OACK strings have no NUL");
        }
        let negotiated_window = u64::from(negotiated.windowsize.max(1));
        let mut transfer = Self {
            blksize,
            window: negotiated_window,
            negotiated_window,
            max_window: u64::from(limits.window_cap(negotiated.blksize)),
            variable_window: negotiated.variable_window,
            timeout: negotiated.timeout,
            max_retries: limits.retries,
            size,
            last_block: size / blksize as u64 + 1,
            acked: 0,
            next_send: 1,
            window_end: 0,
            phase: if oack.is_empty() {
                Phase::Data
            } else {
                Phase::Oack { unsent: true }
            },
            oack,
            outcome: None,
            deadline: None,
            retries: 0,
            max_retries_unacknowledged: limits.retries_before_first_ack.min(limits.retries),
            proof: None,
            retransmitted_blocks: 0,
        };
        transfer.open_window(1);
        transfer
    }

    /// Requires every ACK to arrive after the packet it acknowledges was sent (see the module
    /// documentation): for a server that answers from its request port, where the client's
    /// address, which a request can forge, is all that identifies the transfer.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use netboot_tftp::{negotiate, Packet, MemorySource, Outcome, ReadTransfer, TftpLimits};
    ///
    /// let Packet::Rrq(rrq) = Packet::parse(b"\x00\x01f\x00octet\x00tsize\x000\x00").unwrap() else { unreachable!() };
    /// let limits = TftpLimits::default();
    /// let mut transfer = ReadTransfer::new(&negotiate(&rrq, Some(3), &limits), 3, &limits)
    ///     .with_proof_of_receipt();
    /// let mut source = MemorySource::new(b"abc".to_vec().into());
    /// let mut buf = vec![0; transfer.max_packet_len()];
    /// let sent_at = Instant::now();
    /// let received_before = sent_at - Duration::from_millis(1);
    /// transfer.poll_transmit(sent_at, &mut source, &mut buf).unwrap(); // the OACK
    /// // An ACK 0 that arrived before the OACK left was not sent by anyone who received it:
    /// // ignored, so no data goes out.
    /// transfer.handle_datagram(received_before, b"\x00\x04\x00\x00");
    /// assert!(transfer.poll_transmit(sent_at, &mut source, &mut buf).is_none());
    /// assert_eq!(transfer.ignored_blind_acks(), 1);
    /// // The same ACK arriving after the OACK left starts the data.
    /// transfer.handle_datagram(sent_at + Duration::from_millis(1), b"\x00\x04\x00\x00");
    /// assert!(transfer.poll_transmit(sent_at, &mut source, &mut buf).is_some());
    /// assert_eq!(transfer.outcome(), None);
    /// ```
    #[must_use]
    pub fn with_proof_of_receipt(mut self) -> Self {
        self.proof = Some(SendTimes::default());
        self
    }

    /// Buffer size [`Self::poll_transmit`] needs: a DATA packet of the agreed block size.
    #[must_use]
    pub fn max_packet_len(&self) -> usize {
        (DATA_HEADER_LEN + self.blksize)
            .max(self.oack.len())
            .max(crate::wire::DATA_HEADER_LEN + 64)
    }

    /// The agreed block size in bytes.
    #[must_use]
    pub fn blksize(&self) -> usize {
        self.blksize
    }

    /// The window size in blocks: the agreed one, or with `msftwindow` the one the client asked
    /// for in its latest ACK (never more than [`TftpLimits::window_cap`]).
    #[must_use]
    pub fn window(&self) -> u64 {
        self.window
    }

    /// Whether the client drives the window size through its ACKs (`msftwindow`).
    #[must_use]
    pub fn variable_window(&self) -> bool {
        self.variable_window
    }

    /// How the transfer ended, once it has.
    #[must_use]
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Bytes the client has acknowledged.
    #[must_use]
    pub fn bytes_acked(&self) -> u64 {
        (self.acked * self.blksize as u64).min(self.size)
    }

    /// ACKs ignored so far because no client receiving the transfer could have sent them
    /// (see [`Self::with_proof_of_receipt`]); always 0 without the proof.
    #[must_use]
    pub fn ignored_blind_acks(&self) -> u64 {
        self.proof.as_ref().map_or(0, |proof| proof.ignored)
    }

    /// Blocks sent more than once (window restarts and timeouts).
    #[must_use]
    pub fn retransmitted_blocks(&self) -> u64 {
        self.retransmitted_blocks
    }

    /// When [`Self::handle_timeout`] must be called next, if anything is outstanding.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Done | Phase::Failing => None,
            _ => self.deadline,
        }
    }

    fn open_window(&mut self, from: u64) {
        if from <= self.acked {
            return;
        }
        if from < self.next_send {
            self.retransmitted_blocks += self.next_send - from;
        }
        self.next_send = from;
        self.window_end = (self.acked + self.current_window()).min(self.last_block);
    }

    /// The window to send now: the agreed (or asked-for) one, held to
    /// [`PROVISIONAL_WINDOW_BYTES`] while a client that must prove it receives has not yet
    /// acknowledged any data.
    fn current_window(&self) -> u64 {
        if self.proof.is_some() && self.acked == 0 {
            let provisional = (PROVISIONAL_WINDOW_BYTES / self.blksize as u64).max(1);
            self.window.min(provisional)
        } else {
            self.window
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        self.phase = Phase::Done;
        self.deadline = None;
        self.outcome = Some(outcome);
    }

    /// Processes a datagram from the client, received at `now`. Malformed and unexpected
    /// packets are ignored.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        let Ok(packet) = Packet::parse(datagram) else {
            return;
        };
        if let Packet::Ack { block, .. } = packet {
            if self.is_blind(now, block) {
                if let Some(proof) = &mut self.proof {
                    proof.ignored += 1;
                }
                return;
            }
        }
        match (self.phase, packet) {
            (Phase::Done | Phase::Failing, _) => {}
            (
                Phase::Oack { .. },
                Packet::Ack {
                    block: BlockNum(0),
                    trailing,
                },
            ) => {
                self.set_next_window(trailing);
                self.phase = Phase::Data;
                self.retries = 0;
                self.deadline = Some(now + self.timeout.interval(self.retries));
                self.open_window(1);
            }
            (Phase::Oack { .. }, Packet::Error { code, .. }) => {
                self.finish(Outcome::OptionsDeclined { code })
            }
            (Phase::Data, Packet::Ack { block, trailing }) => self.handle_ack(now, block, trailing),
            (Phase::Data, Packet::Error { code, message }) => self.finish(Outcome::ClientError {
                code,
                message: String::from_utf8_lossy(message).into_owned(),
            }),
            _ => {}
        }
    }

    /// Whether an ACK for `block` received at `now` cannot come from a client that received
    /// what it acknowledges: only when the proof of receipt is required.
    fn is_blind(&self, now: Instant, block: BlockNum) -> bool {
        let Some(proof) = &self.proof else {
            return false;
        };
        match self.phase {
            Phase::Done | Phase::Failing => false,
            Phase::Oack { .. } => block != BlockNum(0) || proof.oack.is_none_or(|sent| now < sent),
            Phase::Data => {
                let ahead = BlockNum::from_index(self.acked).distance_to(block);
                if ahead == 0 || ahead >= AHEAD {
                    // A duplicate, or an old block: ignored as usual.
                    return false;
                }
                match proof.blocks.get(usize::from(ahead) - 1) {
                    Some(&sent) => now < sent,
                    None => true,
                }
            }
        }
    }

    /// Applies the next window's size from an ACK's extra byte (`msftwindow` only).
    fn set_next_window(&mut self, trailing: &[u8]) {
        if !self.variable_window {
            return;
        }
        self.window = match trailing {
            [wanted] => u64::from(*wanted).clamp(1, self.max_window),
            _ => self.negotiated_window,
        };
    }

    fn handle_ack(&mut self, now: Instant, block: BlockNum, trailing: &[u8]) {
        let sent_unacked = self.next_send - 1 - self.acked;
        let advance = u64::from(BlockNum::from_index(self.acked).distance_to(block));
        if advance == 0 || advance > sent_unacked {
            // A duplicate, or an ACK for something not sent (stale, from before a wrap).
            return;
        }
        self.acked += advance;
        if let Some(proof) = &mut self.proof {
            proof.blocks.drain(..(advance as usize).min(proof.blocks.len()));
        }
        self.retries = 0;
        if self.acked == self.last_block {
            self.finish(Outcome::Complete);
            return;
        }
        self.deadline = Some(now + self.timeout.interval(self.retries));
        self.set_next_window(trailing);
        // Whole window acknowledged: next window. Part of it: the client lost or reordered a
        // block, so resend from the first one it lacks.
        self.window_end = self.acked;
        self.open_window(self.acked + 1);
    }

    /// Processes the passing of the deadline from [`Self::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.deadline else { return };
        if now < deadline || matches!(self.phase, Phase::Done | Phase::Failing) {
            return;
        }
        let limit = if self.acked == 0 {
            self.max_retries_unacknowledged
        } else {
            self.max_retries
        };
        if self.retries >= limit {
            let all_sent = self.phase == Phase::Data && self.next_send > self.last_block;
            let spoofed = self.acked == 0 && self.ignored_blind_acks() > 0;
            self.finish(if spoofed {
                Outcome::BlindAck
            } else if all_sent {
                Outcome::FinalAckMissing
            } else {
                Outcome::TimedOut
            });
            return;
        }
        self.retries += 1;
        self.deadline = Some(now + self.timeout.interval(self.retries));
        match self.phase {
            Phase::Oack { .. } => self.phase = Phase::Oack { unsent: true },
            Phase::Data => {
                self.window_end = self.acked;
                self.open_window(self.acked + 1);
            }
            Phase::Failing | Phase::Done => {}
        }
    }

    /// Writes the next packet to send into `buf` and returns its length, or `None` when there is
    /// nothing to send now. `buf` must hold [`Self::max_packet_len`] bytes. Blocks are read from
    /// `source` straight into `buf`, so sending allocates nothing.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        source: &mut dyn BlockSource,
        buf: &mut [u8],
    ) -> Option<usize> {
        match self.phase {
            Phase::Done => None,
            Phase::Failing => {
                let len = write_error(buf, ErrorCode::NotDefined, "Read error");
                self.finish(Outcome::ReadFailed);
                Some(len)
            }
            Phase::Oack { unsent: false } => None,
            Phase::Oack { unsent: true } => {
                self.phase = Phase::Oack { unsent: false };
                if let Some(proof) = &mut self.proof {
                    proof.oack.get_or_insert(now);
                }
                self.deadline = Some(now + self.timeout.interval(self.retries));
                buf[..self.oack.len()].copy_from_slice(&self.oack);
                Some(self.oack.len())
            }
            Phase::Data => {
                if self.next_send > self.window_end {
                    return None;
                }
                let index = self.next_send;
                let offset = (index - 1) * self.blksize as u64;
                let expected = self.size.saturating_sub(offset).min(self.blksize as u64) as usize;
                let payload = &mut buf[DATA_HEADER_LEN..DATA_HEADER_LEN + expected];
                if read_fully(source, offset, payload) != Some(expected) {
                    self.phase = Phase::Failing;
                    return self.poll_transmit(now, source, buf);
                }
                write_data_header(buf, BlockNum::from_index(index));
                if let Some(proof) = &mut self.proof {
                    // Only the first sending counts: an ACK may answer the original.
                    if index > self.acked + proof.blocks.len() as u64 {
                        proof.blocks.push_back(now);
                    }
                }
                self.next_send += 1;
                self.deadline = Some(now + self.timeout.interval(self.retries));
                Some(DATA_HEADER_LEN + expected)
            }
        }
    }
}

fn read_fully(source: &mut dyn BlockSource, offset: u64, buf: &mut [u8]) -> Option<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read_at(offset + filled as u64, &mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(filled)
}

/// Writes an ERROR packet into `buf` (truncating the message to fit) and returns its length.
///
/// # Panics
/// If `buf` is shorter than 5 bytes.
pub fn write_error(buf: &mut [u8], code: ErrorCode, message: &str) -> usize {
    let room = buf.len() - 5;
    let message = &message.as_bytes()[..message.len().min(room)];
    buf[..2].copy_from_slice(&5u16.to_be_bytes());
    buf[2..4].copy_from_slice(&u16::from(code).to_be_bytes());
    for (slot, &byte) in buf[4..].iter_mut().zip(message) {
        *slot = if byte.is_ascii_control() { b'?' } else { byte };
    }
    buf[4 + message.len()] = 0;
    5 + message.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::negotiate;
    use crate::source::MemorySource;
    use std::time::Duration;

    fn transfer(request: &[u8], file: &[u8]) -> ReadTransfer {
        let Packet::Rrq(request) = Packet::parse(request).unwrap() else {
            panic!("not an RRQ")
        };
        let limits = TftpLimits::default();
        ReadTransfer::new(
            &negotiate(&request, Some(file.len() as u64), &limits),
            file.len() as u64,
            &limits,
        )
    }

    fn drain(t: &mut ReadTransfer, now: Instant, source: &mut MemorySource) -> Vec<Vec<u8>> {
        let mut buf = vec![0; t.max_packet_len()];
        std::iter::from_fn(|| t.poll_transmit(now, source, &mut buf).map(|n| buf[..n].to_vec())).collect()
    }

    fn ack(block: u16) -> Vec<u8> {
        let mut wire = vec![0, 4];
        wire.extend_from_slice(&block.to_be_bytes());
        wire
    }

    /// An ACK with `msftwindow`'s extra byte: the blocks wanted in the next window.
    fn ack_wanting(block: u16, next_window: u8) -> Vec<u8> {
        let mut wire = ack(block);
        wire.push(next_window);
        wire
    }

    fn block_numbers(packets: &[Vec<u8>]) -> Vec<u16> {
        packets
            .iter()
            .map(|p| {
                assert_eq!(&p[..2], &[0, 3], "not DATA: {p:?}");
                u16::from_be_bytes([p[2], p[3]])
            })
            .collect()
    }

    /// An arbitrary origin for virtual time; only the differences matter to the machine.
    #[allow(
        clippy::disallowed_methods,
        reason = "a test needs one real instant to count virtual time from"
    )]
    fn origin() -> Instant {
        Instant::now()
    }

    const BOOTMGR_RRQ: &[u8] =
        b"\x00\x01boot\\x64\\wdsmgfw.efi\x00octet\x00blksize\x0010\x00tsize\x000\x00windowsize\x004\x00msftwindow\x0031416\x00";

    #[test]
    fn msftwindow_ack_bytes_size_each_next_window() {
        let file: Vec<u8> = (0..255u8).collect();
        let mut source = MemorySource::new(file.clone().into());
        let mut t = transfer(BOOTMGR_RRQ, &file);
        let now = origin();
        assert!(t.variable_window());
        let oack = drain(&mut t, now, &mut source);
        assert_eq!(
            oack,
            [
                b"\x00\x06blksize\x0010\x00tsize\x00255\x00windowsize\x004\x00msftwindow\x0027182\x00"
                    .to_vec()
            ]
        );
        // ACK 0 already carries the byte: the first window has 2 blocks, not the agreed 4.
        t.handle_datagram(now, &ack_wanting(0, 2));
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [1, 2]);
        t.handle_datagram(now, &ack_wanting(2, 5));
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [3, 4, 5, 6, 7]);
        assert_eq!(t.window(), 5);
        // A partial ACK restarts after the last block received, with the new size.
        t.handle_datagram(now, &ack_wanting(4, 3));
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [5, 6, 7]);
        // Zero means at least one block; a duplicate's byte changes nothing.
        t.handle_datagram(now, &ack_wanting(7, 0));
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [8]);
        t.handle_datagram(now, &ack_wanting(7, 9));
        assert!(drain(&mut t, now, &mut source).is_empty());
        assert_eq!(t.window(), 1);
        // Without the byte the agreed window applies again.
        t.handle_datagram(now, &ack(8));
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [9, 10, 11, 12]);
        // More than the server allows is cut to its limit; the file has 26 blocks.
        t.handle_datagram(now, &ack_wanting(12, 255));
        assert_eq!(t.window(), 64);
        assert_eq!(
            block_numbers(&drain(&mut t, now, &mut source)),
            (13..=26).collect::<Vec<_>>()
        );
        // The final ACK's byte is bogus and must not matter.
        t.handle_datagram(now, &ack_wanting(26, 0xa5));
        assert_eq!(t.outcome(), Some(&Outcome::Complete));
    }

    #[test]
    fn ack_bytes_are_ignored_without_msftwindow() {
        let file = vec![3u8; 100];
        let mut source = MemorySource::new(file.clone().into());
        let mut t = transfer(
            b"\x00\x01f\x00octet\x00blksize\x0010\x00windowsize\x002\x00msftwindow\x001\x00",
            &file,
        );
        let now = origin();
        assert!(!t.variable_window());
        assert_eq!(
            drain(&mut t, now, &mut source),
            [b"\x00\x06blksize\x0010\x00windowsize\x002\x00".to_vec()]
        );
        t.handle_datagram(now, &ack_wanting(0, 8));
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [1, 2]);
        t.handle_datagram(now, &ack_wanting(2, 8));
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [3, 4]);
    }

    #[test]
    fn variable_window_is_bounded_by_the_server_limit() {
        let file = vec![9u8; 10 * 40];
        let Packet::Rrq(request) = Packet::parse(BOOTMGR_RRQ).unwrap() else {
            unreachable!()
        };
        let limits = TftpLimits {
            max_window: 3,
            ..TftpLimits::default()
        };
        let mut t = ReadTransfer::new(&negotiate(&request, Some(400), &limits), 400, &limits);
        let mut source = MemorySource::new(file.into());
        let now = origin();
        let _oack = drain(&mut t, now, &mut source);
        t.handle_datagram(now, &ack_wanting(0, 200));
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [1, 2, 3]);
        // Without the byte, the agreed window, itself capped at 3.
        t.handle_datagram(now, &ack(3));
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [4, 5, 6]);
    }

    #[test]
    fn lock_step_without_options_ends_with_a_short_block() {
        let file = vec![7u8; 1024];
        let mut source = MemorySource::new(file.clone().into());
        let mut t = transfer(b"\x00\x01f\x00octet\x00", &file);
        let now = origin();
        let sent = drain(&mut t, now, &mut source);
        assert_eq!(sent.len(), 1);
        assert_eq!(&sent[0][..4], &[0, 3, 0, 1]);
        assert_eq!(sent[0].len(), 516);
        t.handle_datagram(now, &ack(1));
        assert_eq!(drain(&mut t, now, &mut source)[0][..4], [0, 3, 0, 2]);
        // A duplicate ACK must not trigger a resend.
        t.handle_datagram(now, &ack(1));
        assert!(drain(&mut t, now, &mut source).is_empty());
        t.handle_datagram(now, &ack(2));
        let last = drain(&mut t, now, &mut source);
        assert_eq!(last, [vec![0, 3, 0, 3]], "1024 bytes end with an empty block 3");
        t.handle_datagram(now, &ack(3));
        assert_eq!(t.outcome(), Some(&Outcome::Complete));
    }

    #[test]
    fn oack_then_window_then_restart_after_partial_ack() {
        let file: Vec<u8> = (0..100u8).collect();
        let mut source = MemorySource::new(file.clone().into());
        let mut t = transfer(
            b"\x00\x01f\x00octet\x00blksize\x0010\x00windowsize\x004\x00",
            &file,
        );
        let now = origin();
        let oack = drain(&mut t, now, &mut source);
        assert_eq!(oack, [b"\x00\x06blksize\x0010\x00windowsize\x004\x00".to_vec()]);
        t.handle_datagram(now, &ack(0));
        let window = drain(&mut t, now, &mut source);
        assert_eq!(window.iter().map(|p| p[3]).collect::<Vec<_>>(), [1, 2, 3, 4]);
        t.handle_datagram(now, &ack(2));
        let resent = drain(&mut t, now, &mut source);
        assert_eq!(resent.iter().map(|p| p[3]).collect::<Vec<_>>(), [3, 4, 5, 6]);
        assert_eq!(t.retransmitted_blocks(), 2);
    }

    #[test]
    fn timeouts_retransmit_then_give_up() {
        let file = vec![1u8; 600];
        let mut source = MemorySource::new(file.clone().into());
        let mut t = transfer(b"\x00\x01f\x00octet\x00", &file);
        let mut now = origin();
        assert_eq!(drain(&mut t, now, &mut source).len(), 1);
        t.handle_datagram(now, &ack(1));
        assert_eq!(drain(&mut t, now, &mut source).len(), 1);
        // The client acknowledged data: the full retry budget applies to the last block.
        for _ in 0..TftpLimits::default().retries {
            now = t.poll_timeout().unwrap();
            t.handle_timeout(now);
            assert_eq!(drain(&mut t, now, &mut source).len(), 1);
        }
        now = t.poll_timeout().unwrap();
        t.handle_timeout(now);
        assert_eq!(t.outcome(), Some(&Outcome::FinalAckMissing));
    }

    #[test]
    fn an_unanswered_first_packet_is_given_up_after_the_first_ack_retries() {
        let limits = TftpLimits::default();
        for rrq in [
            &b"\x00\x01f\x00octet\x00"[..],
            b"\x00\x01f\x00octet\x00timeout\x005\x00",
            b"\x00\x01f\x00octet\x00windowsize\x004\x00blksize\x00512\x00",
        ] {
            let file = vec![1u8; 4000];
            let mut source = MemorySource::new(file.clone().into());
            let mut t = transfer(rrq, &file);
            let mut now = origin();
            let first = drain(&mut t, now, &mut source);
            assert_eq!(first.len(), 1);
            // Each bounded loop: the transfer must end well within the full retry budget.
            let mut resent = 0;
            for _ in 0..=limits.retries {
                now = t.poll_timeout().unwrap();
                t.handle_timeout(now);
                if t.outcome().is_some() {
                    break;
                }
                assert_eq!(drain(&mut t, now, &mut source), first, "the same packet again");
                resent += 1;
            }
            assert_eq!(resent, limits.retries_before_first_ack);
            assert_eq!(t.outcome(), Some(&Outcome::TimedOut));
        }
        // ACK 0 of the OACK is not an acknowledgement of data: a first window nobody
        // acknowledges is resent as few times.
        let file = vec![1u8; 4000];
        let mut source = MemorySource::new(file.clone().into());
        let mut t = transfer(b"\x00\x01f\x00octet\x00windowsize\x004\x00", &file);
        let mut now = origin();
        drain(&mut t, now, &mut source);
        t.handle_datagram(now, &ack(0));
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [1, 2, 3, 4]);
        let mut windows = 1;
        for _ in 0..=limits.retries {
            now = t.poll_timeout().unwrap();
            t.handle_timeout(now);
            if t.outcome().is_some() {
                break;
            }
            assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [1, 2, 3, 4]);
            windows += 1;
        }
        assert_eq!(windows, 1 + limits.retries_before_first_ack);
        assert_eq!(t.outcome(), Some(&Outcome::TimedOut));
    }

    fn proving(rrq: &[u8], file: &[u8]) -> (ReadTransfer, MemorySource) {
        (
            transfer(rrq, file).with_proof_of_receipt(),
            MemorySource::new(file.to_vec().into()),
        )
    }

    #[test]
    fn proof_of_receipt_ignores_blind_acks_and_ends_a_transfer_that_never_got_a_real_one() {
        let file = vec![5u8; 3000];
        let sent = origin() + Duration::from_secs(1);
        let before = sent - Duration::from_micros(1);
        let after = sent + Duration::from_micros(1);
        let with_options = &b"\x00\x01f\x00octet\x00blksize\x00512\x00windowsize\x004\x00"[..];
        let plain = &b"\x00\x01f\x00octet\x00"[..];

        // A burst of blind ACKs right behind the request, all from before the first packet
        // left: none moves the transfer, which only resends its first packet on timeouts and
        // then ends as blind.
        for rrq in [with_options, plain] {
            let (mut t, mut source) = proving(rrq, &file);
            let first = drain(&mut t, sent, &mut source);
            assert_eq!(first.len(), 1);
            for block in 0..=8 {
                t.handle_datagram(before, &ack(block));
            }
            assert_eq!(t.outcome(), None);
            // Without options, ACK 0 acknowledges nothing and is ignored as any stale ACK is.
            let stale = usize::from(rrq == plain);
            assert_eq!(t.ignored_blind_acks(), 9 - stale as u64);
            assert!(drain(&mut t, after, &mut source).is_empty());
            let mut resent = Vec::new();
            while let Some(deadline) = t.poll_timeout() {
                t.handle_timeout(deadline);
                resent.extend(drain(&mut t, deadline, &mut source));
            }
            assert_eq!(resent, vec![first[0].clone(); resent.len()]);
            assert_eq!(t.outcome(), Some(&Outcome::BlindAck));
        }
        // Before anything is sent, any ACK is blind.
        let (mut t, _) = proving(with_options, &file);
        t.handle_datagram(after, &ack(0));
        assert_eq!(t.ignored_blind_acks(), 1);
        // After the OACK, an ACK for a data block never sent is blind too.
        let (mut t, mut source) = proving(with_options, &file);
        drain(&mut t, sent, &mut source);
        t.handle_datagram(after, &ack(4));
        assert_eq!(t.ignored_blind_acks(), 1);
        assert!(drain(&mut t, after, &mut source).is_empty());

        // A blind ACK that passed for the OACK is still caught once it outruns the window:
        // ACK 2 received before DATA 2 was sent moves nothing; the same ACK after it does.
        let (mut t, mut source) = proving(with_options, &file);
        drain(&mut t, sent, &mut source);
        t.handle_datagram(after, &ack(0));
        let window_at = after + Duration::from_millis(1);
        assert_eq!(
            block_numbers(&drain(&mut t, window_at, &mut source)),
            [1, 2, 3, 4]
        );
        t.handle_datagram(after, &ack(2));
        assert_eq!(t.ignored_blind_acks(), 1);
        assert!(drain(&mut t, window_at, &mut source).is_empty());
        let late = window_at + Duration::from_millis(1);
        t.handle_datagram(late, &ack(2));
        assert_eq!(block_numbers(&drain(&mut t, late, &mut source)), [3, 4, 5, 6]);
        // A transfer with acknowledged data that times out is not called blind.
        while let Some(deadline) = t.poll_timeout() {
            t.handle_timeout(deadline);
            drain(&mut t, deadline, &mut source);
        }
        assert_eq!(t.outcome(), Some(&Outcome::FinalAckMissing));
    }

    #[test]
    fn proof_of_receipt_lets_a_real_client_through_losses_and_restarts() {
        let file = vec![5u8; 5000];
        let mut now = origin();
        let rtt = Duration::from_millis(1);
        let (mut t, mut source) = proving(
            b"\x00\x01f\x00octet\x00blksize\x00512\x00windowsize\x004\x00",
            &file,
        );
        drain(&mut t, now, &mut source);
        // The OACK is lost; its resend is acknowledged.
        now = t.poll_timeout().unwrap();
        t.handle_timeout(now);
        assert_eq!(&drain(&mut t, now, &mut source)[0][..2], &[0, 6]);
        now += rtt;
        t.handle_datagram(now, &ack(0));
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [1, 2, 3, 4]);
        // DATA 3 is lost: the client acknowledges 2, the server restarts at 3.
        now += rtt;
        t.handle_datagram(now, &ack(2));
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [3, 4, 5, 6]);
        // The client's ACK 4 for the original DATA 4, received before the resent one left,
        // answers a block that was sent: not blind.
        t.handle_datagram(now, &ack(4));
        assert_eq!(t.outcome(), None);
        // Duplicates and old ACKs are ignored as usual.
        t.handle_datagram(now, &ack(4));
        t.handle_datagram(now, &ack(1));
        assert_eq!(t.outcome(), None);
        now += rtt;
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [5, 6, 7, 8]);
        now += rtt;
        t.handle_datagram(now, &ack(8));
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [9, 10]);
        now += rtt;
        t.handle_datagram(now, &ack(10));
        assert_eq!(t.outcome(), Some(&Outcome::Complete));

        // Without options DATA 1 is the first packet, acknowledged as ACK 1.
        let (mut t, mut source) = proving(b"\x00\x01f\x00octet\x00", &file);
        now = origin();
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [1]);
        now += rtt;
        t.handle_datagram(now, &ack(1));
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), [2]);
        assert_eq!(t.outcome(), None);
    }

    #[test]
    fn the_window_is_provisional_until_data_is_acknowledged_when_proof_is_required() {
        let file = vec![5u8; 1468 * 40];
        let rrq = b"\x00\x01f\x00octet\x00blksize\x001468\x00windowsize\x0016\x00";
        let mut now = origin();
        let (mut t, mut source) = proving(rrq, &file);
        drain(&mut t, now, &mut source);
        now += Duration::from_millis(1);
        t.handle_datagram(now, &ack(0));
        // 8192 bytes hold 5 blocks of 1468.
        let first = block_numbers(&drain(&mut t, now, &mut source));
        assert_eq!(first, [1, 2, 3, 4, 5]);
        // Resent as it was, no wider, while nothing is acknowledged.
        now = t.poll_timeout().unwrap();
        t.handle_timeout(now);
        assert_eq!(block_numbers(&drain(&mut t, now, &mut source)), first);
        // The client's timer fires and it acknowledges what it has: the agreed window from then.
        now += Duration::from_millis(1);
        t.handle_datagram(now, &ack(5));
        assert_eq!(
            block_numbers(&drain(&mut t, now, &mut source)),
            (6..=21).collect::<Vec<_>>()
        );
        // Without the proof the agreed window applies at once.
        let mut t = transfer(rrq, &file);
        drain(&mut t, now, &mut source);
        t.handle_datagram(now, &ack(0));
        assert_eq!(drain(&mut t, now, &mut source).len(), 16);
    }

    /// Gaps between the retransmissions of a lost block, once the client acknowledged the first
    /// one, for a request `rrq`.
    fn retransmission_gaps(rrq: &[u8]) -> Vec<Duration> {
        let file = vec![1u8; 600];
        let mut source = MemorySource::new(file.clone().into());
        let mut t = transfer(rrq, &file);
        let mut now = origin();
        assert_eq!(drain(&mut t, now, &mut source).len(), 1);
        if !t.oack.is_empty() {
            t.handle_datagram(now, &ack(0));
            assert_eq!(drain(&mut t, now, &mut source).len(), 1);
        }
        t.handle_datagram(now, &ack(1));
        assert_eq!(drain(&mut t, now, &mut source).len(), 1);
        let mut gaps = Vec::new();
        for _ in 0..5 {
            let next = t.poll_timeout().unwrap();
            gaps.push(next - now);
            now = next;
            t.handle_timeout(now);
            assert_eq!(drain(&mut t, now, &mut source).len(), 1);
        }
        gaps
    }

    #[test]
    fn the_server_default_timeout_backs_off() {
        let second = Duration::from_secs(1);
        assert_eq!(
            retransmission_gaps(b"\x00\x01f\x00octet\x00"),
            [second, second * 2, second * 4, second * 8, second * 8]
        );
    }

    #[test]
    fn a_timeout_the_client_chose_is_kept() {
        let two = Duration::from_secs(2);
        assert_eq!(
            retransmission_gaps(b"\x00\x01f\x00octet\x00timeout\x002\x00"),
            [two; 5]
        );
    }

    #[test]
    fn a_file_that_shrinks_fails_with_an_error_packet() {
        let mut t = transfer(b"\x00\x01f\x00octet\x00", &[0; 600]);
        let mut source = MemorySource::new(vec![0u8; 100].into());
        let sent = drain(&mut t, origin(), &mut source);
        assert_eq!(&sent[0][..4], &[0, 5, 0, 0]);
        assert_eq!(t.outcome(), Some(&Outcome::ReadFailed));
    }
}
