//! Requests and responses, parsed and written.

use super::{
    CryptoAlgorithm, MessageType, ProtocolVersion, RetrievalError, HEADER_LEN, MAX_RANGES, MAX_REQUEST_LEN,
    MAX_SEGMENT_ID_LEN, TRANSPORT_HEADER_LEN,
};

/// Byte ranges of the message header.
mod field {
    use std::ops::Range;
    pub(super) const PROT_VER: Range<usize> = 0..4;
    pub(super) const MSG_TYPE: Range<usize> = 4..8;
    pub(super) const MSG_SIZE: Range<usize> = 8..12;
    pub(super) const CRYPTO_ALGO_ID: Range<usize> = 12..16;
}

/// `BLOCK_RANGE`: `count` blocks from `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRange {
    /// First block.
    pub index: u32,
    /// Number of blocks.
    pub count: u32,
}

impl BlockRange {
    /// The block indices, saturating at `u32::MAX`.
    pub fn indices(self) -> std::ops::Range<u32> {
        self.index..self.index.saturating_add(self.count)
    }
}

/// A request message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `ProtVer` of the header (the version that defined the message type).
    pub version: ProtocolVersion,
    /// `CryptoAlgoId`: how the client wants blocks encrypted.
    pub crypto: CryptoAlgorithm,
    /// The message.
    pub body: RequestBody,
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestBody {
    /// `MSG_NEGO_REQ`: the versions the client speaks.
    Negotiate {
        /// Oldest.
        min: ProtocolVersion,
        /// Newest.
        max: ProtocolVersion,
    },
    /// `MSG_GETBLKLIST`: which of these blocks of a segment the peer holds.
    GetBlockList {
        /// HoHoDk.
        segment_id: Vec<u8>,
        /// The blocks asked about.
        ranges: Vec<BlockRange>,
    },
    /// `MSG_GETBLKS`: send these blocks.
    GetBlocks {
        /// HoHoDk.
        segment_id: Vec<u8>,
        /// The blocks wanted (the answer carries the first).
        ranges: Vec<BlockRange>,
        /// `DataForVrfBlock`, unused by every implementation.
        vrf: Vec<u8>,
    },
    /// Any other message type, with its bytes after the header.
    Other {
        /// The type.
        kind: MessageType,
        /// Its payload.
        payload: Vec<u8>,
    },
}

impl RequestBody {
    /// The message type.
    pub fn kind(&self) -> MessageType {
        match self {
            Self::Negotiate { .. } => MessageType::NegotiateRequest,
            Self::GetBlockList { .. } => MessageType::GetBlockList,
            Self::GetBlocks { .. } => MessageType::GetBlocks,
            Self::Other { kind, .. } => *kind,
        }
    }
}

impl Request {
    /// The request iPXE sends for one block: `MSG_GETBLKS`, version 1.0, one range of one
    /// block, no VRF data.
    pub fn get_blocks(crypto: CryptoAlgorithm, segment_id: Vec<u8>, index: u32) -> Self {
        Self {
            version: ProtocolVersion::V1_0,
            crypto,
            body: RequestBody::GetBlocks {
                segment_id,
                ranges: vec![BlockRange { index, count: 1 }],
                vrf: Vec::new(),
            },
        }
    }

    /// Reads a request body of at most [`MAX_REQUEST_LEN`] bytes. `MsgSize` must equal its
    /// length.
    pub fn parse(bytes: &[u8]) -> Result<Self, RetrievalError> {
        if bytes.len() > MAX_REQUEST_LEN {
            return Err(RetrievalError::TooLong {
                what: "request",
                len: bytes.len(),
                max: MAX_REQUEST_LEN,
            });
        }
        let mut reader = Reader::new(bytes);
        let (version, kind, crypto) = reader.header()?;
        let body = match kind {
            MessageType::NegotiateRequest => {
                let (min, max) = reader.versions()?;
                RequestBody::Negotiate { min, max }
            }
            MessageType::GetBlockList => RequestBody::GetBlockList {
                segment_id: reader.segment_id()?,
                ranges: reader.ranges()?,
            },
            MessageType::GetBlocks => RequestBody::GetBlocks {
                segment_id: reader.segment_id()?,
                ranges: reader.ranges()?,
                vrf: reader.sized("VRF data", MAX_REQUEST_LEN)?,
            },
            kind => RequestBody::Other {
                kind,
                payload: reader.rest(),
            },
        };
        reader.finish()?;
        Ok(Self {
            version,
            crypto,
            body,
        })
    }

