//! Per-boot URL tokens.
//!
//! A token proves that this server issued a URL for one purpose ([`Scope`]), to one machine
//! (its MAC), at one client address, until a deadline: files that only the machine a boot
//! decision was made for may fetch (a ConfigMgr media variables file, per-machine task
//! sequence variables), or everything a machine may load after it authenticated.
//!
//! The token is `base64url(claims) "." base64url(HMAC-SHA256(site key, claims))`. The claims
//! are not secret (a MAC, an address, a time, a short context such as a deployment id); the
//! tag is what cannot be forged without the site key. Verification checks the tag in constant
//! time before it looks at any claim, then the scope, the MAC, the address and the expiry the
//! caller observed. Sans-IO: the caller passes the time in and keeps the key (see
//! `netboot_runtime::token_key` for the key file).
//!
//! ```
//! use netboot_token::{Claims, Presented, Scope, TokenError, TokenKey};
//! let key = TokenKey::from_bytes([7; 32]);
//! let scope = Scope::new("handoff").unwrap();
//! let mac = "52:54:00:12:34:56".parse().unwrap();
//! let ip = "10.0.0.20".parse().unwrap();
//! let claims = Claims::new(scope.clone(), mac, ip, 1_000 + 600, "PS120002").unwrap();
//! let token = key.issue(&claims);
//! let here = Presented { scope: &scope, mac, ip, now: 1_000 };
//! assert_eq!(key.verify(token.as_str(), &here).unwrap(), claims);
//! let elsewhere = Presented { ip: "10.0.0.21".parse().unwrap(), ..here };
//! assert_eq!(key.verify(token.as_str(), &elsewhere), Err(TokenError::WrongAddress));
//! ```

#![deny(missing_docs)]

use std::fmt;
use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use netboot_core::MacAddr;
use sha2::Sha256;

/// Length of a site key in bytes.
pub const KEY_LEN: usize = 32;
/// Longest accepted token text; anything longer is refused before it is decoded.
pub const MAX_TOKEN_LEN: usize = 400;
/// Longest [`Scope`].
pub const MAX_SCOPE_LEN: usize = 32;
/// Longest [`Claims::context`].
pub const MAX_CONTEXT_LEN: usize = 64;

/// Format version inside the claims; a new layout gets a new number.
const VERSION: u8 = 1;
/// Domain separation: a tag made for anything else with the same key never verifies here.
const TAG_PREFIX: &[u8] = b"netboot-boot-token\0";
const TAG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The site key. Its `Debug` output never shows the bytes.
#[derive(Clone)]
pub struct TokenKey([u8; KEY_LEN]);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// A key file that does not hold a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a token key is {KEY_LEN} bytes written as {} hexadecimal digits", KEY_LEN * 2)]
pub struct KeyFormatError;

impl TokenKey {
    /// A key from random bytes the caller drew from the operating system.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Reads the key file format: 64 hexadecimal digits, surrounding whitespace ignored.
    pub fn from_hex(text: &str) -> Result<Self, KeyFormatError> {
        let text = text.trim();
        if text.len() != KEY_LEN * 2 {
            return Err(KeyFormatError);
        }
        let mut bytes = [0u8; KEY_LEN];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| KeyFormatError)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| KeyFormatError)?;
        }
        Ok(Self(bytes))
    }

    /// The key file format: 64 lower-case hexadecimal digits and a newline.
    pub fn to_hex(&self) -> String {
        let mut out: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        out.push('\n');
        out
    }

    fn mac(&self) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(TAG_PREFIX);
        mac
    }

    /// Signs `claims`.
    pub fn issue(&self, claims: &Claims) -> Token {
        let payload = claims.encode();
        let mut mac = self.mac();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        let mut text = URL_SAFE_NO_PAD.encode(&payload);
        text.push('.');
        text.push_str(&URL_SAFE_NO_PAD.encode(tag));
        Token(text)
    }

    /// Checks `token` against what the caller observed; returns the claims when it holds.
    ///
    /// The tag is compared in constant time before any claim is read, so a forged token
    /// learns nothing about which claim failed.
    pub fn verify(&self, token: &str, presented: &Presented<'_>) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        if tag.len() != TAG_LEN {
            return Err(TokenError::Malformed);
        }
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_slice(&tag).map_err(|_| TokenError::BadSignature)?;
        let claims = Claims::decode(&payload).ok_or(TokenError::Malformed)?;
        if claims.scope != *presented.scope {
            return Err(TokenError::WrongScope);
        }
        if claims.mac != presented.mac {
            return Err(TokenError::WrongMachine);
        }
        if canonical(claims.ip) != canonical(presented.ip) {
            return Err(TokenError::WrongAddress);
        }
        if presented.now >= claims.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// A signed token: URL-safe text (`[A-Za-z0-9_-]` and one `.`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Token(String);

