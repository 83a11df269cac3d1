//! Events per second written through the bounded queue, on SQLite and on a private
//! PostgreSQL server. Run it with `cargo xtask bench records` (release build).
//!
//! Usage: `records-bench [--events N] [--backend sqlite|postgres|both]`

#[path = "../tests/support/pg.rs"]
#[allow(dead_code, unreachable_pub)]
mod pg;

use std::time::{Duration, Instant};

use chrono::Utc;
use netboot_core::{BootStage, ClientArch, MacAddr};
use netboot_records::{
    DecisionKind, DecisionRecord, Event, EventDetail, ImageDownload, ProxyOffer, Recorder, RecorderOptions,
    Store, StoreSource, TftpTransfer,
};

/// One boot's worth of events for machine `n`, cycling through the kinds services record.
fn boot(n: u32) -> [Event; 5] {
    let b = n.to_be_bytes();
    let mac = MacAddr([0x52, 0x54, b[0], b[1], b[2], b[3]]);
    let now = Utc::now();
    let at = |detail| Event {
        at: now,
        mac,
        uuid: None,
        ip: None,
        detail,
    };
    [
        at(EventDetail::ProxyOffer(ProxyOffer {
            arch: ClientArch::EfiX64,
            stage: BootStage::PxeFirmware,
            firmware: "uefi".into(),
            relay: None,
            nic: Some("UNDI 3.16".into()),
            boot_file: Some("ipxe.efi".into()),
            server_port: 67,
            ipxe_features: Vec::new(),
        })),
        at(EventDetail::TftpTransfer(TftpTransfer {
            file: "ipxe.efi".into(),
            blksize: Some(1468),
            bytes: 1_040_000,
            duration_ms: 300,
            ..TftpTransfer::default()
        })),
        at(EventDetail::Decision(DecisionRecord {
            resolver: "static".into(),
            kind: DecisionKind::Boot,
            entries: vec!["Windows PE x64".into()],
            choice: Some("Windows PE x64".into()),
            duration_ms: 1,
        })),
        at(EventDetail::ImageDownload(ImageDownload {
            path: "wimboot".into(),
            bytes: 53_000,
            duration_ms: 20,
            status: 200,
            ..ImageDownload::default()
        })),
        at(EventDetail::ImageDownload(ImageDownload {
            path: "boot.wim".into(),
            bytes: 350_000_000,
            duration_ms: 9000,
            status: 200,
            ..ImageDownload::default()
        })),
    ]
}

struct Figures {
    written: u64,
    dropped: u64,
    elapsed: Duration,
    record_ns: f64,
}

/// Feeds `total` events as fast as the queue accepts them (pausing only while it is full, so
/// nothing is dropped) and waits until the writer has committed them all.
async fn measure(store: Store, total: u32) -> Figures {
    // Flat out: this measures what the database takes, not the services' CPU budget.
    let options = RecorderOptions {
        retention: None,
        max_write_share: 1.0,
        // The synthetic machines record far more per minute than real ones may.
        max_events_per_minute: u32::MAX,
        ..RecorderOptions::default()
    };
    let capacity = options.queue_capacity as u64;
    let (recorder, writer) = Recorder::start(StoreSource::Open(store), options);
    let start = Instant::now();
    let mut in_record = Duration::ZERO;
    let mut sent = 0;
    let mut machine = 0;
    while sent < total {
        while recorder.stats().queue_depth + 5 >= capacity {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let events = boot(machine % 20_000);
        machine += 1;
        let begin = Instant::now();
        for event in events {
            recorder.record(event);
        }
        in_record += begin.elapsed();
        sent += 5;
    }
    writer.shutdown(Duration::from_secs(600)).await;
    let stats = recorder.stats();
    Figures {
        written: stats.written,
        dropped: stats.dropped(),
        elapsed: start.elapsed(),
        record_ns: in_record.as_nanos() as f64 / f64::from(sent),
    }
}

fn report(backend: &str, figures: &Figures) {
    println!(
        "records {backend:<8} {:>8} events in {:>6.2} s = {:>9.0} events/s written, {} dropped; Recorder::record {:.0} ns/call",
        figures.written,
        figures.elapsed.as_secs_f64(),
        figures.written as f64 / figures.elapsed.as_secs_f64(),
        figures.dropped,
        figures.record_ns
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let total: u32 = value("--events").map_or(100_000, |v| v.parse().expect("--events N"));
    let backend = value("--backend").unwrap_or_else(|| "both".into());

    if backend == "sqlite" || backend == "both" {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open_sqlite(&dir.path().join("bench.db"), Duration::from_secs(5))
            .await
            .expect("sqlite");
        report("sqlite", &measure(store, total).await);
    }
    if backend == "postgres" || backend == "both" {
        match pg::PgServer::start() {
            Ok(server) => {
                server.create_database("bench").await;
                let store = Store::open_postgres(&server.url("bench"), None, Duration::from_secs(5))
                    .await
                    .expect("postgres");
                report("postgres", &measure(store.clone(), total).await);
                store.close().await;
            }
            Err(reason) => println!("records postgres skipped: {reason}"),
        }
    }
}
