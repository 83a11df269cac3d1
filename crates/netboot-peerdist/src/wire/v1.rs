//! Content Information version 1.0 ([MS-PCCRC] 2.3): little-endian, a header, one
//! description per segment, then one list of block hashes per segment.

use super::{le_u32, le_u64, Block, EmitError, ParseError, Segment};
use crate::digest::{Digest, HashAlgorithm};

/// Byte ranges of the version 1.0 header and of one segment description.
pub(crate) mod field {
    use std::ops::Range;
    pub(crate) const VERSION: Range<usize> = 0..2;
    pub(crate) const HASH_ALGO: Range<usize> = 2..6;
    pub(crate) const OFFSET_IN_FIRST_SEGMENT: Range<usize> = 6..10;
    pub(crate) const READ_BYTES_IN_LAST_SEGMENT: Range<usize> = 10..14;
    pub(crate) const SEGMENT_COUNT: Range<usize> = 14..18;
    pub(crate) const SEGMENTS: usize = 18;

    /// Within a segment description; the hash of data and the secret follow.
    pub(crate) mod segment {
        use std::ops::Range;
        pub(crate) const OFFSET_IN_CONTENT: Range<usize> = 0..8;
        pub(crate) const LENGTH: Range<usize> = 8..12;
        pub(crate) const BLOCK_SIZE: Range<usize> = 12..16;
        pub(crate) const HASH_OF_DATA: usize = 16;
    }

    /// Bytes of the block count before each block list.
    pub(crate) const BLOCK_COUNT_LEN: usize = 4;
}

/// `dwHashAlgo` values of version 1.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum V1HashAlgorithm {
    /// `0x0000800C`.
    Sha256,
    /// `0x0000800D`.
    Sha384,
    /// `0x0000800E`.
    Sha512,
}

impl V1HashAlgorithm {
    /// The wire value.
    #[must_use]
    pub const fn code(self) -> u32 {
        match self {
            Self::Sha256 => 0x800c,
            Self::Sha384 => 0x800d,
            Self::Sha512 => 0x800e,
        }
    }

    /// The algorithm a wire value names.
    #[must_use]
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0x800c => Some(Self::Sha256),
            0x800d => Some(Self::Sha384),
            0x800e => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The hash function.
    #[must_use]
    pub const fn algorithm(self) -> HashAlgorithm {
        match self {
            Self::Sha256 => HashAlgorithm::Sha256,
            Self::Sha384 => HashAlgorithm::Sha384,
            Self::Sha512 => HashAlgorithm::Sha512,
        }
    }
}

/// A checked, borrowed view of version 1.0 Content Information: every length it announces
/// was found in the bytes, and nothing follows the last block list.
#[derive(Debug, Clone, Copy)]
pub struct ContentInfoV1View<'a> {
    bytes: &'a [u8],
    hash: V1HashAlgorithm,
    segment_count: usize,
}

