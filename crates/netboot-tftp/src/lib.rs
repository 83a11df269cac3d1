//! Sans-IO TFTP server. No sockets, no files, no clock: you pass datagrams and `now`, it returns
//! packets to send and the next deadline.
//!
//! - [`wire`]: RRQ/WRQ/DATA/ACK/ERROR/OACK, parsed as borrowed views, built from owned reprs,
//!   options kept in wire order (unknown ones included).
//! - [`request::classify`]: what a datagram on port 69 asks for, with the path already checked
//!   by [`path::normalize`].
//! - [`negotiate`]: RFC 2347/2348/2349/7440 options under the server's [`TftpLimits`].
//! - [`ReadTransfer`]: the per-transfer state machine (windows, block-number rollover,
//!   retransmission), reading the file through a [`BlockSource`] the embedder provides.
//!
//! A driver does, per transfer:
//!
//! ```
//! use std::time::Instant;
//! use netboot_tftp::{negotiate, request::{classify, Incoming}, MemorySource, ReadTransfer, TftpLimits};
//!
//! let rrq = b"\x00\x01boot.ipxe\x00octet\x00blksize\x001468\x00";
//! let Ok(Incoming::Read(read)) = classify(rrq) else { panic!("refused") };
//! let mut source = MemorySource::new(b"#!ipxe\nchain http://x/y\n".to_vec().into());
//! let limits = TftpLimits::default();
//! let agreed = negotiate(&read.request, Some(24), &limits);
//! let mut transfer = ReadTransfer::new(&agreed, 24, &limits);
//! let mut buf = vec![0; transfer.max_packet_len()];
//! let now = Instant::now();
//! let oack_len = transfer.poll_transmit(now, &mut source, &mut buf).unwrap();
//! assert_eq!(&buf[..2], &[0, 6]);
//! transfer.handle_datagram(now, b"\x00\x04\x00\x00");
//! let data_len = transfer.poll_transmit(now, &mut source, &mut buf).unwrap();
//! assert_eq!(data_len, 4 + 24);
//! transfer.handle_datagram(now, b"\x00\x04\x00\x01");
//! assert!(transfer.outcome().is_some());
//! # let _ = oack_len;
//! ```
//!
//! - [`WriteTransfer`]: the receiving side of a write request (uploads), storing the bytes
//!   through a [`BlockSink`]; whether to accept uploads at all is the embedder's decision.

#![deny(missing_docs)]

mod backoff;
mod block;
pub mod netascii;
mod options;
pub mod path;
pub mod request;
mod source;
mod transfer;
pub mod wire;
mod write;

#[doc(hidden)]
pub mod fuzzing;

pub use backoff::Retransmission;
pub use block::{BlockNum, BlockSize, BlockSizeOutOfRange};
pub use options::{negotiate, Mode, Negotiated, TftpLimits};
pub use source::{BlockSource, FileProvider, MemorySource, OpenError};
pub use transfer::{write_error, Outcome, ReadTransfer, PROVISIONAL_WINDOW_BYTES};
pub use wire::{DecodeError, ErrorCode, OwnedPacket, Packet};
pub use write::{BlockSink, WriteOutcome, WriteTransfer};
