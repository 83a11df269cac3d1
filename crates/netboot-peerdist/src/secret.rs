//! The keys of [MS-PCCRC] section 2.2: the server secret `Ks`, the segment secret
//! `Kp = HMAC(Ks, HoD)` and the segment identifier `HoHoDk = HMAC(Kp, HoD + C)`.
//!
//! A Windows BranchCache server keeps an arbitrary binary string, its *server passphrase*
//! (32 random bytes unless set by `netsh branchcache set key`), and derives `Ks` from it:
//! SHA-256 of the passphrase for Content Information 1.0 and truncated SHA-512 of it for 2.0.
//! Servers that share the passphrase produce identical segment secrets and identifiers for the
//! same content, so clients find the content on peers whichever server they asked.
//!
//! How `netsh branchcache set key passphrase=<text>` turns text into the binary string is not
//! part of the specification; the binary string itself is what `netsh branchcache exportkey`
//! carries (encrypted) and what [`ServerPassphrase`] holds.

use std::fmt;

use crate::digest::{Digest, HashAlgorithm};

/// `C` of [MS-PCCRC] 2.2, as Windows and iPXE compute it: "MS_P2P_CACHING" in UTF-16LE with
/// its terminating NUL (the specification calls it ASCII; the captured test vectors show
/// otherwise).
pub const SEGMENT_ID_MAGIC: &[u8] = b"M\0S\0_\0P\0\x32\0P\0_\0C\0A\0C\0H\0I\0N\0G\0\0\0";

/// The server passphrase: the binary string every server of a site must share. Never shown by
/// `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerPassphrase(Vec<u8>);

impl ServerPassphrase {
    /// Shortest passphrase accepted: shorter strings are too easy to guess, and a guessed
    /// passphrase lets anyone compute every segment secret.
    pub const MIN_LEN: usize = 16;
    /// Longest passphrase accepted.
    pub const MAX_LEN: usize = 4096;
    /// Length of a generated passphrase, as Windows makes them.
    pub const GENERATED_LEN: usize = 32;

    /// Wraps the binary string, refusing lengths outside `MIN_LEN..=MAX_LEN`.
    pub fn new(bytes: Vec<u8>) -> Result<Self, PassphraseLengthError> {
        if (Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len()) {
            Ok(Self(bytes))
        } else {
            Err(PassphraseLengthError(bytes.len()))
        }
    }

    /// The server secret `Ks` for Content Information hashed with `algorithm`: the passphrase
    /// hashed with it (SHA-256 for version 1.0, truncated SHA-512 for 2.0).
    ///
    /// ```
    /// use netboot_peerdist::{HashAlgorithm, ServerPassphrase};
    /// let passphrase = ServerPassphrase::new(vec![7; 32]).unwrap();
    /// let ks = passphrase.server_secret(HashAlgorithm::Sha256);
    /// assert_eq!(ks.algorithm(), HashAlgorithm::Sha256);
    /// assert_eq!(format!("{ks:?}"), "ServerSecret(Sha256, <redacted>)");
    /// ```
    #[must_use]
    pub fn server_secret(&self, algorithm: HashAlgorithm) -> ServerSecret {
        ServerSecret {
            algorithm,
            key: algorithm.hash(&self.0),
        }
    }

    /// A short public fingerprint (16 hex digits) that lets an administrator check that two
    /// servers hold the same passphrase without showing it: derived one-way from `Ks`.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let ks = self.server_secret(HashAlgorithm::Sha256);
        let tag = HashAlgorithm::Sha256.hmac(ks.key.as_bytes(), &[b"netboot peerdist fingerprint"]);
        tag.to_string()[..16].to_string()
    }

    /// The raw bytes, for storing the passphrase.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ServerPassphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerPassphrase(<redacted>)")
    }
}

/// A passphrase of an unusable length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server passphrase is {0} bytes; it must have {min} to {max}", min = ServerPassphrase::MIN_LEN, max = ServerPassphrase::MAX_LEN)]
pub struct PassphraseLengthError(pub usize);

/// The server secret `Ks` for one hash algorithm. Never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerSecret {
    algorithm: HashAlgorithm,
    key: Digest,
}

impl ServerSecret {
    /// Uses `key` directly as `Ks` (for a secret that was stored already hashed).
    #[must_use]
    pub fn from_key(algorithm: HashAlgorithm, key: Digest) -> Self {
        Self { algorithm, key }
    }

    /// The hash algorithm this secret belongs to.
    #[must_use]
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The segment secret `Kp = HMAC(Ks, HoD)` of a segment with hash of data `hod`.
    #[must_use]
    pub fn segment_secret(&self, hod: &[u8]) -> Digest {
        self.algorithm.hmac(self.key.as_bytes(), &[hod])
    }
}

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerSecret({:?}, <redacted>)", self.algorithm)
    }
}

/// The segment identifier `HoHoDk = HMAC(Kp, HoD + C)`: the public label peers are asked for.
///
/// ```
/// use netboot_peerdist::{segment_id, HashAlgorithm};
/// let id = segment_id(HashAlgorithm::Sha256, &[1; 32], &[2; 32]);
/// assert_eq!(id.len(), 32);
/// ```
#[must_use]
pub fn segment_id(algorithm: HashAlgorithm, kp: &[u8], hod: &[u8]) -> Digest {
    algorithm.hmac(kp, &[hod, SEGMENT_ID_MAGIC])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_is_utf16le_with_terminator() {
        let expected: Vec<u8> = "MS_P2P_CACHING\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(SEGMENT_ID_MAGIC, expected.as_slice());
    }

    #[test]
    fn passphrase_length_is_bounded_and_never_printed() {
        assert!(ServerPassphrase::new(vec![1; 15]).is_err());
        assert!(ServerPassphrase::new(vec![1; 4097]).is_err());
        let passphrase = ServerPassphrase::new(b"correct horse battery".to_vec()).unwrap();
        assert!(!format!("{passphrase:?}").contains("horse"));
        assert_eq!(passphrase.fingerprint().len(), 16);
        assert_ne!(
            passphrase.fingerprint(),
            ServerPassphrase::new(b"correct horse battery!".to_vec())
                .unwrap()
                .fingerprint()
        );
    }
}
