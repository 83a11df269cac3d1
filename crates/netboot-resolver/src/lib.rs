//! Boot resolvers beyond the static one (an HTTP webhook, a caching wrapper, a swappable
//! slot for reloads) and [`build`], which makes the resolver a configuration asks for.
//!
//! - [`WebhookResolver`] POSTs the [`netboot_core::BootRequest`] as JSON to a service of the
//!   site's own and reads a [`netboot_core::BootDecision`] back (schema in [`webhook`]), for
//!   sites whose deployment data lives somewhere this suite does not read directly.
//! - [`Cached`] wraps any resolver with a TTL cache, a shorter TTL for "nothing to boot"
//!   answers, single-flight (identical concurrent lookups share one backend call) and
//!   stale-if-error (the last answer covers a backend outage).
//! - [`RequiredOnce`] sits in front of either (outside the cache) and offers each Required
//!   deployment a machine already ran as Available, from a [`netboot_core::RunLedger`].
//!
//! The webhook's HTTP is `reqwest` (HTTP/1.1, rustls with ring, one pooled client per
//! resolver): connection reuse, proxy handling and chunked bodies are what a maintained client
//! does better than a hand-written exchange on hyper. What stays here is policy: the retry
//! schedule and which failures it covers, the overall per-attempt deadline, the 1 MiB answer
//! limit read chunk by chunk, the trust store (only the configured CAs), and no redirects.

#![deny(missing_docs)]

mod cache;
mod factory;
mod required_once;
mod swappable;
pub mod webhook;

pub use cache::{CacheOptions, CacheStats, Cached, KeyFn};
pub use factory::{build, check, BuildError};
pub use required_once::{Demotion, Explained, RequiredOnce, DEFAULT_LEDGER_TIMEOUT, LEDGER_RETRY_AFTER};
pub use swappable::Swappable;
pub use webhook::{tls_client_config, WebhookError, WebhookOptions, WebhookResolver};
