//! The services' side: [`Recorder::record`] queues an event without waiting; one writer task
//! drains the queue into the [`Store`] in batches.
//!
//! The queue is bounded. When it is full (the database is slow) or the writer cannot reach
//! the database, events are dropped and counted in [`RecorderStats`], never silently lost and
//! never allowed to delay a client.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use netboot_config::Config;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::budget::EventBudget;
use crate::event::{Event, EventDetail};
use crate::store::{Store, StoreError};
use crate::IdentityCache;

/// Counters of the recording pipeline, shared by every [`Recorder`] clone and the writer.
#[derive(Debug, Default)]
pub struct RecorderStats {
    enqueued: AtomicU64,
    written: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_store_error: AtomicU64,
    dropped_unattributed: AtomicU64,
    dropped_rate_limited: AtomicU64,
    store_up: AtomicBool,
    capacity: AtomicU64,
}

/// A point-in-time copy of [`RecorderStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatsSnapshot {
    /// Events accepted into the queue.
    pub enqueued: u64,
    /// Events committed to the database.
    pub written: u64,
    /// Events refused because the queue was full.
    pub dropped_queue_full: u64,
    /// Events lost because the database was unreachable or rejected the write.
    pub dropped_store_error: u64,
    /// Events seen only by IP address that no recorded machine had used.
    pub dropped_unattributed: u64,
    /// Events refused because their machine or client address used up its budget
    /// (`records.max_events_per_minute`).
    pub dropped_rate_limited: u64,
    /// Events waiting in the queue.
    pub queue_depth: u64,
    /// Queue capacity.
    pub queue_capacity: u64,
    /// Whether the last write (or connection attempt) succeeded.
    pub store_up: bool,
}

impl StatsSnapshot {
    /// Events lost to a full queue or an unavailable database. Unattributed events (seen only
    /// by an address no machine used, such as a scanner's request) are counted apart.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full + self.dropped_store_error
    }
}

impl RecorderStats {
    /// Reads the counters.
    #[must_use]
    pub fn snapshot(&self) -> StatsSnapshot {
        let enqueued = self.enqueued.load(Ordering::Relaxed);
        let written = self.written.load(Ordering::Relaxed);
        let dropped_store_error = self.dropped_store_error.load(Ordering::Relaxed);
        let dropped_unattributed = self.dropped_unattributed.load(Ordering::Relaxed);
        StatsSnapshot {
            dropped_unattributed,
            dropped_rate_limited: self.dropped_rate_limited.load(Ordering::Relaxed),
            enqueued,
            written,
            dropped_queue_full: self.dropped_queue_full.load(Ordering::Relaxed),
            dropped_store_error,
            queue_depth: enqueued.saturating_sub(written + dropped_store_error + dropped_unattributed),
            queue_capacity: self.capacity.load(Ordering::Relaxed),
            store_up: self.store_up.load(Ordering::Relaxed),
        }
    }
}

/// Where the writer gets its database from.
#[derive(Debug, Clone)]
pub enum StoreSource {
    /// An already open store.
    Open(Store),
    /// Open from `[records]` in this configuration, retrying while it is unreachable.
    Config(Arc<Config>),
}

/// Default [`RecorderOptions::max_write_share`]: a fifth of one core at most. Even then a
/// SQLite file takes thousands of events a second, hundreds of boots.
pub const DEFAULT_WRITE_SHARE: f64 = 0.2;

/// How the writer batches and retains.
#[derive(Debug, Clone, PartialEq)]
pub struct RecorderOptions {
    /// Queue capacity.
    pub queue_capacity: usize,
    /// Events per transaction.
    pub batch_size: usize,
    /// Delete events older than this (`None` keeps them).
    pub retention: Option<Duration>,
    /// Keep at most this many events (0 = no limit).
    pub max_events: u64,
    /// Time between retention passes.
    pub retention_interval: Duration,
    /// Wait between connection attempts while the database is unreachable.
    pub reconnect_delay: Duration,
    /// Largest share of wall-clock time the writer spends writing (0 < share <= 1). After each
    /// batch it rests in proportion, so under a flood it takes at most this share of a core
    /// from the services and drops (and counts) the excess instead. 1.0 writes flat out.
    pub max_write_share: f64,
    /// Events each machine and each client address may add per minute.
    pub max_events_per_minute: u32,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        Self::from_config(&netboot_config::RecordsConfig::default())
    }
}

impl RecorderOptions {
    /// Options from `[records]`.
    #[must_use]
    pub fn from_config(records: &netboot_config::RecordsConfig) -> Self {
        Self {
            queue_capacity: records.queue_capacity,
            batch_size: records.batch_size,
            retention: (records.retention_days > 0)
                .then(|| Duration::from_secs(u64::from(records.retention_days) * 86_400)),
            max_events: records.max_events,
            retention_interval: Duration::from_secs(records.retention_interval_secs),
            reconnect_delay: Duration::from_secs(2),
            max_write_share: DEFAULT_WRITE_SHARE,
            max_events_per_minute: records.max_events_per_minute,
        }
    }
}

