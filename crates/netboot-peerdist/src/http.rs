//! The PeerDist HTTP extension ([MS-PCCRTP]): which requests want Content Information and in
//! which versions, and the headers of the answer.
//!
//! A client that accepts Content Information sends `Accept-Encoding: peerdist`,
//! `X-P2P-PeerDist: Version=1.1` and (with 1.1) `X-P2P-PeerDistEx:
//! MinContentInformation=1.0, MaxContentInformation=2.0`. The server answers
//! `Content-Encoding: peerdist` with `X-P2P-PeerDist: Version=1.1, ContentLength=<bytes of
//! the content>` and the Content Information as the body. A block the client found on no peer
//! it asks for as an ordinary range request carrying `X-P2P-PeerDist: Version=1.1,
//! MissingDataRequest=true`.
//!
//! ```
//! use netboot_peerdist::http::{classify_request, PeerDistRequest, response_peerdist_header};
//! use netboot_peerdist::Version;
//! let request = classify_request(
//!     Some("peerdist"),
//!     Some("Version=1.1"),
//!     Some("MinContentInformation=1.0, MaxContentInformation=2.0"),
//! );
//! assert_eq!(request.choose(&Version::ALL), Some(Version::V2));
//! let PeerDistRequest::ContentInformation { encoding, .. } = request else { unreachable!() };
//! assert_eq!(response_peerdist_header(encoding, 104_857_600), "Version=1.1, ContentLength=104857600");
//! let missing = classify_request(None, Some("Version=1.1, MissingDataRequest=true"), None);
//! assert_eq!(missing, PeerDistRequest::MissingData);
//! ```

use std::fmt;

use crate::wire::Version;

/// The content coding name.
pub const CONTENT_ENCODING: &str = "peerdist";
/// Name of the PeerDist parameters header.
pub const X_P2P_PEERDIST: &str = "X-P2P-PeerDist";
/// Name of the PeerDist extended parameters header.
pub const X_P2P_PEERDIST_EX: &str = "X-P2P-PeerDistEx";
/// Most parameters read from one header; the rest are ignored.
const MAX_PARAMS: usize = 16;

/// A `major.minor` version number as the headers carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionNumber {
    /// Major.
    pub major: u16,
    /// Minor.
    pub minor: u16,
}

impl VersionNumber {
    /// PeerDist 1.0: Content Information 1.0 only.
    pub const V1_0: Self = Self { major: 1, minor: 0 };
    /// PeerDist 1.1: adds `X-P2P-PeerDistEx` and Content Information 2.0.
    pub const V1_1: Self = Self { major: 1, minor: 1 };

    /// Parses `"1.1"`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let (major, minor) = text.trim().split_once('.')?;
        let number =
            |s: &str| (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?;
        Some(Self {
            major: number(major)?,
            minor: number(minor)?,
        })
    }

    /// The version number of a Content Information version.
    #[must_use]
    pub fn of(version: Version) -> Self {
        let (major, minor) = version.number();
        Self {
            major: major.into(),
            minor: minor.into(),
        }
    }
}

impl fmt::Display for VersionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The `Name=Value, Name=Value` parameters of the PeerDist headers, in order.
///
/// ```
/// use netboot_peerdist::http::Params;
/// let params = Params::parse("Version=1.1, MissingDataRequest=true");
/// assert_eq!(params.get("missingdatarequest"), Some("true"));
/// assert_eq!(params.to_string(), "Version=1.1, MissingDataRequest=true");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Params<'a> {
    /// Parses a header value; items without `=` and items past the sixteenth are ignored.
    #[must_use]
    pub fn parse(value: &'a str) -> Self {
        Self(
            value
                .split(',')
                .filter_map(|item| item.split_once('='))
                .map(|(name, value)| (name.trim(), value.trim()))
                .filter(|(name, _)| !name.is_empty())
                .take(MAX_PARAMS)
                .collect(),
        )
    }

    /// The value of the first parameter called `name` (ignoring case).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The parameters in order.
    #[must_use]
    pub fn items(&self) -> &[(&'a str, &'a str)] {
        &self.0
    }
}

