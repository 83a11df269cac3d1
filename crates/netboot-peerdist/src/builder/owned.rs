//! The owned representations of content of any length.

use super::hashing::{Event, SegmentDone, V1Hashing, V2Hashing};
use super::{V1_BLOCK_LEN, V2_SEGMENTS_PER_CHUNK};
use crate::digest::Digest;
use crate::secret::ServerPassphrase;
use crate::wire::{ChunkV2, ContentInfoV1, ContentInfoV2, SegmentV1, SegmentV2, V1HashAlgorithm};

/// Version 1.0 with SHA-256, as every Windows server sends it.
#[derive(Debug)]
pub struct V1Builder {
    hashing: V1Hashing,
    blocks: Vec<Digest>,
    segments: Vec<SegmentV1>,
}

impl V1Builder {
    /// A builder whose segment secrets derive from `passphrase`.
    #[must_use]
    pub fn new(passphrase: &ServerPassphrase) -> Self {
        Self {
            hashing: V1Hashing::new(passphrase),
            blocks: Vec::new(),
            segments: Vec::new(),
        }
    }

    /// Adds the next bytes of the content.
    pub fn update(&mut self, data: &[u8]) {
        let (blocks, segments) = (&mut self.blocks, &mut self.segments);
        self.hashing
            .update(data, &mut |event| collect_v1(event, blocks, segments));
    }

    /// The Content Information of the whole content.
    #[must_use]
    pub fn finish(mut self) -> ContentInfoV1 {
        let (blocks, segments) = (&mut self.blocks, &mut self.segments);
        self.hashing
            .finish(&mut |event| collect_v1(event, blocks, segments));
        ContentInfoV1 {
            hash_algorithm: V1HashAlgorithm::Sha256,
            offset_in_first_segment: 0,
            // 0: the whole last segment, as IIS sends it for a whole file.
            read_bytes_in_last_segment: 0,
            segments: self.segments,
        }
    }
}

fn collect_v1(event: Event, blocks: &mut Vec<Digest>, segments: &mut Vec<SegmentV1>) {
    match event {
        Event::V1Block(hash) => blocks.push(hash),
        Event::V1Segment(SegmentDone {
            offset,
            length,
            hash_of_data,
            secret,
            ..
        }) => segments.push(SegmentV1 {
            offset_in_content: offset,
            length,
            block_size: V1_BLOCK_LEN,
            hash_of_data,
            secret,
            block_hashes: std::mem::take(blocks),
        }),
        Event::V2Segment(_) => unreachable!("version 1.0 hashing reports no version 2.0 segments"),
    }
}

/// Version 2.0: truncated SHA-512 over [`super::V2_SEGMENT_LEN`] segments.
#[derive(Debug)]
pub struct V2Builder {
    hashing: V2Hashing,
    segments: Vec<SegmentV2>,
}

impl V2Builder {
    /// A builder whose segment secrets derive from `passphrase`.
    #[must_use]
    pub fn new(passphrase: &ServerPassphrase) -> Self {
        Self {
            hashing: V2Hashing::new(passphrase),
            segments: Vec::new(),
        }
    }

    /// Adds the next bytes of the content.
    pub fn update(&mut self, data: &[u8]) {
        let segments = &mut self.segments;
        self.hashing
            .update(data, &mut |event| collect_v2(event, segments));
    }

    /// The Content Information of the whole content.
    #[must_use]
    pub fn finish(mut self) -> ContentInfoV2 {
        let segments = &mut self.segments;
        self.hashing.finish(&mut |event| collect_v2(event, segments));
        ContentInfoV2 {
            start_in_content: 0,
            index_of_first_segment: 0,
            offset_in_first_segment: 0,
            // 0: the whole resource.
            length_of_range: 0,
            chunks: self
                .segments
                .chunks(V2_SEGMENTS_PER_CHUNK)
                .map(|chunk| ChunkV2::Segments(chunk.to_vec()))
                .collect(),
        }
    }
}

fn collect_v2(event: Event, segments: &mut Vec<SegmentV2>) {
    if let Event::V2Segment(done) = event {
        segments.push(SegmentV2::new(done.length, &done.hash_of_data, &done.secret));
    }
}

/// Both versions at once, from one pass over the content.
///
/// ```
/// use netboot_peerdist::{ContentInfoBuilder, ServerPassphrase};
/// let passphrase = ServerPassphrase::new(vec![1; 32]).unwrap();
/// let mut builder = ContentInfoBuilder::new(&passphrase);
/// for piece in [&b"hello "[..], b"world"] {
///     builder.update(piece);
/// }
/// assert_eq!(builder.content_len(), 11);
/// let (v1, v2) = builder.finish();
/// assert_eq!(v1.segments[0].block_hashes.len(), 1);
/// assert_eq!(v2.segments().next().unwrap().length, 11);
/// ```
#[derive(Debug)]
pub struct ContentInfoBuilder {
    v1: V1Builder,
    v2: V2Builder,
    content_len: u64,
}

impl ContentInfoBuilder {
    /// A builder whose segment secrets derive from `passphrase`.
    #[must_use]
    pub fn new(passphrase: &ServerPassphrase) -> Self {
        Self {
            v1: V1Builder::new(passphrase),
            v2: V2Builder::new(passphrase),
            content_len: 0,
        }
    }

    /// Adds the next bytes of the content.
    pub fn update(&mut self, data: &[u8]) {
        self.v1.update(data);
        self.v2.update(data);
        self.content_len += data.len() as u64;
    }

    /// Bytes added so far.
    #[must_use]
    pub fn content_len(&self) -> u64 {
        self.content_len
    }

    /// Version 1.0 and version 2.0 Content Information of the whole content.
    #[must_use]
    pub fn finish(self) -> (ContentInfoV1, ContentInfoV2) {
        (self.v1.finish(), self.v2.finish())
    }
}
