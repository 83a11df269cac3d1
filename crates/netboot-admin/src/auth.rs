//! Admin credentials: a bearer token, basic auth, or both. Nothing is ever served open.
//!
//! Failed logins are logged (client address and user name, never what was tried as the
//! password or token) and counted per client address: after [`FREE_FAILURES`] the address
//! is answered `429 Too Many Requests` for [`FIRST_LOCKOUT`], doubling with each further
//! failure up to [`MAX_LOCKOUT`], so guessing runs at a few attempts a minute instead of
//! tens of thousands a second.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use netboot_config::{Config, MIN_PASSWORD_CHARS};

/// Failed logins from one client address before it is locked out.
pub const FREE_FAILURES: u32 = 5;
/// How long the first lockout lasts; each further failure after it doubles it.
pub const FIRST_LOCKOUT: Duration = Duration::from_secs(60);
/// The longest lockout.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Failures older than this (and not locked out) are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Client addresses tracked at most; beyond it the stalest are forgotten first.
const MAX_TRACKED_CLIENTS: usize = 65_536;
/// Characters of a tried user name that are logged.
const LOGGED_USER_CHARS: usize = 64;

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
    /// A password file holds a password too short to withstand guessing.
    #[error("{0}: the password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort(&'static str),
}

/// Who may use the admin interface.
#[derive(Clone, Default)]
pub struct Credentials {
    token: Option<String>,
    basic: Option<(String, String)>,
    /// Whether `/metrics` is served without credentials.
    pub metrics_public: bool,
    /// Failed logins per client address, shared by every listener serving these credentials.
    throttle: Arc<LoginThrottle>,
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
            (None, Some(path)) => {
                let password = first_line("admin.password_file", &config.resolve_path(path))?;
                if password.chars().count() < MIN_PASSWORD_CHARS {
                    return Err(CredentialsError::TooShort("admin.password_file"));
                }
                Some(password)
            }
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
            throttle: Arc::default(),
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
        matches!(self.verify(headers), Verdict::Accepted(_))
    }

    /// What the request's `Authorization` header amounts to.
    fn verify(&self, headers: &HeaderMap) -> Verdict {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Verdict::Missing;
        };
        let Ok(value) = value.to_str() else {
            return Verdict::Rejected(Attempt::Unreadable);
        };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            let valid = self
                .token
                .as_ref()
                .is_some_and(|token| constant_time_eq(token.as_bytes(), rest.as_bytes()));
            return if valid {
                Verdict::Accepted(Operator(TOKEN_OPERATOR.to_owned()))
            } else {
                Verdict::Rejected(Attempt::Token)
            };
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                return Verdict::Rejected(Attempt::Unreadable);
            };
            let Some(colon) = decoded.iter().position(|b| *b == b':') else {
                return Verdict::Rejected(Attempt::Unreadable);
            };
            let (given_user, given_password) = (&decoded[..colon], &decoded[colon + 1..]);
            let tried = Attempt::User(
                String::from_utf8_lossy(given_user)
                    .chars()
                    .take(LOGGED_USER_CHARS)
                    .collect(),
            );
            let Some((user, password)) = &self.basic else {
                return Verdict::Rejected(tried);
            };
            // Both comparisons always run, so timing does not reveal which part was wrong.
            let user_ok = constant_time_eq(user.as_bytes(), given_user);
            let password_ok = constant_time_eq(password.as_bytes(), given_password);
            return if user_ok & password_ok {
                Verdict::Accepted(Operator(user.clone()))
            } else {
                Verdict::Rejected(tried)
            };
        }
        Verdict::Rejected(Attempt::Unreadable)
    }
}

/// Who an accepted request comes from, for what it changes (an approved boot console names
/// its operator): the basic-auth user, or [`TOKEN_OPERATOR`] for the bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Operator(pub(crate) String);

/// The operator name of requests with the bearer token, which names nobody.
pub(crate) const TOKEN_OPERATOR: &str = "api-token";

/// What an `Authorization` header amounts to.
#[derive(Debug)]
enum Verdict {
    Accepted(Operator),
    /// No credential at all: a browser's first request, answered with the challenge.
    Missing,
    Rejected(Attempt),
}

/// What a rejected request tried, as far as it may be logged.
#[derive(Debug)]
enum Attempt {
    /// Basic auth with this user name (cut to [`LOGGED_USER_CHARS`]).
    User(String),
    /// A bearer token.
    Token,
    /// A header that is neither.
    Unreadable,
}

