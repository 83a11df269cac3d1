//! The per-transfer state machine of a write request (the client uploads a file).
//!
//! Drive it like [`crate::ReadTransfer`]:
//! 1. feed every datagram from the client to [`WriteTransfer::handle_datagram`], together with
//!    the [`BlockSink`] that stores the bytes;
//! 2. when the instant from [`WriteTransfer::poll_timeout`] passes, call
//!    [`WriteTransfer::handle_timeout`];
//! 3. after either, call [`WriteTransfer::poll_transmit`] until it returns `None`, sending each
//!    packet to the client;
//! 4. stop when [`WriteTransfer::is_finished`]; [`WriteTransfer::outcome`] says how it went
//!    (it is `Some` already while the transfer dallies after the last block).
//!
//! Window semantics (RFC 7440, receiving side): the client sends `windowsize` blocks, and this
//! side acknowledges the last block of each window. When a block arrives ahead of the next
//! expected one (a gap: a block was lost or reordered), the last in-order block is acknowledged
//! once, so the client restarts right after it. A retransmitted copy of the newest block held is
//! answered with its ACK again (the client did not get it), unless that ACK left less than half
//! a timeout ago (the copy crossed it; answering would start the Sorcerer's Apprentice with a
//! client that resends on duplicate ACKs); other old blocks are ignored, so one retransmitted
//! window costs one ACK, not one per block. When nothing arrives within the
//! timeout the last ACK is repeated; after `retries` silent timeouts in a row the transfer is
//! abandoned, or after `retries_before_first_ack` while no DATA has arrived yet (the request
//! may have been spoofed, and its answer should not be repeated for long).
//!
//! The final block (the first one shorter than `blksize`) is stored and the sink finished
//! *before* it is acknowledged, so a client only sees success once the file is complete. The
//! transfer then dallies: for a while it answers a retransmitted final block with the final ACK
//! again, in case that ACK was lost.

use std::io;
use std::time::{Duration, Instant};

use crate::backoff::Retransmission;
use crate::options::{negotiate, Mode, TftpLimits};
use crate::transfer::write_error;
use crate::wire::{ErrorCode, Options, Packet, RawOption, Request, DATA_HEADER_LEN};
use crate::BlockNum;

/// Where an upload's bytes go, in order. Implement it to receive into memory, a file, or
/// anything else.
///
/// ```
/// use netboot_tftp::BlockSink;
/// let mut sink = Vec::new();
/// sink.store(b"abc").unwrap();
/// sink.store(b"def").unwrap();
/// assert_eq!(sink, b"abcdef");
/// ```
pub trait BlockSink {
    /// Stores the next bytes of the file (in local form: netascii is already converted).
    ///
    /// # Errors
    /// Any I/O error ends the transfer with an ERROR to the client:
    /// [`io::ErrorKind::StorageFull`] becomes code 3, [`io::ErrorKind::AlreadyExists`] code 6,
    /// [`io::ErrorKind::PermissionDenied`] code 2, anything else code 0.
    fn store(&mut self, data: &[u8]) -> io::Result<()>;

    /// Called once after the last bytes, before the client is told the upload succeeded:
    /// flush, sync, move the file into place.
    ///
    /// # Errors
    /// As for [`BlockSink::store`]; the client then gets an ERROR instead of the final ACK.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlockSink for Vec<u8> {
    fn store(&mut self, data: &[u8]) -> io::Result<()> {
        self.extend_from_slice(data);
        Ok(())
    }
}

/// How an upload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteOutcome {
    /// Every block arrived and the sink finished.
    Complete {
        /// Bytes stored (after netascii conversion).
        bytes: u64,
    },
    /// The announced `tsize` or the data itself went past the size limit; the client got
    /// ERROR 3.
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The client sent an ERROR.
    ClientError {
        /// Its code.
        code: ErrorCode,
        /// Its message, lossily decoded.
        message: String,
    },
    /// The client stopped sending before the last block.
    TimedOut,
    /// Storing the bytes failed; the client got an ERROR with `code`.
    SinkFailed {
        /// The code sent to the client.
        code: ErrorCode,
        /// What the sink reported.
        error: String,
    },
    /// The client broke the protocol (a block larger than the agreed size); it got ERROR 4.
    IllegalOperation,
}

