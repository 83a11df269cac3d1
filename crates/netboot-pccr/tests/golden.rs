//! Golden tests: the examples of [MS-PCCRD], the probe iPXE 2.0.0 sends (its
//! `PEERDIST_DISCOVERY_REQUEST` template filled in), the retrieval request iPXE builds for a
//! block of the IIS logo whose Content Information iPXE's `pccrc_test.c` records, and a block
//! encrypted with that segment's secret by OpenSSL (see `testdata/pccrd/README.md` and `testdata/pccrr/README.md`).

use netboot_pccr::discovery::{
    answer_probe, HeldSegment, Probe, ProbeMatches, ProbeVersion, ResponderIdentity, MATCH_BY_STRCMP0,
};
use netboot_pccr::retrieval::{
    block_response, open_block, plan, seal_block, CryptoAlgorithm, Plan, Request, Response, ResponseBody,
};
use netboot_peerdist::ContentInfoView;
use netboot_testkit::{golden, testdata};

fn read(name: &str) -> Vec<u8> {
    std::fs::read(
        testdata()
            .join(if name.ends_with(".xml") { "pccrd" } else { "pccrr" })
            .join(name),
    )
    .unwrap()
}

/// The reply parsing of iPXE's `peerdist_discovery_reply()` (src/net/pccrd.c), ported to
/// test what iPXE accepts: the literal tags `<wsd:Scopes>`, `<wsd:XAddrs>` and
/// `<PeerDist:BlockCount>` found by string search, values split at whitespace, eight hex
/// digits of block count per scope from the first value, scopes with a zero count dropped.
fn ipxe_reply(reply: &str) -> Result<(Vec<String>, Vec<String>), &'static str> {
    fn values(data: &str, name: &str) -> Option<Vec<String>> {
        let open = format!("<{name}>");
        let start = data.find(&open)? + open.len();
        let end = start + data[start..].find(&format!("</{name}>"))?;
        Some(
            data[start..end]
                .split_ascii_whitespace()
                .map(String::from)
                .collect(),
        )
    }
    let scopes = values(reply, "wsd:Scopes").ok_or("missing <wsd:Scopes> tag")?;
    let locations = values(reply, "wsd:XAddrs").ok_or("missing <wsd:XAddrs> tag")?;
    let counts = values(reply, "PeerDist:BlockCount").ok_or("missing <PeerDist:BlockCount> tag")?;
    let counts = counts.first().cloned().unwrap_or_default();
    let mut ids = Vec::new();
    for (i, scope) in scopes.iter().enumerate() {
        if i >= counts.len() / 8 {
            return Err("too many segment IDs");
        }
        if &counts[i * 8..i * 8 + 8] != "00000000" {
            ids.push(scope.clone());
        }
    }
    Ok((ids, locations))
}

const IIS_V2_SEGMENT_ID: &str = "3371bbeaddb62353adcef970a06fdf65001e0421f4c7108276b0c37a9f9ec10f";

#[test]
fn ipxe_probe_is_read_and_written_byte_for_byte() {
    let bytes = read("ipxe-probe.xml");
    let probe = Probe::parse(&bytes).unwrap();
    assert_eq!(probe.version(), Some(ProbeVersion::V1));
    assert_eq!(probe.match_by.as_deref(), Some(MATCH_BY_STRCMP0));
    assert_eq!(probe.scopes, [IIS_V2_SEGMENT_ID.to_uppercase()]);
    let ours = Probe::v1(
        "urn:uuid:5a3b9c1d-7e2f-4a60-8b91-c2d3e4f5a6b7",
        IIS_V2_SEGMENT_ID.to_uppercase(),
    );
    assert_eq!(ours, probe);
    assert_eq!(ours.to_xml().as_bytes(), bytes.as_slice());
}

#[test]
fn our_answer_to_ipxe_is_what_ipxe_parses() {
    let probe = Probe::parse(&read("ipxe-probe.xml")).unwrap();
    let wanted = hex::decode(IIS_V2_SEGMENT_ID).unwrap();
    let identity = ResponderIdentity {
        endpoint: "urn:uuid:2f1c4b7a-9d3e-4c51-a8f2-6b0d1e2c3a4b".into(),
        instance_id: 1_700_000_000,
    };
    let reply = answer_probe(
        &probe,
        &identity,
        1,
        [0x11; 16],
        &["192.168.10.5:80".into()],
        |id| (id == wanted.as_slice()).then_some(HeldSegment { block_count: 1 }),
    )
    .expect("the peer holds the segment");
    let text = reply.to_xml();
    golden::check(&testdata().join("pccrd/ipxe-probe-match.xml"), &text);
    let (ids, locations) = ipxe_reply(&text).unwrap();
    assert_eq!(
        ids,
        [IIS_V2_SEGMENT_ID.to_uppercase()],
        "echoed exactly as iPXE wrote it"
    );
    assert_eq!(locations, ["192.168.10.5:80"]);
    assert_eq!(ProbeMatches::parse(text.as_bytes()).unwrap(), reply);
}