impl fmt::Display for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={value}")?;
        }
        Ok(())
    }
}

/// What a request asks of PeerDist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerDistRequest {
    /// Nothing: an ordinary request.
    None,
    /// A range the client could get from no peer (`MissingDataRequest=true`): answered with
    /// the bytes like any range request.
    MissingData,
    /// The client accepts Content Information with a version in `min..=max`.
    ContentInformation {
        /// The PeerDist version the client speaks (1.0 or 1.1), echoed in the answer.
        encoding: VersionNumber,
        /// Oldest Content Information version it accepts.
        min: VersionNumber,
        /// Newest Content Information version it accepts.
        max: VersionNumber,
    },
}

impl PeerDistRequest {
    /// The newest of `available` the client accepts, if any.
    #[must_use]
    pub fn choose(&self, available: &[Version]) -> Option<Version> {
        let Self::ContentInformation { min, max, .. } = self else {
            return None;
        };
        available
            .iter()
            .copied()
            .filter(|v| (*min..=*max).contains(&VersionNumber::of(*v)))
            .max()
    }
}

/// Classifies a request by its `Accept-Encoding`, `X-P2P-PeerDist` and `X-P2P-PeerDistEx`
/// header values.
///
/// Without `X-P2P-PeerDistEx` (or with PeerDist 1.0) the client gets Content Information 1.0
/// only, as [MS-PCCRTP] 3.2.5.1 requires; a malformed version or range means no PeerDist at all.
#[must_use]
pub fn classify_request(
    accept_encoding: Option<&str>,
    peerdist: Option<&str>,
    peerdist_ex: Option<&str>,
) -> PeerDistRequest {
    let Some(params) = peerdist.map(Params::parse) else {
        return PeerDistRequest::None;
    };
    if params
        .get("MissingDataRequest")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return PeerDistRequest::MissingData;
    }
    if !accept_encoding.is_some_and(accepts_peerdist) {
        return PeerDistRequest::None;
    }
    let Some(encoding) = params.get("Version").and_then(VersionNumber::parse) else {
        return PeerDistRequest::None;
    };
    if encoding < VersionNumber::V1_0 {
        return PeerDistRequest::None;
    }
    let v1_only = PeerDistRequest::ContentInformation {
        encoding: encoding.min(VersionNumber::V1_1),
        min: VersionNumber::V1_0,
        max: VersionNumber::V1_0,
    };
    let ex = match peerdist_ex {
        Some(ex) if encoding >= VersionNumber::V1_1 => Params::parse(ex),
        _ => return v1_only,
    };
    let bound = |name| ex.get(name).and_then(VersionNumber::parse);
    match (bound("MinContentInformation"), bound("MaxContentInformation")) {
        (Some(min), Some(max)) if min <= max => PeerDistRequest::ContentInformation {
            encoding: VersionNumber::V1_1,
            min,
            max,
        },
        _ => PeerDistRequest::None,
    }
}

/// Whether an `Accept-Encoding` value lists `peerdist` with a non-zero quality.
#[must_use]
pub fn accepts_peerdist(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|coding| {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            p.trim().split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
            })
        });
        name.eq_ignore_ascii_case(CONTENT_ENCODING) && !refused
    })
}

/// The `X-P2P-PeerDist` value of a PeerDist answer: the version spoken and the length of the
/// content the Content Information describes.
#[must_use]
pub fn response_peerdist_header(encoding: VersionNumber, content_length: u64) -> String {
    format!("Version={encoding}, ContentLength={content_length}")
}

