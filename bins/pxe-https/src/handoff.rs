//! The Windows PE hand-off: per-boot URLs for the parts of a decision only its machine may
//! fetch, and the route that serves them.
//!
//! When a decision holds a wimboot action with task sequence variables or `secret` files,
//! [`HandoffState::prepare`] issues a token for that action, bound to the machine's MAC, the
//! client address the decision went to and an expiry (`https.boot_token_secs`), and remembers
//! what the action hands over. The script fetches those files from
//! `/boot.ipxe/handoff/<token>/<name>?mac=<the MAC iPXE boots from>`; [`HandoffState::serve`] answers only
//! when the token verifies for that MAC, that address and the `handoff` scope, and serves
//! secret files only over HTTPS and only from `https.private_dir`.
//!
//! What an action hands over is kept in memory (at most [`MAX_ENTRIES`] actions, the oldest
//! forgotten first, each until its token expires): a restart between a decision and its
//! downloads fails that boot, which goes back to its menu and can be chosen again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, Response, StatusCode};
use netboot_core::handoff::{encode_variables, VARIABLES_FILE};
use netboot_core::{BootDecision, BootTarget, MacAddr};
use netboot_ipxe::{Handoff, Url};
use netboot_token::{Claims, Presented, Scope, TokenKey};

use crate::files::{self, Roots};

/// Path of the per-boot file route.
pub const HANDOFF_PATH: &str = "/boot.ipxe/handoff";
/// Token scope of hand-off files.
pub const SCOPE: &str = "handoff";
/// Actions remembered at most.
pub const MAX_ENTRIES: usize = 4096;

/// Keys, settings and what the recent decisions hand over.
#[derive(Debug)]
pub struct HandoffState {
    key: Option<TokenKey>,
    scope: Scope,
    lifetime: Duration,
    base: Url,
    retry: Url,
    private: Roots,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_boot: HashMap<(MacAddr, String), Entry>,
    order: VecDeque<(MacAddr, String)>,
}

#[derive(Debug, Clone)]
struct Entry {
    expires_at: u64,
    variables: Option<Bytes>,
    /// Secret files by lower-case name: their path under the private directory.
    secret: BTreeMap<String, String>,
}

/// Why a hand-off request is refused: the status and what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Token(netboot_token::TokenError),
    NoMac,
    Unknown,
    PlainHttp,
}

impl Refusal {
    fn response(self) -> Response<Body> {
        let (status, text) = match self {
            Self::Token(_) | Self::NoMac => (
                StatusCode::FORBIDDEN,
                "this per-boot URL is not valid for this machine\n",
            ),
            Self::Unknown => (StatusCode::NOT_FOUND, "nothing to hand over under this name\n"),
            Self::PlainHttp => (StatusCode::FORBIDDEN, "this file is only served over HTTPS\n"),
        };
        files::plain(status, text)
    }

    fn reason(self) -> String {
        match self {
            Self::Token(e) => e.to_string(),
            Self::NoMac => "no MAC in the request".into(),
            Self::Unknown => "no such file for this boot".into(),
            Self::PlainHttp => "secret file asked for over plain HTTP".into(),
        }
    }
}