impl Token {
    /// The token text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a token may be used for (`handoff`, `auth`, ...): lower-case letters, digits and
/// `-`, at most [`MAX_SCOPE_LEN`] characters. A token of one scope never verifies for another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(String);

impl Scope {
    /// A scope name, or `None` when it has other characters or the wrong length.
    pub fn new(name: &str) -> Option<Self> {
        let valid = !name.is_empty()
            && name.len() <= MAX_SCOPE_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        valid.then(|| Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a token states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Its purpose.
    pub scope: Scope,
    /// The machine it was issued to.
    pub mac: MacAddr,
    /// The client address the machine had.
    pub ip: IpAddr,
    /// Seconds since the Unix epoch after which it is refused.
    pub expires_at: u64,
    /// A short, non-secret detail the issuer needs back (e.g. the boot action id): at most
    /// [`MAX_CONTEXT_LEN`] characters of `[A-Za-z0-9._-]`.
    pub context: String,
}

/// Claims that cannot be put into a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a token context is at most {MAX_CONTEXT_LEN} characters of letters, digits, `.`, `_` and `-`")]
pub struct ContextError;

impl Claims {
    /// Claims with a checked context.
    pub fn new(
        scope: Scope,
        mac: MacAddr,
        ip: IpAddr,
        expires_at: u64,
        context: &str,
    ) -> Result<Self, ContextError> {
        let valid = context.len() <= MAX_CONTEXT_LEN
            && context
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !valid {
            return Err(ContextError);
        }
        Ok(Self {
            scope,
            mac,
            ip: canonical(ip),
            expires_at,
            context: context.to_owned(),
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(VERSION);
        push_short(&mut out, self.scope.0.as_bytes());
        out.extend_from_slice(&self.mac.0);
        match canonical(self.ip) {
            IpAddr::V4(v4) => {
                out.push(4);
                out.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                out.push(6);
                out.extend_from_slice(&v6.octets());
            }
        }
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        push_short(&mut out, self.context.as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader(bytes);
        if reader.take(1)?[0] != VERSION {
            return None;
        }
        let scope = Scope::new(std::str::from_utf8(reader.short()?).ok()?)?;
        let mac = MacAddr(reader.take(6)?.try_into().ok()?);
        let ip = match reader.take(1)?[0] {
            4 => IpAddr::from(<[u8; 4]>::try_from(reader.take(4)?).ok()?),
            6 => IpAddr::from(<[u8; 16]>::try_from(reader.take(16)?).ok()?),
            _ => return None,
        };
        let expires_at = u64::from_be_bytes(reader.take(8)?.try_into().ok()?);
        let context = std::str::from_utf8(reader.short()?).ok()?;
        if !reader.0.is_empty() {
            return None;
        }
        Self::new(scope, mac, ip, expires_at, context).ok()
    }
}

/// What the verifier observed about the request carrying a token.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The scope the request needs.
    pub scope: &'a Scope,
    /// The MAC the client reports.
    pub mac: MacAddr,
    /// The address the request came from.
    pub ip: IpAddr,
    /// Seconds since the Unix epoch.
    pub now: u64,
}

/// Why a token was refused. The messages are safe to log and to show a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of this format.
    #[error("malformed token")]
    Malformed,
    /// Not signed with this site's key, or altered.
    #[error("token signature does not match")]
    BadSignature,
    /// Issued for another purpose.
    #[error("token issued for another purpose")]
    WrongScope,
    /// Issued to another machine.
    #[error("token issued to another machine")]
    WrongMachine,
    /// Presented from another client address.
    #[error("token presented from another address")]
    WrongAddress,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
}

/// IPv4-mapped IPv6 addresses (how dual-stack sockets report IPv4 peers) count as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn push_short(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u8::try_from(bytes.len()).expect("scopes and contexts are checked to be short");
    out.push(len);
    out.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn short(&mut self) -> Option<&'a [u8]> {
        let len = usize::from(self.take(1)?[0]);
        self.take(len)
    }
}

/// Entry points for `cargo fuzz` and the corpus test; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use super::{Presented, Scope, TokenKey};

    /// Verifies arbitrary text as a token: it must be refused (or accepted only when it is a
    /// real token) without panicking.
    ///
    /// # Panics
    /// When a token that was not issued with the key verifies; that is the bug to find.
    pub fn verify_untrusted(data: &[u8]) {
        let key = TokenKey::from_bytes([0x42; super::KEY_LEN]);
        let scope = Scope::new("handoff").expect("valid scope");
        let text = String::from_utf8_lossy(data);
        let presented = Presented {
            scope: &scope,
            mac: netboot_core::MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            ip: std::net::IpAddr::from([10, 0, 0, 20]),
            now: 0,
        };
        if let Ok(claims) = key.verify(&text, &presented) {
            assert_eq!(key.issue(&claims).as_str(), text, "only issued tokens verify");
        }
        let _ = TokenKey::from_hex(&text);
    }
}

#[cfg(test)]
mod tests;
