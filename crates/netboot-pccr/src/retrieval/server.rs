//! The peer's side: what a request needs from the store, and the answers.
//!
//! [`plan`] turns a request into the one lookup it needs ([`Plan`]); the embedder does the
//! lookup (reading and verifying a block is IO) and builds the answer with
//! [`block_list_response`] or [`block_response`].

use super::{
    BlockRange, CryptoAlgorithm, ProtocolVersion, Request, RequestBody, Response, ResponseBody, SealedBlock,
    MAX_RANGES,
};

/// What answering a request takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Send this answer as it is.
    Reply(Response),
    /// Answer with the held blocks among `ranges` of the segment ([`block_list_response`]).
    BlockList {
        /// Echoed `CryptoAlgoId`.
        crypto: CryptoAlgorithm,
        /// HoHoDk.
        segment_id: Vec<u8>,
        /// The ranges asked about.
        ranges: Vec<BlockRange>,
    },
    /// Answer with block `index` of the segment, encrypted with `crypto`
    /// ([`seal_block`](super::seal_block), [`block_response`]).
    Block {
        /// An AES variant (plaintext requests are answered as absent blocks right away).
        crypto: CryptoAlgorithm,
        /// HoHoDk.
        segment_id: Vec<u8>,
        /// The first block asked for.
        index: u32,
    },
    /// Not a request this peer answers: HTTP 400.
    Refuse(&'static str),
}

/// What `request` needs.
pub fn plan(request: &Request) -> Plan {
    match &request.body {
        RequestBody::Negotiate { .. } => Plan::Reply(negotiate_response(request.crypto)),
        RequestBody::GetBlockList { segment_id, ranges } => Plan::BlockList {
            crypto: request.crypto,
            segment_id: segment_id.clone(),
            ranges: ranges.clone(),
        },
        RequestBody::GetBlocks {
            segment_id, ranges, ..
        } => {
            let Some(first) = ranges.iter().find(|r| r.count > 0) else {
                return Plan::Refuse("a block request without blocks");
            };
            if request.crypto.key_len().is_none() {
                return Plan::Reply(block_response(
                    request.crypto,
                    segment_id.clone(),
                    first.index,
                    0,
                    None,
                ));
            }
            Plan::Block {
                crypto: request.crypto,
                segment_id: segment_id.clone(),
                index: first.index,
            }
        }
        RequestBody::Other { .. } => Plan::Refuse("a message type this peer does not answer"),
    }
}

/// `MSG_NEGO_RESP`: this peer speaks version 1.0 (it has no segment lists).
pub fn negotiate_response(crypto: CryptoAlgorithm) -> Response {
    Response {
        version: ProtocolVersion::V1_0,
        crypto,
        body: ResponseBody::Negotiate {
            min: ProtocolVersion::V1_0,
            max: ProtocolVersion::V1_0,
        },
    }
}

/// `MSG_BLKLIST`: the runs of held blocks (`held(i)` for `i < block_count`) within the
/// ranges asked about, and the first held block after them (0 when none).
///
/// ```
/// use netboot_pccr::retrieval::{block_list_response, BlockRange, CryptoAlgorithm, ResponseBody};
/// let asked = [BlockRange { index: 0, count: 4 }];
/// let held = |i| i != 1;
/// let response = block_list_response(CryptoAlgorithm::Aes128, vec![1; 32], &asked, held, 6);
/// let ResponseBody::BlockList { ranges, next_block_index, .. } = response.body else { panic!() };
/// assert_eq!(ranges, [BlockRange { index: 0, count: 1 }, BlockRange { index: 2, count: 2 }]);
/// assert_eq!(next_block_index, 4);
/// ```
pub fn block_list_response(
    crypto: CryptoAlgorithm,
    segment_id: Vec<u8>,
    asked: &[BlockRange],
    held: impl Fn(u32) -> bool,
    block_count: u32,
) -> Response {
    // The ranges asked about may overlap or come in any order: merge them first, so every
    // block is looked at once and the answer is sorted.
    let mut wanted: Vec<std::ops::Range<u32>> = asked
        .iter()
        .map(|r| r.indices().start.min(block_count)..r.indices().end.min(block_count))
        .filter(|r| !r.is_empty())
        .collect();
    wanted.sort_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<u32>> = Vec::with_capacity(wanted.len());
    for range in wanted {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    let end_of_asked = merged.last().map_or(0, |r| r.end);
    let mut ranges: Vec<BlockRange> = Vec::new();
    for range in merged {
        for index in range {
            if !held(index) {
                continue;
            }
            let full = ranges.len() == MAX_RANGES;
            match ranges.last_mut() {
                Some(last) if last.index.saturating_add(last.count) == index => last.count += 1,
                _ if full => break,
                _ => ranges.push(BlockRange { index, count: 1 }),
            }
        }
    }
    Response {
        version: ProtocolVersion::V1_0,
        crypto,
        body: ResponseBody::BlockList {
            segment_id,
            ranges,
            next_block_index: (end_of_asked..block_count).find(|i| held(*i)).unwrap_or(0),
        },
    }
}

/// `MSG_BLK`: block `index` sealed with [`seal_block`](super::seal_block), or an empty block when the peer does
/// not have it (`None`). `next_block_index` is the next block held after it, or 0.
pub fn block_response(
    crypto: CryptoAlgorithm,
    segment_id: Vec<u8>,
    index: u32,
    next_block_index: u32,
    sealed: Option<SealedBlock>,
) -> Response {
    let (block, iv) = sealed.map_or((Vec::new(), Vec::new()), |s| (s.ciphertext, s.iv.to_vec()));
    Response {
        version: ProtocolVersion::V1_0,
        crypto,
        body: ResponseBody::Block {
            segment_id,
            index,
            next_block_index,
            block,
            vrf: Vec::new(),
            iv,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_requests_get_an_empty_block() {
        let request = Request::get_blocks(CryptoAlgorithm::None, vec![3; 32], 2);
        let Plan::Reply(response) = plan(&request) else {
            panic!("answered at once")
        };
        let ResponseBody::Block { block, index, .. } = response.body else {
            panic!("a block message")
        };
        assert!(block.is_empty());
        assert_eq!(index, 2);
    }

    #[test]
    fn requests_without_blocks_and_foreign_types_are_refused() {
        let mut request = Request::get_blocks(CryptoAlgorithm::Aes128, vec![3; 32], 2);
        if let RequestBody::GetBlocks { ranges, .. } = &mut request.body {
            ranges[0].count = 0;
        }
        assert!(matches!(plan(&request), Plan::Refuse(_)));
        request.body = RequestBody::Other {
            kind: super::super::MessageType::Block,
            payload: Vec::new(),
        };
        assert!(matches!(plan(&request), Plan::Refuse(_)));
    }

    #[test]
    fn block_lists_stay_inside_the_segment() {
        let asked = [BlockRange {
            index: 4,
            count: u32::MAX,
        }];
        let response = block_list_response(CryptoAlgorithm::Aes128, vec![1; 32], &asked, |_| true, 6);
        let ResponseBody::BlockList {
            ranges,
            next_block_index,
            ..
        } = response.body
        else {
            panic!()
        };
        assert_eq!(ranges, [BlockRange { index: 4, count: 2 }]);
        assert_eq!(next_block_index, 0);
    }
}
