//! Property tests: owned representations round-trip through the wire form, parsing anything
//! never panics, and the streaming builder's output does not depend on how the content is cut
//! into pieces and verifies every block of the content.

use netboot_peerdist::http::Params;
use netboot_peerdist::wire::{ChunkV2, ContentInfoV1, ContentInfoV2, SegmentV1, SegmentV2, V1HashAlgorithm};
use netboot_peerdist::{
    ContentInfo, ContentInfoBuilder, ContentInfoEncoder, ContentInfoView, Digest, HashAlgorithm, LengthError,
    ServerPassphrase, VerifyError, Version, V1_BLOCK_LEN, V1_SEGMENT_LEN, V2_SEGMENT_LEN,
};
use proptest::prelude::*;

fn digest(len: usize) -> impl Strategy<Value = Digest> {
    proptest::collection::vec(any::<u8>(), len).prop_map(|bytes| Digest::from_slice(&bytes).unwrap())
}

fn v1() -> impl Strategy<Value = ContentInfoV1> {
    prop_oneof![
        Just(V1HashAlgorithm::Sha256),
        Just(V1HashAlgorithm::Sha384),
        Just(V1HashAlgorithm::Sha512)
    ]
    .prop_flat_map(|algorithm| {
        let len = algorithm.algorithm().digest_len();
        let segment = (
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            digest(len),
            digest(len),
            proptest::collection::vec(digest(len), 0..6),
        )
            .prop_map(
                |(offset_in_content, length, block_size, hash_of_data, secret, block_hashes)| SegmentV1 {
                    offset_in_content,
                    length,
                    block_size,
                    hash_of_data,
                    secret,
                    block_hashes,
                },
            );
        (
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(segment, 0..5),
        )
            .prop_map(
                move |(offset_in_first_segment, read_bytes_in_last_segment, segments)| ContentInfoV1 {
                    hash_algorithm: algorithm,
                    offset_in_first_segment,
                    read_bytes_in_last_segment,
                    segments,
                },
            )
    })
}

fn v2() -> impl Strategy<Value = ContentInfoV2> {
    let segment =
        (any::<u32>(), any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(length, hash_of_data, secret)| {
            SegmentV2 {
                length,
                hash_of_data,
                secret,
            }
        });
    let chunk = prop_oneof![
        proptest::collection::vec(segment, 0..5).prop_map(ChunkV2::Segments),
        (1u8.., proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(chunk_type, data)| ChunkV2::Unknown { chunk_type, data }),
    ];
    (
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
        proptest::collection::vec(chunk, 0..4),
    )
        .prop_map(
            |(start_in_content, index_of_first_segment, offset_in_first_segment, length_of_range, chunks)| {
                ContentInfoV2 {
                    start_in_content,
                    index_of_first_segment,
                    offset_in_first_segment,
                    length_of_range,
                    chunks,
                }
            },
        )
}

fn passphrase() -> ServerPassphrase {
    ServerPassphrase::new(b"a site-wide test passphrase".to_vec()).unwrap()
}

/// Content Information computed the obvious way, from the whole content at once.
fn reference(content: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let ks1 = passphrase().server_secret(HashAlgorithm::Sha256);
    let segments: Vec<SegmentV1> = content
        .chunks(V1_SEGMENT_LEN as usize)
        .enumerate()
        .map(|(i, segment)| {
            let block_hashes: Vec<Digest> = segment
                .chunks(V1_BLOCK_LEN as usize)
                .map(|block| HashAlgorithm::Sha256.hash(block))
                .collect();
            let concatenated: Vec<u8> = block_hashes.iter().flat_map(|d| d.as_bytes().to_vec()).collect();
            let hash_of_data = HashAlgorithm::Sha256.hash(&concatenated);
            SegmentV1 {
                offset_in_content: i as u64 * u64::from(V1_SEGMENT_LEN),
                length: segment.len() as u32,
                block_size: V1_BLOCK_LEN,
                hash_of_data,
                secret: ks1.segment_secret(hash_of_data.as_bytes()),
                block_hashes,
            }
        })
        .collect();
    let v1 = ContentInfoV1 {
        hash_algorithm: V1HashAlgorithm::Sha256,
        offset_in_first_segment: 0,
        read_bytes_in_last_segment: 0,
        segments,
    };
    let ks2 = passphrase().server_secret(HashAlgorithm::Sha512Truncated);
    let segments: Vec<SegmentV2> = content
        .chunks(V2_SEGMENT_LEN as usize)
        .map(|segment| {
            let hash_of_data = HashAlgorithm::Sha512Truncated.hash(segment);
            SegmentV2::new(
                segment.len() as u32,
                &hash_of_data,
                &ks2.segment_secret(hash_of_data.as_bytes()),
            )
        })
        .collect();
    let v2 = ContentInfoV2 {
        start_in_content: 0,
        index_of_first_segment: 0,
        offset_in_first_segment: 0,
        length_of_range: 0,
        chunks: segments
            .chunks(256)
            .map(|c| ChunkV2::Segments(c.to_vec()))
            .collect(),
    };
    (v1.to_bytes().unwrap(), v2.to_bytes().unwrap())
}