impl WriteOutcome {
    /// The stable label an upload ending this way is counted under
    /// (`netboot_tftp_transfers_total{outcome=...}`).
    #[must_use]
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Complete { .. } => "upload_complete",
            Self::TooLarge { .. } => "upload_too_large",
            Self::ClientError { .. } => "upload_client_error",
            Self::TimedOut => "upload_timeout",
            Self::SinkFailed { .. } | Self::IllegalOperation => "upload_failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// The OACK (answers the WRQ when options were accepted).
    Oack,
    /// ACK of a block (block 0 answers a WRQ without options).
    Ack(BlockNum),
    /// An ERROR that ends the transfer.
    Error(ErrorCode, &'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for blocks.
    Receiving,
    /// The file is complete; a retransmitted final block is re-acknowledged until `until`.
    Dallying { until: Instant },
    /// Nothing left to do once the queued reply (if any) is sent.
    Done,
}

/// Netascii to local text: CR LF becomes LF, CR NUL becomes CR. A CR at the end of a block is
/// held until the next block shows what follows it.
#[derive(Debug, Default)]
struct NetasciiDecoder {
    pending_cr: bool,
}

impl NetasciiDecoder {
    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.clear();
        for &byte in input {
            if std::mem::take(&mut self.pending_cr) {
                match byte {
                    b'\n' => {
                        out.push(b'\n');
                        continue;
                    }
                    0 => {
                        out.push(b'\r');
                        continue;
                    }
                    // A bare CR is not valid netascii; keep it rather than lose data.
                    _ => out.push(b'\r'),
                }
            }
            if byte == b'\r' {
                self.pending_cr = true;
            } else {
                out.push(byte);
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        out.clear();
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }
}

/// A write transfer: receives one file from one client.
///
/// ```
/// use std::time::Instant;
/// use netboot_tftp::request::{classify, Incoming};
/// use netboot_tftp::{TftpLimits, WriteOutcome, WriteTransfer};
///
/// let wrq = b"\x00\x02logs/host.txt\x00octet\x00blksize\x008\x00tsize\x0012\x00";
/// let Ok(Incoming::Write(write)) = classify(wrq) else { panic!("refused") };
/// let mut transfer = WriteTransfer::new(&write.request, write.mode, &TftpLimits::default(), 1 << 20);
/// let mut buf = vec![0; transfer.max_packet_len()];
/// let mut file = Vec::new();
/// let now = Instant::now();
/// let len = transfer.poll_transmit(now, &mut buf).unwrap();
/// assert_eq!(&buf[..len], b"\x00\x06blksize\x008\x00tsize\x0012\x00");
/// transfer.handle_datagram(now, b"\x00\x03\x00\x01hello, w", &mut file);
/// let len = transfer.poll_transmit(now, &mut buf).unwrap();
/// assert_eq!(&buf[..len], b"\x00\x04\x00\x01");
/// transfer.handle_datagram(now, b"\x00\x03\x00\x02orld", &mut file);
/// let len = transfer.poll_transmit(now, &mut buf).unwrap();
/// assert_eq!(&buf[..len], b"\x00\x04\x00\x02");
/// assert_eq!(file, b"hello, world");
/// assert_eq!(transfer.outcome(), Some(&WriteOutcome::Complete { bytes: 12 }));
/// ```
#[derive(Debug)]
pub struct WriteTransfer {
    blksize: usize,
    window: u64,
    timeout: Retransmission,
    max_retries: u32,
    /// Timeouts allowed before the first DATA arrived.
    max_retries_before_data: u32,
    max_bytes: u64,
    announced: Option<u64>,
    oack: Vec<u8>,
    netascii: Option<NetasciiDecoder>,
    /// Converted bytes of the current block (netascii only), reused between blocks.
    scratch: Vec<u8>,
    /// 1-based index of the last block received in order (0: none yet).
    received: u64,
    /// In-order blocks since the client last had reason to start a new window.
    since_ack: u64,
    /// A gap was already answered with an ACK; more out-of-order blocks get no more.
    gap_answered: bool,
    bytes_written: u64,
    duplicates: u64,
    pending: Option<Reply>,
    phase: Phase,
    outcome: Option<WriteOutcome>,
    deadline: Option<Instant>,
    retries: u32,
    /// The last ACK sent and when, to tell a retransmission that crossed it from one that
    /// means it was lost.
    last_ack: Option<(BlockNum, Instant)>,
}

/// Parses a decimal option value the way [`negotiate`] does.
fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

impl WriteTransfer {
    /// Starts receiving the file `request` (a WRQ) announces, agreeing its options under
    /// `limits` and accepting at most `max_bytes` bytes. A `tsize` over `max_bytes` is refused
    /// with ERROR 3 before any data; otherwise the first packet is the OACK, or ACK 0 when no
    /// option was accepted.
    #[must_use]
    pub fn new(request: &Request<'_>, mode: Mode, limits: &TftpLimits, max_bytes: u64) -> Self {
        // RFC 2349: in a WRQ, `tsize` is the size the client is about to send, echoed back.
        let announced = request.options.get("tsize").and_then(decimal);
        let mut agreed = negotiate(request, announced, limits);
        // Microsoft's variable window is a read extension; an upload does not agree to it.
        agreed
            .oack
            .retain(|(name, _)| !name.eq_ignore_ascii_case(b"msftwindow"));
        let mut oack = Vec::new();
        if !agreed.oack.is_empty() {
            let options = agreed
                .oack
                .iter()
                .map(|(name, value)| RawOption { name, value })
                .collect();
            // Names come from the request and values are digits: neither holds a NUL.
            Packet::Oack(Options(options))
                .emit(&mut oack)
                .expect("OACK strings have no NUL");
        }
        let mut transfer = Self {
            blksize: agreed.blksize.bytes(),
            window: u64::from(agreed.windowsize.max(1)),
            timeout: agreed.timeout,
            max_retries: limits.retries,
            max_retries_before_data: limits.retries_before_first_ack.min(limits.retries),
            max_bytes,
            announced,
            pending: Some(if oack.is_empty() {
                Reply::Ack(BlockNum(0))
            } else {
                Reply::Oack
            }),
            oack,
            netascii: (mode == Mode::Netascii).then(NetasciiDecoder::default),
            scratch: Vec::new(),
            received: 0,
            since_ack: 0,
            gap_answered: false,
            bytes_written: 0,
            duplicates: 0,
            phase: Phase::Receiving,
            outcome: None,
            deadline: None,
            retries: 0,
            last_ack: None,
        };
        if announced.is_some_and(|size| size > max_bytes) {
            transfer.fail(
                WriteOutcome::TooLarge { limit: max_bytes },
                ErrorCode::DiskFull,
                "Disk full or allocation exceeded",
            );
        }
        transfer
    }