    /// The request body to POST.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::message(self.version, self.body.kind(), self.crypto);
        match &self.body {
            RequestBody::Negotiate { min, max } => writer.versions(*min, *max),
            RequestBody::GetBlockList { segment_id, ranges } => {
                writer.sized(segment_id, true);
                writer.ranges(ranges);
            }
            RequestBody::GetBlocks {
                segment_id,
                ranges,
                vrf,
            } => {
                writer.sized(segment_id, true);
                writer.ranges(ranges);
                writer.sized(vrf, false);
            }
            RequestBody::Other { payload, .. } => writer.raw(payload),
        }
        writer.finish(false)
    }
}

/// A response message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// `ProtVer` of the header.
    pub version: ProtocolVersion,
    /// `CryptoAlgoId`: how the block is encrypted.
    pub crypto: CryptoAlgorithm,
    /// The message.
    pub body: ResponseBody,
}

/// What a response says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBody {
    /// `MSG_NEGO_RESP`: the versions the peer speaks.
    Negotiate {
        /// Oldest.
        min: ProtocolVersion,
        /// Newest.
        max: ProtocolVersion,
    },
    /// `MSG_BLKLIST`: the blocks held among those asked about.
    BlockList {
        /// HoHoDk.
        segment_id: Vec<u8>,
        /// Held blocks.
        ranges: Vec<BlockRange>,
        /// The first held block after the ranges asked about, or 0.
        next_block_index: u32,
    },
    /// `MSG_BLK`: one block, encrypted; empty when the peer does not have it.
    Block {
        /// HoHoDk.
        segment_id: Vec<u8>,
        /// The block's index in the segment.
        index: u32,
        /// The next block the peer holds after this one, or 0.
        next_block_index: u32,
        /// The (encrypted) block.
        block: Vec<u8>,
        /// `VrfBlock`, unused.
        vrf: Vec<u8>,
        /// The initialisation vector of the encryption.
        iv: Vec<u8>,
    },
    /// Any other message type, with its bytes after the header.
    Other {
        /// The type.
        kind: MessageType,
        /// Its payload.
        payload: Vec<u8>,
    },
}

impl ResponseBody {
    /// The message type.
    pub fn kind(&self) -> MessageType {
        match self {
            Self::Negotiate { .. } => MessageType::NegotiateResponse,
            Self::BlockList { .. } => MessageType::BlockList,
            Self::Block { .. } => MessageType::Block,
            Self::Other { kind, .. } => *kind,
        }
    }
}

impl Response {
    /// Reads a response, transport header included. Both length fields must match.
    pub fn parse(bytes: &[u8]) -> Result<Self, RetrievalError> {
        let mut reader = Reader::new(bytes);
        let size = reader.u32()?;
        let rest = bytes.len() - TRANSPORT_HEADER_LEN;
        if size as usize != rest {
            return Err(RetrievalError::LengthMismatch {
                what: "the transport header",
                declared: size,
                actual: rest,
            });
        }
        let mut reader = Reader::new(&bytes[TRANSPORT_HEADER_LEN..]);
        let (version, kind, crypto) = reader.header()?;
        let body = match kind {
            MessageType::NegotiateResponse => {
                let (min, max) = reader.versions()?;
                ResponseBody::Negotiate { min, max }
            }
            MessageType::BlockList => ResponseBody::BlockList {
                segment_id: reader.segment_id()?,
                ranges: reader.ranges()?,
                next_block_index: reader.u32()?,
            },
            MessageType::Block => ResponseBody::Block {
                segment_id: reader.segment_id()?,
                index: reader.u32()?,
                next_block_index: reader.u32()?,
                block: reader.sized("block", usize::MAX)?,
                vrf: reader.sized("VRF block", usize::MAX)?,
                iv: reader.sized("IV", usize::MAX)?,
            },
            kind => ResponseBody::Other {
                kind,
                payload: reader.rest(),
            },
        };
        reader.finish()?;
        Ok(Self {
            version,
            crypto,
            body,
        })
    }

