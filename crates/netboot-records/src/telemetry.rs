//! The typed handle a service records and counts through: its [`Recorder`], its [`Metrics`],
//! the address-to-machine cache and the host id. Every service gets one at bind time; an
//! all-in-one process hands the same handle to all three services, so their counters and
//! events end up in one place.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let telemetry = netboot_records::Telemetry::disabled();
//! telemetry.metrics.tftp.active.inc();
//! assert_eq!(telemetry.metrics.tftp.active.get(), 1);
//! assert!(!telemetry.recorder.is_enabled());
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use netboot_config::Config;

use crate::{IdentityCache, Metrics, Recorder, Writer};

/// The recorder, metrics, address-to-machine cache and host id of one process. Cloning is
/// cheap and every clone shares the same state.
#[derive(Debug, Clone)]
pub struct Telemetry {
    /// Where boot events go.
    pub recorder: Recorder,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Addresses of machines that identified themselves (HTTPS decision requests); the
    /// recorder consults it for events known only by address.
    pub identities: Arc<IdentityCache>,
    host_id: Arc<str>,
}

impl Telemetry {
    /// Counting without recording: fresh metrics, a disabled recorder, host id `localhost`.
    /// For tests and embedding programs that keep no records.
    #[must_use]
    pub fn disabled() -> Self {
        let recorder = Recorder::disabled();
        Self {
            identities: recorder.identities(),
            recorder,
            metrics: Arc::default(),
            host_id: "localhost".into(),
        }
    }

    /// Starts recording as `[records]` says (a disabled recorder when it is off), with the
    /// host id of `[log] host_id`. Call it inside the tokio runtime, before serving; call
    /// [`TelemetryGuard::finish`] after the last service stopped.
    pub fn start(config: &Arc<Config>) -> (Self, TelemetryGuard) {
        let (recorder, writer) = Recorder::from_config(config);
        if recorder.is_enabled() {
            tracing::info!(database = %netboot_config::redact_url_password(&config.records.database), "recording boot events");
        }
        let telemetry = Self {
            identities: recorder.identities(),
            recorder,
            metrics: Arc::default(),
            host_id: config.log.effective_host_id().into(),
        };
        (telemetry, TelemetryGuard(writer))
    }

    /// The name this host's events and metrics carry (`[log] host_id`, default the host
    /// name), so several hosts writing to one database stay apart.
    #[must_use]
    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// The Prometheus text of every metric, the records pipeline's when recording is on, and
    /// `netboot_host_info` naming this host.
    #[must_use]
    pub fn render_metrics(&self) -> String {
        let records = self.recorder.is_enabled().then(|| self.recorder.stats());
        let mut text = self.metrics.render(records.as_ref());
        crate::metrics::render_host_info(&mut text, &self.host_id);
        text
    }
}

/// Flushes the records writer when the services stop.
#[derive(Debug)]
#[must_use = "call finish() after the services stop, so queued events are written"]
pub struct TelemetryGuard(Option<Writer>);

impl TelemetryGuard {
    /// Writes what is still queued (for at most five seconds).
    pub async fn finish(self) {
        if let Some(writer) = self.0 {
            writer.shutdown(Duration::from_secs(5)).await;
        }
    }
}
