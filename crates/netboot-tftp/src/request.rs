//! First contact: turning a datagram that arrived on the listening port into a request to serve,
//! a refusal to send back, or nothing.

use crate::options::Mode;
use crate::path::{normalize, PathError, SafePath};
use crate::wire::{ErrorCode, Packet, Request};

/// A read request worth opening a file for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest<'a> {
    /// Where the file is below the root.
    pub path: SafePath,
    /// Octet or netascii.
    pub mode: Mode,
    /// The request as sent, for option negotiation.
    pub request: Request<'a>,
}

/// A write request whose name is acceptable; whether uploads are allowed is the embedder's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRequest<'a> {
    /// Where the file would go below the upload directory.
    pub path: SafePath,
    /// Octet or netascii.
    pub mode: Mode,
    /// The request as sent.
    pub request: Request<'a>,
}

/// What a datagram on the listening port asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// Send a file.
    Read(ReadRequest<'a>),
    /// Receive a file.
    Write(WriteRequest<'a>),
}

/// Why a datagram on the listening port gets no transfer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Not a TFTP packet, or not a request: dropped silently, since answering spoofed junk
    /// would make the server a reflector.
    #[error("not a request: {0}")]
    NotARequest(String),
    /// A mode other than octet and netascii (`mail` is obsolete).
    #[error("unsupported transfer mode {0:?}")]
    UnsupportedMode(String),
    /// A read request for a hidden name (a component starting with `.`). Answered like a
    /// missing file, so the answer says nothing about what exists under the root.
    #[error("hidden file {0:?} not served")]
    HiddenFile(String),
    /// The filename is refused.
    #[error("refused file name {name:?}: {reason}")]
    BadPath {
        /// The name as sent, lossily decoded for logs.
        name: String,
        /// Which rule it broke.
        reason: PathError,
    },
}

impl Refusal {
    /// The ERROR to send back, or `None` to stay silent.
    #[must_use]
    pub fn reply(&self) -> Option<(ErrorCode, &'static str)> {
        match self {
            Self::NotARequest(_) => None,
            Self::UnsupportedMode(_) => Some((ErrorCode::IllegalOperation, "Unsupported transfer mode")),
            Self::HiddenFile(_) => Some(crate::OpenError::NotFound.to_tftp()),
            Self::BadPath { .. } => Some((ErrorCode::AccessViolation, "Access violation")),
        }
    }
}

/// Classifies a datagram received on the listening port.
///
/// ```
/// use netboot_tftp::request::{classify, Incoming};
/// let Ok(Incoming::Read(read)) = classify(b"\x00\x01\\Boot\\BCD\x00octet\x00") else { panic!() };
/// assert_eq!(read.path.to_string(), "Boot/BCD");
/// assert!(classify(b"\x00\x01../x\x00octet\x00").unwrap_err().reply().is_some());
/// assert!(classify(b"\x00\x04\x00\x01").unwrap_err().reply().is_none());
/// // A hidden name is answered exactly like a file that does not exist.
/// assert_eq!(
///     classify(b"\x00\x01.git/config\x00octet\x00").unwrap_err().reply(),
///     Some((netboot_tftp::ErrorCode::FileNotFound, "File not found"))
/// );
/// ```
pub fn classify(datagram: &[u8]) -> Result<Incoming<'_>, Refusal> {
    let packet = Packet::parse(datagram).map_err(|e| Refusal::NotARequest(e.to_string()))?;
    let (request, is_read) = match packet {
        Packet::Rrq(request) => (request, true),
        Packet::Wrq(request) => (request, false),
        other => {
            return Err(Refusal::NotARequest(format!(
                "{:?} on the request port",
                opcode_name(&other)
            )))
        }
    };
    let mode = Mode::parse(request.mode)
        .ok_or_else(|| Refusal::UnsupportedMode(String::from_utf8_lossy(request.mode).into_owned()))?;
    let path = normalize(request.filename).map_err(|reason| {
        let name = String::from_utf8_lossy(request.filename).into_owned();
        match reason {
            PathError::Hidden if is_read => Refusal::HiddenFile(name),
            reason => Refusal::BadPath { name, reason },
        }
    })?;
    Ok(if is_read {
        Incoming::Read(ReadRequest { path, mode, request })
    } else {
        Incoming::Write(WriteRequest { path, mode, request })
    })
}

fn opcode_name(packet: &Packet<'_>) -> &'static str {
    match packet {
        Packet::Rrq(_) => "RRQ",
        Packet::Wrq(_) => "WRQ",
        Packet::Data { .. } => "DATA",
        Packet::Ack { .. } => "ACK",
        Packet::Error { .. } => "ERROR",
        Packet::Oack(_) => "OACK",
    }
}
