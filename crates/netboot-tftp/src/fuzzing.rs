//! Entry points shared by the cargo-fuzz targets and by `cargo test` over the committed corpus.

use std::time::{Duration, Instant};

use crate::options::{negotiate, TftpLimits};
use crate::request::{classify, Incoming};
use crate::source::MemorySource;
use crate::transfer::ReadTransfer;
use crate::wire::Packet;
use crate::write::WriteTransfer;

/// Parses `data`; whatever parses must re-emit to exactly the same bytes and survive an owned
/// round trip.
pub fn packet_round_trip(data: &[u8]) {
    let _ = classify(data);
    let Ok(packet) = Packet::parse(data) else { return };
    let mut wire = Vec::new();
    packet.emit(&mut wire).expect("parsed strings have no NUL");
    assert_eq!(wire, data, "emit(parse(b)) != b");
    let owned = packet.to_owned_packet();
    let mut again = Vec::new();
    owned.emit(&mut again).expect("parsed strings have no NUL");
    assert_eq!(again, data);
}

/// Uses the first datagram as a request and feeds the rest to a transfer with virtual time,
/// checking it never panics, sends only well-formed packets and never loops.
///
/// `start` is the virtual clock's origin (the crate never reads the clock itself).
///
/// Layout of `data`: a sequence of `len: u16 BE, bytes[len]` datagrams; the byte after each
/// datagram's length says whether a timeout fires before it (odd) or not.
pub fn session(start: Instant, data: &[u8]) {
    let mut datagrams = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 3);
        let fire_timeout = rest[2] & 1 == 1;
        datagrams.push((fire_timeout, &rest[3..3 + len]));
        rest = &rest[3 + len..];
    }
    let Some(((_, first), others)) = datagrams.split_first() else {
        return;
    };
    let Ok(Incoming::Read(read)) = classify(first) else {
        return;
    };
    let file: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let limits = TftpLimits {
        max_blksize: crate::BlockSize::try_from(1024u16).expect("in range"),
        ..TftpLimits::default()
    };
    let agreed = negotiate(&read.request, Some(file.len() as u64), &limits);
    let mut transfer = ReadTransfer::new(&agreed, file.len() as u64, &limits);
    let mut source = MemorySource::new(file.into());
    let mut buf = vec![0u8; transfer.max_packet_len()];
    let mut now = start;
    let mut drain = |transfer: &mut ReadTransfer, now: Instant| {
        // A window is at most 64 blocks; anything more means a runaway loop.
        for _ in 0..=usize::from(limits.max_window) + 1 {
            let Some(len) = transfer.poll_transmit(now, &mut source, &mut buf) else {
                return;
            };
            assert!(Packet::parse(&buf[..len]).is_ok(), "sent a malformed packet");
        }
        panic!("poll_transmit did not stop after a window");
    };
    drain(&mut transfer, now);
    for (fire_timeout, datagram) in others {
        if *fire_timeout {
            now = transfer.poll_timeout().unwrap_or(now + Duration::from_secs(1));
            transfer.handle_timeout(now);
        } else {
            transfer.handle_datagram(now, datagram);
        }
        drain(&mut transfer, now);
    }
}

/// Uses the first datagram as a write request and feeds the rest to a [`WriteTransfer`] with
/// virtual time, checking it never panics, only sends well-formed packets, stores exactly the
/// bytes it reports, respects its size limit and always ends.
///
/// Same layout as [`session`]: `len: u16 BE`, a timeout flag byte (odd fires the timeout
/// before the datagram), then the datagram.
pub fn write_session(start: Instant, data: &[u8]) {
    let mut datagrams = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 3);
        datagrams.push((rest[2] & 1 == 1, &rest[3..3 + len]));
        rest = &rest[3 + len..];
    }
    let Some(((_, first), others)) = datagrams.split_first() else {
        return;
    };
    let Ok(Incoming::Write(write)) = classify(first) else {
        return;
    };
    let limits = TftpLimits {
        max_blksize: crate::BlockSize::try_from(1024u16).expect("in range"),
        ..TftpLimits::default()
    };
    const MAX_BYTES: u64 = 4096;
    let mut transfer = WriteTransfer::new(&write.request, write.mode, &limits, MAX_BYTES);
    let mut sink = Vec::new();
    let mut buf = vec![0u8; transfer.max_packet_len()];
    let mut now = start;
    let mut drain = |transfer: &mut WriteTransfer, now: Instant| {
        // At most one reply is ever queued.
        for _ in 0..2 {
            let Some(len) = transfer.poll_transmit(now, &mut buf) else {
                return;
            };
            assert!(Packet::parse(&buf[..len]).is_ok(), "sent a malformed packet");
        }
        panic!("poll_transmit queued more than one reply");
    };
    drain(&mut transfer, now);
    for (fire_timeout, datagram) in others {
        if *fire_timeout {
            now = transfer.poll_timeout().unwrap_or(now + Duration::from_secs(1));
            transfer.handle_timeout(now);
        } else {
            transfer.handle_datagram(now, datagram, &mut sink);
        }
        drain(&mut transfer, now);
        assert_eq!(sink.len() as u64, transfer.bytes_written());
        assert!(transfer.bytes_written() <= MAX_BYTES);
    }
    // Without more input, timeouts alone must end it within the retry budget.
    for _ in 0..=limits.retries + 1 {
        let Some(deadline) = transfer.poll_timeout() else {
            break;
        };
        now = deadline.max(now);
        transfer.handle_timeout(now);
        drain(&mut transfer, now);
    }
    assert!(transfer.is_finished(), "a silent client did not end the transfer");
}
