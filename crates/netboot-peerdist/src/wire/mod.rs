//! Content Information ([MS-PCCRC] sections 2.3 and 2.4), both versions: checked borrowed
//! views ([`ContentInfoView`]) that read fields in place and walk segments and blocks
//! without allocating, and owned representations ([`ContentInfo`]) that re-encode to exactly
//! the bytes they were parsed from.
//!
//! ```
//! use netboot_peerdist::{ContentInfoBuilder, ContentInfoView, ServerPassphrase, Version};
//! let passphrase = ServerPassphrase::new(vec![9; 32]).unwrap();
//! let mut builder = ContentInfoBuilder::new(&passphrase);
//! builder.update(&vec![0x5a; 200_000]);
//! let (v1, v2) = builder.finish();
//! let bytes = v2.to_bytes().unwrap();
//! let view = ContentInfoView::parse(&bytes).unwrap();
//! assert_eq!(view.version(), Version::V2);
//! assert_eq!(view.content_range(), 0..200_000);
//! assert_eq!(view.segments().count(), 2); // 128 KiB segments
//! assert_eq!(v1.to_bytes().unwrap()[..2], [0x00, 0x01]);
//! ```

pub(crate) mod v1;
pub(crate) mod v2;

use std::fmt;
use std::ops::Range;

pub use v1::{ContentInfoV1, ContentInfoV1View, SegmentV1, V1HashAlgorithm};
pub use v2::{
    ChunkV2, ContentInfoV2, ContentInfoV2View, SegmentV2, CHUNK_TYPE_SEGMENTS, HASH_ALGO_SHA512_TRUNCATED,
    MAX_SEGMENT_LEN,
};

use crate::digest::{Digest, HashAlgorithm};
use crate::secret::segment_id;

/// A Content Information version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// 1.0: SHA-2, 32 MiB segments of 64 KiB blocks, little-endian.
    V1,
    /// 2.0: truncated SHA-512, segments of at most 128 KiB, big-endian.
    V2,
}

impl Version {
    /// Every version, oldest first.
    pub const ALL: [Self; 2] = [Self::V1, Self::V2];

    /// The 16-bit version field as read little-endian (low byte minor, high byte major):
    /// `0x0100` and `0x0200`.
    #[must_use]
    pub const fn code(self) -> u16 {
        match self {
            Self::V1 => 0x0100,
            Self::V2 => 0x0200,
        }
    }

    /// `(major, minor)`.
    #[must_use]
    pub const fn number(self) -> (u8, u8) {
        match self {
            Self::V1 => (1, 0),
            Self::V2 => (2, 0),
        }
    }

    /// The version with this `(major, minor)`.
    #[must_use]
    pub const fn from_number(major: u8, minor: u8) -> Option<Self> {
        match (major, minor) {
            (1, 0) => Some(Self::V1),
            (2, 0) => Some(Self::V2),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = self.number();
        write!(f, "{major}.{minor}")
    }
}

/// Bytes that are not Content Information this crate understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A structure is cut short.
    #[error("truncated at byte {offset}: needed {needed} bytes, got {got}")]
    Truncated {
        /// Where the structure starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left there.
        got: usize,
    },
    /// The version field is neither 1.0 nor 2.0.
    #[error("unsupported Content Information version {0:#06x}")]
    UnsupportedVersion(u16),
    /// A hash algorithm the version does not define.
    #[error("unsupported hash algorithm {0:#x}")]
    UnsupportedHash(u32),
    /// Bytes after the last block list of version 1.0.
    #[error("{len} bytes after the end of the Content Information at byte {offset}")]
    TrailingBytes {
        /// Where they start.
        offset: usize,
        /// How many.
        len: usize,
    },
    /// A version 2.0 chunk of segments whose length is not a whole number of descriptions.
    #[error("chunk at byte {offset} holds {len} bytes, not whole 68-byte segment descriptions")]
    PartialSegment {
        /// Where the chunk starts.
        offset: usize,
        /// Its data length.
        len: usize,
    },
}

/// An owned representation that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// A digest whose length does not match the hash algorithm.
    #[error("a digest has {got} bytes where the hash algorithm makes {expected}")]
    DigestLength {
        /// The algorithm's digest length.
        expected: usize,
        /// The digest's.
        got: usize,
    },
    /// A count that does not fit its 32-bit field.
    #[error("too many {0} for a 32-bit field")]
    TooMany(&'static str),
    /// [`ChunkV2::Unknown`] with the type of a chunk of segments.
    #[error("an unknown chunk cannot have the segment chunk type")]
    UnknownChunkType,
}

