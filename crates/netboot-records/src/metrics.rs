//! Service metrics: atomic counters, gauges and histograms the services bump on their hot
//! paths, rendered in the Prometheus text exposition format (version 0.0.4).
//!
//! ```
//! use std::time::Duration;
//! let metrics = netboot_records::Metrics::default();
//! metrics.dhcp.drops.inc("not_pxe_client");
//! metrics.https.decision_seconds.observe(Duration::from_millis(3));
//! let text = metrics.render(None);
//! assert!(text.contains("netboot_dhcp_drops_total{reason=\"not_pxe_client\"} 1"));
//! assert!(text.contains("netboot_https_decision_seconds_count 1"));
//! ```

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use crate::recorder::StatsSnapshot;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The current value.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Subtracts one.
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    /// The current value.
    #[must_use]
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters keyed by one label (a reason, a kind). Labels are `&'static str` codes, so the
/// set stays small; after a label's first use, counting takes a shared read lock only.
#[derive(Debug, Default)]
pub struct LabeledCounter(RwLock<Vec<(&'static str, AtomicU64)>>);

impl LabeledCounter {
    /// Adds one to `label`.
    pub fn inc(&self, label: &'static str) {
        self.add(label, 1);
    }

    /// Adds `n` to `label`.
    pub fn add(&self, label: &'static str, n: u64) {
        {
            let values = self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((_, value)) = values.iter().find(|(l, _)| *l == label) {
                value.fetch_add(n, Ordering::Relaxed);
                return;
            }
        }
        let mut values = self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match values.iter().find(|(l, _)| *l == label) {
            Some((_, value)) => {
                value.fetch_add(n, Ordering::Relaxed);
            }
            None => values.push((label, AtomicU64::new(n))),
        }
    }

    /// The value of `label` (0 when never counted).
    #[must_use]
    pub fn get(&self, label: &str) -> u64 {
        let values = self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        values
            .iter()
            .find(|(l, _)| *l == label)
            .map_or(0, |(_, v)| v.load(Ordering::Relaxed))
    }

    fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let values = self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<_> = values
            .iter()
            .map(|(l, v)| (*l, v.load(Ordering::Relaxed)))
            .collect();
        out.sort_unstable();
        out
    }
}

/// Upper bounds (seconds) of the latency buckets: 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with fixed [`LATENCY_BUCKETS`].
#[derive(Debug)]
pub struct Histogram {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: LATENCY_BUCKETS.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        // Only the first bucket that fits is bumped; rendering accumulates them.
        if let Some(index) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[index].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Observations so far.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// proxyDHCP counters.
#[derive(Debug, Default)]
pub struct DhcpMetrics {
    /// Requests received, by DHCP message type (`discover`, `request`, `inform`, ...).
    pub requests: LabeledCounter,
    /// Replies sent, by kind (`offer`, `ack`, `boot_server`).
    pub replies: LabeledCounter,
    /// Packets not answered, by reason (`not_pxe_client`, `malformed`, `ignored`, ...).
    pub drops: LabeledCounter,
}

/// TFTP counters.
#[derive(Debug, Default)]
pub struct TftpMetrics {
    /// Transfers ended, by outcome (`complete`, `not_found`, `timeout`, ...).
    pub transfers: LabeledCounter,
    /// File bytes sent.
    pub bytes_sent: Counter,
    /// Packets retransmitted.
    pub retransmits: Counter,
    /// Transfers in progress.
    pub active: Gauge,
}

/// HTTPS counters and latencies.
#[derive(Debug, Default)]
pub struct HttpsMetrics {
    /// Requests, by endpoint (`entry`, `decide`, `file`, `admin`).
    pub requests: LabeledCounter,
    /// Decisions served, by kind (`boot`, `exit`, `ignore`, `fallback`).
    pub decisions: LabeledCounter,
    /// Time to answer a decision request, resolver included.
    pub decision_seconds: Histogram,
    /// Time to answer any request (for files: until the headers are sent).
    pub request_seconds: Histogram,
}

/// Every service's metrics. One instance per process, shared through an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// proxyDHCP.
    pub dhcp: DhcpMetrics,
    /// TFTP.
    pub tftp: TftpMetrics,
    /// HTTPS.
    pub https: HttpsMetrics,
}

/// Writes Prometheus text; `write!` to a `String` cannot fail.
struct Exposition(String);

impl Exposition {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn value(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.header(name, kind, help);
        let _ = writeln!(self.0, "{name} {value}");
    }

    fn labeled(&mut self, name: &str, help: &str, label: &str, counter: &LabeledCounter) {
        self.header(name, "counter", help);
        for (value, count) in counter.snapshot() {
            let _ = writeln!(self.0, "{name}{{{label}=\"{}\"}} {count}", escape_label(value));
        }
    }

    fn histogram(&mut self, name: &str, help: &str, histogram: &Histogram) {
        self.header(name, "histogram", help);
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&histogram.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(self.0, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = histogram.count.load(Ordering::Relaxed);
        let sum = histogram.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(
            self.0,
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
        );
    }
}

/// Appends `netboot_host_info{host="..."} 1`: which host the samples come from, as
/// `[log] host_id` names it (join on it when several hosts are scraped into one view).
pub(crate) fn render_host_info(text: &mut String, host_id: &str) {
    let mut out = Exposition(std::mem::take(text));
    out.header(
        "netboot_host_info",
        "gauge",
        "Always 1; the host label is [log] host_id.",
    );
    let _ = writeln!(
        out.0,
        "netboot_host_info{{host=\"{}\",version=\"{}\"}} 1",
        escape_label(host_id),
        env!("CARGO_PKG_VERSION")
    );
    *text = out.0;
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// The Prometheus text exposition of every metric, plus the records pipeline's when
    /// recording is on.
    #[must_use]
    pub fn render(&self, records: Option<&StatsSnapshot>) -> String {
        let mut out = Exposition(String::with_capacity(4096));
        out.labeled(
            "netboot_dhcp_requests_total",
            "DHCP requests received, by message type.",
            "type",
            &self.dhcp.requests,
        );
        out.labeled(
            "netboot_dhcp_replies_total",
            "DHCP replies sent, by kind.",
            "kind",
            &self.dhcp.replies,
        );
        out.labeled(
            "netboot_dhcp_drops_total",
            "DHCP packets not answered, by reason.",
            "reason",
            &self.dhcp.drops,
        );
        out.labeled(
            "netboot_tftp_transfers_total",
            "TFTP transfers ended, by outcome.",
            "outcome",
            &self.tftp.transfers,
        );
        out.value(
            "netboot_tftp_bytes_sent_total",
            "counter",
            "TFTP file bytes sent.",
            self.tftp.bytes_sent.get(),
        );
        out.value(
            "netboot_tftp_retransmits_total",
            "counter",
            "TFTP packets retransmitted.",
            self.tftp.retransmits.get(),
        );
        out.value(
            "netboot_tftp_active_transfers",
            "gauge",
            "TFTP transfers in progress.",
            self.tftp.active.get(),
        );
        out.labeled(
            "netboot_https_requests_total",
            "HTTP(S) requests, by endpoint.",
            "endpoint",
            &self.https.requests,
        );
        out.labeled(
            "netboot_https_decisions_total",
            "Boot decisions served, by kind.",
            "kind",
            &self.https.decisions,
        );
        out.histogram(
            "netboot_https_decision_seconds",
            "Time to answer a boot decision.",
            &self.https.decision_seconds,
        );
        out.histogram(
            "netboot_https_request_seconds",
            "Time to answer an HTTP(S) request.",
            &self.https.request_seconds,
        );
        if let Some(records) = records {
            out.value(
                "netboot_records_queue_depth",
                "gauge",
                "Boot events waiting to be written.",
                records.queue_depth,
            );
            out.value(
                "netboot_records_queue_capacity",
                "gauge",
                "Capacity of the boot-event queue.",
                records.queue_capacity,
            );
            out.value(
                "netboot_records_enqueued_total",
                "counter",
                "Boot events queued.",
                records.enqueued,
            );
            out.value(
                "netboot_records_written_total",
                "counter",
                "Boot events written to the database.",
                records.written,
            );
            out.header(
                "netboot_records_dropped_total",
                "counter",
                "Boot events lost, by reason.",
            );
            let _ = writeln!(
                out.0,
                "netboot_records_dropped_total{{reason=\"queue_full\"}} {}\nnetboot_records_dropped_total{{reason=\"store_error\"}} {}\nnetboot_records_dropped_total{{reason=\"unattributed\"}} {}\nnetboot_records_dropped_total{{reason=\"rate_limited\"}} {}",
                records.dropped_queue_full, records.dropped_store_error, records.dropped_unattributed, records.dropped_rate_limited
            );
            out.value(
                "netboot_records_store_up",
                "gauge",
                "1 when the last database write succeeded.",
                u8::from(records.store_up),
            );
        }
        out.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.https.decision_seconds.observe(Duration::from_micros(300));
        metrics.https.decision_seconds.observe(Duration::from_millis(20));
        metrics.https.decision_seconds.observe(Duration::from_secs(60));
        let text = metrics.render(None);
        assert!(
            text.contains("netboot_https_decision_seconds_bucket{le=\"0.0005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("netboot_https_decision_seconds_bucket{le=\"0.025\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("netboot_https_decision_seconds_bucket{le=\"10\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("netboot_https_decision_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("netboot_https_decision_seconds_count 3\n"),
            "{text}"
        );
    }

    #[test]
    fn labels_are_counted_and_escaped() {
        let metrics = Metrics::default();
        metrics.dhcp.drops.inc("a\"b");
        metrics.dhcp.drops.add("a\"b", 2);
        metrics.tftp.active.inc();
        assert_eq!(metrics.dhcp.drops.get("a\"b"), 3);
        let text = metrics.render(Some(&StatsSnapshot {
            dropped_queue_full: 7,
            ..StatsSnapshot::default()
        }));
        assert!(
            text.contains("netboot_dhcp_drops_total{reason=\"a\\\"b\"} 3"),
            "{text}"
        );
        assert!(text.contains("netboot_tftp_active_transfers 1"), "{text}");
        assert!(
            text.contains("netboot_records_dropped_total{reason=\"queue_full\"} 7"),
            "{text}"
        );
        // Every sample line belongs to a declared metric family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {family} ")) || text.contains(&format!("# TYPE {name} ")),
                "{line}"
            );
        }
    }
}
