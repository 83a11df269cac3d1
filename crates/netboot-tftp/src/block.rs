//! Wire arithmetic newtypes: 16-bit block numbers that wrap, and checked block sizes.

use std::fmt;

/// A TFTP block number as carried on the wire: 16 bits that wrap from 65535 to 0.
///
/// Comparisons must be wrap-aware (a file of 100 000 blocks reuses every number), so the type
/// offers [`BlockNum::distance_to`] instead of `Ord`.
///
/// ```
/// use netboot_tftp::BlockNum;
/// let last = BlockNum(65535);
/// assert_eq!(last.next(), BlockNum(0));
/// assert_eq!(last.distance_to(BlockNum(3)), 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BlockNum(pub u16);

impl BlockNum {
    /// The block after this one; 65535 is followed by 0, which is what tftp-hpa, atftp, curl,
    /// busybox and iPXE expect.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0.wrapping_add(1))
    }

    /// How many steps forward `later` is from `self`, modulo 2^16.
    #[must_use]
    pub const fn distance_to(self, later: Self) -> u16 {
        later.0.wrapping_sub(self.0)
    }

    /// The wire number of the block with 1-based absolute index `index` in a transfer.
    #[must_use]
    pub const fn from_index(index: u64) -> Self {
        // Truncation is the wire format: the number is the index modulo 2^16.
        Self((index & 0xffff) as u16)
    }
}

impl fmt::Display for BlockNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A data block size accepted by RFC 2348: 8 to 65464 bytes.
///
/// ```
/// use netboot_tftp::BlockSize;
/// assert_eq!(BlockSize::try_from(1468u16).unwrap().get(), 1468);
/// assert!(BlockSize::try_from(7u16).is_err());
/// assert!(BlockSize::try_from(65465u16).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockSize(u16);

impl BlockSize {
    /// RFC 1350's block size, used when no `blksize` option is negotiated.
    pub const DEFAULT: Self = Self(512);
    /// Smallest size RFC 2348 allows.
    pub const MIN: u16 = 8;
    /// Largest size RFC 2348 allows (65535 minus IP and UDP headers and the 4-byte DATA header).
    pub const MAX: u16 = 65464;

    /// The size in bytes.
    #[must_use]
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The size in bytes, as a `usize` for buffer arithmetic.
    #[must_use]
    pub const fn bytes(self) -> usize {
        self.0 as usize
    }
}

/// A block size outside RFC 2348's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("block size {0} is outside 8..=65464")]
pub struct BlockSizeOutOfRange(pub u64);

impl TryFrom<u64> for BlockSize {
    type Error = BlockSizeOutOfRange;

    fn try_from(value: u64) -> Result<Self, Self::Error> {
        if (u64::from(Self::MIN)..=u64::from(Self::MAX)).contains(&value) {
            Ok(Self(value as u16))
        } else {
            Err(BlockSizeOutOfRange(value))
        }
    }
}

impl TryFrom<u16> for BlockSize {
    type Error = BlockSizeOutOfRange;

    fn try_from(value: u16) -> Result<Self, Self::Error> {
        Self::try_from(u64::from(value))
    }
}

impl Default for BlockSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_from_65535_to_0() {
        assert_eq!(BlockNum(65535).next(), BlockNum(0));
        assert_eq!(BlockNum::from_index(65536), BlockNum(0));
        assert_eq!(BlockNum::from_index(65537), BlockNum(1));
        assert_eq!(BlockNum(65530).distance_to(BlockNum(5)), 11);
        assert_eq!(BlockNum(5).distance_to(BlockNum(5)), 0);
    }

    #[test]
    fn block_size_bounds() {
        assert!(BlockSize::try_from(8u16).is_ok());
        assert!(BlockSize::try_from(65464u16).is_ok());
        assert_eq!(BlockSize::try_from(70000u64), Err(BlockSizeOutOfRange(70000)));
    }
}
