//! Both versions' wire form for content of a length known in advance, handed out piece by
//! piece with the offset each piece has in its version's encoding.
//!
//! The length fixes the layout: the number of segments (so the version 1.0 header and where
//! each segment description and block list goes) and of version 2.0 chunks. Each piece is
//! therefore final when it is handed out; the embedder writes it at its offset (a positional
//! write into a file of [`ContentInfoEncoder::encoded_len`] bytes) and keeps nothing.

use super::hashing::{Event, SegmentDone, V1Hashing, V2Hashing};
use super::{V1_BLOCK_LEN, V1_SEGMENT_LEN, V2_SEGMENTS_PER_CHUNK, V2_SEGMENT_LEN};
use crate::secret::ServerPassphrase;
use crate::wire::{v1, v2, SegmentV1, SegmentV2, V1HashAlgorithm, Version};

/// Content that was not as long as announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("content of {announced} bytes was announced, {got} arrived")]
pub struct LengthError {
    /// The length given to [`ContentInfoEncoder::new`].
    pub announced: u64,
    /// Bytes passed so far (at least this many).
    pub got: u64,
}

/// Where each piece of both encodings goes, from the content length.
#[derive(Debug, Clone, Copy)]
struct Layout {
    content_len: u64,
    v1_segments: u64,
    v2_segments: u64,
}

const V1_FULL_LIST: u64 = (v1::BLOCK_COUNT_LEN + (V1_SEGMENT_LEN / V1_BLOCK_LEN) as usize * 32) as u64;
const V2_FULL_CHUNK: u64 = (v2::CHUNK_HEADER_LEN + V2_SEGMENTS_PER_CHUNK * v2::SEGMENT_LEN) as u64;

impl Layout {
    fn new(content_len: u64) -> Self {
        Self {
            content_len,
            v1_segments: content_len.div_ceil(u64::from(V1_SEGMENT_LEN)),
            v2_segments: content_len.div_ceil(u64::from(V2_SEGMENT_LEN)),
        }
    }

    fn v1_description_at(&self, segment: u64) -> u64 {
        v1::HEADER_LEN as u64 + segment * v1::SHA256_DESCRIPTION_LEN as u64
    }

    /// Every block list before `segment` is a full segment's.
    fn v1_blocks_at(&self, segment: u64) -> u64 {
        self.v1_description_at(self.v1_segments) + segment * V1_FULL_LIST
    }

    fn v1_len(&self) -> u64 {
        let blocks = self.content_len.div_ceil(u64::from(V1_BLOCK_LEN));
        self.v1_description_at(self.v1_segments) + self.v1_segments * v1::BLOCK_COUNT_LEN as u64 + blocks * 32
    }

    /// Every chunk before `chunk` is full.
    fn v2_chunk_at(&self, chunk: u64) -> u64 {
        v2::HEADER_LEN as u64 + chunk * V2_FULL_CHUNK
    }

    fn v2_len(&self) -> u64 {
        let chunks = self.v2_segments.div_ceil(V2_SEGMENTS_PER_CHUNK as u64);
        v2::HEADER_LEN as u64
            + chunks * v2::CHUNK_HEADER_LEN as u64
            + self.v2_segments * v2::SEGMENT_LEN as u64
    }
}

/// Version 1.0 and 2.0 Content Information of content whose length is known in advance, in
/// memory that does not grow with it (one segment's block list and one chunk).
///
/// ```
/// use netboot_peerdist::{ContentInfoBuilder, ContentInfoEncoder, ServerPassphrase, Version};
/// let passphrase = ServerPassphrase::new(vec![3; 32]).unwrap();
/// let content = vec![7u8; 300_000];
/// let mut encoder = ContentInfoEncoder::new(&passphrase, content.len() as u64);
/// let mut v2 = vec![0; encoder.encoded_len(Version::V2) as usize];
/// let mut v1 = vec![0; encoder.encoded_len(Version::V1) as usize];
/// let mut write = |version: Version, offset: u64, piece: &[u8]| {
///     let target = if version == Version::V1 { &mut v1 } else { &mut v2 };
///     target[offset as usize..offset as usize + piece.len()].copy_from_slice(piece);
/// };
/// for piece in content.chunks(65_000) {
///     encoder.update(piece, &mut write).unwrap();
/// }
/// encoder.finish(&mut write).unwrap();
/// let mut builder = ContentInfoBuilder::new(&passphrase);
/// builder.update(&content);
/// let (owned_v1, owned_v2) = builder.finish();
/// assert_eq!((v1, v2), (owned_v1.to_bytes().unwrap(), owned_v2.to_bytes().unwrap()));
/// ```
#[derive(Debug)]
pub struct ContentInfoEncoder {
    layout: Layout,
    v1: V1Hashing,
    v2: V2Hashing,
    passed: u64,
    started: bool,
    /// The current segment's block list: count, then hashes.
    blocks: Vec<u8>,
    /// The current chunk's segment descriptions.
    chunk: Vec<u8>,
    piece: Vec<u8>,
}

