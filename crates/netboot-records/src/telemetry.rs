//! The process's recorder and metrics, reachable from every service without threading them
//! through each constructor. An all-in-one process runs the three services against one
//! [`Telemetry`]; separate processes each have their own.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use netboot_config::Config;

use crate::{IdentityCache, Metrics, Recorder, Writer};

/// The recorder, metrics and address-to-machine cache of this process.
#[derive(Debug)]
pub struct Telemetry {
    /// Where boot events go.
    pub recorder: Recorder,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Addresses of machines that identified themselves (HTTPS decision requests).
    pub identities: IdentityCache,
}

static GLOBAL: OnceLock<Telemetry> = OnceLock::new();

/// This process's telemetry; recording is off until [`start`] turned it on.
pub fn telemetry() -> &'static Telemetry {
    GLOBAL.get_or_init(|| Telemetry {
        recorder: Recorder::disabled(),
        metrics: Arc::default(),
        identities: IdentityCache::default(),
    })
}

pub(crate) fn identities() -> &'static IdentityCache {
    &telemetry().identities
}

/// Flushes the records writer when the service that started it stops.
#[derive(Debug)]
#[must_use = "call finish() after the service stops, so queued events are written"]
pub struct TelemetryGuard(Option<Writer>);

impl TelemetryGuard {
    /// Writes what is still queued (for at most five seconds).
    pub async fn finish(self) {
        if let Some(writer) = self.0 {
            writer.shutdown(Duration::from_secs(5)).await;
        }
    }
}

/// Starts this process's recorder from `[records]`, once: when several services start in one
/// process the first one's configuration wins and the others share it. Call it inside the
/// tokio runtime, before serving.
pub fn start(config: &Arc<Config>) -> TelemetryGuard {
    if GLOBAL.get().is_some() {
        return TelemetryGuard(None);
    }
    let (recorder, writer) = Recorder::from_config(config);
    let enabled = recorder.is_enabled();
    let telemetry = Telemetry {
        recorder,
        metrics: Arc::default(),
        identities: IdentityCache::default(),
    };
    match GLOBAL.set(telemetry) {
        Ok(()) => {
            if enabled {
                tracing::info!(database = %redacted(&config.records.database), "recording boot events");
            }
            TelemetryGuard(writer)
        }
        // Another service won the race; dropping this recorder ends its writer.
        Err(_) => TelemetryGuard(None),
    }
}

fn redacted(url: &str) -> String {
    crate::store::redact_password(url)
}
