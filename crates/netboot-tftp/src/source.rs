//! Where file bytes come from: the embedder opens files (or generates them) and hands the
//! transfer a [`BlockSource`]; the protocol crate never touches the filesystem.

use std::io;
use std::sync::Arc;

use crate::path::SafePath;
use crate::ErrorCode;

/// Random-access bytes of one file being served.
///
/// Retransmissions read the same range again, so `read_at` must be repeatable.
pub trait BlockSource: Send {
    /// Total length in bytes, fixed for the transfer.
    fn len(&self) -> u64;

    /// Whether the file is empty (a transfer of one empty block).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` with the bytes at `offset`, returning how many were read; fewer than
    /// `buf.len()` only at the end of the file.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// Bytes already in memory, shared between transfers (the small-file cache, generated files).
///
/// ```
/// use netboot_tftp::{BlockSource, MemorySource};
/// let mut source = MemorySource::new(b"hello".to_vec().into());
/// let mut buf = [0u8; 4];
/// assert_eq!(source.read_at(3, &mut buf).unwrap(), 2);
/// assert_eq!(&buf[..2], b"lo");
/// ```
#[derive(Debug, Clone)]
pub struct MemorySource {
    bytes: Arc<[u8]>,
}

impl MemorySource {
    /// Serves `bytes`.
    #[must_use]
    pub fn new(bytes: Arc<[u8]>) -> Self {
        Self { bytes }
    }
}

impl BlockSource for MemorySource {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        let available = &self.bytes[start..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        Ok(n)
    }
}

/// Why a file could not be opened; each maps to the TFTP error a client understands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// No such file (or it is a directory).
    #[error("file not found")]
    NotFound,
    /// The file exists but may not be served: permissions, or it resolves outside the root.
    #[error("access violation")]
    AccessDenied,
    /// Too large for the requested mode (netascii conversion happens in memory).
    #[error("file too large for {0}")]
    TooLarge(&'static str),
    /// Any other I/O failure.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

impl OpenError {
    /// The TFTP error code and the message sent to the client. The message never carries
    /// server paths.
    #[must_use]
    pub fn to_tftp(&self) -> (ErrorCode, &'static str) {
        match self {
            Self::NotFound => (ErrorCode::FileNotFound, "File not found"),
            Self::AccessDenied => (ErrorCode::AccessViolation, "Access violation"),
            Self::TooLarge(_) => (ErrorCode::NotDefined, "File too large for netascii"),
            Self::Io(_) => (ErrorCode::NotDefined, "Read error"),
        }
    }
}

/// Opens files by their normalised path; implement it to serve generated or virtual files.
pub trait FileProvider: Send + Sync {
    /// The source of one opened file.
    type Source: BlockSource;

    /// Opens `path` for reading.
    fn open(&self, path: &SafePath) -> Result<Self::Source, OpenError>;
}
