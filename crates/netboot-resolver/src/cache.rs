//! [`Cached`]: a TTL cache with negative caching and single-flight in front of any resolver.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netboot_core::{BootDecision, BootRequest, BootResolver, ResolveError, ResolveFuture};
use tokio::sync::watch;

/// Cache lifetimes and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheOptions {
    /// How long a `Boot` decision is reused.
    pub ttl: Duration,
    /// How long an `Exit`/`Ignore` ("nothing for this machine") decision is reused; shorter,
    /// so a machine that just got a deployment sees it soon.
    pub negative_ttl: Duration,
    /// After a backend failure, how long an expired decision may still be served instead of
    /// the error. Zero disables it.
    pub stale_if_error: Duration,
    /// Most machines remembered; expired entries are dropped first when full.
    pub max_entries: usize,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(10),
            stale_if_error: Duration::from_secs(600),
            max_entries: 10_000,
        }
    }
}

/// Counters, for logs, tests and benchmarks.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Answered from a fresh entry.
    pub hits: AtomicU64,
    /// Waited for a lookup another caller had already started.
    pub coalesced: AtomicU64,
    /// Lookups sent to the wrapped resolver.
    pub backend_calls: AtomicU64,
    /// Expired entries served because the backend failed.
    pub stale_served: AtomicU64,
}

/// Cache key; by default the whole request, so resolvers that look at any field stay correct.
type Key = String;

/// Computes the cache key of a request. Two requests with the same key must get the same
/// decision from the wrapped resolver.
pub type KeyFn = Arc<dyn Fn(&BootRequest) -> String + Send + Sync>;

/// The outcome shared with callers waiting on the same lookup.
type Shared = Option<Result<BootDecision, Arc<ResolveError>>>;

#[derive(Debug)]
enum Slot {
    Ready {
        decision: BootDecision,
        fresh_until: Instant,
        stale_until: Instant,
    },
    InFlight {
        id: u64,
        done: watch::Receiver<Shared>,
        previous: Option<(BootDecision, Instant)>,
    },
}

/// Wraps a resolver with a TTL cache.
///
/// A boot asks several times (proxyDHCP, the PXE 4011 exchange, the iPXE script) and a
/// power-on of a lab asks for 200 machines at once: identical lookups that arrive while one
/// is running wait for it (single-flight), so the backend sees one query per distinct
/// request per TTL.
///
/// ```
/// # async fn demo() {
/// use std::sync::Arc;
/// use netboot_core::*;
/// use netboot_resolver::{CacheOptions, Cached};
/// let inner = StaticResolver::new(StaticRules::default()).unwrap();
/// let cached = Cached::new(inner, CacheOptions::default());
/// let req = BootRequest::new("52:54:00:12:34:56".parse().unwrap(), ClientArch::EfiX64, BootStage::Ipxe);
/// cached.resolve(&req).await.unwrap();
/// cached.resolve(&req).await.unwrap();
/// assert_eq!(cached.stats().backend_calls.load(std::sync::atomic::Ordering::Relaxed), 1);
/// # }
/// ```
pub struct Cached<R> {
    inner: R,
    options: CacheOptions,
    key: Option<KeyFn>,
    slots: Mutex<HashMap<Key, Slot>>,
    next_id: AtomicU64,
    stats: CacheStats,
}

/// A failure another caller's lookup produced, handed to everyone who waited for it.
#[derive(Debug)]
struct SharedFailure(Arc<ResolveError>);

impl std::fmt::Display for SharedFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedFailure {}

enum Plan {
    Hit(BootDecision),
    Wait(watch::Receiver<Shared>),
    Lead(u64, watch::Sender<Shared>),
}

/// Removes the in-flight marker if the leading lookup is dropped before it finishes (for
/// example when its caller's deadline passes), so waiters retry instead of hanging.
struct LeaderGuard<'a, R> {
    cache: &'a Cached<R>,
    key: &'a str,
    id: u64,
    armed: bool,
}

impl<R> Drop for LeaderGuard<'_, R> {
    fn drop(&mut self) {
        if self.armed {
            let mut slots = self.cache.slots.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(slots.get(self.key), Some(Slot::InFlight { id, .. }) if id == &self.id) {
                slots.remove(self.key);
            }
        }
    }
}

