//! Sans-IO BranchCache peer protocols: how a client finds peers holding a segment
//! ([MS-PCCRD], [`discovery`]) and fetches encrypted blocks from them ([MS-PCCRR],
//! [`retrieval`]).
//!
//! Segments, their identifiers (HoHoDk), secrets (Kp) and block hashes come from Content
//! Information ([MS-PCCRC], the `netboot-peerdist` crate). A peer answers probes only for
//! segments it holds, and serves a block encrypted with the segment secret, so only clients
//! that got the Content Information from the content server can read it; clients verify
//! every block against its hash.
//!
//! No sockets, files or clocks: the embedder hands datagrams and request bodies in, looks up
//! the segments in its store and sends what comes out. Discovery messages are read with
//! quick-xml under fixed limits (size, depth, element count, no DTD); retrieval messages are
//! a handful of big-endian words parsed by hand, every length checked against the bytes
//! received. Block encryption is RustCrypto's `aes` and `cbc`.
//!
//! What iPXE 2.0.0 sends and accepts, which shaped both modules, is recorded in their module
//! documentation.

#![deny(missing_docs)]

pub mod discovery;
pub mod retrieval;

#[doc(hidden)]
pub mod fuzzing;
