//! A slow or unreachable database never blocks the services; every lost event is counted.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use netboot_config::Config;
use netboot_records::{Recorder, RecorderOptions, StoreSource};
use netboot_testkit::net::unused_loopback_port;
use support::events::{full_boot, mac};

/// A PostgreSQL URL on a loopback port nobody listens on.
fn unreachable_config() -> Arc<Config> {
    let port = unused_loopback_port();
    let text = format!(
        "[records]\nenabled = true\ndatabase = \"postgres://netboot@127.0.0.1:{port}/records\"\nconnect_timeout_secs = 1\n"
    );
    Arc::new(Config::from_toml_str(&text).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_drops_and_counts() {
    let config = unreachable_config();
    let (recorder, writer) = Recorder::from_config(&config);
    let writer = writer.expect("records are enabled");
    let events: Vec<_> = (0..25u8)
        .flat_map(|i| full_boot(mac(&format!("52:54:00:00:02:{i:02x}")), Utc::now()))
        .collect();
    let total = events.len() as u64;
    for event in events {
        recorder.record(event);
    }
    // Wait (bounded) for the writer to give up on every queued event.
    let deadline = Instant::now() + Duration::from_secs(60);
    while recorder.stats().dropped() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = recorder.stats();
    assert_eq!(stats.dropped(), total, "{stats:?}");
    assert_eq!(stats.written, 0);
    assert!(!stats.store_up);
    writer.shutdown(Duration::from_secs(10)).await;
}

#[test]
fn full_queue_drops_without_waiting() {
    // A current-thread runtime: the writer cannot run while this test records, so the queue
    // fills deterministically.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let options = RecorderOptions {
            queue_capacity: 16,
            // One machine records 8000 events here: only the queue may refuse them.
            max_events_per_minute: u32::MAX,
            ..RecorderOptions::default()
        };
        let (recorder, writer) = Recorder::start(StoreSource::Config(unreachable_config()), options);
        for _ in 0..1000 {
            for event in full_boot(mac("52:54:00:00:03:01"), Utc::now()) {
                recorder.record(event);
            }
        }
        let stats = recorder.stats();
        assert_eq!(stats.enqueued, 16);
        assert_eq!(stats.dropped_queue_full, 8000 - 16);
        assert_eq!(stats.queue_depth, 16);
        writer.shutdown(Duration::from_secs(10)).await;
        assert_eq!(
            recorder.stats().dropped(),
            8000,
            "the queued ones are counted once the writer gives up"
        );
    });
}

#[tokio::test]
async fn disabled_recorder_ignores_events() {
    let config = Arc::new(Config::default());
    let (recorder, writer) = Recorder::from_config(&config);
    assert!(writer.is_none() && !recorder.is_enabled());
    recorder.record(full_boot(mac("52:54:00:00:03:02"), Utc::now()).remove(0));
    assert_eq!(recorder.stats(), netboot_records::StatsSnapshot::default());
}
