//! Boot records: every step of every machine's boot, stored, queryable and measured.
//!
//! * [`Event`]: one step (proxy offer, TFTP transfer, iPXE entry, decision, image download,
//!   error), keyed by MAC and, when known, SMBIOS UUID.
//! * [`Recorder`]: what the services hold. [`Recorder::record`] queues an event with
//!   `try_send` and returns at once; one writer task batches the queue into the database. A
//!   full queue or an unreachable database drops events and counts them ([`StatsSnapshot`]);
//!   it never delays a client.
//! * [`Store`]: SQLite (one file, WAL; the default) or PostgreSQL (several hosts, one
//!   database), with migrations embedded and run by `sqlx::migrate!` (sqlx checks the applied
//!   ones against the files, which a hand-kept list had to repeat), machine records derived
//!   from events, the queries behind the reports page, retention and paged export
//!   ([`ExportFormat`]).
//! * [`RequiredRuns`]: the Required deployments machines ran, so each boots by itself once
//!   (in the records database, or in a small file of its own while recording is off).
//! * [`Metrics`]: atomic counters and histograms for the three services, rendered as
//!   Prometheus text.
//!
//! ```no_run
//! # async fn demo() -> Result<(), netboot_records::StoreError> {
//! use netboot_records::{Event, EventDetail, ErrorRecord, Recorder, RecorderOptions, Stage, Store, StoreSource};
//! let store = Store::open_sqlite("records.db".as_ref(), std::time::Duration::from_secs(5)).await?;
//! let (recorder, writer) = Recorder::start(StoreSource::Open(store.clone()), RecorderOptions::default());
//! let mac = "52:54:00:12:34:56".parse().unwrap();
//! recorder.record(Event::now(mac, EventDetail::Error(ErrorRecord { stage: Stage::Tftp, cause: "no such file".into() })));
//! writer.shutdown(std::time::Duration::from_secs(5)).await;
//! assert_eq!(store.events_of(mac, 10).await?.len(), 1);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod budget;
mod event;
mod export;
mod identity;
mod metrics;
pub mod neighbours;
mod recorder;
mod required;
mod service_events;
mod store;
mod telemetry;

pub use event::{
    ApprovalOutcome, ApprovalRecord, DecisionKind, DecisionRecord, ErrorRecord, Event, EventDetail,
    HttpsEntry, ImageDownload, LoginOutcome, LoginRecord, Outcome, PeerDistDelivery, ProxyOffer,
    RequiredChange, RequiredRunRecord, Stage, TftpTransfer,
};
pub use export::ExportFormat;
pub use identity::IdentityCache;
pub use metrics::{
    Counter, DhcpMetrics, Gauge, Histogram, HttpsMetrics, LabeledCounter, Metrics, TftpMetrics,
    LATENCY_BUCKETS,
};
pub use recorder::{
    Recorder, RecorderOptions, RecorderStats, StatsSnapshot, StoreSource, Writer, DEFAULT_WRITE_SHARE,
};
pub use required::{RequiredRuns, REQUIRED_RUNS_FILE};
pub use service_events::TftpNegotiated;
pub use store::{
    split_into_boots, BootJourney, Claim, Count, DayCount, Machine, MachineQuery, RequiredRun, Store,
    StoreError, StoredEvent, MAX_CLAIMS_PER_MACHINE,
};
pub use telemetry::{Telemetry, TelemetryGuard};

/// Entry points for `cargo fuzz` (and the corpus test that keeps them compiling).
#[doc(hidden)]
pub mod fuzzing {
    use crate::EventDetail;

    /// Stored event details are decoded from the database's JSON text: arbitrary bytes must
    /// never panic, and whatever decodes must encode and decode to the same value.
    pub fn event_detail_round_trip(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let Ok(detail) = serde_json::from_str::<EventDetail>(text) else {
            return;
        };
        let encoded = serde_json::to_string(&detail).expect("encoding a decoded detail");
        let again: EventDetail = serde_json::from_str(&encoded).expect("decoding an encoded detail");
        assert_eq!(detail, again);
        let _ = (
            detail.stage(),
            detail.outcome(),
            detail.starts_boot(),
            detail.duration_ms(),
        );
    }
}
