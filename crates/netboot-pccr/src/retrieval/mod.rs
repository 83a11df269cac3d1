//! Block retrieval ([MS-PCCRR]): the binary messages a client POSTs to a peer's
//! `/116B50EB-ECE2-41ac-8429-9F9E963361B7/` over HTTP and the peer's answers, and the
//! encryption of blocks with the segment secret.
//!
//! Every field is a big-endian 32-bit word; variable-length fields (segment identifier, block,
//! VRF data, IV) carry their length first and are padded with zeros to a 4-byte boundary when
//! more follows. A request is a 16-byte message header and the message; a response has a
//! 4-byte transport header (the length of the rest) before the message header.
//!
//! iPXE sends only `MSG_GETBLKS` for one block with `AES_128` (no negotiation, no block
//! list) and accepts `MSG_BLK` in plaintext or any AES key length: the key is the first 16,
//! 24 or 32 bytes of the segment secret Kp, the IV follows the block, and only the block's
//! own bytes of the decrypted data are hashed, so padding after them is ignored. This module
//! pads with PKCS#7 (what Windows' CNG and .NET produce for AES-CBC) and answers all
//! message types of version 1.0 so Windows clients can list blocks too.
//!
//! A peer never sends a block in plaintext here: segment identifiers are public (they travel
//! in multicast probes), and the segment secret is what limits a block to clients that got
//! the Content Information from the server. A request for `NoEncryption` is answered as if
//! the block were absent, and the client falls back to the server.
//!
//! ```
//! use netboot_pccr::retrieval::{plan, seal_block, block_response, CryptoAlgorithm, Plan, Request, Response, ResponseBody};
//! let request = Request::get_blocks(CryptoAlgorithm::Aes128, vec![7; 32], 0);
//! let Plan::Block { crypto, segment_id, index } = plan(&Request::parse(&request.to_bytes()).unwrap()) else { panic!() };
//! let secret = [9u8; 32];
//! let sealed = seal_block(crypto, &secret, [1; 16], b"block bytes").unwrap();
//! let bytes = block_response(crypto, segment_id, index, 0, Some(sealed)).to_bytes();
//! let ResponseBody::Block { block, iv, .. } = Response::parse(&bytes).unwrap().body else { panic!() };
//! let plain = netboot_pccr::retrieval::open_block(crypto, &secret, &iv, &block, 11).unwrap();
//! assert_eq!(plain, b"block bytes");
//! ```

mod crypto;
mod messages;
mod server;

pub use crypto::{open_block, seal_block, CryptoError, SealedBlock, IV_LEN};
pub use messages::{BlockRange, Request, RequestBody, Response, ResponseBody};
pub use server::{block_list_response, block_response, negotiate_response, plan, Plan};

/// The path clients POST retrieval requests to.
pub const MAGIC_PATH: &str = "/116B50EB-ECE2-41ac-8429-9F9E963361B7/";
/// Bytes of the message header.
pub const HEADER_LEN: usize = 16;
/// Bytes of the transport header before a response's message header.
pub const TRANSPORT_HEADER_LEN: usize = 4;
/// Largest request body accepted (a request names one segment and some ranges).
pub const MAX_REQUEST_LEN: usize = 64 * 1024;
/// Longest segment identifier accepted (SHA-512).
pub const MAX_SEGMENT_ID_LEN: usize = 64;
/// Most block ranges read from or written to one message.
pub const MAX_RANGES: usize = 1024;

/// A protocol version as messages carry it: the minor number in the first 16 bits, the major
/// in the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    /// Major.
    pub major: u16,
    /// Minor.
    pub minor: u16,
}

impl ProtocolVersion {
    /// 1.0: every message but the segment lists.
    pub const V1_0: Self = Self { major: 1, minor: 0 };
    /// 2.0: adds `MSG_GETSEGLIST` and `MSG_SEGLIST`.
    pub const V2_0: Self = Self { major: 2, minor: 0 };

    fn from_word(word: u32) -> Self {
        Self {
            minor: (word >> 16) as u16,
            major: word as u16,
        }
    }

    fn word(self) -> u32 {
        (u32::from(self.minor) << 16) | u32::from(self.major)
    }
}

/// `MsgType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `MSG_NEGO_REQ` (0).
    NegotiateRequest,
    /// `MSG_NEGO_RESP` (1).
    NegotiateResponse,
    /// `MSG_GETBLKLIST` (2).
    GetBlockList,
    /// `MSG_GETBLKS` (3).
    GetBlocks,
    /// `MSG_BLKLIST` (4).
    BlockList,
    /// `MSG_BLK` (5).
    Block,
    /// `MSG_GETSEGLIST` (6, version 2.0).
    GetSegmentList,
    /// `MSG_SEGLIST` (7, version 2.0).
    SegmentList,
    /// Any other value, kept.
    Unknown(u32),
}

impl MessageType {
    /// The wire value.
    pub fn code(self) -> u32 {
        match self {
            Self::NegotiateRequest => 0,
            Self::NegotiateResponse => 1,
            Self::GetBlockList => 2,
            Self::GetBlocks => 3,
            Self::BlockList => 4,
            Self::Block => 5,
            Self::GetSegmentList => 6,
            Self::SegmentList => 7,
            Self::Unknown(code) => code,
        }
    }

    /// The type a wire value names.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => Self::NegotiateRequest,
            1 => Self::NegotiateResponse,
            2 => Self::GetBlockList,
            3 => Self::GetBlocks,
            4 => Self::BlockList,
            5 => Self::Block,
            6 => Self::GetSegmentList,
            7 => Self::SegmentList,
            code => Self::Unknown(code),
        }
    }
}

/// `CryptoAlgoId`: how blocks are encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptoAlgorithm {
    /// `NoEncryption` (0).
    None,
    /// AES-128 in CBC mode (1): what iPXE asks for.
    Aes128,
    /// AES-192 in CBC mode (2).
    Aes192,
    /// AES-256 in CBC mode (3).
    Aes256,
    /// Any other value, kept.
    Unknown(u32),
}

impl CryptoAlgorithm {
    /// The wire value.
    pub fn code(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Aes128 => 1,
            Self::Aes192 => 2,
            Self::Aes256 => 3,
            Self::Unknown(code) => code,
        }
    }

    /// The algorithm a wire value names.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => Self::None,
            1 => Self::Aes128,
            2 => Self::Aes192,
            3 => Self::Aes256,
            code => Self::Unknown(code),
        }
    }

    /// Key length in bytes of an AES variant.
    pub fn key_len(self) -> Option<usize> {
        match self {
            Self::Aes128 => Some(16),
            Self::Aes192 => Some(24),
            Self::Aes256 => Some(32),
            Self::None | Self::Unknown(_) => None,
        }
    }
}

/// Bytes that are not a retrieval message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetrievalError {
    /// A field runs past the end.
    #[error("truncated at byte {offset}: needed {needed} more bytes")]
    Truncated {
        /// Where the field starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
    },
    /// Longer than accepted.
    #[error("{what} of {len} bytes is longer than {max}")]
    TooLong {
        /// What.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A length field disagrees with the bytes received.
    #[error("{what} says {declared} bytes, but {actual} were received")]
    LengthMismatch {
        /// Which length.
        what: &'static str,
        /// The field's value.
        declared: u32,
        /// Bytes present.
        actual: usize,
    },
    /// Bytes after the last field.
    #[error("{0} bytes after the end of the message")]
    TrailingBytes(usize),
}
