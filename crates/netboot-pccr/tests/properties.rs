//! Property tests: every message written reads back to the same value, encryption round
//! trips for every key length, block lists only name held blocks that were asked about, and
//! no input panics. The fuzz corpora under `testdata/pccrd/corpus` and `testdata/pccrr/corpus` are replayed here too.

use netboot_pccr::discovery::{Match, Probe, ProbeMatches, ProbeVersion};
use netboot_pccr::retrieval::{
    block_list_response, open_block, seal_block, BlockRange, CryptoAlgorithm, ProtocolVersion, Request,
    RequestBody, Response, ResponseBody,
};
use netboot_testkit::testdata;
use proptest::prelude::*;

fn word() -> impl Strategy<Value = String> {
    "[A-Za-z0-9:._/-]{1,40}"
}

fn hex_id() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9A-F]{64}", "[0-9a-f]{64}", "[0-9A-F]{128}"]
}

fn probe() -> impl Strategy<Value = Probe> {
    (
        word(),
        proptest::option::of(word()),
        proptest::collection::vec(hex_id(), 0..6),
        proptest::option::of(word()),
        any::<bool>(),
    )
        .prop_map(|(id, to, scopes, match_by, v2)| {
            let mut probe = Probe::v1(format!("urn:uuid:{id}"), String::new());
            probe.to = to;
            probe.scopes = scopes;
            probe.match_by = match_by;
            if v2 {
                probe.types[0].1 = "PeerDistDataV2".into();
            }
            probe
        })
}

fn probe_match() -> impl Strategy<Value = Match> {
    (
        word(),
        proptest::collection::vec((hex_id(), any::<u32>()), 0..5),
        proptest::collection::vec(word(), 0..3),
    )
        .prop_map(|(endpoint, held, xaddrs)| Match::v1(endpoint, held, xaddrs))
}

fn crypto() -> impl Strategy<Value = CryptoAlgorithm> {
    prop_oneof![
        Just(CryptoAlgorithm::None),
        Just(CryptoAlgorithm::Aes128),
        Just(CryptoAlgorithm::Aes192),
        Just(CryptoAlgorithm::Aes256),
        (4u32..).prop_map(CryptoAlgorithm::Unknown),
    ]
}

fn version() -> impl Strategy<Value = ProtocolVersion> {
    (any::<u16>(), any::<u16>()).prop_map(|(major, minor)| ProtocolVersion { major, minor })
}

