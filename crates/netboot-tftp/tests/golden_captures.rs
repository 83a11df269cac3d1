//! Golden packets from real firmware captures: the TFTP requests and option packets of
//! `testdata/pcap/*.pcap` (RRQs, OACKs, ERRORs, and the ACK 0 that accepts an OACK) live in
//! `testdata/tftp/<capture>-<frame>-<kind>.bin`, each with its rendering in a `.txt`. Every one
//! must parse, re-emit byte for byte and render as its `.txt` says.
//! `UPDATE_GOLDEN=1 cargo test -p netboot-tftp` extracts them again and rewrites the renderings.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddrV4;

use netboot_testkit::{golden, pcap, testdata};
use netboot_tftp::{BlockNum, Packet};

const TFTP_PORT: u16 = 69;

/// One extracted packet: its file stem, where it was seen, and its bytes.
struct Captured {
    stem: String,
    origin: String,
    payload: Vec<u8>,
}

/// The kind of packet worth keeping, or `None` for DATA and the ACKs of data blocks.
fn kind(packet: &Packet<'_>) -> Option<&'static str> {
    match packet {
        Packet::Rrq(_) => Some("rrq"),
        Packet::Wrq(_) => Some("wrq"),
        Packet::Oack(_) => Some("oack"),
        Packet::Error { .. } => Some("error"),
        Packet::Ack {
            block: BlockNum(0), ..
        } => Some("ack"),
        Packet::Ack { .. } | Packet::Data { .. } => None,
    }
}

/// The TFTP request and option packets of every capture: requests to port 69, and whatever
/// the requesting client and the server exchange afterwards between their transfer ports.
fn extract() -> Vec<Captured> {
    let mut extracted = Vec::new();
    for path in pcap::captures() {
        let capture = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut clients: HashSet<SocketAddrV4> = HashSet::new();
        for datagram in pcap::udp_datagrams(&std::fs::read(&path).unwrap()) {
            let to_port_69 = datagram.dst.port() == TFTP_PORT;
            let in_transfer = (clients.contains(&datagram.dst) || clients.contains(&datagram.src))
                && datagram.src.port() != TFTP_PORT;
            if !to_port_69 && !in_transfer {
                continue;
            }
            let packet = Packet::parse(&datagram.payload)
                .unwrap_or_else(|e| panic!("{capture} frame {}: not TFTP: {e}", datagram.frame));
            if to_port_69 {
                assert!(
                    matches!(packet, Packet::Rrq(_) | Packet::Wrq(_)),
                    "{capture} frame {}: {packet} sent to port 69",
                    datagram.frame
                );
                clients.insert(datagram.src);
            }
            let Some(kind) = kind(&packet) else { continue };
            extracted.push(Captured {
                stem: format!("{capture}-{}-{kind}", datagram.frame),
                origin: format!(
                    "{capture} frame {}: {} -> {}, {} bytes",
                    datagram.frame,
                    datagram.src,
                    datagram.dst,
                    datagram.payload.len()
                ),
                payload: datagram.payload,
            });
        }
    }
    extracted
}

#[test]
fn captured_tftp_packets_round_trip_and_match_golden() {
    let dir = testdata().join("tftp");
    let extracted = extract();
    let kinds: BTreeSet<&str> = extracted
        .iter()
        .map(|c| c.stem.rsplit('-').next().unwrap())
        .collect();
    for expected in ["rrq", "oack", "error", "ack"] {
        assert!(
            kinds.contains(expected),
            "the captures hold no {expected} (found {kinds:?})"
        );
    }
    let mut stems = BTreeSet::new();
    for captured in &extracted {
        let bin = dir.join(format!("{}.bin", captured.stem));
        golden::check(&bin, &captured.payload);
        // From here on the committed file is what is checked, as any user of it sees it.
        let bytes = std::fs::read(&bin).unwrap();
        let packet = Packet::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let mut wire = vec![0xa5; 3];
        packet.emit(&mut wire).unwrap();
        assert_eq!(&wire[3..], &bytes[..], "{}: emit(parse(b)) != b", bin.display());
        netboot_tftp::fuzzing::packet_round_trip(&bytes);
        let rendering = format!("# {}\n{packet:#}\n", captured.origin);
        golden::check(&dir.join(format!("{}.txt", captured.stem)), rendering.as_bytes());
        stems.insert(captured.stem.clone());
    }
    // Packets that are no longer in any capture must not linger as golden files.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let is_capture_golden = path.extension().is_some_and(|e| e == "bin" || e == "txt");
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if !is_capture_golden || stems.contains(&stem) {
            continue;
        }
        if golden::updating() {
            std::fs::remove_file(&path).unwrap();
        } else {
            panic!(
                "{} is in no capture (run with UPDATE_GOLDEN=1 to remove it)",
                path.display()
            );
        }
    }
}