impl HandoffState {
    /// `key` is `None` when no key could be loaded: actions needing per-boot URLs then tell
    /// the client so instead of booting. `base` is where [`HANDOFF_PATH`] is reached, `retry`
    /// where a client waiting for a boot image starts over (the entry script).
    pub fn new(
        key: Option<TokenKey>,
        lifetime: Duration,
        base: Url,
        retry: Url,
        private_dir: PathBuf,
    ) -> Self {
        let (private, _) = Roots::new(&[private_dir]);
        Self {
            key,
            scope: Scope::new(SCOPE).expect("valid scope"),
            lifetime,
            base,
            retry,
            private,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// Issues tokens for the actions of `decision` that need them and remembers what each
    /// hands over. Secret files get no token when the decision goes out over plain HTTP (the
    /// script then explains why the entry cannot boot).
    pub fn prepare(
        &self,
        decision: &BootDecision,
        mac: MacAddr,
        ip: IpAddr,
        over_tls: bool,
        now: SystemTime,
    ) -> Option<Handoff> {
        let BootDecision::Boot(menu) = decision else {
            return None;
        };
        let needing: Vec<_> = menu
            .entries
            .iter()
            .filter(|action| Handoff::needed_by(&action.target))
            .collect();
        if needing.is_empty() {
            return None;
        }
        let mut handoff = self.empty(over_tls);
        let Some(key) = &self.key else {
            tracing::warn!(%mac, "no boot token key: entries with per-machine files cannot boot");
            return Some(handoff);
        };
        let now_secs = unix_seconds(now);
        let expires_at = now_secs.saturating_add(self.lifetime.as_secs());
        for action in needing {
            let BootTarget::Wimboot { files, variables, .. } = &action.target else {
                continue;
            };
            if Handoff::has_secrets(&action.target) && !over_tls {
                continue;
            }
            let Ok(claims) = Claims::new(self.scope.clone(), mac, ip, expires_at, &action.id) else {
                tracing::warn!(%mac, action = %action.id, "action id cannot be put into a boot token");
                continue;
            };
            let variables = match (variables.is_empty(), encode_variables(variables)) {
                (true, _) => None,
                (false, Ok(bytes)) => Some(Bytes::from(bytes)),
                // The script builder refuses the decision for the same reason.
                (false, Err(_)) => continue,
            };
            let secret = files
                .iter()
                .filter(|f| f.secret)
                .map(|f| (f.name.to_ascii_lowercase(), f.path.clone()))
                .collect();
            let entry = Entry {
                expires_at,
                variables,
                secret,
            };
            self.remember((mac, action.id.clone()), entry, now_secs);
            handoff
                .tokens
                .insert(action.id.clone(), key.issue(&claims).as_str().to_owned());
        }
        Some(handoff)
    }

    /// A hand-off with no tokens, to which callers add waiting entries.
    pub fn empty(&self, over_tls: bool) -> Handoff {
        Handoff::new(self.base.clone(), over_tls, self.retry.clone())
    }

    fn remember(&self, boot: (MacAddr, String), entry: Entry, now: u64) {
        let mut entries = self.entries.lock().expect("hand-off store poisoned");
        let Entries { by_boot, order } = &mut *entries;
        // Expired entries leave from the front; a full store forgets its oldest.
        while let Some(oldest) = order.front().cloned() {
            let stale = by_boot.get(&oldest).is_none_or(|e| e.expires_at <= now);
            if !stale && by_boot.len() < MAX_ENTRIES {
                break;
            }
            order.pop_front();
            by_boot.remove(&oldest);
        }
        if by_boot.insert(boot.clone(), entry).is_none() {
            order.push_back(boot);
        }
    }

    fn entry(&self, boot: &(MacAddr, String)) -> Option<Entry> {
        let entries = self.entries.lock().expect("hand-off store poisoned");
        entries.by_boot.get(boot).cloned()
    }

    /// Answers `GET /boot.ipxe/handoff/<token>/<name>?mac=...` from `peer` (see the module
    /// documentation).
    #[allow(clippy::too_many_arguments)]
    pub async fn serve(
        &self,
        token: &str,
        name: &str,
        query: Option<&str>,
        peer: IpAddr,
        over_tls: bool,
        method: &Method,
        headers: &HeaderMap,
        now: SystemTime,
    ) -> Response<Body> {
        match self.check(token, name, query, peer, over_tls, now) {
            Ok((mac, Served::Variables(bytes))) => {
                tracing::info!(%mac, remote = %peer, file = VARIABLES_FILE, "hand-off");
                let mut response = Response::new(Body::from(bytes));
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/octet-stream"),
                );
                headers.insert(
                    header::CACHE_CONTROL,
                    header::HeaderValue::from_static("no-store"),
                );
                response
            }
            Ok((mac, Served::Secret(path))) => {
                let mut response = files::serve(&self.private, method, &path, headers).await;
                tracing::info!(%mac, remote = %peer, file = name, status = response.status().as_u16(), "hand-off");
                if response.status().is_success() {
                    response.headers_mut().insert(
                        header::CACHE_CONTROL,
                        header::HeaderValue::from_static("no-store"),
                    );
                } else if response.status() == StatusCode::NOT_FOUND {
                    tracing::warn!(%mac, file = name, "secret file missing below https.private_dir");
                }
                response
            }
            Err(refusal) => {
                tracing::warn!(remote = %peer, file = name, reason = %refusal.reason(), "hand-off refused");
                refusal.response()
            }
        }
    }

    fn check(
        &self,
        token: &str,
        name: &str,
        query: Option<&str>,
        peer: IpAddr,
        over_tls: bool,
        now: SystemTime,
    ) -> Result<(MacAddr, Served), Refusal> {
        let mac = query_mac(query.unwrap_or("")).ok_or(Refusal::NoMac)?;
        let key = self.key.as_ref().ok_or(Refusal::Unknown)?;
        let presented = Presented {
            scope: &self.scope,
            mac,
            ip: peer,
            now: unix_seconds(now),
        };
        let claims = key.verify(token, &presented).map_err(Refusal::Token)?;
        let entry = self.entry(&(mac, claims.context)).ok_or(Refusal::Unknown)?;
        if name.eq_ignore_ascii_case(VARIABLES_FILE) {
            return entry
                .variables
                .map(|v| (mac, Served::Variables(v)))
                .ok_or(Refusal::Unknown);
        }
        let path = entry
            .secret
            .get(&name.to_ascii_lowercase())
            .ok_or(Refusal::Unknown)?;
        if !over_tls {
            return Err(Refusal::PlainHttp);
        }
        Ok((mac, Served::Secret(format!("/{path}"))))
    }
}

enum Served {
    Variables(Bytes),
    Secret(String),
}

/// The `mac` query parameter in iPXE's `hexhyp` form (`52-54-00-12-34-56`) or with colons.
fn query_mac(query: &str) -> Option<MacAddr> {
    let value = query.split('&').find_map(|pair| pair.strip_prefix("mac="))?;
    value.replace('-', ":").parse().ok()
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_comes_from_the_query_in_either_form() {
        let mac: MacAddr = "52:54:00:12:34:56".parse().unwrap();
        assert_eq!(query_mac("mac=52-54-00-12-34-56"), Some(mac));
        assert_eq!(query_mac("x=1&mac=52:54:00:12:34:56"), Some(mac));
        assert_eq!(query_mac("mac=nope"), None);
        assert_eq!(query_mac(""), None);
    }

    #[test]
    fn the_store_is_bounded_and_forgets_expired_boots() {
        let state = HandoffState::new(
            None,
            Duration::from_secs(60),
            Url::path(HANDOFF_PATH),
            Url::path("/boot.ipxe"),
            PathBuf::new(),
        );
        let entry = |expires_at| Entry {
            expires_at,
            variables: None,
            secret: BTreeMap::new(),
        };
        for i in 0..(MAX_ENTRIES + 10) {
            let mac = MacAddr([0, 0, 0, 0, (i >> 8) as u8, i as u8]);
            state.remember((mac, "a".into()), entry(1_000), 100);
        }
        let len = state.entries.lock().unwrap().by_boot.len();
        assert!(len <= MAX_ENTRIES, "{len}");
        state.remember((MacAddr([1; 6]), "a".into()), entry(5_000), 2_000);
        let entries = state.entries.lock().unwrap();
        assert_eq!(entries.by_boot.len(), 1, "expired boots are forgotten");
        assert_eq!(entries.order.len(), 1);
    }
}