/// Failed logins per client address, with lockouts.
#[derive(Debug, Default)]
pub(crate) struct LoginThrottle {
    clients: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

impl LoginThrottle {
    /// How long `client` is still locked out, if it is.
    fn locked(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let until = clients.get(&client)?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// Counts a failure of `client`; returns its failures so far and the lockout it starts.
    fn failed(&self, client: IpAddr, now: Instant) -> (u32, Option<Duration>) {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if clients.len() >= MAX_TRACKED_CLIENTS && !clients.contains_key(&client) {
            forget_stale(&mut clients, now);
        }
        let failures = clients.entry(client).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        if now.duration_since(failures.last) > FORGET_AFTER {
            failures.count = 0;
        }
        failures.count = failures.count.saturating_add(1);
        failures.last = now;
        if failures.count < FREE_FAILURES {
            return (failures.count, None);
        }
        let doublings = (failures.count - FREE_FAILURES).min(16);
        let lockout = FIRST_LOCKOUT.saturating_mul(1 << doublings).min(MAX_LOCKOUT);
        failures.locked_until = Some(now + lockout);
        (failures.count, Some(lockout))
    }

    /// A successful login clears the address's failures.
    fn succeeded(&self, client: IpAddr) {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients.remove(&client);
    }
}

/// Drops the addresses whose failures are old and not locked out; when every address is
/// recent, the half with the oldest failures.
fn forget_stale(clients: &mut HashMap<IpAddr, Failures>, now: Instant) {
    clients.retain(|_, f| {
        now.duration_since(f.last) <= FORGET_AFTER || f.locked_until.is_some_and(|until| until > now)
    });
    if clients.len() >= MAX_TRACKED_CLIENTS {
        let mut lasts: Vec<Instant> = clients.values().map(|f| f.last).collect();
        let middle = lasts.len() / 2;
        let (_, cutoff, _) = lasts.select_nth_unstable(middle);
        let cutoff = *cutoff;
        clients.retain(|_, f| f.last > cutoff);
    }
}

/// The address failures are counted under: the address itself, or for IPv6 its /64 (one
/// host can use a whole /64).
fn client_key(address: Option<SocketAddr>) -> IpAddr {
    match address.map(|a| a.ip().to_canonical()) {
        Some(IpAddr::V6(v6)) => {
            let segments = v6.segments();
            IpAddr::V6(Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            ))
        }
        Some(v4) => v4,
        // Served without the connection's address (an embedding that does not pass it):
        // all such requests share one count.
        None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
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
/// browser asks for the user name and password; logs failed logins and answers 429 to a
/// client address locked out after too many.
pub(crate) async fn require(
    State(credentials): State<Arc<Credentials>>,
    mut request: Request,
    next: Next,
) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| *address);
    let client = client_key(address);
    let now = Instant::now();
    let throttle = &credentials.throttle;
    if let Some(wait) = throttle.locked(client, now) {
        return too_many_attempts(wait);
    }
    let attempt = match credentials.verify(request.headers()) {
        Verdict::Accepted(operator) => {
            throttle.succeeded(client);
            request.extensions_mut().insert(operator);
            return next.run(request).await;
        }
        Verdict::Missing => None,
        Verdict::Rejected(attempt) => Some(attempt),
    };
    if let Some(attempt) = attempt {
        let (failures, lockout) = throttle.failed(client, now);
        let peer = address.map_or_else(|| "unknown".to_owned(), |a| a.ip().to_canonical().to_string());
        let path = request.uri().path();
        match &attempt {
            Attempt::User(user) => {
                tracing::warn!(client = %peer, user = ?user, path, failures, "admin: login failed")
            }
            Attempt::Token => {
                tracing::warn!(client = %peer, path, failures, "admin: login with a wrong bearer token")
            }
            Attempt::Unreadable => {
                tracing::warn!(client = %peer, path, failures, "admin: login with an unreadable Authorization header")
            }
        }
        if let Some(lockout) = lockout {
            tracing::warn!(
                client = %peer,
                failures,
                "admin: too many failed logins; refusing this client for {} s",
                lockout.as_secs()
            );
        }
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

/// `429` with `Retry-After` in whole seconds (at least one).
fn too_many_attempts(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed logins from this address; try again later\n",
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
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

    #[test]
    fn lockout_after_five_failures_doubles_and_ends() {
        let throttle = LoginThrottle::default();
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let start = Instant::now();
        for expected in 1..FREE_FAILURES {
            assert_eq!(throttle.failed(client, start), (expected, None));
            assert_eq!(throttle.locked(client, start), None);
        }
        assert_eq!(
            throttle.failed(client, start),
            (FREE_FAILURES, Some(FIRST_LOCKOUT))
        );
        assert_eq!(throttle.locked(client, start), Some(FIRST_LOCKOUT));
        assert_eq!(
            throttle.locked(other, start),
            None,
            "other addresses are not affected"
        );
        let later = start + FIRST_LOCKOUT;
        assert_eq!(throttle.locked(client, later), None, "the lockout ends");
        assert_eq!(throttle.failed(client, later).1, Some(FIRST_LOCKOUT * 2));
        for _ in 0..40 {
            throttle.failed(client, later);
        }
        assert_eq!(throttle.locked(client, later), Some(MAX_LOCKOUT));
        throttle.succeeded(client);
        assert_eq!(throttle.locked(client, later), None);
    }

    #[test]
    fn old_failures_are_forgotten() {
        let throttle = LoginThrottle::default();
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let start = Instant::now();
        for _ in 1..FREE_FAILURES {
            throttle.failed(client, start);
        }
        let much_later = start + FORGET_AFTER + Duration::from_secs(1);
        assert_eq!(throttle.failed(client, much_later), (1, None));
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a = client_key(Some("[2001:db8:1:2::5]:1".parse().unwrap()));
        let b = client_key(Some("[2001:db8:1:2:ffff::9]:2".parse().unwrap()));
        let c = client_key(Some("[2001:db8:1:3::5]:1".parse().unwrap()));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mapped = client_key(Some("[::ffff:192.0.2.1]:1".parse().unwrap()));
        assert_eq!(mapped, "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
