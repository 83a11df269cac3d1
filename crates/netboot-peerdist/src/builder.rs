//! Computing Content Information for content passed in pieces of any size, in one pass and in
//! memory that does not grow with the pieces: the content is never held, only the hashes
//! that make up the result (about 0.1 % of the content size for both versions together).

use crate::digest::{Digest, HashAlgorithm, Hasher};
use crate::secret::{ServerPassphrase, ServerSecret};
use crate::wire::{ChunkV2, ContentInfoV1, ContentInfoV2, SegmentV1, SegmentV2, V1HashAlgorithm};

/// Segment length of version 1.0 (every segment but the last).
pub const V1_SEGMENT_LEN: u32 = 32 * 1024 * 1024;
/// Block length of version 1.0 (every block but the last of a segment).
pub const V1_BLOCK_LEN: u32 = 64 * 1024;
/// Segment length this crate uses for version 2.0: the largest the specification allows, so
/// a client makes as few block requests and discoveries as possible. The specification leaves
/// the division into segments to the server (IIS cuts variable-length segments with its
/// deduplication chunker); fixed lengths make every server of a site, given the same
/// passphrase, produce the same Content Information.
pub const V2_SEGMENT_LEN: u32 = crate::wire::MAX_SEGMENT_LEN;
/// Segments per version 2.0 chunk (32 MiB of content per chunk, 17 KiB per chunk).
pub const V2_SEGMENTS_PER_CHUNK: usize = 256;

/// Version 1.0 with SHA-256, as every Windows server sends it.
#[derive(Debug)]
pub struct V1Builder {
    secret: ServerSecret,
    block: Hasher,
    block_filled: u32,
    segment_filled: u32,
    segment_blocks: Vec<Digest>,
    segment_start: u64,
    segments: Vec<SegmentV1>,
}

impl V1Builder {
    /// A builder whose segment secrets derive from `passphrase`.
    #[must_use]
    pub fn new(passphrase: &ServerPassphrase) -> Self {
        Self {
            secret: passphrase.server_secret(HashAlgorithm::Sha256),
            block: HashAlgorithm::Sha256.hasher(),
            block_filled: 0,
            segment_filled: 0,
            segment_blocks: Vec::with_capacity((V1_SEGMENT_LEN / V1_BLOCK_LEN) as usize),
            segment_start: 0,
            segments: Vec::new(),
        }
    }

    /// Adds the next bytes of the content.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = data.len().min((V1_BLOCK_LEN - self.block_filled) as usize);
            self.block.update(&data[..take]);
            self.block_filled += take as u32;
            self.segment_filled += take as u32;
            data = &data[take..];
            if self.block_filled == V1_BLOCK_LEN {
                self.end_block();
            }
            if self.segment_filled == V1_SEGMENT_LEN {
                self.end_segment();
            }
        }
    }

    /// The Content Information of the whole content.
    #[must_use]
    pub fn finish(mut self) -> ContentInfoV1 {
        if self.block_filled > 0 {
            self.end_block();
        }
        if self.segment_filled > 0 {
            self.end_segment();
        }
        ContentInfoV1 {
            hash_algorithm: V1HashAlgorithm::Sha256,
            offset_in_first_segment: 0,
            // 0: the whole last segment, as IIS sends it for a whole file.
            read_bytes_in_last_segment: 0,
            segments: self.segments,
        }
    }

    fn end_block(&mut self) {
        self.segment_blocks.push(self.block.finish_reset());
        self.block_filled = 0;
    }

    fn end_segment(&mut self) {
        let mut hod = HashAlgorithm::Sha256.hasher();
        for block in &self.segment_blocks {
            hod.update(block.as_bytes());
        }
        let hash_of_data = hod.finish();
        self.segments.push(SegmentV1 {
            offset_in_content: self.segment_start,
            length: self.segment_filled,
            block_size: V1_BLOCK_LEN,
            hash_of_data,
            secret: self.secret.segment_secret(hash_of_data.as_bytes()),
            block_hashes: std::mem::take(&mut self.segment_blocks),
        });
        self.segment_start += u64::from(self.segment_filled);
        self.segment_filled = 0;
    }
}

/// Version 2.0: truncated SHA-512 over [`V2_SEGMENT_LEN`] segments.
#[derive(Debug)]
pub struct V2Builder {
    secret: ServerSecret,
    segment: Hasher,
    segment_filled: u32,
    chunk: Vec<SegmentV2>,
    chunks: Vec<ChunkV2>,
}

impl V2Builder {
    /// A builder whose segment secrets derive from `passphrase`.
    #[must_use]
    pub fn new(passphrase: &ServerPassphrase) -> Self {
        Self {
            secret: passphrase.server_secret(HashAlgorithm::Sha512Truncated),
            segment: HashAlgorithm::Sha512Truncated.hasher(),
            segment_filled: 0,
            chunk: Vec::with_capacity(V2_SEGMENTS_PER_CHUNK),
            chunks: Vec::new(),
        }
    }

    /// Adds the next bytes of the content.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = data.len().min((V2_SEGMENT_LEN - self.segment_filled) as usize);
            self.segment.update(&data[..take]);
            self.segment_filled += take as u32;
            data = &data[take..];
            if self.segment_filled == V2_SEGMENT_LEN {
                self.end_segment();
            }
        }
    }

    /// The Content Information of the whole content.
    #[must_use]
    pub fn finish(mut self) -> ContentInfoV2 {
        if self.segment_filled > 0 {
            self.end_segment();
        }
        if !self.chunk.is_empty() {
            self.chunks.push(ChunkV2::Segments(self.chunk));
        }
        ContentInfoV2 {
            start_in_content: 0,
            index_of_first_segment: 0,
            offset_in_first_segment: 0,
            // 0: the whole resource.
            length_of_range: 0,
            chunks: self.chunks,
        }
    }

    fn end_segment(&mut self) {
        let hash_of_data = self.segment.finish_reset();
        let secret = self.secret.segment_secret(hash_of_data.as_bytes());
        self.chunk
            .push(SegmentV2::new(self.segment_filled, &hash_of_data, &secret));
        self.segment_filled = 0;
        if self.chunk.len() == V2_SEGMENTS_PER_CHUNK {
            let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(V2_SEGMENTS_PER_CHUNK));
            self.chunks.push(ChunkV2::Segments(full));
        }
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