    /// The HTTP response body: transport header, message header, message.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::message(self.version, self.body.kind(), self.crypto);
        match &self.body {
            ResponseBody::Negotiate { min, max } => writer.versions(*min, *max),
            ResponseBody::BlockList {
                segment_id,
                ranges,
                next_block_index,
            } => {
                writer.sized(segment_id, true);
                writer.ranges(ranges);
                writer.u32(*next_block_index);
            }
            ResponseBody::Block {
                segment_id,
                index,
                next_block_index,
                block,
                vrf,
                iv,
            } => {
                writer.sized(segment_id, true);
                writer.u32(*index);
                writer.u32(*next_block_index);
                writer.sized(block, true);
                writer.sized(vrf, true);
                writer.sized(iv, false);
            }
            ResponseBody::Other { payload, .. } => writer.raw(payload),
        }
        writer.finish(true)
    }
}

/// Reads big-endian words and sized fields, tracking the offset for errors.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], RetrievalError> {
        let end = self
            .offset
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(RetrievalError::Truncated {
                offset: self.offset,
                needed: len,
            })?;
        let taken = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(taken)
    }

    fn u32(&mut self) -> Result<u32, RetrievalError> {
        let word = self.take(4)?;
        Ok(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
    }

    /// The message header; `MsgSize` must be the length of the whole message.
    fn header(&mut self) -> Result<(ProtocolVersion, MessageType, CryptoAlgorithm), RetrievalError> {
        let header = self.take(HEADER_LEN)?;
        let word = |range: std::ops::Range<usize>| {
            u32::from_be_bytes(header[range].try_into().expect("4-byte field"))
        };
        let size = word(field::MSG_SIZE);
        if size as usize != self.bytes.len() {
            return Err(RetrievalError::LengthMismatch {
                what: "MsgSize",
                declared: size,
                actual: self.bytes.len(),
            });
        }
        Ok((
            ProtocolVersion::from_word(word(field::PROT_VER)),
            MessageType::from_code(word(field::MSG_TYPE)),
            CryptoAlgorithm::from_code(word(field::CRYPTO_ALGO_ID)),
        ))
    }

    fn versions(&mut self) -> Result<(ProtocolVersion, ProtocolVersion), RetrievalError> {
        Ok((
            ProtocolVersion::from_word(self.u32()?),
            ProtocolVersion::from_word(self.u32()?),
        ))
    }

    /// A length-prefixed field, then its zero padding when more bytes follow.
    fn sized(&mut self, what: &'static str, max: usize) -> Result<Vec<u8>, RetrievalError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(RetrievalError::TooLong { what, len, max });
        }
        let data = self.take(len)?.to_vec();
        let pad = padding(len);
        if self.bytes.len() - self.offset >= pad && self.offset < self.bytes.len() {
            self.take(pad)?;
        }
        Ok(data)
    }

    fn segment_id(&mut self) -> Result<Vec<u8>, RetrievalError> {
        self.sized("segment id", MAX_SEGMENT_ID_LEN)
    }

    fn ranges(&mut self) -> Result<Vec<BlockRange>, RetrievalError> {
        let count = self.u32()? as usize;
        if count > MAX_RANGES {
            return Err(RetrievalError::TooLong {
                what: "range list",
                len: count,
                max: MAX_RANGES,
            });
        }
        (0..count)
            .map(|_| {
                Ok(BlockRange {
                    index: self.u32()?,
                    count: self.u32()?,
                })
            })
            .collect()
    }

    fn rest(&mut self) -> Vec<u8> {
        let rest = self.bytes[self.offset..].to_vec();
        self.offset = self.bytes.len();
        rest
    }

    fn finish(self) -> Result<(), RetrievalError> {
        match self.bytes.len() - self.offset {
            0 => Ok(()),
            left => Err(RetrievalError::TrailingBytes(left)),
        }
    }
}