/// The handle services record through. Cloning is cheap; [`Recorder::disabled`] records
/// nothing.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use netboot_records::{Event, EventDetail, ErrorRecord, Recorder, Stage};
/// let recorder = Recorder::disabled();
/// recorder.record(Event::now("52:54:00:12:34:56".parse().unwrap(),
///     EventDetail::Error(ErrorRecord { stage: Stage::Tftp, cause: "file not found".into() })));
/// assert_eq!(recorder.stats().enqueued, 0);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Recorder {
    queue: Option<mpsc::Sender<Queued>>,
    /// What each machine and client address may still add.
    budget: Arc<EventBudget>,
    stats: Arc<RecorderStats>,
    /// Machines that identified themselves by address, for [`Recorder::record_for_address`].
    identities: Arc<IdentityCache>,
}

/// What waits in the queue.
#[derive(Debug)]
enum Queued {
    /// An event of a known machine.
    Known(Event),
    /// An event seen only by the client's address; the writer finds the machine that last
    /// used the address in the database.
    ByAddress(Event),
}

/// The running writer task; [`Writer::shutdown`] flushes what is queued and stops it.
#[derive(Debug)]
pub struct Writer {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Writer {
    /// Stops accepting new events, writes what is queued (waiting at most `grace`) and ends.
    pub async fn shutdown(self, grace: Duration) {
        self.stop.notify_one();
        let abort = self.task.abort_handle();
        if tokio::time::timeout(grace, self.task).await.is_err() {
            tracing::warn!("records writer did not flush within {grace:?}; queued events are lost");
            abort.abort();
        }
    }
}

impl Recorder {
    /// A recorder that drops every event without counting (records are off).
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            queue: None,
            budget: Arc::new(EventBudget::new(u32::MAX)),
            stats: Arc::default(),
            identities: Arc::default(),
        }
    }

    /// Starts the writer task and returns the recorder the services share. Must be called
    /// inside a tokio runtime. The database is opened by the writer, so an unreachable one
    /// delays nothing: its events are counted as dropped until it comes back.
    #[must_use]
    pub fn start(source: StoreSource, options: RecorderOptions) -> (Self, Writer) {
        let (queue, receiver) = mpsc::channel(options.queue_capacity.max(1));
        let stats = Arc::new(RecorderStats::default());
        stats
            .capacity
            .store(options.queue_capacity as u64, Ordering::Relaxed);
        let budget = Arc::new(EventBudget::new(options.max_events_per_minute));
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(write_loop(
            source,
            options,
            receiver,
            Arc::clone(&stats),
            Arc::clone(&stop),
        ));
        (
            Self {
                queue: Some(queue),
                budget,
                stats,
                identities: Arc::default(),
            },
            Writer { stop, task },
        )
    }

    /// Starts recording as `[records]` says, or returns a disabled recorder when it is off.
    #[must_use]
    pub fn from_config(config: &Arc<Config>) -> (Self, Option<Writer>) {
        if !config.records.enabled {
            return (Self::disabled(), None);
        }
        let (recorder, writer) = Self::start(
            StoreSource::Config(Arc::clone(config)),
            RecorderOptions::from_config(&config.records),
        );
        (recorder, Some(writer))
    }

    /// Whether events go anywhere.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues an event. Never waits: when the queue is full the event is counted as dropped.
    pub fn record(&self, event: Event) {
        self.enqueue(Queued::Known(event));
    }

    /// Records an event of the client at `ip` when only its address is known (TFTP). The
    /// machine is found in this recorder's [`IdentityCache`] (see [`Recorder::identities`]), then in
    /// the kernel's neighbour (ARP) table, and otherwise by the writer in the database: the
    /// machine whose events last carried this address. Events no machine can be found for
    /// are counted as unattributed.
    pub fn record_for_address(&self, ip: std::net::IpAddr, detail: EventDetail) {
        if self.queue.is_none() {
            return;
        }
        // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; their events carry the
        // IPv4 address.
        let ip = ip.to_canonical();
        let known = self
            .identities
            .lookup(ip)
            .or_else(|| crate::neighbours::lookup(ip).map(|mac| (mac, None)));
        let mut event = Event::now(netboot_core::MacAddr::default(), detail).with_ip(Some(ip));
        match known {
            Some((mac, uuid)) => {
                event.mac = mac;
                event.uuid = uuid;
                self.enqueue(Queued::Known(event));
            }
            None => self.enqueue(Queued::ByAddress(event)),
        }
    }

    fn enqueue(&self, item: Queued) {
        let Some(queue) = &self.queue else { return };
        let (mac, ip) = match &item {
            Queued::Known(event) => (Some(event.mac), event.ip),
            Queued::ByAddress(event) => (None, event.ip),
        };
        if !self.budget.spend(mac, ip, std::time::Instant::now()) {
            self.stats.dropped_rate_limited.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match queue.try_send(item) {
            Ok(()) => {
                self.stats.enqueued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.stats.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The pipeline's counters.
    #[must_use]
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The address-to-machine cache [`Recorder::record_for_address`] consults first; services
    /// that learn a machine's address (HTTPS decision requests) remember it here.
    #[must_use]
    pub fn identities(&self) -> Arc<IdentityCache> {
        Arc::clone(&self.identities)
    }

    /// The shared counters, for a metrics exporter.
    #[must_use]
    pub fn stats_handle(&self) -> Arc<RecorderStats> {
        Arc::clone(&self.stats)
    }
}

async fn open(source: &StoreSource) -> Result<Store, StoreError> {
    match source {
        StoreSource::Open(store) => Ok(store.clone()),
        StoreSource::Config(config) => Store::open_config(config).await,
    }
}

async fn write_loop(
    source: StoreSource,
    options: RecorderOptions,
    mut receiver: mpsc::Receiver<Queued>,
    stats: Arc<RecorderStats>,
    stop: Arc<Notify>,
) {
    let mut store: Option<Store> = None;
    let mut next_connect = tokio::time::Instant::now();
    // The first pass waits one interval: a service start should not begin with a mass delete.
    let mut retention = tokio::time::interval_at(
        tokio::time::Instant::now() + options.retention_interval,
        options.retention_interval,
    );
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(options.batch_size);
    let mut stopping = false;
    loop {
        tokio::select! {
            received = receiver.recv_many(&mut batch, options.batch_size) => {
                if received == 0 {
                    break;
                }
            }
            _ = retention.tick(), if store.is_some() && !stopping => {
                if let Some(store) = &store {
                    run_retention(store, &options).await;
                }
                continue;
            }
            () = stop.notified(), if !stopping => {
                // Refuse new events; the loop ends once the queue is drained.
                stopping = true;
                receiver.close();
                continue;
            }
        }
        if store.is_none() && tokio::time::Instant::now() >= next_connect {
            match open(&source).await {
                Ok(opened) => store = Some(opened),
                Err(error) => {
                    tracing::warn!(%error, "records database unavailable; events are dropped and counted until it is back");
                    next_connect = tokio::time::Instant::now() + options.reconnect_delay;
                }
            }
        }
        let mut events = Vec::with_capacity(batch.len());
        for item in batch.drain(..) {
            match item {
                Queued::Known(event) => events.push(event),
                Queued::ByAddress(event) => match attribute(store.as_ref(), event).await {
                    Some(event) => events.push(event),
                    None => {
                        stats.dropped_unattributed.fetch_add(1, Ordering::Relaxed);
                    }
                },
            }
        }
        let count = events.len() as u64;
        let writing = tokio::time::Instant::now();
        let result = match &store {
            Some(store) if !events.is_empty() => store.insert(&events).await.map_err(Some),
            Some(_) => Ok(()),
            None => Err(None),
        };
        match result {
            Ok(()) => {
                stats.written.fetch_add(count, Ordering::Relaxed);
                stats.store_up.store(true, Ordering::Relaxed);
                let share = options.max_write_share.clamp(0.01, 1.0);
                if share < 1.0 && !stopping {
                    tokio::time::sleep(writing.elapsed().mul_f64((1.0 - share) / share)).await;
                }
            }
            Err(error) => {
                stats.dropped_store_error.fetch_add(count, Ordering::Relaxed);
                stats.store_up.store(false, Ordering::Relaxed);
                if let Some(error) = error {
                    tracing::warn!(%error, dropped = count, "writing boot records failed; reconnecting");
                    store = None;
                    next_connect = tokio::time::Instant::now() + options.reconnect_delay;
                }
            }
        }
    }
    // A store the writer opened itself is closed cleanly; one handed in stays open for its owner.
    if let (Some(store), StoreSource::Config(_)) = (store, &source) {
        store.close().await;
    }
}

/// Finds the machine behind an event known only by address.
async fn attribute(store: Option<&Store>, mut event: Event) -> Option<Event> {
    let ip = event.ip?;
    match store?.mac_for_ip(ip, event.at).await {
        Ok(Some(mac)) => {
            event.mac = mac;
            Some(event)
        }
        Ok(None) => {
            tracing::debug!(%ip, kind = event.detail.kind(), "no machine known at this address; event not recorded");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "looking up the machine of an address failed");
            None
        }
    }
}

async fn run_retention(store: &Store, options: &RecorderOptions) {
    let cutoff = options
        .retention
        .and_then(|age| chrono::Duration::from_std(age).ok())
        .map(|age| Utc::now() - age);
    match store.apply_retention(cutoff, options.max_events).await {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(deleted, "records retention removed old events"),
        Err(error) => tracing::warn!(%error, "records retention failed"),
    }
}
