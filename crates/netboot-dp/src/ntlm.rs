//! NTLMv2 HTTP authentication, client side, per [MS-NLMP]; sans-IO.
//!
//! HTTP NTLM authenticates a connection: the client sends a NEGOTIATE_MESSAGE, the server
//! answers `401` with a CHALLENGE_MESSAGE, and the client's AUTHENTICATE_MESSAGE on the same
//! connection proves the password. This module builds and parses those messages; the caller
//! owns the connection, the clock and the random client challenge.
//!
//! Only NTLMv2 is spoken (NTLMv1 and LM are refused by current Windows defaults and are
//! weak). Not implemented: message integrity (MIC), signing and sealing, which HTTP does not
//! use, and channel binding (IIS "Extended Protection" set to Required refuses this client).
//!
//! Written here rather than taken from a crate: `ntlmclient` draws its client challenge
//! from its own RNG and clock (so its output cannot be checked against the specification's
//! test vectors) and ships no tests; `sspi` needs a newer Rust than this workspace supports
//! and brings Kerberos and CredSSP. The hashes come from the RustCrypto crates (`md4`,
//! `md-5`, `hmac`); the tests replay [MS-NLMP] 4.2.4.
//!
//! [MS-NLMP]: https://learn.microsoft.com/openspecs/windows_protocols/ms-nlmp/

use hmac::{Hmac, Mac as _};
use md4::{Digest as _, Md4};
use md5::Md5;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
const NEGOTIATE: u32 = 1;
const CHALLENGE: u32 = 2;
const AUTHENTICATE: u32 = 3;

/// NEGOTIATE_UNICODE | NEGOTIATE_OEM | REQUEST_TARGET | NEGOTIATE_NTLM | ALWAYS_SIGN |
/// EXTENDED_SESSIONSECURITY | NEGOTIATE_128 | NEGOTIATE_56.
pub const CLIENT_FLAGS: u32 = 0x0000_0001
    | 0x0000_0002
    | 0x0000_0004
    | 0x0000_0200
    | 0x0000_8000
    | 0x0008_0000
    | 0x2000_0000
    | 0x8000_0000;
const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
/// AV pair ids.
const AV_EOL: u16 = 0;
const AV_TIMESTAMP: u16 = 7;
/// The fixed part of an AUTHENTICATE_MESSAGE without Version and MIC.
const AUTHENTICATE_HEADER: usize = 64;

/// A message that is not what it claims to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NtlmError {
    /// Wrong signature, type or a field pointing outside the message.
    #[error("malformed NTLM {0} message")]
    Malformed(&'static str),
    /// The server does not speak Unicode NTLM.
    #[error("the server did not agree to Unicode NTLM")]
    NotUnicode,
}

/// The user whose password answers the challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (`pxe-reader`), without the domain.
    pub user: String,
    /// NetBIOS domain (`CORP`), or empty for a local account.
    pub domain: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The NEGOTIATE_MESSAGE (no domain or workstation supplied).
pub fn negotiate_message() -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&NEGOTIATE.to_le_bytes());
    out.extend_from_slice(&CLIENT_FLAGS.to_le_bytes());
    out.extend_from_slice(&[0; 16]);
    out
}

/// What a CHALLENGE_MESSAGE carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The server's flags.
    pub flags: u32,
    /// The 8-byte server challenge.
    pub server_challenge: [u8; 8],
    /// The target information (AV pairs, up to and including MsvAvEOL), as sent.
    pub target_info: Vec<u8>,
}

impl Challenge {
    /// Parses a CHALLENGE_MESSAGE.
    pub fn parse(bytes: &[u8]) -> Result<Self, NtlmError> {
        const KIND: &str = "CHALLENGE";
        if bytes.len() < 48 || &bytes[..8] != SIGNATURE || le32(bytes, 8) != Some(CHALLENGE) {
            return Err(NtlmError::Malformed(KIND));
        }
        let flags = le32(bytes, 20).ok_or(NtlmError::Malformed(KIND))?;
        let server_challenge: [u8; 8] = bytes[24..32].try_into().expect("length checked");
        let target_info = field(bytes, 40).ok_or(NtlmError::Malformed(KIND))?.to_vec();
        av_pairs(&target_info).ok_or(NtlmError::Malformed(KIND))?;
        Ok(Self {
            flags,
            server_challenge,
            target_info,
        })
    }

