//! Content Information version 2.0 ([MS-PCCRC] 2.4): big-endian, a header, then chunks of
//! segment descriptions. Each segment (at most 128 KiB) is verified as one block against its
//! hash of data, truncated SHA-512 of its bytes.

use super::{be_u32, be_u64, EmitError, ParseError, Segment};
use crate::digest::{Digest, HashAlgorithm};

/// Byte ranges of the version 2.0 header, a chunk header and a segment description.
pub(crate) mod field {
    use std::ops::Range;
    pub(crate) const MINOR_VERSION: usize = 0;
    pub(crate) const MAJOR_VERSION: usize = 1;
    pub(crate) const HASH_ALGO: usize = 2;
    pub(crate) const START_IN_CONTENT: Range<usize> = 3..11;
    pub(crate) const INDEX_OF_FIRST_SEGMENT: Range<usize> = 11..19;
    pub(crate) const OFFSET_IN_FIRST_SEGMENT: Range<usize> = 19..23;
    pub(crate) const LENGTH_OF_RANGE: Range<usize> = 23..31;
    pub(crate) const CHUNKS: usize = 31;

    /// Within a chunk: its type, the length of its data, then the data.
    pub(crate) mod chunk {
        use std::ops::Range;
        pub(crate) const TYPE: usize = 0;
        pub(crate) const DATA_LENGTH: Range<usize> = 1..5;
        pub(crate) const DATA: usize = 5;
    }

    /// Within a segment description.
    pub(crate) mod segment {
        use std::ops::Range;
        pub(crate) const LENGTH: Range<usize> = 0..4;
        pub(crate) const HASH_OF_DATA: Range<usize> = 4..36;
        pub(crate) const SECRET: Range<usize> = 36..68;
        pub(crate) const LEN: usize = 68;
    }
}

/// `bHashAlgo` of version 2.0: truncated SHA-512, the only one defined.
pub const HASH_ALGO_SHA512_TRUNCATED: u8 = 0x04;
/// `bChunkType` of a chunk of segment descriptions, the only one defined.
pub const CHUNK_TYPE_SEGMENTS: u8 = 0x00;
/// Largest `cbSegment` the specification allows.
pub const MAX_SEGMENT_LEN: u32 = 128 * 1024;

const DIGEST_LEN: usize = HashAlgorithm::Sha512Truncated.digest_len();

/// A checked, borrowed view of version 2.0 Content Information: the header, then chunks that
/// end exactly at the end of the bytes; chunks of segments hold whole segment descriptions.
#[derive(Debug, Clone, Copy)]
pub struct ContentInfoV2View<'a> {
    bytes: &'a [u8],
}