impl<'a> ContentInfoV1View<'a> {
    /// Checks the structure. The version field must be 1.0.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let header = bytes.get(..field::SEGMENTS).ok_or(ParseError::Truncated {
            offset: 0,
            needed: field::SEGMENTS,
            got: bytes.len(),
        })?;
        let version = u16::from_le_bytes([header[field::VERSION.start], header[field::VERSION.end - 1]]);
        if version != super::Version::V1.code() {
            return Err(ParseError::UnsupportedVersion(version));
        }
        let code = le_u32(&header[field::HASH_ALGO]);
        let hash = V1HashAlgorithm::from_code(code).ok_or(ParseError::UnsupportedHash(code))?;
        let segment_count = le_u32(&header[field::SEGMENT_COUNT]) as usize;
        let view = Self {
            bytes,
            hash,
            segment_count,
        };
        // The descriptions alone must fit before anything is trusted about the block lists.
        let descriptions = segment_count
            .checked_mul(view.description_len())
            .filter(|len| *len <= bytes.len() - field::SEGMENTS)
            .ok_or(ParseError::Truncated {
                offset: field::SEGMENTS,
                needed: segment_count.saturating_mul(view.description_len()),
                got: bytes.len() - field::SEGMENTS,
            })?;
        let mut offset = field::SEGMENTS + descriptions;
        for _ in 0..segment_count {
            offset = view.block_list_end(offset)?;
        }
        if offset != bytes.len() {
            return Err(ParseError::TrailingBytes {
                offset,
                len: bytes.len() - offset,
            });
        }
        Ok(view)
    }

    /// The whole structure.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// `dwHashAlgo`.
    #[must_use]
    pub fn hash_algorithm(&self) -> V1HashAlgorithm {
        self.hash
    }

    /// `dwOffsetInFirstSegment`: bytes of the first segment before the content range.
    #[must_use]
    pub fn offset_in_first_segment(&self) -> u32 {
        le_u32(&self.bytes[field::OFFSET_IN_FIRST_SEGMENT])
    }

    /// `dwReadBytesInLastSegment`: bytes of the content range in the last segment; 0 (as IIS
    /// sends for a whole file) means all of it.
    #[must_use]
    pub fn read_bytes_in_last_segment(&self) -> u32 {
        le_u32(&self.bytes[field::READ_BYTES_IN_LAST_SEGMENT])
    }

    /// `cSegments`.
    #[must_use]
    pub fn segment_count(&self) -> usize {
        self.segment_count
    }

    /// The segments with their block lists, in content order.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'a>> + 'a {
        let view = *self;
        let mut blocks_at = field::SEGMENTS + self.segment_count * self.description_len();
        (0..self.segment_count).map(move |index| {
            let description = view.description(index);
            let digest_len = view.digest_len();
            let count = le_u32(&view.bytes[blocks_at..blocks_at + field::BLOCK_COUNT_LEN]) as usize;
            let hashes_at = blocks_at + field::BLOCK_COUNT_LEN;
            let hashes = &view.bytes[hashes_at..hashes_at + count * digest_len];
            blocks_at = hashes_at + count * digest_len;
            let start = le_u64(&description[field::segment::OFFSET_IN_CONTENT]);
            let length = le_u32(&description[field::segment::LENGTH]);
            let block_size = le_u32(&description[field::segment::BLOCK_SIZE]);
            // The first segment lists only the blocks that reach into the content range.
            let first_block = if index == 0 && block_size > 0 {
                u64::from(view.offset_in_first_segment() / block_size)
            } else {
                0
            };
            let hod = field::segment::HASH_OF_DATA;
            Segment {
                algorithm: view.hash.algorithm(),
                index: index as u64,
                range: start..start.saturating_add(u64::from(length)),
                length,
                block_size: u64::from(block_size),
                hash_of_data: &description[hod..hod + digest_len],
                secret: &description[hod + digest_len..hod + 2 * digest_len],
                first_block,
                block_hashes: hashes,
            }
        })
    }

    fn digest_len(&self) -> usize {
        self.hash.algorithm().digest_len()
    }

    fn description_len(&self) -> usize {
        field::segment::HASH_OF_DATA + 2 * self.digest_len()
    }

    fn description(&self, index: usize) -> &'a [u8] {
        let start = field::SEGMENTS + index * self.description_len();
        &self.bytes[start..start + self.description_len()]
    }

    /// Where the block list starting at `offset` ends, if it is all there.
    fn block_list_end(&self, offset: usize) -> Result<usize, ParseError> {
        let rest = &self.bytes[offset..];
        let count = rest.get(..field::BLOCK_COUNT_LEN).ok_or(ParseError::Truncated {
            offset,
            needed: field::BLOCK_COUNT_LEN,
            got: rest.len(),
        })?;
        let count = le_u32(count) as usize;
        let needed = count.saturating_mul(self.digest_len());
        if needed > rest.len() - field::BLOCK_COUNT_LEN {
            return Err(ParseError::Truncated {
                offset: offset + field::BLOCK_COUNT_LEN,
                needed,
                got: rest.len() - field::BLOCK_COUNT_LEN,
            });
        }
        Ok(offset + field::BLOCK_COUNT_LEN + needed)
    }
}

/// Version 1.0 Content Information, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentInfoV1 {
    /// `dwHashAlgo`.
    pub hash_algorithm: V1HashAlgorithm,
    /// `dwOffsetInFirstSegment`.
    pub offset_in_first_segment: u32,
    /// `dwReadBytesInLastSegment` (0: the whole last segment).
    pub read_bytes_in_last_segment: u32,
    /// The segments, in content order.
    pub segments: Vec<SegmentV1>,
}