    /// Encodes a CHALLENGE_MESSAGE (what a server sends; used by test servers).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + self.target_info.len());
        out.extend_from_slice(SIGNATURE);
        out.extend_from_slice(&CHALLENGE.to_le_bytes());
        out.extend_from_slice(&[0; 8]); // no target name
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.server_challenge);
        out.extend_from_slice(&[0; 8]);
        let len = u16::try_from(self.target_info.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&48u32.to_le_bytes());
        out.extend_from_slice(&self.target_info[..usize::from(len)]);
        out
    }

    /// The server's MsvAvTimestamp, when it sent one.
    pub fn timestamp(&self) -> Option<u64> {
        av_pairs(&self.target_info)?
            .into_iter()
            .find(|(id, value)| *id == AV_TIMESTAMP && value.len() == 8)
            .map(|(_, value)| u64::from_le_bytes(value.try_into().expect("length checked")))
    }
}

/// The AUTHENTICATE_MESSAGE answering `challenge`.
///
/// `now` is the time as a Windows FILETIME (100 ns since 1601), used when the server sent no
/// timestamp; `client_challenge` must be 8 fresh random bytes.
pub fn authenticate_message(
    challenge: &Challenge,
    credentials: &Credentials,
    workstation: &str,
    now: u64,
    client_challenge: [u8; 8],
) -> Result<Vec<u8>, NtlmError> {
    if challenge.flags & NEGOTIATE_UNICODE == 0 {
        return Err(NtlmError::NotUnicode);
    }
    let server_time = challenge.timestamp();
    let responses = ntlmv2_responses(
        credentials,
        &challenge.server_challenge,
        &challenge.target_info,
        server_time.unwrap_or(now),
        client_challenge,
    );
    // With a server timestamp the LM response is replaced by zeros ([MS-NLMP] 3.1.5.1.2).
    let lm = if server_time.is_some() {
        vec![0; 24]
    } else {
        responses.lm
    };
    let flags = CLIENT_FLAGS & challenge.flags;
    let domain = utf16(&credentials.domain);
    let user = utf16(&credentials.user);
    let workstation = utf16(workstation);
    let payloads = [&lm[..], &responses.nt[..], &domain, &user, &workstation, &[]];
    let mut header = Vec::with_capacity(AUTHENTICATE_HEADER);
    header.extend_from_slice(SIGNATURE);
    header.extend_from_slice(&AUTHENTICATE.to_le_bytes());
    let mut payload = Vec::new();
    for data in payloads {
        let len = u16::try_from(data.len()).map_err(|_| NtlmError::Malformed("AUTHENTICATE"))?;
        let offset = u32::try_from(AUTHENTICATE_HEADER + payload.len()).expect("small");
        header.extend_from_slice(&len.to_le_bytes());
        header.extend_from_slice(&len.to_le_bytes());
        header.extend_from_slice(&offset.to_le_bytes());
        payload.extend_from_slice(data);
    }
    header.extend_from_slice(&flags.to_le_bytes());
    header.extend_from_slice(&payload);
    Ok(header)
}

/// What the client proves, and the fields a server reads back to check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responses {
    /// LmChallengeResponse (LMv2).
    pub lm: Vec<u8>,
    /// NtChallengeResponse: NTProofStr followed by the blob.
    pub nt: Vec<u8>,
    /// SessionBaseKey.
    pub session_base_key: [u8; 16],
}

/// NTLMv2 responses ([MS-NLMP] 3.3.2).
pub fn ntlmv2_responses(
    credentials: &Credentials,
    server_challenge: &[u8; 8],
    target_info: &[u8],
    time: u64,
    client_challenge: [u8; 8],
) -> Responses {
    let key = ntowf_v2(credentials);
    let mut temp = vec![1, 1, 0, 0, 0, 0, 0, 0];
    temp.extend_from_slice(&time.to_le_bytes());
    temp.extend_from_slice(&client_challenge);
    temp.extend_from_slice(&[0; 4]);
    temp.extend_from_slice(target_info);
    temp.extend_from_slice(&[0; 4]);
    let nt_proof = hmac_md5(&key, &[server_challenge, &temp]);
    let mut nt = nt_proof.to_vec();
    nt.extend_from_slice(&temp);
    let mut lm = hmac_md5(&key, &[server_challenge, &client_challenge]).to_vec();
    lm.extend_from_slice(&client_challenge);
    Responses {
        lm,
        nt,
        session_base_key: hmac_md5(&key, &[&nt_proof]),
    }
}

