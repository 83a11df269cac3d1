//! The hashing of both versions as state machines that report each finished block and
//! segment, for the builders to collect or write out.

use super::{V1_BLOCK_LEN, V1_SEGMENT_LEN, V2_SEGMENT_LEN};
use crate::digest::{Digest, HashAlgorithm, Hasher};
use crate::secret::{ServerPassphrase, ServerSecret};

/// A finished segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentDone {
    /// Its index in the content.
    pub(crate) index: u64,
    /// Its offset in the content.
    pub(crate) offset: u64,
    pub(crate) length: u32,
    pub(crate) hash_of_data: Digest,
    pub(crate) secret: Digest,
}

/// What hashing reports, in content order.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    /// Version 1.0: the next block's hash.
    V1Block(Digest),
    /// Version 1.0: a segment (its blocks were reported before it).
    V1Segment(SegmentDone),
    /// Version 2.0: a segment.
    V2Segment(SegmentDone),
}

/// Version 1.0 with SHA-256: 64 KiB blocks, HoD hashed from the block hashes as they come.
#[derive(Debug)]
pub(crate) struct V1Hashing {
    secret: ServerSecret,
    block: Hasher,
    hod: Hasher,
    block_filled: u32,
    segment_filled: u32,
    segment: u64,
}

impl V1Hashing {
    pub(crate) fn new(passphrase: &ServerPassphrase) -> Self {
        Self {
            secret: passphrase.server_secret(HashAlgorithm::Sha256),
            block: HashAlgorithm::Sha256.hasher(),
            hod: HashAlgorithm::Sha256.hasher(),
            block_filled: 0,
            segment_filled: 0,
            segment: 0,
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8], on: &mut impl FnMut(Event)) {
        while !data.is_empty() {
            let take = data.len().min((V1_BLOCK_LEN - self.block_filled) as usize);
            self.block.update(&data[..take]);
            self.block_filled += take as u32;
            self.segment_filled += take as u32;
            data = &data[take..];
            if self.block_filled == V1_BLOCK_LEN {
                self.end_block(on);
            }
            if self.segment_filled == V1_SEGMENT_LEN {
                self.end_segment(on);
            }
        }
    }

    pub(crate) fn finish(mut self, on: &mut impl FnMut(Event)) {
        if self.block_filled > 0 {
            self.end_block(on);
        }
        if self.segment_filled > 0 {
            self.end_segment(on);
        }
    }

    fn end_block(&mut self, on: &mut impl FnMut(Event)) {
        let hash = self.block.finish_reset();
        self.hod.update(hash.as_bytes());
        on(Event::V1Block(hash));
        self.block_filled = 0;
    }

    fn end_segment(&mut self, on: &mut impl FnMut(Event)) {
        let hash_of_data = self.hod.finish_reset();
        on(Event::V1Segment(SegmentDone {
            index: self.segment,
            offset: self.segment * u64::from(V1_SEGMENT_LEN),
            length: self.segment_filled,
            hash_of_data,
            secret: self.secret.segment_secret(hash_of_data.as_bytes()),
        }));
        self.segment += 1;
        self.segment_filled = 0;
    }
}

/// Version 2.0: truncated SHA-512 over [`V2_SEGMENT_LEN`] segments.
#[derive(Debug)]
pub(crate) struct V2Hashing {
    secret: ServerSecret,
    hasher: Hasher,
    filled: u32,
    segment: u64,
}

impl V2Hashing {
    pub(crate) fn new(passphrase: &ServerPassphrase) -> Self {
        Self {
            secret: passphrase.server_secret(HashAlgorithm::Sha512Truncated),
            hasher: HashAlgorithm::Sha512Truncated.hasher(),
            filled: 0,
            segment: 0,
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8], on: &mut impl FnMut(Event)) {
        while !data.is_empty() {
            let take = data.len().min((V2_SEGMENT_LEN - self.filled) as usize);
            self.hasher.update(&data[..take]);
            self.filled += take as u32;
            data = &data[take..];
            if self.filled == V2_SEGMENT_LEN {
                self.end_segment(on);
            }
        }
    }

    pub(crate) fn finish(mut self, on: &mut impl FnMut(Event)) {
        if self.filled > 0 {
            self.end_segment(on);
        }
    }

    fn end_segment(&mut self, on: &mut impl FnMut(Event)) {
        let hash_of_data = self.hasher.finish_reset();
        on(Event::V2Segment(SegmentDone {
            index: self.segment,
            offset: self.segment * u64::from(V2_SEGMENT_LEN),
            length: self.filled,
            hash_of_data,
            secret: self.secret.segment_secret(hash_of_data.as_bytes()),
        }));
        self.segment += 1;
        self.filled = 0;
    }
}
