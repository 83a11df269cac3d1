//! Block encryption: AES-CBC keyed with the first 16, 24 or 32 bytes of the segment secret
//! Kp, a fresh IV per message, PKCS#7 padding. RustCrypto's `aes` (AES-NI when the CPU has
//! it) and `cbc`.

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::block_padding::{NoPadding, Pkcs7};
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};

use super::CryptoAlgorithm;

/// Bytes of an AES-CBC initialisation vector.
pub const IV_LEN: usize = 16;

/// An encrypted block and the IV it was encrypted with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlock {
    /// Ciphertext: the block padded to a multiple of 16 bytes.
    pub ciphertext: Vec<u8>,
    /// The IV.
    pub iv: [u8; IV_LEN],
}

/// Why a block cannot be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Not an AES variant.
    #[error("{0:?} is not an encryption this peer uses")]
    Unsupported(CryptoAlgorithm),
    /// The segment secret is shorter than the key.
    #[error("a {secret}-byte segment secret is too short for a {key}-byte key")]
    ShortSecret {
        /// Secret length.
        secret: usize,
        /// Key length.
        key: usize,
    },
    /// The IV is not 16 bytes.
    #[error("the IV has {0} bytes, not 16")]
    BadIv(usize),
    /// The ciphertext is not whole cipher blocks, or shorter than the block it should hold.
    #[error("{ciphertext} bytes of ciphertext cannot hold a {plain}-byte block")]
    BadLength {
        /// Ciphertext bytes.
        ciphertext: usize,
        /// Expected plaintext bytes.
        plain: usize,
    },
}

fn key(crypto: CryptoAlgorithm, secret: &[u8]) -> Result<&[u8], CryptoError> {
    let len = crypto.key_len().ok_or(CryptoError::Unsupported(crypto))?;
    secret.get(..len).ok_or(CryptoError::ShortSecret {
        secret: secret.len(),
        key: len,
    })
}

/// Encrypts `plaintext` for a `MSG_BLK` with `crypto` and segment secret `secret` (Kp).
///
/// ```
/// use netboot_pccr::retrieval::{seal_block, CryptoAlgorithm};
/// let sealed = seal_block(CryptoAlgorithm::Aes128, &[1; 32], [0; 16], &[0; 65536]).unwrap();
/// assert_eq!(sealed.ciphertext.len(), 65536 + 16); // PKCS#7 adds a whole block
/// assert!(seal_block(CryptoAlgorithm::None, &[1; 32], [0; 16], b"x").is_err());
/// ```
pub fn seal_block(
    crypto: CryptoAlgorithm,
    secret: &[u8],
    iv: [u8; IV_LEN],
    plaintext: &[u8],
) -> Result<SealedBlock, CryptoError> {
    let key = key(crypto, secret)?;
    let ciphertext = match crypto {
        CryptoAlgorithm::Aes128 => encrypt::<Aes128>(key, &iv, plaintext),
        CryptoAlgorithm::Aes192 => encrypt::<Aes192>(key, &iv, plaintext),
        CryptoAlgorithm::Aes256 => encrypt::<Aes256>(key, &iv, plaintext),
        other => return Err(CryptoError::Unsupported(other)),
    };
    Ok(SealedBlock { ciphertext, iv })
}

fn encrypt<C>(key: &[u8], iv: &[u8], plaintext: &[u8]) -> Vec<u8>
where
    cbc::Encryptor<C>: KeyIvInit + BlockEncryptMut,
    C: aes::cipher::BlockCipher + aes::cipher::BlockEncryptMut,
{
    cbc::Encryptor::<C>::new_from_slices(key, iv)
        .expect("key and IV lengths are checked")
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

/// Decrypts a `MSG_BLK` block and returns its first `plain_len` bytes, as a client does: the
/// padding after them is not checked, since the block's hash is.
pub fn open_block(
    crypto: CryptoAlgorithm,
    secret: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    plain_len: usize,
) -> Result<Vec<u8>, CryptoError> {
    let key = key(crypto, secret)?;
    if iv.len() != IV_LEN {
        return Err(CryptoError::BadIv(iv.len()));
    }
    if ciphertext.len() % 16 != 0 || ciphertext.len() < plain_len {
        return Err(CryptoError::BadLength {
            ciphertext: ciphertext.len(),
            plain: plain_len,
        });
    }
    let mut plain = match crypto {
        CryptoAlgorithm::Aes128 => decrypt::<Aes128>(key, iv, ciphertext),
        CryptoAlgorithm::Aes192 => decrypt::<Aes192>(key, iv, ciphertext),
        CryptoAlgorithm::Aes256 => decrypt::<Aes256>(key, iv, ciphertext),
        other => return Err(CryptoError::Unsupported(other)),
    };
    plain.truncate(plain_len);
    Ok(plain)
}

fn decrypt<C>(key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Vec<u8>
where
    cbc::Decryptor<C>: KeyIvInit + BlockDecryptMut,
    C: aes::cipher::BlockCipher + aes::cipher::BlockDecryptMut,
{
    cbc::Decryptor::<C>::new_from_slices(key, iv)
        .expect("key and IV lengths are checked")
        .decrypt_padded_vec_mut::<NoPadding>(ciphertext)
        .expect("whole blocks are checked")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nist_sp800_38a_cbc_aes128_first_block() {
        // F.2.1 CBC-AES128.Encrypt, block #1; the key is the first 16 bytes of the "secret".
        let mut secret = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        secret.extend_from_slice(&[0xee; 16]);
        let iv: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f")
            .unwrap()
            .try_into()
            .unwrap();
        let plain = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        let sealed = seal_block(CryptoAlgorithm::Aes128, &secret, iv, &plain).unwrap();
        assert_eq!(
            hex::encode(&sealed.ciphertext[..16]),
            "7649abac8119b246cee98e9b12e9197d"
        );
        assert_eq!(sealed.ciphertext.len(), 32);
        let opened = open_block(CryptoAlgorithm::Aes128, &secret, &iv, &sealed.ciphertext, 16).unwrap();
        assert_eq!(opened, plain);
    }

    #[test]
    fn every_key_length_round_trips_and_lengths_are_checked() {
        let secret = [0x42; 32];
        for crypto in [
            CryptoAlgorithm::Aes128,
            CryptoAlgorithm::Aes192,
            CryptoAlgorithm::Aes256,
        ] {
            let sealed = seal_block(crypto, &secret, [7; 16], b"thirteen byte").unwrap();
            assert_eq!(sealed.ciphertext.len(), 16);
            assert_eq!(
                open_block(crypto, &secret, &sealed.iv, &sealed.ciphertext, 13).unwrap(),
                b"thirteen byte"
            );
            assert!(open_block(crypto, &secret, &sealed.iv, &sealed.ciphertext, 17).is_err());
            assert!(open_block(crypto, &secret, &[0; 8], &sealed.ciphertext, 13).is_err());
        }
        assert_eq!(
            seal_block(CryptoAlgorithm::Aes256, &[0; 24], [0; 16], b"x"),
            Err(CryptoError::ShortSecret { secret: 24, key: 32 })
        );
    }
}
