//! Properties of the packet codec: round trips, truncation, arbitrary input, committed corpus.

use netboot_testkit::link::origin;
use netboot_tftp::wire::OwnedRequest;
use netboot_tftp::{BlockNum, ErrorCode, OwnedPacket, Packet};
use proptest::prelude::*;

fn string() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(1u8..=255, 0..24)
}

fn options() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    prop::collection::vec((string(), string()), 0..6)
}

fn request() -> impl Strategy<Value = OwnedRequest> {
    (string(), string(), options()).prop_map(|(filename, mode, options)| OwnedRequest {
        filename,
        mode,
        options,
    })
}

fn packet() -> impl Strategy<Value = OwnedPacket> {
    prop_oneof![
        request().prop_map(OwnedPacket::Rrq),
        request().prop_map(OwnedPacket::Wrq),
        (any::<u16>(), prop::collection::vec(any::<u8>(), 0..600)).prop_map(|(b, data)| OwnedPacket::Data {
            block: BlockNum(b),
            data
        }),
        (any::<u16>(), prop::collection::vec(any::<u8>(), 0..2)).prop_map(|(b, trailing)| OwnedPacket::Ack {
            block: BlockNum(b),
            trailing
        }),
        (any::<u16>(), string()).prop_map(|(c, message)| OwnedPacket::Error {
            code: ErrorCode::from(c),
            message
        }),
        prop::collection::vec((string(), string()), 1..6).prop_map(OwnedPacket::Oack),
    ]
}

proptest! {
    #[test]
    fn every_packet_type_round_trips(packet in packet()) {
        let mut wire = vec![];
        packet.emit(&mut wire).unwrap();
        let parsed = Packet::parse(&wire).unwrap();
        prop_assert_eq!(parsed.to_owned_packet(), packet);
        let mut again = vec![];
        parsed.emit(&mut again).unwrap();
        prop_assert_eq!(again, wire);
    }

    /// A cut packet either errors or is itself a complete, shorter packet that re-emits to
    /// exactly the cut bytes (a DATA with less payload, a request with fewer options); headers
    /// and strings cut in the middle always error.
    #[test]
    fn every_truncated_prefix_errors_or_is_exactly_a_shorter_packet(packet in packet()) {
        let mut wire = vec![];
        packet.emit(&mut wire).unwrap();
        for cut in 0..wire.len() {
            let prefix = &wire[..cut];
            match Packet::parse(prefix) {
                Err(_) => {}
                Ok(shorter) => {
                    prop_assert!(cut >= 4, "a {cut}-byte prefix parsed");
                    prop_assert!(matches!(shorter, Packet::Data { .. } | Packet::Ack { .. }) || prefix.last() == Some(&0),
                        "a prefix cut inside a string parsed: {:?}", shorter);
                    let mut again = vec![];
                    shorter.emit(&mut again).unwrap();
                    prop_assert_eq!(again, prefix);
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        netboot_tftp::fuzzing::packet_round_trip(&bytes);
    }

    #[test]
    fn arbitrary_sessions_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let rrq = b"\x00\x01f\x00octet\x00blksize\x00100\x00windowsize\x004\x00";
        let mut session = (rrq.len() as u16).to_be_bytes().to_vec();
        session.push(0);
        session.extend_from_slice(rrq);
        session.extend_from_slice(&bytes);
        netboot_tftp::fuzzing::session(origin(), &session);
    }
}

#[test]
fn fuzz_functions_accept_the_committed_corpus() {
    let root = netboot_testkit::testdata().join("tftp/corpus");
    let mut count = 0;
    for (dir, run) in [
        (
            "tftp_packet",
            netboot_tftp::fuzzing::packet_round_trip as fn(&[u8]),
        ),
        ("tftp_session", |data: &[u8]| {
            netboot_tftp::fuzzing::session(origin(), data)
        }),
    ] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            run(&bytes);
            count += 1;
        }
    }
    assert!(count >= 10, "corpus has only {count} files");
}