/// The encoder's pieces written at their offsets.
fn encoded(content: &[u8], piece: usize) -> (Vec<u8>, Vec<u8>) {
    let mut encoder = ContentInfoEncoder::new(&passphrase(), content.len() as u64);
    let mut v1 = vec![0xee; encoder.encoded_len(Version::V1) as usize];
    let mut v2 = vec![0xee; encoder.encoded_len(Version::V2) as usize];
    let mut written = 0;
    let mut write = |version: Version, offset: u64, bytes: &[u8]| {
        let target = if version == Version::V1 { &mut v1 } else { &mut v2 };
        target[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
        written += bytes.len();
    };
    for piece in content.chunks(piece.max(1)) {
        encoder.update(piece, &mut write).unwrap();
    }
    encoder.finish(&mut write).unwrap();
    assert_eq!(written, v1.len() + v2.len(), "every byte written exactly once");
    (v1, v2)
}

fn built(content: &[u8], piece: usize) -> (Vec<u8>, Vec<u8>) {
    let mut builder = ContentInfoBuilder::new(&passphrase());
    for piece in content.chunks(piece.max(1)) {
        builder.update(piece);
    }
    assert_eq!(builder.content_len(), content.len() as u64);
    let (v1, v2) = builder.finish();
    (v1.to_bytes().unwrap(), v2.to_bytes().unwrap())
}

/// Every block of the Content Information matches the content, and the blocks cover it.
fn assert_verifies(info: &[u8], content: &[u8]) {
    let view = ContentInfoView::parse(info).unwrap();
    assert_eq!(view.content_range(), 0..content.len() as u64);
    assert_eq!(view.verify(content), Ok(()));
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

proptest! {
    #[test]
    fn v1_round_trips(info in v1()) {
        let bytes = info.to_bytes().unwrap();
        prop_assert_eq!(bytes.len(), info.encoded_len());
        prop_assert_eq!(&ContentInfoV1::parse(&bytes).unwrap(), &info);
        let generic = ContentInfo::parse(&bytes).unwrap();
        prop_assert_eq!(generic.version(), Version::V1);
        prop_assert_eq!(generic.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn v2_round_trips(info in v2()) {
        let bytes = info.to_bytes().unwrap();
        prop_assert_eq!(bytes.len(), info.encoded_len());
        prop_assert_eq!(&ContentInfoV2::parse(&bytes).unwrap(), &info);
        prop_assert_eq!(ContentInfo::parse(&bytes).unwrap().to_bytes().unwrap(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), version in 0u8..4) {
        let mut bytes = bytes;
        if bytes.len() >= 2 {
            bytes[0] = 0;
            bytes[1] = version;
        }
        netboot_peerdist::fuzzing::parse_round_trip(&bytes);
    }

    #[test]
    fn params_round_trip(items in proptest::collection::vec(("[A-Za-z]{1,12}", "[0-9A-Za-z.]{0,8}"), 0..6)) {
        let text = items.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(", ");
        let params = Params::parse(&text);
        prop_assert_eq!(params.items().len(), items.len());
        prop_assert_eq!(params.to_string(), text);
    }

    #[test]
    fn builder_matches_the_reference_however_the_content_is_cut(
        len in 0usize..400_000,
        piece in 1usize..200_000,
        seed in any::<u8>(),
    ) {
        let content = content(len, seed);
        let (v1, v2) = built(&content, piece);
        let expected = reference(&content);
        prop_assert_eq!((&v1, &v2), (&expected.0, &expected.1));
        prop_assert_eq!(encoded(&content, piece), expected);
        if len > 0 {
            assert_verifies(&v1, &content);
            assert_verifies(&v2, &content);
        }
    }
}

#[test]
fn content_beyond_one_version_1_segment() {
    let len = V1_SEGMENT_LEN as usize * 2 + 70_000;
    let content = content(len, 7);
    let (v1, v2) = built(&content, 1 << 20);
    assert_eq!((v1.clone(), v2.clone()), reference(&content));
    assert_eq!(encoded(&content, 1 << 20), (v1.clone(), v2.clone()));
    let view = ContentInfoView::parse(&v1).unwrap();
    let lengths: Vec<u64> = view.segments().map(|s| s.range().end - s.range().start).collect();
    assert_eq!(
        lengths,
        [u64::from(V1_SEGMENT_LEN), u64::from(V1_SEGMENT_LEN), 70_000]
    );
    assert_verifies(&v1, &content);
    let v2_view = ContentInfoView::parse(&v2).unwrap();
    let chunks = match v2_view {
        ContentInfoView::V2(v2) => v2.chunks().count(),
        ContentInfoView::V1(_) => unreachable!(),
    };
    assert_eq!(chunks, 3, "256 segments of 128 KiB per chunk");
    assert_verifies(&v2, &content);
}

#[test]
fn the_encoder_refuses_content_of_another_length() {
    let mut write = |_: Version, _: u64, _: &[u8]| {};
    let mut encoder = ContentInfoEncoder::new(&passphrase(), 10);
    assert_eq!(
        encoder.update(&[0; 11], &mut write),
        Err(LengthError {
            announced: 10,
            got: 11
        })
    );
    encoder.update(&[0; 9], &mut write).unwrap();
    assert_eq!(
        encoder.finish(&mut write),
        Err(LengthError {
            announced: 10,
            got: 9
        })
    );
}

#[test]
fn a_changed_byte_fails_exactly_its_block() {
    let content = content(300_000, 1);
    let (v1, v2) = built(&content, 4096);
    let mut changed = content.clone();
    changed[150_000] ^= 1;
    let v1 = ContentInfoView::parse(&v1).unwrap();
    assert_eq!(
        v1.verify(&changed),
        Err(VerifyError::Mismatch { segment: 0, block: 2 }),
        "the third 64 KiB block"
    );
    let v2 = ContentInfoView::parse(&v2).unwrap();
    assert_eq!(
        v2.verify(&changed),
        Err(VerifyError::Mismatch { segment: 1, block: 0 }),
        "the second 128 KiB segment"
    );
    assert!(matches!(
        v2.verify(&content[..299_999]),
        Err(VerifyError::Coverage { .. })
    ));
}
