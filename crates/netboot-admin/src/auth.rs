//! Admin credentials: a bearer token, basic auth, or both. Nothing is ever served open.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use netboot_config::Config;
use std::sync::Arc;

/// Credentials that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// A `token_file` or `password_file` could not be read.
    #[error("reading {key} {path}: {source}")]
    Read {
        /// The configuration key naming the file.
        key: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No credential is configured: the interface would be open to anyone.
    #[error("[admin] needs token, token_file or username/password")]
    Missing,
    /// A credential file is empty.
    #[error("{0} is empty")]
    Empty(&'static str),
}

/// Who may use the admin interface.
#[derive(Clone, Default)]
pub struct Credentials {
    token: Option<String>,
    basic: Option<(String, String)>,
    /// Whether `/metrics` is served without credentials.
    pub metrics_public: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("basic_user", &self.basic.as_ref().map(|(u, _)| u))
            .field("metrics_public", &self.metrics_public)
            .finish()
    }
}

fn first_line(key: &'static str, path: &std::path::Path) -> Result<String, CredentialsError> {
    let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Read {
        key,
        path: path.into(),
        source,
    })?;
    let line = text.lines().next().unwrap_or_default().trim().to_string();
    if line.is_empty() {
        return Err(CredentialsError::Empty(key));
    }
    Ok(line)
}

impl Credentials {
    /// A bearer token.
    #[must_use]
    pub fn token(token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            ..Self::default()
        }
    }

    /// A basic-auth user.
    #[must_use]
    pub fn basic(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            basic: Some((user.into(), password.into())),
            ..Self::default()
        }
    }

    /// Adds a basic-auth user to a token (either is then accepted).
    #[must_use]
    pub fn with_basic(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic = Some((user.into(), password.into()));
        self
    }

    /// Reads `[admin]`, including the token and password files.
    pub fn from_config(config: &Config) -> Result<Self, CredentialsError> {
        let admin = &config.admin;
        let token = match (&admin.token, &admin.token_file) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(path)) => Some(first_line("admin.token_file", &config.resolve_path(path))?),
            (None, None) => None,
        };
        let password = match (&admin.password, &admin.password_file) {
            (Some(password), _) => Some(password.clone()),
            (None, Some(path)) => Some(first_line("admin.password_file", &config.resolve_path(path))?),
            (None, None) => None,
        };
        let basic = admin.username.clone().zip(password);
        if token.is_none() && basic.is_none() {
            return Err(CredentialsError::Missing);
        }
        Ok(Self {
            token,
            basic,
            metrics_public: admin.metrics_public,
        })
    }

    /// The key of the page's form tokens, derived from the secrets (see [`crate::forms`]).
    pub(crate) fn form_key(&self) -> crate::forms::FormKey {
        let (user, password) = self
            .basic
            .as_ref()
            .map_or(("", ""), |(u, p)| (u.as_str(), p.as_str()));
        crate::forms::FormKey::derive(&[self.token.as_deref().unwrap_or(""), user, password])
    }

    /// Whether the request's `Authorization` header carries a valid credential.
    #[must_use]
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self
                .token
                .as_ref()
                .is_some_and(|token| constant_time_eq(token.as_bytes(), rest.as_bytes()));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let Some((user, password)) = &self.basic else {
                return false;
            };
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                return false;
            };
            let Some(colon) = decoded.iter().position(|b| *b == b':') else {
                return false;
            };
            let (given_user, given_password) = (&decoded[..colon], &decoded[colon + 1..]);
            // Both comparisons always run, so timing does not reveal which part was wrong.
            let user_ok = constant_time_eq(user.as_bytes(), given_user);
            let password_ok = constant_time_eq(password.as_bytes(), given_password);
            return user_ok & password_ok;
        }
        false
    }
}

/// Compares without an early exit on the first differing byte.
pub(crate) fn constant_time_eq(expected: &[u8], given: &[u8]) -> bool {
    let mut difference = u8::from(expected.len() != given.len());
    for (i, byte) in expected.iter().enumerate() {
        difference |= byte ^ given.get(i).copied().unwrap_or(!byte);
    }
    difference == 0
}

/// Middleware: refuses requests without valid credentials with 401 and a challenge, so a
/// browser asks for the user name and password.
pub(crate) async fn require(
    State(credentials): State<Arc<Credentials>>,
    request: Request,
    next: Next,
) -> Response {
    if credentials.accepts(request.headers()) {
        return next.run(request).await;
    }
    let mut response = (StatusCode::UNAUTHORIZED, "authentication required\n").into_response();
    let challenge = if credentials.basic.is_some() {
        "Basic realm=\"netboot admin\", charset=\"UTF-8\""
    } else {
        "Bearer realm=\"netboot admin\""
    };
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn tokens_and_basic_auth() {
        let credentials = Credentials::token("0123456789abcdef").with_basic("ops", "pa:ss");
        assert!(credentials.accepts(&with("Bearer 0123456789abcdef")));
        assert!(credentials.accepts(&with("bearer  0123456789abcdef")));
        assert!(!credentials.accepts(&with("Bearer 0123456789abcde")));
        assert!(!credentials.accepts(&with("Bearer 0123456789abcdefg")));
        let basic = base64::engine::general_purpose::STANDARD.encode("ops:pa:ss");
        assert!(credentials.accepts(&with(&format!("Basic {basic}"))));
        let wrong = base64::engine::general_purpose::STANDARD.encode("ops:pass");
        assert!(!credentials.accepts(&with(&format!("Basic {wrong}"))));
        assert!(!credentials.accepts(&with("Basic !!!")));
        assert!(!credentials.accepts(&HeaderMap::new()));
        assert!(!Credentials::basic("a", "b").accepts(&with("Bearer ")));
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!(
            "{:?}",
            Credentials::token("supersecrettoken1").with_basic("ops", "hunter2")
        );
        assert!(
            !text.contains("supersecret") && !text.contains("hunter2"),
            "{text}"
        );
    }
}