impl<R: std::fmt::Debug> std::fmt::Debug for Cached<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("inner", &self.inner)
            .field("options", &self.options)
            .field("custom_key", &self.key.is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<R: BootResolver> Cached<R> {
    /// Wraps `inner`; requests are keyed by all their fields.
    pub fn new(inner: R, options: CacheOptions) -> Self {
        Self {
            inner,
            options,
            key: None,
            slots: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            stats: CacheStats::default(),
        }
    }

    /// Wraps `inner` with a resolver-specific key, so requests that differ only in fields the
    /// resolver ignores (the protocol stage, SMBIOS strings) share one entry: a boot's
    /// proxyDHCP, PXE and HTTPS requests then cost one backend lookup.
    pub fn with_key(inner: R, options: CacheOptions, key: KeyFn) -> Self {
        Self {
            key: Some(key),
            ..Self::new(inner, options)
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The wrapped resolver.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Forgets every entry (e.g. after an administrator cleared a deployment).
    pub fn clear(&self) {
        self.lock()
            .retain(|_, slot| matches!(slot, Slot::InFlight { .. }));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn plan(&self, key: &str) -> Plan {
        let now = Instant::now();
        let mut slots = self.lock();
        let previous = match slots.get(key) {
            Some(Slot::Ready {
                decision,
                fresh_until,
                ..
            }) if *fresh_until > now => return Plan::Hit(decision.clone()),
            Some(Slot::Ready {
                decision,
                stale_until,
                ..
            }) => Some((decision.clone(), *stale_until)),
            Some(Slot::InFlight { done, .. }) => return Plan::Wait(done.clone()),
            None => None,
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, done) = watch::channel(None);
        slots.insert(key.to_string(), Slot::InFlight { id, done, previous });
        Plan::Lead(id, sender)
    }

    fn ttl_for(&self, decision: &BootDecision) -> Duration {
        match decision {
            BootDecision::Boot(menu) if !menu.entries.is_empty() => self.options.ttl,
            _ => self.options.negative_ttl,
        }
    }

    async fn lead(
        &self,
        key: &str,
        id: u64,
        sender: watch::Sender<Shared>,
        request: &BootRequest,
    ) -> Result<BootDecision, ResolveError> {
        let mut guard = LeaderGuard {
            cache: self,
            key,
            id,
            armed: true,
        };
        self.stats.backend_calls.fetch_add(1, Ordering::Relaxed);
        let result = self.inner.resolve(request).await;
        guard.armed = false;
        let now = Instant::now();
        let mut slots = self.lock();
        let previous = match slots.remove(key) {
            Some(Slot::InFlight {
                id: slot_id,
                previous,
                ..
            }) if slot_id == id => previous,
            Some(other) => {
                // Cleared and re-led meanwhile: leave the newer slot alone.
                slots.insert(key.to_string(), other);
                None
            }
            None => None,
        };
        let outcome = match result {
            Ok(decision) => {
                let fresh_until = now + self.ttl_for(&decision);
                let stale_until = fresh_until + self.options.stale_if_error;
                slots.insert(
                    key.to_string(),
                    Slot::Ready {
                        decision: decision.clone(),
                        fresh_until,
                        stale_until,
                    },
                );
                Ok(decision)
            }
            Err(error) => match previous {
                Some((decision, stale_until)) if stale_until > now => {
                    tracing::warn!(resolver = self.inner.name(), %error, "resolver failed; serving the last known decision");
                    self.stats.stale_served.fetch_add(1, Ordering::Relaxed);
                    slots.insert(
                        key.to_string(),
                        Slot::Ready {
                            decision: decision.clone(),
                            fresh_until: now,
                            stale_until,
                        },
                    );
                    Ok(decision)
                }
                _ => Err(error),
            },
        };
        self.evict(&mut slots, now);
        drop(slots);
        match outcome {
            Ok(decision) => {
                sender.send_replace(Some(Ok(decision.clone())));
                Ok(decision)
            }
            Err(error) => {
                let shared = Arc::new(error);
                sender.send_replace(Some(Err(shared.clone())));
                Err(self.unshare(shared))
            }
        }
    }

    /// Rebuilds an owned error from one shared with other callers.
    fn unshare(&self, error: Arc<ResolveError>) -> ResolveError {
        match Arc::try_unwrap(error) {
            Ok(error) => error,
            Err(shared) => match &*shared {
                ResolveError::Timeout(after) => ResolveError::Timeout(*after),
                _ => ResolveError::Unavailable {
                    backend: self.inner.name(),
                    source: Box::new(SharedFailure(shared)),
                },
            },
        }
    }

    async fn cached(&self, request: &BootRequest) -> Result<BootDecision, ResolveError> {
        let key = match &self.key {
            Some(key) => key(request),
            None => serde_json::to_string(request).map_err(|e| ResolveError::InvalidAnswer {
                backend: "cache",
                detail: format!("request not serialisable: {e}"),
            })?,
        };
        loop {
            match self.plan(&key) {
                Plan::Hit(decision) => {
                    self.stats.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(decision);
                }
                Plan::Lead(id, sender) => return self.lead(&key, id, sender, request).await,
                Plan::Wait(mut done) => {
                    self.stats.coalesced.fetch_add(1, Ordering::Relaxed);
                    let shared = match done.wait_for(Option::is_some).await {
                        Ok(value) => value.clone(),
                        // The leading caller gave up (its deadline passed): take over.
                        Err(_) => continue,
                    };
                    match shared {
                        Some(Ok(decision)) => return Ok(decision),
                        Some(Err(error)) => return Err(self.unshare(error)),
                        None => continue,
                    }
                }
            }
        }
    }

    fn evict(&self, slots: &mut HashMap<Key, Slot>, now: Instant) {
        if slots.len() <= self.options.max_entries {
            return;
        }
        slots.retain(|_, slot| match slot {
            Slot::Ready { stale_until, .. } => *stale_until > now,
            Slot::InFlight { .. } => true,
        });
        while slots.len() > self.options.max_entries {
            let oldest = slots
                .iter()
                .filter_map(|(k, s)| match s {
                    Slot::Ready { fresh_until, .. } => Some((*fresh_until, k.clone())),
                    Slot::InFlight { .. } => None,
                })
                .min();
            match oldest {
                Some((_, key)) => slots.remove(&key),
                None => break,
            };
        }
    }
}

impl<R: BootResolver> BootResolver for Cached<R> {
    fn resolve<'a>(&'a self, request: &'a BootRequest) -> ResolveFuture<'a> {
        Box::pin(self.cached(request))
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
