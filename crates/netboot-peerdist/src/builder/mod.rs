//! Computing Content Information in one pass over content passed in pieces of any size; the
//! content itself is never held.
//!
//! - [`ContentInfoEncoder`], for content of known length (a file): writes each piece of both
//!   versions' wire form at its final offset as soon as it is known, so its memory is a few
//!   kilobytes whatever the content's size.
//! - [`ContentInfoBuilder`] ([`V1Builder`], [`V2Builder`]), for content of any length: the
//!   owned representations, which hold every hash (about 0.1 % of the content's size).
//!
//! Both compute the same thing (the tests check that they agree byte for byte).

mod encoder;
mod hashing;
mod owned;

pub use encoder::{ContentInfoEncoder, LengthError};
pub use owned::{ContentInfoBuilder, V1Builder, V2Builder};

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
