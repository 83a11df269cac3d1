//! Sans-IO BranchCache Content Information ([MS-PCCRC]) and the PeerDist HTTP extension
//! ([MS-PCCRTP]): what a content server sends instead of a file's bytes so that clients fetch
//! the file from peers in their branch and verify every block.
//!
//! - [`wire`]: Content Information 1.0 (SHA-256, 32 MiB segments of 64 KiB blocks,
//!   little-endian) and 2.0 (truncated SHA-512, segments of up to 128 KiB in chunks,
//!   big-endian): checked borrowed views with segment and block walks, and owned
//!   representations that re-encode byte for byte.
//! - [`ContentInfoEncoder`]: both versions from one pass over content of known length (a
//!   file), written out piece by piece at final offsets in memory that does not grow with the
//!   content; [`ContentInfoBuilder`]: the owned representations, for content of any length.
//! - [`ServerPassphrase`], [`ServerSecret`], [`segment_id`]: the server secret `Ks`, segment
//!   secrets `Kp = HMAC(Ks, HoD)` and segment identifiers `HoHoDk`.
//! - [`http`]: which requests want Content Information, the version to answer, the headers.
//!
//! No files, sockets or clocks: the embedder reads the content and hands the bytes over.
//! Hashing is RustCrypto's `sha2` (SHA-NI and AVX2 code paths chosen at run time) and
//! `hmac`; the wire format is parsed by hand because it is a handful of fixed-width fields
//! whose every offset is named in `wire::v1::field` and `wire::v2::field`.
//!
//! The test vectors in `tests/golden.rs` are the Content Information IIS sent for its logo,
//! with the server passphrase that produced it, as captured in iPXE's `pccrc_test.c`.

#![deny(missing_docs)]

mod builder;
mod digest;
pub mod http;
mod secret;
pub mod wire;

#[doc(hidden)]
pub mod fuzzing;

pub use builder::{
    ContentInfoBuilder, ContentInfoEncoder, LengthError, V1Builder, V2Builder, V1_BLOCK_LEN, V1_SEGMENT_LEN,
    V2_SEGMENTS_PER_CHUNK, V2_SEGMENT_LEN,
};
pub use digest::{Digest, HashAlgorithm, Hasher, MAX_DIGEST_LEN};
pub use secret::{segment_id, PassphraseLengthError, ServerPassphrase, ServerSecret, SEGMENT_ID_MAGIC};
pub use wire::{ContentInfo, ContentInfoView, ParseError, VerifyError, Version};