#[test]
fn specification_probes() {
    let v1 = Probe::parse(&read("spec-probe-v1.xml")).unwrap();
    assert_eq!(v1.version(), Some(ProbeVersion::V1));
    assert_eq!(v1.message_id, "urn:uuid:91528b47-b96d-4e30-981f-308c0586926f");
    assert_eq!(v1.scopes.len(), 2);
    let v2 = Probe::parse(&read("spec-probe-v2.xml")).unwrap();
    assert_eq!(v2.version(), Some(ProbeVersion::V2));
    assert_eq!(v2.scopes, ["ACABKQEaAQAAAAAwHRoBAAAAAEEAQQBEAHkAZwBNAE0AMQA="]);
    let identity = ResponderIdentity {
        endpoint: "urn:uuid:x".into(),
        instance_id: 1,
    };
    let everything = |_: &[u8]| Some(HeldSegment { block_count: 1 });
    // The example identifiers are 65 and 61 digits long (not digests), and version 2.0 is
    // not answered: no reply to either.
    assert!(answer_probe(&v1, &identity, 1, [0; 16], &[], everything).is_none());
    assert!(answer_probe(&v2, &identity, 1, [0; 16], &[], everything).is_none());
}

#[test]
fn specification_probe_matches() {
    let v1 = ProbeMatches::parse(&read("spec-probe-match-v1.xml")).unwrap();
    assert_eq!(
        v1.relates_to.as_deref(),
        Some("urn:uuid:91528b47-b96d-4e30-981f-308c0586926f")
    );
    assert_eq!(v1.app_sequence, Some((1_218_765_447, 4)));
    let m = &v1.matches[0];
    assert_eq!(m.endpoint, "urn:uuid:87A89944-0230-43a5-AC4E-FAB1386C8E2C");
    assert_eq!(m.version, ProbeVersion::V1);
    assert_eq!(m.scopes.len(), 2);
    assert_eq!(m.xaddrs, ["157.59.141.183:54321"]);
    assert_eq!(m.metadata_version, 1);
    assert_eq!(m.block_counts, [42]);
    let v2 = ProbeMatches::parse(&read("spec-probe-match-v2.xml")).unwrap();
    assert_eq!(v2.matches[0].version, ProbeVersion::V2);
    assert_eq!(v2.matches[0].segment_ages.as_deref(), Some("AAEDAgBg6gACYOoA"));
    assert_eq!(v2.matches[0].scopes, ["/////////////w=="]);
}

/// The IIS logo's Content Information 1.0 from iPXE's `pccrc_test.c`: its one segment's id
/// and secret.
fn iis_v1_segment() -> (Vec<u8>, Vec<u8>) {
    let bytes = std::fs::read(testdata().join("peerdist/iis-85.png.v1.pccrc")).unwrap();
    let info = ContentInfoView::parse(&bytes).unwrap();
    let segment = info.segments().next().unwrap();
    (segment.id().as_bytes().to_vec(), segment.secret().to_vec())
}

#[test]
fn ipxe_block_request_for_the_iis_logo() {
    let (id, _) = iis_v1_segment();
    assert_eq!(
        hex::encode(&id),
        "491b217dbee2b5f12ca79b015e06f4bbe64f9745bad7867aef17de59927edce9"
    );
    let bytes = read("ipxe-getblks-iis-v1-block1.bin");
    assert_eq!(bytes.len(), 68, "sizeof(peerdist_msg_getblks_t(32, 1, 0))");
    let request = Request::parse(&bytes).unwrap();
    assert_eq!(
        request,
        Request::get_blocks(CryptoAlgorithm::Aes128, id.clone(), 1)
    );
    assert_eq!(request.to_bytes(), bytes);
    assert_eq!(
        plan(&request),
        Plan::Block {
            crypto: CryptoAlgorithm::Aes128,
            segment_id: id,
            index: 1
        }
    );
}

#[test]
fn block_encrypted_with_the_segment_secret_matches_openssl() {
    let (id, secret) = iis_v1_segment();
    let plain: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let iv: [u8; 16] = std::array::from_fn(|i| i as u8);
    let sealed = seal_block(CryptoAlgorithm::Aes128, &secret, iv, &plain).unwrap();
    let bytes = block_response(CryptoAlgorithm::Aes128, id.clone(), 1, 0, Some(sealed)).to_bytes();
    let expected = read("blk-iis-v1-block1-aes128.bin");
    assert_eq!(bytes, expected);
    // Where iPXE's peerblk_retrieval_open() expects the block: after the transport header,
    // the message header, the 32-byte id, index, next index and the block length.
    assert_eq!(u32::from_be_bytes(bytes[64..68].try_into().unwrap()), 1008);
    let ResponseBody::Block { block, iv, index, .. } = Response::parse(&expected).unwrap().body else {
        panic!("a block message")
    };
    assert_eq!(index, 1);
    assert_eq!(
        open_block(CryptoAlgorithm::Aes128, &secret, &iv, &block, plain.len()).unwrap(),
        plain
    );
}