/// Content Information of either version, checked and borrowed.
#[derive(Debug, Clone, Copy)]
pub enum ContentInfoView<'a> {
    /// Version 1.0.
    V1(ContentInfoV1View<'a>),
    /// Version 2.0.
    V2(ContentInfoV2View<'a>),
}

impl<'a> ContentInfoView<'a> {
    /// Checks `bytes`, dispatching on the version field.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let version =
            bytes
                .get(..2)
                .map(|v| u16::from_le_bytes([v[0], v[1]]))
                .ok_or(ParseError::Truncated {
                    offset: 0,
                    needed: 2,
                    got: bytes.len(),
                })?;
        if version == Version::V1.code() {
            ContentInfoV1View::new_checked(bytes).map(Self::V1)
        } else if version == Version::V2.code() {
            ContentInfoV2View::new_checked(bytes).map(Self::V2)
        } else {
            Err(ParseError::UnsupportedVersion(version))
        }
    }

    /// The version.
    #[must_use]
    pub fn version(&self) -> Version {
        match self {
            Self::V1(_) => Version::V1,
            Self::V2(_) => Version::V2,
        }
    }

    /// The hash algorithm of block hashes, HoD, Kp and HoHoDk.
    #[must_use]
    pub fn hash_algorithm(&self) -> HashAlgorithm {
        match self {
            Self::V1(v1) => v1.hash_algorithm().algorithm(),
            Self::V2(_) => HashAlgorithm::Sha512Truncated,
        }
    }

    /// The segments, in content order.
    pub fn segments(&self) -> Box<dyn Iterator<Item = Segment<'a>> + 'a> {
        match self {
            Self::V1(v1) => Box::new(v1.segments()),
            Self::V2(v2) => Box::new(v2.segments()),
        }
    }

    /// The bytes of the content this Content Information describes (the segments may reach
    /// beyond it at either end).
    ///
    /// Version 1.0: from the first segment's offset plus `dwOffsetInFirstSegment` to the last
    /// segment's offset plus `dwReadBytesInLastSegment` (plus the offset in the first segment
    /// when there is only one), or to the end of the last segment when that field is 0.
    /// Version 2.0: `ullLengthOfRange` bytes from `ullStartInContent +
    /// dwOffsetInFirstSegment`, or to the end of the last segment when it is 0.
    #[must_use]
    pub fn content_range(&self) -> Range<u64> {
        let (first, last) = self.segments().fold((None, None), |(first, _), s| {
            (first.or(Some(s.range())), Some(s.range()))
        });
        match self {
            Self::V1(v1) => {
                let (Some(first), Some(last)) = (first, last) else {
                    return 0..0;
                };
                let start = first
                    .start
                    .saturating_add(u64::from(v1.offset_in_first_segment()));
                let end = match v1.read_bytes_in_last_segment() {
                    0 => last.end,
                    read if v1.segment_count() == 1 => start.saturating_add(u64::from(read)),
                    read => last.start.saturating_add(u64::from(read)),
                };
                start..end.max(start)
            }
            Self::V2(v2) => {
                let start = v2
                    .start_in_content()
                    .saturating_add(u64::from(v2.offset_in_first_segment()));
                let end = match v2.length_of_range() {
                    0 => last.map_or(start, |last| last.end),
                    len => start.saturating_add(len),
                };
                start..end.max(start)
            }
        }
    }
}

/// Why content does not match its Content Information.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A block's bytes do not have the block's hash.
    #[error("block {block} of segment {segment} does not match its hash")]
    Mismatch {
        /// The segment's index.
        segment: u64,
        /// The block's index in the segment.
        block: u64,
    },
    /// The blocks do not cover the content range without gaps or overlaps, or reach past the
    /// content given.
    #[error("the blocks do not cover bytes {start}..{end} exactly")]
    Coverage {
        /// Where the coverage breaks off.
        start: u64,
        /// Where it should have ended.
        end: u64,
    },
}

impl ContentInfoView<'_> {
    /// Checks `content`, the whole resource from offset 0, against every listed block, and
    /// that the blocks cover the content range exactly once. What a client does after
    /// fetching every block, done in one go.
    pub fn verify(&self, content: &[u8]) -> Result<(), VerifyError> {
        let range = self.content_range();
        let mut covered = range.start;
        for segment in self.segments() {
            for block in segment.blocks() {
                let data = usize::try_from(block.range.start)
                    .ok()
                    .zip(usize::try_from(block.range.end).ok())
                    .and_then(|(start, end)| content.get(start..end));
                let (Some(data), true) = (data, block.range.start <= covered) else {
                    return Err(VerifyError::Coverage {
                        start: covered,
                        end: range.end,
                    });
                };
                if !segment.verify(&block, data) {
                    return Err(VerifyError::Mismatch {
                        segment: segment.index(),
                        block: block.index,
                    });
                }
                covered = covered.max(block.range.end);
            }
        }
        if covered < range.end {
            return Err(VerifyError::Coverage {
                start: covered,
                end: range.end,
            });
        }
        Ok(())
    }
}

