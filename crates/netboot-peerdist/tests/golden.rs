//! Golden tests: the Content Information IIS 8.5 sent for its logo (`iis-85.png`, 99,710
//! bytes) in both versions, with the server passphrase, segment hashes, secrets and ids that
//! iPXE's `src/tests/pccrc_test.c` records for it. Our parser must read them as iPXE does, our
//! key derivation must reproduce IIS's secrets and ids, and our encoder must produce IIS's
//! bytes from the same values.

use netboot_peerdist::wire::{ContentInfoV1, SegmentV1, V1HashAlgorithm};
use netboot_peerdist::{
    segment_id, ContentInfo, ContentInfoView, Digest, HashAlgorithm, ServerPassphrase, Version,
};
use netboot_testkit::testdata;

fn h(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

fn passphrase() -> ServerPassphrase {
    ServerPassphrase::new(h(
        "2a3d73eb435e9f2b8a344267e7467a3c7385c6e055e2b4d30dfec7c38b0ed72c",
    ))
    .unwrap()
}

fn capture(name: &str) -> Vec<u8> {
    std::fs::read(testdata().join("peerdist").join(name)).unwrap()
}

struct ExpectedSegment {
    range: std::ops::Range<u64>,
    hash: &'static str,
    secret: &'static str,
    id: &'static str,
    blocks: &'static [(std::ops::Range<u64>, &'static str)],
}

const V1_SEGMENTS: &[ExpectedSegment] = &[ExpectedSegment {
    range: 0..99_710,
    hash: "d8d976354a4872e925761803f458d9daaa67f8e31c630fb74e6a312ef8a25aba",
    secret: "11afc0d7949243f94f9c1fab35d9fd1e331fcf7811a2e01d3587b38d770a29e2",
    id: "491b217dbee2b5f12ca79b015e06f4bbe64f9745bad7867aef17de59927edce9",
    blocks: &[
        (
            0..65_536,
            "73c18ab8549110f8e90e71bbc3ab2aa8c44d13f4929499255b660f24ec77800b",
        ),
        (
            65_536..99_710,
            "974bdd65567fdeeccdafe457a9503b4548f66ed3b188dcfda0ac382b09711acc",
        ),
    ],
}];

const V2_SEGMENTS: &[ExpectedSegment] = &[
    ExpectedSegment {
        range: 0..39_390,
        hash: "e0d0c358e2684b62330d32b5f1978724a0d0a52bdc5e781fae71ff57a8be3dd4",
        secret: "58037ed404116bb616d9b14116088520c47cdc50abcea3fae188a98ea22df3c0",
        id: "3371bbeaddb62353adcef970a06fdf65001e0421f4c7108276b0c37a9f9ec10f",
        blocks: &[(
            0..39_390,
            "e0d0c358e2684b62330d32b5f1978724a0d0a52bdc5e781fae71ff57a8be3dd4",
        )],
    },
    ExpectedSegment {
        range: 39_390..99_710,
        hash: "3381d0d0cb74f4b613d8210f37f002a06f3910586096a130d34398c08e66d7bc",
        secret: "b8b6eb7783e4f807647b63f146b52f4ac89ccc7abf5fa11acafc2acf5028586c",
        id: "d7e924425e8f4f88f01dc6a9bb1bc37be113ec7917c745d4965c2b55fa163a6e",
        blocks: &[(
            39_390..99_710,
            "3381d0d0cb74f4b613d8210f37f002a06f3910586096a130d34398c08e66d7bc",
        )],
    },
];

fn check_segments(view: &ContentInfoView<'_>, expected: &[ExpectedSegment]) {
    let segments: Vec<_> = view.segments().collect();
    assert_eq!(segments.len(), expected.len());
    for (segment, want) in segments.iter().zip(expected) {
        assert_eq!(segment.range(), want.range);
        assert_eq!(hex::encode(segment.hash_of_data()), want.hash);
        assert_eq!(hex::encode(segment.secret()), want.secret);
        assert_eq!(
            segment.id().to_string(),
            want.id,
            "HoHoDk of segment {}",
            segment.index()
        );
        let blocks: Vec<_> = segment.blocks().map(|b| (b.range, hex::encode(b.hash))).collect();
        let want_blocks: Vec<_> = want
            .blocks
            .iter()
            .map(|(r, hash)| (r.clone(), hash.to_string()))
            .collect();
        assert_eq!(blocks, want_blocks);
        // Kp = HMAC(Ks, HoD) with Ks derived from the server passphrase.
        let ks = passphrase().server_secret(view.hash_algorithm());
        assert_eq!(
            hex::encode(ks.segment_secret(segment.hash_of_data()).as_bytes()),
            want.secret
        );
    }
}