    /// Buffer size [`Self::poll_transmit`] needs.
    #[must_use]
    pub fn max_packet_len(&self) -> usize {
        self.oack.len().max(64)
    }

    /// Largest DATA packet the client may send: header plus the agreed block size.
    #[must_use]
    pub fn max_datagram_len(&self) -> usize {
        DATA_HEADER_LEN + self.blksize
    }

    /// The agreed block size in bytes.
    #[must_use]
    pub fn blksize(&self) -> usize {
        self.blksize
    }

    /// The agreed window size in blocks.
    #[must_use]
    pub fn window(&self) -> u64 {
        self.window
    }

    /// The size the client announced with `tsize`, if it did.
    #[must_use]
    pub fn announced_size(&self) -> Option<u64> {
        self.announced
    }

    /// Bytes handed to the sink so far.
    #[must_use]
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// DATA packets that arrived again or out of order (loss, duplication, retransmission).
    #[must_use]
    pub fn duplicate_blocks(&self) -> u64 {
        self.duplicates
    }

    /// How the upload ended, once it has (already while dallying after a complete upload).
    #[must_use]
    pub fn outcome(&self) -> Option<&WriteOutcome> {
        self.outcome.as_ref()
    }

    /// Whether the transfer has nothing left to send or wait for.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done && self.pending.is_none()
    }