/// The request headers of a client that accepts Content Information `min..=max`, as iPXE
/// sends them (for a peer or cache that fetches Content Information from a server).
#[must_use]
pub fn request_headers(min: Version, max: Version) -> [(&'static str, String); 3] {
    [
        ("Accept-Encoding", CONTENT_ENCODING.to_string()),
        (X_P2P_PEERDIST, format!("Version={}", VersionNumber::V1_1)),
        (
            X_P2P_PEERDIST_EX,
            format!("MinContentInformation={min}, MaxContentInformation={max}"),
        ),
    ]
}

/// The content length announced in a PeerDist answer's `X-P2P-PeerDist` value.
#[must_use]
pub fn response_content_length(peerdist: &str) -> Option<u64> {
    let value = Params::parse(peerdist).get("ContentLength")?;
    value
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| value.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPXE_EX: &str = "MinContentInformation=1.0, MaxContentInformation=2.0";

    #[test]
    fn ipxe_requests() {
        let full = classify_request(Some("peerdist"), Some("Version=1.1"), Some(IPXE_EX));
        assert_eq!(full.choose(&Version::ALL), Some(Version::V2));
        assert_eq!(full.choose(&[Version::V1]), Some(Version::V1));
        assert_eq!(
            classify_request(None, Some("Version=1.1, MissingDataRequest=true"), None),
            PeerDistRequest::MissingData
        );
    }

    #[test]
    fn version_negotiation_follows_the_specification() {
        let v1_only = |r: PeerDistRequest| r.choose(&Version::ALL) == Some(Version::V1);
        // Windows 7 clients: PeerDist 1.0, no extended header.
        assert!(v1_only(classify_request(
            Some("gzip, deflate, peerdist"),
            Some("Version=1.0"),
            None
        )));
        // 1.1 without the extended header: 1.0 only.
        assert!(v1_only(classify_request(
            Some("peerdist"),
            Some("Version=1.1"),
            None
        )));
        // 1.0 ignores an extended header.
        assert!(v1_only(classify_request(
            Some("peerdist"),
            Some("Version=1.0"),
            Some(IPXE_EX)
        )));
        let only_2 = classify_request(
            Some("peerdist"),
            Some("Version=1.1"),
            Some("MinContentInformation=2.0, MaxContentInformation=2.0"),
        );
        assert_eq!(only_2.choose(&[Version::V1]), None);
        let future = classify_request(
            Some("peerdist"),
            Some("Version=1.1"),
            Some("MinContentInformation=3.0, MaxContentInformation=4.0"),
        );
        assert_eq!(future.choose(&Version::ALL), None);
    }

    #[test]
    fn not_peerdist() {
        for (accept, peerdist, ex) in [
            (None, None, None),
            (Some("peerdist"), None, None),
            (Some("gzip"), Some("Version=1.1"), Some(IPXE_EX)),
            (Some("peerdist;q=0"), Some("Version=1.1"), Some(IPXE_EX)),
            (Some("peerdist"), Some("Version=x"), Some(IPXE_EX)),
            (Some("peerdist"), Some("Version=0.9"), None),
            (
                Some("peerdist"),
                Some("Version=1.1"),
                Some("MinContentInformation=2.0, MaxContentInformation=1.0"),
            ),
            (
                Some("peerdist"),
                Some("Version=1.1"),
                Some("MaxContentInformation=2.0"),
            ),
        ] {
            assert_eq!(
                classify_request(accept, peerdist, ex).choose(&Version::ALL),
                None,
                "{accept:?} {peerdist:?} {ex:?}"
            );
        }
    }

    #[test]
    fn response_header_round_trip() {
        let header = response_peerdist_header(VersionNumber::V1_1, 184_946);
        assert_eq!(response_content_length(&header), Some(184_946));
        assert_eq!(response_content_length("Version=1.1, ContentLength=-1"), None);
        let [accept, peerdist, ex] = request_headers(Version::V1, Version::V2);
        let request = classify_request(Some(&accept.1), Some(&peerdist.1), Some(&ex.1));
        assert_eq!(request.choose(&Version::ALL), Some(Version::V2));
    }
}
