//! Protection of the state-changing requests (POST) against cross-site requests.
//!
//! A browser that has the basic-auth credentials sends them with any request to this origin,
//! also one a foreign page triggers with a form. Two checks stop that:
//!
//! * every POST is refused when the browser says it comes from another site
//!   (`Sec-Fetch-Site`), or when its `Origin` is not this host; scripts (curl) send neither;
//! * the page's forms also carry a token only pages of this interface contain:
//!   HMAC-SHA256 of the action and the machine, keyed by a hash of the configured
//!   credentials. It is the same on every host sharing the credentials and across restarts,
//!   and cannot be computed without them.

use axum::http::{header, HeaderMap, Uri};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::auth::constant_time_eq;

/// The key of the form tokens.
#[derive(Clone)]
pub(crate) struct FormKey([u8; 32]);

impl std::fmt::Debug for FormKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormKey(***)")
    }
}

impl FormKey {
    /// A key derived from the credentials' secrets.
    pub(crate) fn derive(secrets: &[&str]) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"netboot admin form key");
        for secret in secrets {
            hash.update([0]);
            hash.update(secret.as_bytes());
        }
        Self(hash.finalize().into())
    }

    /// The token of a form doing `action` to `subject`.
    pub(crate) fn token(&self, action: &str, subject: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(action.as_bytes());
        mac.update(&[0]);
        mac.update(subject.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `given` is the token of `action` on `subject`.
    pub(crate) fn verify(&self, action: &str, subject: &str, given: &str) -> bool {
        constant_time_eq(self.token(action, subject).as_bytes(), given.as_bytes())
    }
}

/// True when the browser reports that the request comes from another site, or names an
/// origin other than this host.
pub(crate) fn cross_site(headers: &HeaderMap, uri: &Uri) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")));
    match (origin_host, host) {
        (Some(origin_host), Some(host)) => !origin_host.eq_ignore_ascii_case(host),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        let uri: Uri = "/admin/machines/x/clear-required".parse().unwrap();
        let host = ("host", "pxe.example:8443");
        assert!(!cross_site(&headers(&[host]), &uri), "curl sends neither header");
        assert!(!cross_site(
            &headers(&[host, ("sec-fetch-site", "same-origin")]),
            &uri
        ));
        assert!(cross_site(
            &headers(&[host, ("sec-fetch-site", "cross-site")]),
            &uri
        ));
        assert!(cross_site(
            &headers(&[host, ("sec-fetch-site", "same-site")]),
            &uri
        ));
        assert!(!cross_site(
            &headers(&[host, ("origin", "https://PXE.example:8443")]),
            &uri
        ));
        assert!(cross_site(
            &headers(&[host, ("origin", "https://evil.example")]),
            &uri
        ));
        assert!(cross_site(&headers(&[host, ("origin", "null")]), &uri));
        assert!(cross_site(&headers(&[("origin", "https://evil.example")]), &uri));
    }

    #[test]
    fn tokens_depend_on_key_action_and_subject() {
        let key = FormKey::derive(&["token", "ops", "pw"]);
        let token = key.token("clear-required", "52:54:00:12:34:56");
        assert_eq!(token.len(), 64);
        assert!(key.verify("clear-required", "52:54:00:12:34:56", &token));
        assert!(!key.verify("clear-required", "52:54:00:12:34:57", &token));
        assert!(!key.verify("other", "52:54:00:12:34:56", &token));
        assert!(!FormKey::derive(&["token2", "ops", "pw"]).verify(
            "clear-required",
            "52:54:00:12:34:56",
            &token
        ));
        assert_eq!(
            FormKey::derive(&["token", "ops", "pw"]).token("clear-required", "52:54:00:12:34:56"),
            token,
            "the same on every host with these credentials"
        );
        assert!(!format!("{key:?}").contains(&token[..8]));
    }
}