    /// When [`Self::handle_timeout`] must be called next, if anything is outstanding.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Receiving => self.deadline,
            Phase::Dallying { until } => Some(until),
            Phase::Done => None,
        }
    }

    fn fail(&mut self, outcome: WriteOutcome, code: ErrorCode, message: &'static str) {
        self.phase = Phase::Done;
        self.deadline = None;
        self.pending = Some(Reply::Error(code, message));
        self.outcome = Some(outcome);
    }

    fn sink_failed(&mut self, error: &io::Error) {
        let (code, message) = match error.kind() {
            io::ErrorKind::StorageFull => (ErrorCode::DiskFull, "Disk full or allocation exceeded"),
            io::ErrorKind::AlreadyExists => (ErrorCode::FileExists, "File already exists"),
            io::ErrorKind::PermissionDenied => (ErrorCode::AccessViolation, "Access violation"),
            _ => (ErrorCode::NotDefined, "Write error"),
        };
        self.fail(
            WriteOutcome::SinkFailed {
                code,
                error: error.to_string(),
            },
            code,
            message,
        );
    }

    /// Processes a datagram from the client, storing in-order blocks in `sink`. Malformed and
    /// unexpected packets are ignored.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8], sink: &mut dyn BlockSink) {
        let Ok(packet) = Packet::parse(datagram) else {
            return;
        };
        match (self.phase, packet) {
            (Phase::Done, _) => {}
            (Phase::Receiving, Packet::Data { block, data }) => self.handle_data(now, block, data, sink),
            (Phase::Dallying { .. }, Packet::Data { block, .. })
                if block == BlockNum::from_index(self.received) =>
            {
                self.duplicates += 1;
                self.ack_again(now, block);
            }
            (Phase::Receiving, Packet::Error { code, message }) => {
                self.phase = Phase::Done;
                self.deadline = None;
                self.pending = None;
                self.outcome = Some(WriteOutcome::ClientError {
                    code,
                    message: String::from_utf8_lossy(message).into_owned(),
                });
            }
            (Phase::Dallying { .. }, Packet::Error { .. }) => {
                self.phase = Phase::Done;
                self.pending = None;
            }
            _ => {}
        }
    }

    fn handle_data(&mut self, now: Instant, block: BlockNum, data: &[u8], sink: &mut dyn BlockSink) {
        let expected = BlockNum::from_index(self.received + 1);
        if block != expected {
            self.duplicates += 1;
            let newest = BlockNum::from_index(self.received);
            if self.received > 0 && block == newest {
                // The client resent the newest block held: it may have missed the ACK for it.
                if self.ack_again(now, newest) {
                    self.since_ack = 0;
                }
            } else if u64::from(expected.distance_to(block)) < self.window && !self.gap_answered {
                // A block from later in the window: one before it was lost or overtaken.
                // RFC 7440: acknowledge the last in-order block so the client resends from there.
                self.gap_answered = true;
                self.since_ack = 0;
                self.pending = Some(Reply::Ack(newest));
            }
            return;
        }
        if data.len() > self.blksize {
            self.fail(
                WriteOutcome::IllegalOperation,
                ErrorCode::IllegalOperation,
                "Illegal TFTP operation",
            );
            return;
        }
        let is_last = data.len() < self.blksize;
        let mut scratch = std::mem::take(&mut self.scratch);
        let stored = match self.netascii.as_mut() {
            Some(decoder) => {
                decoder.decode(data, &mut scratch);
                self.store_limited(&scratch, sink)
            }
            None => self.store_limited(data, sink),
        };
        if stored && is_last {
            if let Some(decoder) = self.netascii.as_mut() {
                decoder.finish(&mut scratch);
            }
            let stored = self.store_limited(&scratch, sink);
            scratch.clear();
            self.scratch = scratch;
            if !stored {
                return;
            }
            if let Err(e) = sink.finish() {
                self.sink_failed(&e);
                return;
            }
            self.received += 1;
            self.pending = Some(Reply::Ack(block));
            self.outcome = Some(WriteOutcome::Complete {
                bytes: self.bytes_written,
            });
            self.deadline = None;
            self.phase = Phase::Dallying {
                until: now + self.dally_period(),
            };
            return;
        }
        self.scratch = scratch;
        if !stored {
            return;
        }
        self.received += 1;
        self.retries = 0;
        self.gap_answered = false;
        self.since_ack += 1;
        self.deadline = Some(now + self.timeout.interval(self.retries));
        if self.since_ack >= self.window {
            self.since_ack = 0;
            self.pending = Some(Reply::Ack(block));
        }
    }

    /// Acknowledges a block again for a retransmitted copy of it, unless its ACK went out less
    /// than half a timeout ago: then the copy crossed that ACK (or answers a duplicate ACK) and
    /// another ACK would make a client that resends on duplicate ACKs send every following
    /// block twice (the Sorcerer's Apprentice bug). A copy arriving later means the ACK was
    /// lost. Returns whether an ACK was queued.
    fn ack_again(&mut self, now: Instant, block: BlockNum) -> bool {
        let recently = self.last_ack.is_some_and(|(acked, at)| {
            acked == block && now.saturating_duration_since(at) < self.timeout.base() / 2
        });
        if !recently {
            self.pending = Some(Reply::Ack(block));
        }
        !recently
    }

    /// Hands `bytes` to the sink under the size limit; false when the transfer failed.
    fn store_limited(&mut self, bytes: &[u8], sink: &mut dyn BlockSink) -> bool {
        if bytes.is_empty() {
            return true;
        }
        if self.bytes_written + bytes.len() as u64 > self.max_bytes {
            self.fail(
                WriteOutcome::TooLarge {
                    limit: self.max_bytes,
                },
                ErrorCode::DiskFull,
                "Disk full or allocation exceeded",
            );
            return false;
        }
        if let Err(e) = sink.store(bytes) {
            self.sink_failed(&e);
            return false;
        }
        self.bytes_written += bytes.len() as u64;
        true
    }

    /// How long a completed upload still answers a retransmitted final block: as long as this
    /// side would have waited for a silent client, so a client whose retransmission timer is
    /// slower than ours is still answered.
    fn dally_period(&self) -> Duration {
        self.timeout.base() * self.max_retries.max(1)
    }

    /// Processes the passing of the deadline from [`Self::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Done => {}
            Phase::Dallying { until } => {
                if now >= until {
                    self.phase = Phase::Done;
                    self.pending = None;
                }
            }
            Phase::Receiving => {
                let Some(deadline) = self.deadline else { return };
                if now < deadline {
                    return;
                }
                let limit = if self.received == 0 {
                    self.max_retries_before_data
                } else {
                    self.max_retries
                };
                if self.retries >= limit {
                    self.phase = Phase::Done;
                    self.deadline = None;
                    self.pending = None;
                    self.outcome = Some(WriteOutcome::TimedOut);
                    return;
                }
                self.retries += 1;
                self.since_ack = 0;
                self.gap_answered = false;
                self.pending = Some(if self.received == 0 && !self.oack.is_empty() {
                    Reply::Oack
                } else {
                    Reply::Ack(BlockNum::from_index(self.received))
                });
                self.deadline = Some(now + self.timeout.interval(self.retries));
            }
        }
    }

    /// Writes the next packet to send into `buf` and returns its length, or `None` when there is
    /// nothing to send now. `buf` must hold [`Self::max_packet_len`] bytes.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let reply = self.pending.take()?;
        if self.phase == Phase::Receiving {
            self.deadline = Some(now + self.timeout.interval(self.retries));
        }
        Some(match reply {
            Reply::Oack => {
                buf[..self.oack.len()].copy_from_slice(&self.oack);
                self.oack.len()
            }
            Reply::Ack(block) => {
                self.last_ack = Some((block, now));
                buf[..2].copy_from_slice(&4u16.to_be_bytes());
                buf[2..4].copy_from_slice(&block.0.to_be_bytes());
                4
            }
            Reply::Error(code, message) => write_error(buf, code, message),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<u8> {
        let mut decoder = NetasciiDecoder::default();
        let mut out = Vec::new();
        let mut all = Vec::new();
        for chunk in chunks {
            decoder.decode(chunk, &mut out);
            all.extend_from_slice(&out);
        }
        decoder.finish(&mut out);
        all.extend_from_slice(&out);
        all
    }

    #[test]
    fn netascii_decoding_handles_pairs_split_across_blocks() {
        assert_eq!(decode_all(&[b"a\r\nb\r\0c"]), b"a\nb\rc");
        assert_eq!(decode_all(&[b"a\r", b"\nb\r", b"\0"]), b"a\nb\r");
        assert_eq!(decode_all(&[b"x\r"]), b"x\r", "a trailing CR is kept");
        assert_eq!(decode_all(&[b"\r\r\n"]), b"\r\n", "a bare CR is kept");
    }

    #[test]
    fn netascii_round_trips_the_encoder() {
        let text = b"line one\nline\rtwo\r\n\n\r";
        let wire = crate::netascii::encode(text);
        for split in 0..wire.len() {
            assert_eq!(decode_all(&[&wire[..split], &wire[split..]]), text);
        }
    }
}