/// One segment of either version, as a client sees it: where it lies in the content, its
/// keys, and the blocks to fetch and verify.
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    pub(crate) algorithm: HashAlgorithm,
    pub(crate) index: u64,
    /// Clipped at `u64::MAX`; `length` is the field as sent.
    pub(crate) range: Range<u64>,
    pub(crate) length: u32,
    pub(crate) block_size: u64,
    pub(crate) hash_of_data: &'a [u8],
    pub(crate) secret: &'a [u8],
    /// Index within the segment of the first block listed.
    pub(crate) first_block: u64,
    pub(crate) block_hashes: &'a [u8],
}

impl<'a> Segment<'a> {
    /// Position among the content's segments (version 2.0 counts from
    /// `ullIndexOfFirstSegment`).
    #[must_use]
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The segment's bytes in the content.
    #[must_use]
    pub fn range(&self) -> Range<u64> {
        self.range.clone()
    }

    /// HoD.
    #[must_use]
    pub fn hash_of_data(&self) -> &'a [u8] {
        self.hash_of_data
    }

    /// Kp, the segment secret (also the key peers encrypt the segment's blocks with).
    #[must_use]
    pub fn secret(&self) -> &'a [u8] {
        self.secret
    }

    /// HoHoDk, the segment identifier peers are asked for.
    #[must_use]
    pub fn id(&self) -> Digest {
        segment_id(self.algorithm, self.secret, self.hash_of_data)
    }

    /// The hash algorithm.
    #[must_use]
    pub fn hash_algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// Number of blocks listed (version 2.0: one, the whole segment).
    #[must_use]
    pub fn block_count(&self) -> usize {
        self.block_hashes.len() / self.algorithm.digest_len()
    }

    /// The listed blocks with their bytes in the content (the last one of a segment may be
    /// short) and their hashes.
    pub fn blocks(&self) -> impl Iterator<Item = Block<'a>> + 'a {
        let (segment, block_size, first) = (self.range.clone(), self.block_size.max(1), self.first_block);
        self.block_hashes
            .chunks_exact(self.algorithm.digest_len())
            .enumerate()
            .map(move |(i, hash)| {
                let index = first.saturating_add(i as u64);
                let start = segment.start.saturating_add(index.saturating_mul(block_size));
                Block {
                    index,
                    range: start..start.saturating_add(block_size).min(segment.end).max(start),
                    hash,
                }
            })
    }

    /// Whether `data` is the block whose hash is `block.hash`.
    #[must_use]
    pub fn verify(&self, block: &Block<'_>, data: &[u8]) -> bool {
        self.algorithm.hash(data).as_bytes() == block.hash
    }
}

/// One block of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block<'a> {
    /// Index within its segment.
    pub index: u64,
    /// Its bytes in the content.
    pub range: Range<u64>,
    /// Its hash.
    pub hash: &'a [u8],
}

/// Content Information of either version, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentInfo {
    /// Version 1.0.
    V1(ContentInfoV1),
    /// Version 2.0.
    V2(ContentInfoV2),
}

impl ContentInfo {
    /// Parses either version.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        Ok(match ContentInfoView::parse(bytes)? {
            ContentInfoView::V1(v1) => Self::V1(ContentInfoV1::from_view(&v1)),
            ContentInfoView::V2(v2) => Self::V2(ContentInfoV2::from_view(&v2)),
        })
    }

    /// The version.
    #[must_use]
    pub fn version(&self) -> Version {
        match self {
            Self::V1(_) => Version::V1,
            Self::V2(_) => Version::V2,
        }
    }

    /// Appends the wire form to `out` (left as it was on error).
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        match self {
            Self::V1(v1) => v1.emit(out),
            Self::V2(v2) => v2.emit(out),
        }
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EmitError> {
        encode(|out| self.emit(out))
    }
}

impl From<ContentInfoV1> for ContentInfo {
    fn from(v1: ContentInfoV1) -> Self {
        Self::V1(v1)
    }
}

impl From<ContentInfoV2> for ContentInfo {
    fn from(v2: ContentInfoV2) -> Self {
        Self::V2(v2)
    }
}

/// Runs `emit`, leaving `out` as it was when it fails.
fn emit_or_restore(
    out: &mut Vec<u8>,
    emit: impl FnOnce(&mut Vec<u8>) -> Result<(), EmitError>,
) -> Result<(), EmitError> {
    let before = out.len();
    let result = emit(out);
    if result.is_err() {
        out.truncate(before);
    }
    result
}

/// The bytes `emit` appends to an empty buffer.
fn encode(emit: impl FnOnce(&mut Vec<u8>) -> Result<(), EmitError>) -> Result<Vec<u8>, EmitError> {
    let mut out = Vec::new();
    emit(&mut out)?;
    Ok(out)
}

fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes.try_into().expect("4-byte field"))
}

fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8-byte field"))
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes.try_into().expect("4-byte field"))
}

fn be_u64(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().expect("8-byte field"))
}