/// What a server reads from an AUTHENTICATE_MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate {
    /// LmChallengeResponse.
    pub lm: Vec<u8>,
    /// NtChallengeResponse.
    pub nt: Vec<u8>,
    /// Domain name.
    pub domain: String,
    /// User name.
    pub user: String,
}

impl Authenticate {
    /// Parses an AUTHENTICATE_MESSAGE (for test servers standing in for a DP).
    pub fn parse(bytes: &[u8]) -> Result<Self, NtlmError> {
        const KIND: &str = "AUTHENTICATE";
        if bytes.len() < AUTHENTICATE_HEADER
            || &bytes[..8] != SIGNATURE
            || le32(bytes, 8) != Some(AUTHENTICATE)
        {
            return Err(NtlmError::Malformed(KIND));
        }
        let text = |offset| {
            let raw = field(bytes, offset).ok_or(NtlmError::Malformed(KIND))?;
            from_utf16(raw).ok_or(NtlmError::Malformed(KIND))
        };
        Ok(Self {
            lm: field(bytes, 12).ok_or(NtlmError::Malformed(KIND))?.to_vec(),
            nt: field(bytes, 20).ok_or(NtlmError::Malformed(KIND))?.to_vec(),
            domain: text(28)?,
            user: text(36)?,
        })
    }

    /// Whether the NTLMv2 response proves `password` for `server_challenge`.
    pub fn proves(&self, password: &str, server_challenge: &[u8; 8]) -> bool {
        if self.nt.len() < 16 + 28 {
            return false;
        }
        let credentials = Credentials {
            user: self.user.clone(),
            domain: self.domain.clone(),
            password: password.to_owned(),
        };
        let key = ntowf_v2(&credentials);
        let (proof, temp) = self.nt.split_at(16);
        let mut mac = Hmac::<Md5>::new_from_slice(&key).expect("any key length");
        mac.update(server_challenge);
        mac.update(temp);
        mac.verify_slice(proof).is_ok()
    }
}

/// NTOWFv2: HMAC-MD5 of MD4(password) over UPPER(user) + domain, all UTF-16LE.
fn ntowf_v2(credentials: &Credentials) -> [u8; 16] {
    let password_hash: [u8; 16] = Md4::digest(utf16(&credentials.password)).into();
    let mut identity = utf16(&credentials.user.to_uppercase());
    identity.extend_from_slice(&utf16(&credentials.domain));
    hmac_md5(&password_hash, &[&identity])
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = Hmac::<Md5>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn from_utf16(bytes: &[u8]) -> Option<String> {
    if bytes.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

fn le16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The payload a `(len, maxlen, offset)` field at `at` points to, when it lies inside `bytes`.
fn field(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let len = usize::from(le16(bytes, at)?);
    let offset = usize::try_from(le32(bytes, at + 4)?).ok()?;
    bytes.get(offset..offset.checked_add(len)?)
}

/// AV pairs up to MsvAvEOL; `None` when one runs past the end or EOL is missing.
fn av_pairs(mut bytes: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let mut pairs = Vec::new();
    loop {
        let id = le16(bytes, 0)?;
        let len = usize::from(le16(bytes, 2)?);
        if id == AV_EOL {
            return Some(pairs);
        }
        let value = bytes.get(4..4 + len)?;
        pairs.push((id, value));
        bytes = &bytes[4 + len..];
    }
}

/// Entry points for `cargo fuzz` and the corpus test; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses arbitrary bytes as a CHALLENGE and an AUTHENTICATE message; a parsed challenge
    /// must encode back to a message that parses to the same challenge, and answering it must
    /// not panic.
    ///
    /// # Panics
    /// When a round trip changes the message; that is the bug to find.
    pub fn parse_untrusted(data: &[u8]) {
        if let Ok(challenge) = super::Challenge::parse(data) {
            let again = super::Challenge::parse(&challenge.encode()).expect("re-encoded challenge parses");
            assert_eq!(again, challenge);
            let credentials = super::Credentials {
                user: "u".into(),
                domain: "d".into(),
                password: "p".into(),
            };
            let _ = super::authenticate_message(&challenge, &credentials, "W", 0, [0; 8]);
        }
        let _ = super::Authenticate::parse(data);
    }
}

#[cfg(test)]
#[path = "ntlm_tests.rs"]
mod tests;