/// One segment of version 1.0: its description and its block hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentV1 {
    /// `ullOffsetInContent`.
    pub offset_in_content: u64,
    /// `cbSegment` (32 MiB except for the last segment).
    pub length: u32,
    /// `cbBlockSize` (64 KiB).
    pub block_size: u32,
    /// `SegmentHashOfData` (HoD): the hash of the block hashes of the whole segment.
    pub hash_of_data: Digest,
    /// `SegmentSecret` (Kp).
    pub secret: Digest,
    /// `BlockHashes` of the blocks that intersect the content range.
    pub block_hashes: Vec<Digest>,
}

impl ContentInfoV1 {
    /// Copies a checked view.
    #[must_use]
    pub fn from_view(view: &ContentInfoV1View<'_>) -> Self {
        let segments = view
            .segments()
            .map(|segment| SegmentV1 {
                offset_in_content: segment.range.start,
                length: segment.length,
                block_size: segment.block_size as u32,
                hash_of_data: digest(segment.hash_of_data),
                secret: digest(segment.secret),
                block_hashes: segment.blocks().map(|b: Block<'_>| digest(b.hash)).collect(),
            })
            .collect();
        Self {
            hash_algorithm: view.hash_algorithm(),
            offset_in_first_segment: view.offset_in_first_segment(),
            read_bytes_in_last_segment: view.read_bytes_in_last_segment(),
            segments,
        }
    }

    /// Parses version 1.0 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        ContentInfoV1View::new_checked(bytes).map(|view| Self::from_view(&view))
    }

    /// Exact size of [`Self::emit`]'s output.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        let digest_len = self.hash_algorithm.algorithm().digest_len();
        let description = field::segment::HASH_OF_DATA + 2 * digest_len;
        field::SEGMENTS
            + self
                .segments
                .iter()
                .map(|s| description + field::BLOCK_COUNT_LEN + s.block_hashes.len() * digest_len)
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
        let digest_len = self.hash_algorithm.algorithm().digest_len();
        let count = |n: usize, what| u32::try_from(n).map_err(|_| EmitError::TooMany(what));
        let check = |d: &Digest| {
            if d.len() == digest_len {
                Ok(())
            } else {
                Err(EmitError::DigestLength {
                    expected: digest_len,
                    got: d.len(),
                })
            }
        };
        out.reserve(self.encoded_len());
        let segment_count = count(self.segments.len(), "segments")?;
        emit_header(
            out,
            self.hash_algorithm,
            self.offset_in_first_segment,
            self.read_bytes_in_last_segment,
            segment_count,
        );
        for segment in &self.segments {
            check(&segment.hash_of_data)?;
            check(&segment.secret)?;
            emit_description(out, segment);
        }
        for segment in &self.segments {
            out.extend_from_slice(&count(segment.block_hashes.len(), "blocks in a segment")?.to_le_bytes());
            for hash in &segment.block_hashes {
                check(hash)?;
                out.extend_from_slice(hash.as_bytes());
            }
        }
        Ok(())
    }
}

/// The fixed header.
pub(crate) fn emit_header(
    out: &mut Vec<u8>,
    hash: V1HashAlgorithm,
    offset_in_first_segment: u32,
    read_bytes_in_last_segment: u32,
    segment_count: u32,
) {
    out.extend_from_slice(&super::Version::V1.code().to_le_bytes());
    out.extend_from_slice(&hash.code().to_le_bytes());
    out.extend_from_slice(&offset_in_first_segment.to_le_bytes());
    out.extend_from_slice(&read_bytes_in_last_segment.to_le_bytes());
    out.extend_from_slice(&segment_count.to_le_bytes());
}

/// One segment description (digest lengths already checked).
pub(crate) fn emit_description(out: &mut Vec<u8>, segment: &SegmentV1) {
    out.extend_from_slice(&segment.offset_in_content.to_le_bytes());
    out.extend_from_slice(&segment.length.to_le_bytes());
    out.extend_from_slice(&segment.block_size.to_le_bytes());
    out.extend_from_slice(segment.hash_of_data.as_bytes());
    out.extend_from_slice(segment.secret.as_bytes());
}

/// Bytes of the header, of one segment description and of one block list's count with
/// SHA-256, for writing pieces at their offsets.
pub(crate) const HEADER_LEN: usize = field::SEGMENTS;
pub(crate) const SHA256_DESCRIPTION_LEN: usize = field::segment::HASH_OF_DATA + 2 * 32;
pub(crate) const BLOCK_COUNT_LEN: usize = field::BLOCK_COUNT_LEN;

fn digest(bytes: &[u8]) -> Digest {
    Digest::from_slice(bytes).expect("digest lengths come from the hash algorithm")
}