impl<'a> ContentInfoV2View<'a> {
    /// Checks the structure. The version must be 2.0 and the hash truncated SHA-512.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ParseError> {
        if bytes.len() < field::CHUNKS {
            return Err(ParseError::Truncated {
                offset: 0,
                needed: field::CHUNKS,
                got: bytes.len(),
            });
        }
        let version = u16::from_le_bytes([bytes[field::MINOR_VERSION], bytes[field::MAJOR_VERSION]]);
        if version != super::Version::V2.code() {
            return Err(ParseError::UnsupportedVersion(version));
        }
        if bytes[field::HASH_ALGO] != HASH_ALGO_SHA512_TRUNCATED {
            return Err(ParseError::UnsupportedHash(u32::from(bytes[field::HASH_ALGO])));
        }
        let mut offset = field::CHUNKS;
        while offset < bytes.len() {
            let rest = &bytes[offset..];
            if rest.len() < field::chunk::DATA {
                return Err(ParseError::Truncated {
                    offset,
                    needed: field::chunk::DATA,
                    got: rest.len(),
                });
            }
            let chunk_type = rest[field::chunk::TYPE];
            let len = be_u32(&rest[field::chunk::DATA_LENGTH]) as usize;
            if len > rest.len() - field::chunk::DATA {
                return Err(ParseError::Truncated {
                    offset: offset + field::chunk::DATA,
                    needed: len,
                    got: rest.len() - field::chunk::DATA,
                });
            }
            if chunk_type == CHUNK_TYPE_SEGMENTS && len % field::segment::LEN != 0 {
                return Err(ParseError::PartialSegment { offset, len });
            }
            offset += field::chunk::DATA + len;
        }
        Ok(Self { bytes })
    }

    /// The whole structure.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// `ullStartInContent`: where the first segment starts in the content.
    #[must_use]
    pub fn start_in_content(&self) -> u64 {
        be_u64(&self.bytes[field::START_IN_CONTENT])
    }

    /// `ullIndexOfFirstSegment`: the first segment's index in the content.
    #[must_use]
    pub fn index_of_first_segment(&self) -> u64 {
        be_u64(&self.bytes[field::INDEX_OF_FIRST_SEGMENT])
    }

    /// `dwOffsetInFirstSegment`: bytes of the first segment before the content range.
    #[must_use]
    pub fn offset_in_first_segment(&self) -> u32 {
        be_u32(&self.bytes[field::OFFSET_IN_FIRST_SEGMENT])
    }

    /// `ullLengthOfRange`: length of the content range, 0 for the whole resource.
    #[must_use]
    pub fn length_of_range(&self) -> u64 {
        be_u64(&self.bytes[field::LENGTH_OF_RANGE])
    }

    /// Every chunk as `(bChunkType, data)`, unknown types included.
    pub fn chunks(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let bytes = self.bytes;
        let mut offset = field::CHUNKS;
        std::iter::from_fn(move || {
            let rest = bytes.get(offset..).filter(|rest| !rest.is_empty())?;
            let len = be_u32(&rest[field::chunk::DATA_LENGTH]) as usize;
            offset += field::chunk::DATA + len;
            Some((
                rest[field::chunk::TYPE],
                &rest[field::chunk::DATA..field::chunk::DATA + len],
            ))
        })
    }

    /// The segments of every chunk of segments, in content order.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'a>> + 'a {
        let mut start = self.start_in_content();
        let first_index = self.index_of_first_segment();
        self.chunks()
            .filter(|(chunk_type, _)| *chunk_type == CHUNK_TYPE_SEGMENTS)
            .flat_map(|(_, data)| data.chunks_exact(field::segment::LEN))
            .enumerate()
            .map(move |(i, description)| {
                let length = be_u32(&description[field::segment::LENGTH]);
                let range = start..start.saturating_add(u64::from(length));
                start = range.end;
                let hash_of_data = &description[field::segment::HASH_OF_DATA];
                Segment {
                    algorithm: HashAlgorithm::Sha512Truncated,
                    index: first_index.saturating_add(i as u64),
                    range,
                    length,
                    block_size: u64::from(length),
                    hash_of_data,
                    secret: &description[field::segment::SECRET],
                    first_block: 0,
                    block_hashes: hash_of_data,
                }
            })
    }
}

/// Version 2.0 Content Information, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentInfoV2 {
    /// `ullStartInContent`.
    pub start_in_content: u64,
    /// `ullIndexOfFirstSegment`.
    pub index_of_first_segment: u64,
    /// `dwOffsetInFirstSegment`.
    pub offset_in_first_segment: u32,
    /// `ullLengthOfRange` (0: the whole resource).
    pub length_of_range: u64,
    /// The chunks, in order.
    pub chunks: Vec<ChunkV2>,
}

/// One chunk of version 2.0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkV2 {
    /// Type 0: segment descriptions.
    Segments(Vec<SegmentV2>),
    /// Any other type, kept as it was received.
    Unknown {
        /// `bChunkType`.
        chunk_type: u8,
        /// The chunk data.
        data: Vec<u8>,
    },
}

/// One segment of version 2.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentV2 {
    /// `cbSegment` (1 to 128 KiB).
    pub length: u32,
    /// `SegmentHashOfData` (HoD): truncated SHA-512 of the segment's bytes.
    pub hash_of_data: [u8; DIGEST_LEN],
    /// `SegmentSecret` (Kp).
    pub secret: [u8; DIGEST_LEN],
}

impl ContentInfoV2 {
    /// Copies a checked view.
    #[must_use]
    pub fn from_view(view: &ContentInfoV2View<'_>) -> Self {
        let chunks = view
            .chunks()
            .map(|(chunk_type, data)| match chunk_type {
                CHUNK_TYPE_SEGMENTS => ChunkV2::Segments(
                    data.chunks_exact(field::segment::LEN)
                        .map(|d| SegmentV2 {
                            length: be_u32(&d[field::segment::LENGTH]),
                            hash_of_data: d[field::segment::HASH_OF_DATA].try_into().expect("32 bytes"),
                            secret: d[field::segment::SECRET].try_into().expect("32 bytes"),
                        })
                        .collect(),
                ),
                chunk_type => ChunkV2::Unknown {
                    chunk_type,
                    data: data.to_vec(),
                },
            })
            .collect();
        Self {
            start_in_content: view.start_in_content(),
            index_of_first_segment: view.index_of_first_segment(),
            offset_in_first_segment: view.offset_in_first_segment(),
            length_of_range: view.length_of_range(),
            chunks,
        }
    }