impl ContentInfoEncoder {
    /// An encoder for `content_len` bytes of content, with segment secrets from `passphrase`.
    #[must_use]
    pub fn new(passphrase: &ServerPassphrase, content_len: u64) -> Self {
        Self {
            layout: Layout::new(content_len),
            v1: V1Hashing::new(passphrase),
            v2: V2Hashing::new(passphrase),
            passed: 0,
            started: false,
            blocks: Vec::with_capacity(V1_FULL_LIST as usize),
            chunk: Vec::with_capacity(V2_FULL_CHUNK as usize),
            piece: Vec::with_capacity(v1::SHA256_DESCRIPTION_LEN),
        }
    }

    /// Size of `version`'s encoding.
    #[must_use]
    pub fn encoded_len(&self, version: Version) -> u64 {
        match version {
            Version::V1 => self.layout.v1_len(),
            Version::V2 => self.layout.v2_len(),
        }
    }

    /// Adds the next bytes of the content, handing finished pieces to `write(version,
    /// offset, bytes)`. More bytes than announced are refused (and not hashed).
    pub fn update(
        &mut self,
        data: &[u8],
        write: &mut impl FnMut(Version, u64, &[u8]),
    ) -> Result<(), LengthError> {
        let passed = self.passed + data.len() as u64;
        if passed > self.layout.content_len {
            return Err(LengthError {
                announced: self.layout.content_len,
                got: passed,
            });
        }
        self.start(write);
        self.passed = passed;
        let Self {
            layout,
            v1,
            v2,
            blocks,
            chunk,
            piece,
            ..
        } = self;
        let mut on = |event| place(layout, event, blocks, chunk, piece, write);
        v1.update(data, &mut on);
        v2.update(data, &mut on);
        Ok(())
    }

    /// Hands out the last pieces; fails when less content than announced arrived.
    pub fn finish(mut self, write: &mut impl FnMut(Version, u64, &[u8])) -> Result<(), LengthError> {
        if self.passed != self.layout.content_len {
            return Err(LengthError {
                announced: self.layout.content_len,
                got: self.passed,
            });
        }
        self.start(write);
        let Self {
            layout,
            v1,
            v2,
            mut blocks,
            mut chunk,
            mut piece,
            ..
        } = self;
        let mut on = |event| place(&layout, event, &mut blocks, &mut chunk, &mut piece, write);
        v1.finish(&mut on);
        v2.finish(&mut on);
        if !chunk.is_empty() {
            let segments = layout.v2_segments;
            write_chunk(
                &layout,
                (segments - 1) / V2_SEGMENTS_PER_CHUNK as u64,
                &chunk,
                &mut piece,
                write,
            );
        }
        Ok(())
    }

    /// The two headers, once.
    fn start(&mut self, write: &mut impl FnMut(Version, u64, &[u8])) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        self.piece.clear();
        let segments = u32::try_from(self.layout.v1_segments).unwrap_or(u32::MAX);
        v1::emit_header(&mut self.piece, V1HashAlgorithm::Sha256, 0, 0, segments);
        write(Version::V1, 0, &self.piece);
        self.piece.clear();
        v2::emit_header(&mut self.piece, 0, 0, 0, 0);
        write(Version::V2, 0, &self.piece);
    }
}

/// Collects or writes out what hashing reports.
fn place(
    layout: &Layout,
    event: Event,
    blocks: &mut Vec<u8>,
    chunk: &mut Vec<u8>,
    piece: &mut Vec<u8>,
    write: &mut impl FnMut(Version, u64, &[u8]),
) {
    match event {
        Event::V1Block(hash) => {
            if blocks.is_empty() {
                blocks.extend_from_slice(&[0; v1::BLOCK_COUNT_LEN]);
            }
            blocks.extend_from_slice(hash.as_bytes());
        }
        Event::V1Segment(done) => {
            let count = ((blocks.len() - v1::BLOCK_COUNT_LEN) / 32) as u32;
            blocks[..v1::BLOCK_COUNT_LEN].copy_from_slice(&count.to_le_bytes());
            write(Version::V1, layout.v1_blocks_at(done.index), blocks);
            blocks.clear();
            piece.clear();
            v1::emit_description(piece, &v1_segment(&done));
            write(Version::V1, layout.v1_description_at(done.index), piece);
        }
        Event::V2Segment(done) => {
            v2::emit_segment(
                chunk,
                &SegmentV2::new(done.length, &done.hash_of_data, &done.secret),
            );
            if chunk.len() == V2_SEGMENTS_PER_CHUNK * v2::SEGMENT_LEN {
                write_chunk(
                    layout,
                    done.index / V2_SEGMENTS_PER_CHUNK as u64,
                    chunk,
                    piece,
                    write,
                );
                chunk.clear();
            }
        }
    }
}

fn v1_segment(done: &SegmentDone) -> SegmentV1 {
    SegmentV1 {
        offset_in_content: done.offset,
        length: done.length,
        block_size: V1_BLOCK_LEN,
        hash_of_data: done.hash_of_data,
        secret: done.secret,
        block_hashes: Vec::new(),
    }
}

fn write_chunk(
    layout: &Layout,
    index: u64,
    chunk: &[u8],
    piece: &mut Vec<u8>,
    write: &mut impl FnMut(Version, u64, &[u8]),
) {
    piece.clear();
    v2::emit_chunk_header(piece, crate::wire::CHUNK_TYPE_SEGMENTS, chunk.len() as u32);
    let at = layout.v2_chunk_at(index);
    write(Version::V2, at, piece);
    write(Version::V2, at + piece.len() as u64, chunk);
}