/// Zero bytes after a field of `len` bytes up to the next 4-byte boundary.
fn padding(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// Writes a message after a header whose size is filled in at the end.
struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn message(version: ProtocolVersion, kind: MessageType, crypto: CryptoAlgorithm) -> Self {
        let mut out = Vec::with_capacity(128);
        for word in [version.word(), kind.code(), 0, crypto.code()] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        Self { out }
    }

    fn u32(&mut self, value: u32) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn versions(&mut self, min: ProtocolVersion, max: ProtocolVersion) {
        self.u32(min.word());
        self.u32(max.word());
    }

    /// A length-prefixed field, padded when `more_follows`.
    fn sized(&mut self, data: &[u8], more_follows: bool) {
        self.u32(u32::try_from(data.len()).expect("fields are far below 4 GiB"));
        self.raw(data);
        if more_follows {
            self.out.resize(self.out.len() + padding(data.len()), 0);
        }
    }

    fn ranges(&mut self, ranges: &[BlockRange]) {
        self.u32(u32::try_from(ranges.len()).expect("range lists are bounded"));
        for range in ranges {
            self.u32(range.index);
            self.u32(range.count);
        }
    }

    /// Fills in `MsgSize` and, for a response, prepends the transport header.
    fn finish(mut self, response: bool) -> Vec<u8> {
        let size = u32::try_from(self.out.len()).expect("messages are far below 4 GiB");
        self.out[field::MSG_SIZE].copy_from_slice(&size.to_be_bytes());
        if !response {
            return self.out;
        }
        let mut framed = Vec::with_capacity(TRANSPORT_HEADER_LEN + self.out.len());
        framed.extend_from_slice(&size.to_be_bytes());
        framed.extend_from_slice(&self.out);
        framed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipxe_request_layout() {
        // iPXE's peerdist_msg_getblks_t(32, 1, 0): header, segment, one range, empty VRF.
        let bytes = Request::get_blocks(CryptoAlgorithm::Aes128, vec![0xaa; 32], 5).to_bytes();
        let mut expected = Vec::new();
        for word in [1u32, 3, 68, 1, 32] {
            expected.extend_from_slice(&word.to_be_bytes());
        }
        expected.extend_from_slice(&[0xaa; 32]);
        for word in [1u32, 5, 1, 0] {
            expected.extend_from_slice(&word.to_be_bytes());
        }
        assert_eq!(bytes, expected);
    }

    #[test]
    fn padding_follows_short_fields_but_not_the_last() {
        let response = Response {
            version: ProtocolVersion::V1_0,
            crypto: CryptoAlgorithm::None,
            body: ResponseBody::Block {
                segment_id: vec![1; 5],
                index: 0,
                next_block_index: 0,
                block: vec![2; 3],
                vrf: Vec::new(),
                iv: vec![3; 1],
            },
        };
        let bytes = response.to_bytes();
        // transport 4 + header 16 + id 4+5+3 + index/next 8 + block 4+3+1 + vrf 4 + iv 4+1
        assert_eq!(bytes.len(), 4 + 16 + 12 + 8 + 8 + 4 + 5);
        assert_eq!(Response::parse(&bytes).unwrap(), response);
    }

    #[test]
    fn lengths_must_agree() {
        let mut bytes = Request::get_blocks(CryptoAlgorithm::Aes128, vec![1; 32], 0).to_bytes();
        bytes.push(0);
        assert!(matches!(
            Request::parse(&bytes),
            Err(RetrievalError::LengthMismatch { .. })
        ));
        let mut huge_id = Request::get_blocks(CryptoAlgorithm::Aes128, vec![1; 32], 0).to_bytes();
        huge_id[16..20].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert!(matches!(
            Request::parse(&huge_id),
            Err(RetrievalError::TooLong { .. })
        ));
        assert!(Response::parse(&[0, 0, 0, 1, 0]).is_err());
    }
}