    /// Parses version 2.0 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        ContentInfoV2View::new_checked(bytes).map(|view| Self::from_view(&view))
    }

    /// Exact size of [`Self::emit`]'s output.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        field::CHUNKS
            + self
                .chunks
                .iter()
                .map(|chunk| field::chunk::DATA + chunk_data_len(chunk))
                .sum::<usize>()
    }

    /// Appends the wire form to `out` (left as it was on error).
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        super::emit_or_restore(out, |out| self.emit_unchecked(out))
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EmitError> {
        super::encode(|out| self.emit(out))
    }

    fn emit_unchecked(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        out.reserve(self.encoded_len());
        emit_header(
            out,
            self.start_in_content,
            self.index_of_first_segment,
            self.offset_in_first_segment,
            self.length_of_range,
        );
        for chunk in &self.chunks {
            let len =
                u32::try_from(chunk_data_len(chunk)).map_err(|_| EmitError::TooMany("bytes in a chunk"))?;
            match chunk {
                ChunkV2::Segments(segments) => {
                    emit_chunk_header(out, CHUNK_TYPE_SEGMENTS, len);
                    for segment in segments {
                        emit_segment(out, segment);
                    }
                }
                ChunkV2::Unknown { chunk_type, data } => {
                    if *chunk_type == CHUNK_TYPE_SEGMENTS {
                        return Err(EmitError::UnknownChunkType);
                    }
                    emit_chunk_header(out, *chunk_type, len);
                    out.extend_from_slice(data);
                }
            }
        }
        Ok(())
    }

    /// The segments of every chunk of segments, in content order.
    pub fn segments(&self) -> impl Iterator<Item = &SegmentV2> {
        self.chunks.iter().flat_map(|chunk| match chunk {
            ChunkV2::Segments(segments) => segments.as_slice(),
            ChunkV2::Unknown { .. } => &[],
        })
    }
}

/// The fixed header.
pub(crate) fn emit_header(
    out: &mut Vec<u8>,
    start_in_content: u64,
    index_of_first_segment: u64,
    offset_in_first_segment: u32,
    length_of_range: u64,
) {
    out.extend_from_slice(&super::Version::V2.code().to_le_bytes());
    out.push(HASH_ALGO_SHA512_TRUNCATED);
    out.extend_from_slice(&start_in_content.to_be_bytes());
    out.extend_from_slice(&index_of_first_segment.to_be_bytes());
    out.extend_from_slice(&offset_in_first_segment.to_be_bytes());
    out.extend_from_slice(&length_of_range.to_be_bytes());
}

/// A chunk's type and data length.
pub(crate) fn emit_chunk_header(out: &mut Vec<u8>, chunk_type: u8, len: u32) {
    out.push(chunk_type);
    out.extend_from_slice(&len.to_be_bytes());
}

/// One segment description.
pub(crate) fn emit_segment(out: &mut Vec<u8>, segment: &SegmentV2) {
    out.extend_from_slice(&segment.length.to_be_bytes());
    out.extend_from_slice(&segment.hash_of_data);
    out.extend_from_slice(&segment.secret);
}

/// Bytes of the header, a chunk header and a segment description, for writing pieces at
/// their offsets.
pub(crate) const HEADER_LEN: usize = field::CHUNKS;
pub(crate) const CHUNK_HEADER_LEN: usize = field::chunk::DATA;
pub(crate) const SEGMENT_LEN: usize = field::segment::LEN;

fn chunk_data_len(chunk: &ChunkV2) -> usize {
    match chunk {
        ChunkV2::Segments(segments) => segments.len() * field::segment::LEN,
        ChunkV2::Unknown { data, .. } => data.len(),
    }
}

impl SegmentV2 {
    /// Builds a description from digests of the version 2.0 algorithm.
    ///
    /// # Panics
    /// When a digest is not 32 bytes long.
    #[must_use]
    pub fn new(length: u32, hash_of_data: &Digest, secret: &Digest) -> Self {
        Self {
            length,
            hash_of_data: hash_of_data
                .as_bytes()
                .try_into()
                .expect("truncated SHA-512 digest"),
            secret: secret.as_bytes().try_into().expect("truncated SHA-512 digest"),
        }
    }
}