fn ranges() -> impl Strategy<Value = Vec<BlockRange>> {
    proptest::collection::vec(
        (any::<u32>(), any::<u32>()).prop_map(|(index, count)| BlockRange { index, count }),
        0..8,
    )
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn request_body() -> impl Strategy<Value = RequestBody> {
    prop_oneof![
        (version(), version()).prop_map(|(min, max)| RequestBody::Negotiate { min, max }),
        (bytes(65), ranges())
            .prop_map(|(segment_id, ranges)| RequestBody::GetBlockList { segment_id, ranges }),
        (bytes(65), ranges(), bytes(40)).prop_map(|(segment_id, ranges, vrf)| RequestBody::GetBlocks {
            segment_id,
            ranges,
            vrf
        }),
    ]
}

fn response_body() -> impl Strategy<Value = ResponseBody> {
    prop_oneof![
        (version(), version()).prop_map(|(min, max)| ResponseBody::Negotiate { min, max }),
        (bytes(65), ranges(), any::<u32>()).prop_map(|(segment_id, ranges, next_block_index)| {
            ResponseBody::BlockList {
                segment_id,
                ranges,
                next_block_index,
            }
        }),
        (
            bytes(65),
            any::<u32>(),
            any::<u32>(),
            bytes(300),
            bytes(9),
            bytes(20)
        )
            .prop_map(
                |(segment_id, index, next_block_index, block, vrf, iv)| ResponseBody::Block {
                    segment_id,
                    index,
                    next_block_index,
                    block,
                    vrf,
                    iv,
                }
            ),
    ]
}

proptest! {
    #[test]
    fn probes_round_trip(probe in probe()) {
        let parsed = Probe::parse(probe.to_xml().as_bytes()).unwrap();
        prop_assert_eq!(parsed.version(), Some(if probe.types[0].1 == "PeerDistData" { ProbeVersion::V1 } else { ProbeVersion::V2 }));
        prop_assert_eq!(parsed, probe);
    }

    #[test]
    fn probe_matches_round_trip(
        id in word(),
        relates_to in proptest::option::of(word()),
        app_sequence in proptest::option::of((any::<u32>(), any::<u32>())),
        matches in proptest::collection::vec(probe_match(), 0..3),
    ) {
        let reply = ProbeMatches { message_id: id, relates_to, app_sequence, matches };
        prop_assert_eq!(ProbeMatches::parse(reply.to_xml().as_bytes()).unwrap(), reply);
    }

    #[test]
    fn requests_round_trip(version in version(), crypto in crypto(), body in request_body()) {
        let request = Request { version, crypto, body };
        let bytes = request.to_bytes();
        let parsed = Request::parse(&bytes);
        let id_too_long = matches!(&request.body, RequestBody::GetBlockList { segment_id, .. } | RequestBody::GetBlocks { segment_id, .. } if segment_id.len() > 64);
        if id_too_long {
            prop_assert!(parsed.is_err());
        } else {
            prop_assert_eq!(parsed.unwrap(), request);
        }
    }

    #[test]
    fn responses_round_trip(version in version(), crypto in crypto(), body in response_body()) {
        let response = Response { version, crypto, body };
        let parsed = Response::parse(&response.to_bytes());
        let id_too_long = matches!(&response.body, ResponseBody::BlockList { segment_id, .. } | ResponseBody::Block { segment_id, .. } if segment_id.len() > 64);
        if id_too_long {
            prop_assert!(parsed.is_err());
        } else {
            prop_assert_eq!(parsed.unwrap(), response);
        }
    }

    #[test]
    fn encryption_round_trips(crypto in prop_oneof![Just(CryptoAlgorithm::Aes128), Just(CryptoAlgorithm::Aes192), Just(CryptoAlgorithm::Aes256)],
                              secret in proptest::collection::vec(any::<u8>(), 32..=64),
                              iv in any::<[u8; 16]>(),
                              plain in bytes(2000)) {
        let sealed = seal_block(crypto, &secret, iv, &plain).unwrap();
        prop_assert_eq!(sealed.ciphertext.len(), (plain.len() / 16 + 1) * 16);
        prop_assert_eq!(open_block(crypto, &secret, &iv, &sealed.ciphertext, plain.len()).unwrap(), plain);
    }

    #[test]
    fn block_lists_name_only_held_blocks_that_were_asked_about(
        asked in proptest::collection::vec((0u32..40, 0u32..20).prop_map(|(index, count)| BlockRange { index, count }), 0..5),
        held in proptest::collection::vec(any::<bool>(), 0..32),
    ) {
        let count = held.len() as u32;
        let response = block_list_response(CryptoAlgorithm::Aes128, vec![1; 32], &asked, |i| held[i as usize], count);
        let ResponseBody::BlockList { ranges, next_block_index, .. } = response.body else { unreachable!() };
        let mut previous_end = None;
        for range in &ranges {
            prop_assert!(range.count > 0);
            if let Some(end) = previous_end { prop_assert!(range.index >= end); }
            previous_end = Some(range.index + range.count);
            for i in range.indices() {
                prop_assert!(held[i as usize]);
                prop_assert!(asked.iter().any(|a| a.indices().contains(&i)));
            }
        }
        if next_block_index != 0 {
            prop_assert!(held[next_block_index as usize]);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in bytes(600)) {
        netboot_pccr::fuzzing::discovery_round_trip(&data);
        netboot_pccr::fuzzing::retrieval_round_trip(&data);
    }

    #[test]
    fn mutated_messages_never_panic(flip in any::<(usize, u8)>(), cut in any::<usize>()) {
        for name in ["ipxe-probe.xml", "spec-probe-match-v1.xml", "ipxe-probe-match.xml", "ipxe-getblks-iis-v1-block1.bin", "blk-iis-v1-block1-aes128.bin"] {
            let dir = if name.ends_with(".xml") { "pccrd" } else { "pccrr" };
            let mut data = std::fs::read(testdata().join(dir).join(name)).unwrap();
            let at = flip.0 % data.len();
            data[at] ^= flip.1;
            data.truncate(cut % (data.len() + 1));
            netboot_pccr::fuzzing::discovery_round_trip(&data);
            netboot_pccr::fuzzing::retrieval_round_trip(&data);
        }
    }
}

/// Replays the committed fuzz corpora (`testdata/pccrd/corpus/`, `testdata/pccrr/corpus/`).
#[test]
fn fuzz_corpora_replay() {
    for (target, run) in [
        ("pccrd", netboot_pccr::fuzzing::discovery_round_trip as fn(&[u8])),
        ("pccrr", netboot_pccr::fuzzing::retrieval_round_trip),
    ] {
        let dir = testdata().join(target).join("corpus");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            run(&std::fs::read(entry.unwrap().path()).unwrap());
            count += 1;
        }
        assert!(count > 0, "{} is empty", dir.display());
    }
}