#[test]
fn iis_version_1_is_read_as_ipxe_reads_it() {
    let bytes = capture("iis-85.png.v1.pccrc");
    let view = ContentInfoView::parse(&bytes).unwrap();
    assert_eq!(view.version(), Version::V1);
    assert_eq!(view.hash_algorithm(), HashAlgorithm::Sha256);
    assert_eq!(view.content_range(), 0..99_710);
    check_segments(&view, V1_SEGMENTS);
}

#[test]
fn iis_version_2_is_read_as_ipxe_reads_it() {
    let bytes = capture("iis-85.png.v2.pccrc");
    let view = ContentInfoView::parse(&bytes).unwrap();
    assert_eq!(view.version(), Version::V2);
    assert_eq!(view.hash_algorithm(), HashAlgorithm::Sha512Truncated);
    assert_eq!(view.content_range(), 0..99_710);
    check_segments(&view, V2_SEGMENTS);
}

#[test]
fn both_captures_re_encode_byte_for_byte() {
    for name in ["iis-85.png.v1.pccrc", "iis-85.png.v2.pccrc"] {
        let bytes = capture(name);
        let parsed = ContentInfo::parse(&bytes).unwrap();
        assert_eq!(parsed.to_bytes().unwrap(), bytes, "{name}");
    }
}

/// From the block hashes alone, HoD, Kp and the layout our builder uses reproduce IIS's
/// version 1.0 answer exactly; the only step left is SHA-256 of each block's bytes.
#[test]
fn our_version_1_encoding_of_the_iis_block_hashes_is_iis_bytes() {
    let blocks: Vec<Digest> = V1_SEGMENTS[0]
        .blocks
        .iter()
        .map(|(_, hash)| Digest::from_slice(&h(hash)).unwrap())
        .collect();
    let mut hod = HashAlgorithm::Sha256.hasher();
    blocks.iter().for_each(|b| hod.update(b.as_bytes()));
    let hash_of_data = hod.finish();
    let secret = passphrase()
        .server_secret(HashAlgorithm::Sha256)
        .segment_secret(hash_of_data.as_bytes());
    let info = ContentInfoV1 {
        hash_algorithm: V1HashAlgorithm::Sha256,
        offset_in_first_segment: 0,
        read_bytes_in_last_segment: 0,
        segments: vec![SegmentV1 {
            offset_in_content: 0,
            length: 99_710,
            block_size: netboot_peerdist::V1_BLOCK_LEN,
            hash_of_data,
            secret,
            block_hashes: blocks,
        }],
    };
    assert_eq!(info.to_bytes().unwrap(), capture("iis-85.png.v1.pccrc"));
    assert_eq!(
        segment_id(HashAlgorithm::Sha256, secret.as_bytes(), hash_of_data.as_bytes()).to_string(),
        V1_SEGMENTS[0].id
    );
}

#[test]
fn corpus_runs_through_the_fuzzing_entry_point() {
    let dir = testdata().join("peerdist/corpus");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        netboot_peerdist::fuzzing::parse_round_trip(&bytes);
        // Every prefix and single-byte corruptions of real answers must not panic either.
        for len in 0..bytes.len() {
            netboot_peerdist::fuzzing::parse_round_trip(&bytes[..len]);
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0xff;
            netboot_peerdist::fuzzing::parse_round_trip(&flipped);
        }
        count += 1;
    }
    assert!(count > 0, "empty corpus in {}", dir.display());
}

/// Our own answer for a known content and passphrase, pinned so that a change to the
/// encoding or the segmenting (which would make servers of different releases disagree about
/// segment ids) is noticed.
#[test]
fn our_answers_for_a_known_file_are_stable() {
    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut builder = netboot_peerdist::ContentInfoBuilder::new(&passphrase());
    builder.update(&content);
    let (v1, v2) = builder.finish();
    let dir = testdata().join("peerdist");
    netboot_testkit::golden::check(&dir.join("pattern-300000.v1.pccrc"), v1.to_bytes().unwrap());
    netboot_testkit::golden::check(&dir.join("pattern-300000.v2.pccrc"), v2.to_bytes().unwrap());
}
