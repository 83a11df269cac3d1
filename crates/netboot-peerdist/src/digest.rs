//! The hash functions Content Information names, as one-shot digests, streaming hashers and
//! HMACs, and [`Digest`], a hash value of up to 64 bytes held without allocating.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::digest::Digest as _;
use sha2::{Sha256, Sha384, Sha512};

/// Longest digest any Content Information version uses (SHA-512).
pub const MAX_DIGEST_LEN: usize = 64;

/// A hash value (a block hash, HoD, Kp or HoHoDk) of 1 to [`MAX_DIGEST_LEN`] bytes.
///
/// ```
/// use netboot_peerdist::Digest;
/// let digest = Digest::from_slice(&[0xab; 32]).unwrap();
/// assert_eq!(digest.len(), 32);
/// assert_eq!(digest.to_string(), "ab".repeat(32));
/// assert!(Digest::from_slice(&[0; 65]).is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    len: u8,
    bytes: [u8; MAX_DIGEST_LEN],
}

impl Digest {
    /// A copy of `bytes`, or `None` when it is empty or longer than [`MAX_DIGEST_LEN`].
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > MAX_DIGEST_LEN {
            return None;
        }
        let mut digest = Self {
            len: bytes.len() as u8,
            bytes: [0; MAX_DIGEST_LEN],
        };
        digest.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(digest)
    }

    /// The hash bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a digest has at least one byte.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first `len` bytes (the "truncated" hashes of Content Information version 2.0).
    fn truncated(mut self, len: usize) -> Self {
        self.len = self.len.min(len as u8);
        self.bytes[usize::from(self.len)..].fill(0);
        self
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_bytes().iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// A hash function of Content Information.
///
/// Version 1.0 names SHA-256, SHA-384 or SHA-512 (`dwHashAlgo`); version 2.0 only
/// "truncated SHA-512": plain SHA-512 (not the SHA-512/256 variant with its own initial
/// values) with the first 32 bytes kept. HMACs of the truncated algorithm are HMAC-SHA-512
/// truncated the same way, keyed with the (truncated) 32-byte keys, which is what Windows and
/// iPXE compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256 (version 1.0, `0x0000800C`): what every Windows server sends.
    Sha256,
    /// SHA-384 (version 1.0, `0x0000800D`).
    Sha384,
    /// SHA-512 (version 1.0, `0x0000800E`).
    Sha512,
    /// SHA-512 truncated to 256 bits (version 2.0, `0x04`).
    Sha512Truncated,
}

impl HashAlgorithm {
    /// Length of its digests in bytes.
    #[must_use]
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Sha256 | Self::Sha512Truncated => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The digest of `data`.
    ///
    /// ```
    /// use netboot_peerdist::HashAlgorithm;
    /// let empty = HashAlgorithm::Sha256.hash(b"");
    /// assert!(empty.to_string().starts_with("e3b0c442"));
    /// ```
    #[must_use]
    pub fn hash(self, data: &[u8]) -> Digest {
        let mut hasher = self.hasher();
        hasher.update(data);
        hasher.finish()
    }

    /// A streaming hasher.
    #[must_use]
    pub fn hasher(self) -> Hasher {
        Hasher {
            algorithm: self,
            state: match self {
                Self::Sha256 => State::Sha256(Sha256::new()),
                Self::Sha384 => State::Sha384(Sha384::new()),
                Self::Sha512 | Self::Sha512Truncated => State::Sha512(Sha512::new()),
            },
        }
    }

    /// HMAC (RFC 2104) over the concatenation of `parts`, keyed with `key`.
    #[must_use]
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Digest {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Digest {
            let mut mac =
                <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
            for part in parts {
                mac.update(part);
            }
            Digest::from_slice(&mac.finalize().into_bytes()).expect("HMAC output fits a Digest")
        }
        let full = match self {
            Self::Sha256 => run::<Hmac<Sha256>>(key, parts),
            Self::Sha384 => run::<Hmac<Sha384>>(key, parts),
            Self::Sha512 | Self::Sha512Truncated => run::<Hmac<Sha512>>(key, parts),
        };
        full.truncated(self.digest_len())
    }
}

/// A hash being computed over data passed in pieces.
#[derive(Clone)]
pub struct Hasher {
    algorithm: HashAlgorithm,
    state: State,
}

#[derive(Clone)]
enum State {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Sha256(h) => h.update(data),
            State::Sha384(h) => h.update(data),
            State::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything added, leaving the hasher ready for new data.
    pub fn finish_reset(&mut self) -> Digest {
        let full = match &mut self.state {
            State::Sha256(h) => Digest::from_slice(&h.finalize_reset()),
            State::Sha384(h) => Digest::from_slice(&h.finalize_reset()),
            State::Sha512(h) => Digest::from_slice(&h.finalize_reset()),
        };
        full.expect("SHA-2 output fits a Digest")
            .truncated(self.algorithm.digest_len())
    }

    /// The digest of everything added.
    #[must_use]
    pub fn finish(mut self) -> Digest {
        self.finish_reset()
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_sha512_is_the_prefix_of_sha512_not_sha512_256() {
        let full = HashAlgorithm::Sha512.hash(b"abc");
        let truncated = HashAlgorithm::Sha512Truncated.hash(b"abc");
        assert_eq!(truncated.as_bytes(), &full.as_bytes()[..32]);
        // SHA-512/256("abc") starts 53048e26; plain SHA-512("abc") starts ddaf35a1.
        assert!(truncated.to_string().starts_with("ddaf35a1"));
    }

    #[test]
    fn streaming_equals_one_shot() {
        for algorithm in [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
            HashAlgorithm::Sha512Truncated,
        ] {
            let mut hasher = algorithm.hasher();
            hasher.update(b"hello ");
            hasher.update(b"world");
            assert_eq!(hasher.finish_reset(), algorithm.hash(b"hello world"));
            hasher.update(b"again");
            assert_eq!(hasher.finish(), algorithm.hash(b"again"));
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = HashAlgorithm::Sha256.hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            mac.to_string(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
