//! The storage test suite, run once on SQLite and once on a real PostgreSQL server.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use netboot_records::{
    EventDetail, ExportFormat, MachineQuery, Outcome, Recorder, RecorderOptions, RequiredChange, RequiredRun,
    RequiredRuns, Stage, Store, StoreSource, MAX_CLAIMS_PER_MACHINE,
};
use support::events::{at, failed_boot, full_boot, mac};

type Case = fn(Store) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        const CASES: &[(&str, Case)] = &[$((stringify!($name), |store| Box::pin($name(store)))),*];
    };
}

cases!(
    full_boot_builds_machine_and_timeline,
    search_finds_mac_uuid_and_serial,
    statistics_count_boots_and_outcomes,
    failures_list_the_failed_steps,
    retention_deletes_by_age_and_rows,
    export_pages_through_every_event,
    recorder_writes_through_the_queue,
    out_of_order_batches_keep_the_newest_outcome,
    events_seen_by_address_find_their_machine,
    one_batch_with_two_boots_merges_the_machine,
    required_runs_are_matched_by_mac_or_uuid_and_cleared,
    claims_from_other_clients_never_replace_the_first_and_are_bounded,
);

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_suite() {
    for (name, case) in CASES {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.db");
        let store = Store::open_sqlite(&path, TIMEOUT).await.unwrap();
        eprintln!("sqlite: {name}");
        case(store.clone()).await;
        store.close().await;
        // Reopening migrates nothing and keeps the data.
        let again = Store::open_sqlite(&path, TIMEOUT).await.unwrap();
        assert!(path.exists());
        again.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_suite() {
    let Some(server) = support::pg::start_or_skip() else {
        return;
    };
    for (index, (name, case)) in CASES.iter().enumerate() {
        let database = format!("suite_{index}");
        server.create_database(&database).await;
        let store = Store::open_postgres(&server.url(&database), None, TIMEOUT)
            .await
            .unwrap();
        assert_eq!(store.backend_name(), "postgres");
        eprintln!("postgres: {name}");
        case(store.clone()).await;
        store.close().await;
        let again = Store::open_postgres(&server.url(&database), None, TIMEOUT)
            .await
            .unwrap();
        again.close().await;
    }

    // A database migrated from the same SQL files with versions and checksums computed at run
    // time, as the list the store embedded before `sqlx::migrate!` did, opens as up to date.
    server.create_database("migrated_before").await;
    let url = server.url("migrated_before");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let files = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"));
    let earlier = sqlx::migrate::Migrator::new(files).await.unwrap();
    earlier.run(&pool).await.unwrap();
    pool.close().await;
    Store::open_postgres(&url, None, TIMEOUT)
        .await
        .unwrap()
        .close()
        .await;
}

fn base() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, 9, 0, 0).unwrap()
}

async fn full_boot_builds_machine_and_timeline(store: Store) {
    let machine_mac = mac("52:54:00:12:34:56");
    store.insert(&full_boot(machine_mac, base())).await.unwrap();
    let machine = store.machine(machine_mac).await.unwrap().expect("machine record");
    assert_eq!(machine.boot_count, 1);
    assert_eq!(machine.last_outcome, Outcome::ImageLoaded);
    assert_eq!(machine.firmware.as_deref(), Some("ipxe"));
    assert_eq!(machine.arches, vec!["x64-uefi".to_string()]);
    assert_eq!(machine.nic.as_deref(), Some("UNDI 3.16"));
    assert_eq!(machine.ipxe_features, vec!["HTTPS", "EFI", "Menu"]);
    assert_eq!(machine.tls, Some(true));
    assert_eq!(machine.serial.as_deref(), Some("SN-0042"));
    assert_eq!(
        machine.uuid.unwrap().to_string(),
        "8c4d7a2e-1f3b-4c5d-9e6f-0a1b2c3d4e5f"
    );
    assert_eq!(machine.first_seen, base());
    assert_eq!(machine.last_seen, at(base(), 1600));

    // A second boot from BIOS the next day adds an architecture and a boot.
    store
        .insert(&failed_boot(machine_mac, at(base(), 86_400_000)))
        .await
        .unwrap();
    let machine = store.machine(machine_mac).await.unwrap().unwrap();
    assert_eq!(machine.boot_count, 2);
    assert_eq!(machine.arches, vec!["x64-uefi".to_string(), "bios".to_string()]);
    assert_eq!(machine.last_outcome, Outcome::Failed);

    let timeline = store.timeline(machine_mac, 10).await.unwrap();
    assert_eq!(timeline.len(), 2, "two boots");
    let (latest, first) = (&timeline[0], &timeline[1]);
    assert_eq!(latest.outcome, Outcome::Failed);
    assert_eq!(latest.reached, Stage::Tftp);
    assert_eq!(first.outcome, Outcome::ImageLoaded);
    let stages: Vec<Stage> = first.events.iter().map(|e| e.stage).collect();
    assert_eq!(
        stages,
        [
            Stage::Dhcp,
            Stage::Tftp,
            Stage::Dhcp,
            Stage::Https,
            Stage::Https,
            Stage::Image,
            Stage::Image,
            Stage::Image
        ]
    );
    assert_eq!(first.events[1].duration_ms, Some(420));
    assert_eq!(first.events, store.events_of(machine_mac, 11).await.unwrap()[..8]);
    assert!(store.machine(mac("00:00:00:00:00:01")).await.unwrap().is_none());
}

async fn search_finds_mac_uuid_and_serial(store: Store) {
    let a = mac("52:54:00:aa:00:01");
    let b = mac("52:54:00:bb:00:02");
    store.insert(&full_boot(a, base())).await.unwrap();
    store.insert(&failed_boot(b, at(base(), 10_000))).await.unwrap();
    let search = |text: &str| MachineQuery {
        search: Some(text.into()),
        limit: 50,
        ..MachineQuery::default()
    };
    let macs = |found: Vec<netboot_records::Machine>| found.into_iter().map(|m| m.mac).collect::<Vec<_>>();

    assert_eq!(
        macs(
            store
                .machines(&MachineQuery {
                    limit: 50,
                    ..MachineQuery::default()
                })
                .await
                .unwrap()
        ),
        [b, a]
    );
    assert_eq!(
        macs(store.machines(&search("52-54-00-AA-00-01")).await.unwrap()),
        [a]
    );
    assert_eq!(macs(store.machines(&search("8C4D7A2E")).await.unwrap()), [a]);
    assert_eq!(macs(store.machines(&search("sn-00")).await.unwrap()), [a]);
    assert_eq!(macs(store.machines(&search("bb:00")).await.unwrap()), [b]);
    assert_eq!(macs(store.machines(&search("100%")).await.unwrap()), []);
    let bios = MachineQuery {
        arch: Some("bios".into()),
        limit: 50,
        ..MachineQuery::default()
    };
    assert_eq!(macs(store.machines(&bios).await.unwrap()), [b]);
    let failed = MachineQuery {
        outcome: Some(Outcome::Failed),
        limit: 50,
        ..MachineQuery::default()
    };
    assert_eq!(macs(store.machines(&failed).await.unwrap()), [b]);
    let paged = MachineQuery {
        limit: 1,
        offset: 1,
        ..MachineQuery::default()
    };
    assert_eq!(macs(store.machines(&paged).await.unwrap()), [a]);
}

async fn statistics_count_boots_and_outcomes(store: Store) {
    for (i, day) in [0, 0, 1, 3].iter().enumerate() {
        let machine = mac(&format!("52:54:00:00:00:{i:02x}"));
        store
            .insert(&full_boot(machine, at(base(), day * 86_400_000)))
            .await
            .unwrap();
    }
    store
        .insert(&failed_boot(mac("52:54:00:00:00:ff"), at(base(), 3 * 86_400_000)))
        .await
        .unwrap();
    let now = at(base(), 3 * 86_400_000 + 3_600_000);
    let per_day = store.boots_per_day(now, 5).await.unwrap();
    let counts: Vec<(String, u64)> = per_day.iter().map(|d| (d.day.to_string(), d.boots)).collect();
    assert_eq!(
        counts,
        [
            ("2026-03-13".to_string(), 0),
            ("2026-03-14".to_string(), 2),
            ("2026-03-15".to_string(), 1),
            ("2026-03-16".to_string(), 0),
            ("2026-03-17".to_string(), 2),
        ]
    );
    let arches = store.boots_per_arch(base()).await.unwrap();
    let arches: Vec<(&str, u64)> = arches.iter().map(|c| (c.key.as_str(), c.count)).collect();
    assert_eq!(arches, [("x64-uefi", 4), ("bios", 1)]);
    let outcomes = store.outcomes(base()).await.unwrap();
    let outcomes: Vec<(&str, u64)> = outcomes.iter().map(|c| (c.key.as_str(), c.count)).collect();
    assert_eq!(outcomes, [("image_loaded", 4), ("failed", 1)]);
    assert_eq!(
        store.outcomes(now).await.unwrap().len(),
        0,
        "nothing seen after `now`"
    );
}

async fn failures_list_the_failed_steps(store: Store) {
    store
        .insert(&full_boot(mac("52:54:00:00:00:01"), base()))
        .await
        .unwrap();
    store
        .insert(&failed_boot(mac("52:54:00:00:00:02"), at(base(), 5_000)))
        .await
        .unwrap();
    let failures = store.failures(base(), 10).await.unwrap();
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0].detail.kind(), "error", "newest first");
    assert_eq!(failures[1].detail.kind(), "tftp_transfer");
    assert!(failures
        .iter()
        .all(|f| !f.ok && f.mac == mac("52:54:00:00:00:02")));
    assert_eq!(store.failures(at(base(), 6_000), 10).await.unwrap().len(), 0);
}

async fn retention_deletes_by_age_and_rows(store: Store) {
    store
        .insert(&full_boot(mac("52:54:00:00:00:01"), base()))
        .await
        .unwrap();
    store
        .insert(&full_boot(mac("52:54:00:00:00:02"), at(base(), 86_400_000)))
        .await
        .unwrap();
    assert_eq!(store.event_count().await.unwrap(), 16);
    let deleted = store
        .apply_retention(Some(at(base(), 3_600_000)), 0)
        .await
        .unwrap();
    assert_eq!(deleted, 8);
    assert!(
        store.machine(mac("52:54:00:00:00:01")).await.unwrap().is_none(),
        "machine not seen since is gone"
    );
    assert!(store.machine(mac("52:54:00:00:00:02")).await.unwrap().is_some());
    let deleted = store.apply_retention(None, 3).await.unwrap();
    assert_eq!(deleted, 5);
    let left = store.events_of(mac("52:54:00:00:00:02"), 100).await.unwrap();
    assert_eq!(left.len(), 3, "the newest three remain");
    assert_eq!(
        left[2].detail,
        full_boot(mac("52:54:00:00:00:02"), base())[7].detail
    );
    assert_eq!(store.apply_retention(None, 3).await.unwrap(), 0);
}

async fn export_pages_through_every_event(store: Store) {
    store
        .insert(&full_boot(mac("52:54:00:00:00:01"), base()))
        .await
        .unwrap();
    store
        .insert(&failed_boot(mac("52:54:00:00:00:02"), base()))
        .await
        .unwrap();
    let mut after = 0;
    let mut csv = ExportFormat::Csv.begin().to_string();
    let mut json = ExportFormat::Json.begin().to_string();
    let mut first = true;
    loop {
        let page = store.events_after(after, 4).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        for event in &page {
            csv.push_str(&ExportFormat::Csv.row(event, first));
            json.push_str(&ExportFormat::Json.row(event, first));
            first = false;
        }
    }
    json.push_str(ExportFormat::Json.end());
    assert_eq!(csv.lines().count(), 1 + 11);
    assert!(csv.contains("\"{\"\"kind\"\":\"\"tftp_transfer\"\""), "{csv}");
    let parsed: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed.len(), 11);
    assert_eq!(parsed[1]["detail"]["file"], "ipxe.efi");
    assert_eq!(parsed[0]["mac"], "52:54:00:00:00:01");
}

async fn recorder_writes_through_the_queue(store: Store) {
    // Fixture timestamps are in the past; retention is tested on its own above.
    let options = RecorderOptions {
        batch_size: 7,
        retention: None,
        ..RecorderOptions::default()
    };
    let (recorder, writer) = Recorder::start(StoreSource::Open(store.clone()), options);
    let mut expected = 0;
    for i in 0..40u8 {
        for event in full_boot(
            mac(&format!("52:54:00:00:01:{i:02x}")),
            at(base(), i64::from(i) * 1000),
        ) {
            recorder.record(event);
            expected += 1;
        }
    }
    writer.shutdown(Duration::from_secs(60)).await;
    let stats = recorder.stats();
    assert_eq!(stats.enqueued, expected);
    assert_eq!(stats.written, expected);
    assert_eq!(stats.dropped(), 0);
    assert_eq!(stats.queue_depth, 0);
    assert_eq!(store.event_count().await.unwrap(), expected);
    assert_eq!(
        store
            .machines(&MachineQuery {
                limit: 1000,
                ..MachineQuery::default()
            })
            .await
            .unwrap()
            .len(),
        40
    );
}

async fn out_of_order_batches_keep_the_newest_outcome(store: Store) {
    let machine = mac("52:54:00:00:00:09");
    let events = full_boot(machine, base());
    // The image service's batch lands before the proxy's.
    store.insert(&events[5..]).await.unwrap();
    store.insert(&events[..5]).await.unwrap();
    let record = store.machine(machine).await.unwrap().unwrap();
    assert_eq!(record.last_outcome, Outcome::ImageLoaded);
    assert_eq!(record.first_seen, base());
    assert_eq!(record.last_seen, at(base(), 1600));
    assert_eq!(record.boot_count, 1);
}

#[test]
fn fixture_details_survive_storage_encoding() {
    // Every fixture kind decodes back to itself (a field clashing with the `kind` tag would not).
    for event in full_boot(mac("52:54:00:00:00:01"), base())
        .into_iter()
        .chain(failed_boot(mac("52:54:00:00:00:02"), base()))
    {
        let text = serde_json::to_string(&event.detail).unwrap();
        assert_eq!(
            serde_json::from_str::<netboot_records::EventDetail>(&text).unwrap(),
            event.detail,
            "{text}"
        );
    }
}

async fn events_seen_by_address_find_their_machine(store: Store) {
    let machine = mac("52:54:00:00:00:0a");
    let ip: std::net::IpAddr = "198.51.100.7".parse().unwrap();
    let mut offer = full_boot(machine, Utc::now()).remove(0).with_ip(Some(ip));
    offer.at = Utc::now() - chrono::Duration::seconds(5);
    store.insert(&[offer]).await.unwrap();
    let options = RecorderOptions {
        retention: None,
        ..RecorderOptions::default()
    };
    let (recorder, writer) = Recorder::start(StoreSource::Open(store.clone()), options);
    let transfer = full_boot(machine, Utc::now()).remove(1).detail;
    recorder.record_for_address(ip, transfer.clone());
    recorder.record_for_address("198.51.100.8".parse().unwrap(), transfer.clone());
    writer.shutdown(Duration::from_secs(30)).await;
    let stats = recorder.stats();
    assert_eq!((stats.written, stats.dropped_unattributed), (1, 1), "{stats:?}");
    let events = store.events_of(machine, 10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].detail, transfer);
    assert_eq!(
        store
            .mac_for_ip(ip, Utc::now() + chrono::Duration::hours(2))
            .await
            .unwrap(),
        None,
        "too old to trust"
    );
}

async fn one_batch_with_two_boots_merges_the_machine(store: Store) {
    let machine_mac = mac("52:54:00:00:00:0b");
    let mut batch = failed_boot(machine_mac, at(base(), 86_400_000));
    batch.extend(full_boot(machine_mac, base()));
    store.insert(&batch).await.unwrap();
    let machine = store.machine(machine_mac).await.unwrap().unwrap();
    assert_eq!(machine.boot_count, 2);
    assert_eq!(machine.arches, ["x64-uefi", "bios"], "in time order, each once");
    assert_eq!(machine.last_outcome, Outcome::Failed, "the newest boot failed");
    assert_eq!(
        (machine.first_seen, machine.last_seen),
        (base(), at(base(), 86_400_301))
    );
    assert_eq!(machine.serial.as_deref(), Some("SN-0042"));
    assert_eq!(store.timeline(machine_mac, 5).await.unwrap().len(), 2);
}

fn run(mac_text: &str, uuid: Option<&str>, deployment: &str, at: chrono::DateTime<Utc>) -> RequiredRun {
    RequiredRun {
        mac: mac(mac_text),
        uuid: uuid.map(|u| u.parse().unwrap()),
        resource_id: Some(16_777_218),
        deployment: deployment.into(),
        boot_image: Some("configmgr/PS100004/boot.wim".into()),
        client_ip: Some("10.0.0.42".parse().unwrap()),
        at,
    }
}

async fn required_runs_are_matched_by_mac_or_uuid_and_cleared(store: Store) {
    const UUID: &str = "8c4d7a2e-1f3b-4c5d-9e6f-0a1b2c3d4e5f";
    let machine = mac("52:54:00:12:34:56");
    store.insert(&full_boot(machine, base())).await.unwrap();
    let runs = RequiredRuns::over(store.clone());
    let first = run("52:54:00:12:34:56", Some(UUID), "PS120002", at(base(), 60_000));
    runs.record(&first).await.unwrap();
    assert_eq!(
        runs.runs_of(machine, None).await.unwrap(),
        std::slice::from_ref(&first)
    );
    // The same machine from another network card, by its UUID; a stranger has none.
    let other_nic = mac("52:54:00:99:99:99");
    assert_eq!(runs.runs_of(other_nic, first.uuid).await.unwrap().len(), 1);
    assert!(runs.runs_of(other_nic, None).await.unwrap().is_empty());
    assert!(runs
        .runs_of(
            other_nic,
            Some("00112233-4455-6677-8899-aabbccddeeff".parse().unwrap())
        )
        .await
        .unwrap()
        .is_empty());

    // Running it again replaces the record (keeping what the new one lacks); another
    // deployment is a second record; another machine's runs are its own.
    let again = RequiredRun {
        uuid: None,
        resource_id: None,
        ..run("52:54:00:12:34:56", None, "PS120002", at(base(), 120_000))
    };
    runs.record(&again).await.unwrap();
    runs.record(&run("52:54:00:12:34:56", None, "PS120003", at(base(), 90_000)))
        .await
        .unwrap();
    runs.record(&run("52:54:00:00:00:07", None, "PS120002", at(base(), 90_000)))
        .await
        .unwrap();
    let found = runs.runs_of(machine, None).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|r| r.deployment.as_str()).collect();
    assert_eq!(ids, ["PS120002", "PS120003"], "newest first");
    assert_eq!(found[0].at, at(base(), 120_000));
    assert_eq!(found[0].uuid, first.uuid, "the UUID is kept");
    assert_eq!(found[0].resource_id, Some(16_777_218));

    // A run recorded under the other card is cleared with the machine, through its UUID.
    runs.record(&run(
        "52:54:00:99:99:99",
        Some(UUID),
        "PS120004",
        at(base(), 100_000),
    ))
    .await
    .unwrap();
    let before = store.machine(machine).await.unwrap().unwrap();
    let cleared = runs.clear_machine(machine, Some(&store), "test").await.unwrap();
    let ids: Vec<&str> = cleared.iter().map(|r| r.deployment.as_str()).collect();
    assert_eq!(ids, ["PS120002", "PS120004", "PS120003"]);
    assert!(runs.runs_of(machine, first.uuid).await.unwrap().is_empty());
    assert_eq!(
        runs.runs_of(mac("52:54:00:00:00:07"), None).await.unwrap().len(),
        1
    );
    assert!(runs
        .clear_machine(machine, Some(&store), "test")
        .await
        .unwrap()
        .is_empty());

    // The clear is on the timeline; the machine's record (outcome, last seen) is not changed.
    let events = store.events_of(machine, 100).await.unwrap();
    let clears: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.detail {
            EventDetail::RequiredRun(r) if r.change == RequiredChange::Cleared => Some(r.summary()),
            _ => None,
        })
        .collect();
    assert_eq!(clears.len(), 2, "{clears:?}");
    assert!(
        clears.contains(
            &"Required PS120002 (booted at 2026-03-14 09:02:00 UTC) cleared by test; Required again"
                .to_string()
        ),
        "{clears:?}"
    );
    assert_eq!(store.machine(machine).await.unwrap().unwrap(), before);
}

#[tokio::test]
async fn without_records_the_runs_live_in_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/required-runs.sqlite");
    let runs = RequiredRuns::in_file(&path);
    assert!(!path.exists(), "opened on first use only");
    let recorded = run("52:54:00:12:34:56", None, "PS120002", base());
    runs.record(&recorded).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    let wal = dir.path().join("state/required-runs.sqlite-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600);
    }
    assert!(runs.location().contains("required-runs.sqlite"));

    // Another process (another pool) finds it after a restart.
    let reopened = RequiredRuns::in_file(&path);
    assert_eq!(
        reopened.runs_of(recorded.mac, None).await.unwrap(),
        std::slice::from_ref(&recorded)
    );
    assert_eq!(
        reopened.clear_machine(recorded.mac, None, "test").await.unwrap(),
        [recorded]
    );

    // An existing file with loose permissions is tightened.
    let loose = dir.path().join("loose.sqlite");
    std::fs::write(&loose, b"").unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    RequiredRuns::in_file(&loose)
        .runs_of(mac("52:54:00:12:34:56"), None)
        .await
        .unwrap();
    assert_eq!(mode(&loose), 0o600);
}

#[tokio::test]
async fn an_unopenable_file_is_an_error_not_a_panic_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let runs = RequiredRuns::in_file(&blocker.join("required-runs.sqlite"));
    let error = runs.runs_of(mac("52:54:00:12:34:56"), None).await.unwrap_err();
    assert!(error.to_string().contains("not-a-dir"), "{error}");
    std::fs::remove_file(&blocker).unwrap();
    assert!(runs
        .runs_of(mac("52:54:00:12:34:56"), None)
        .await
        .unwrap()
        .is_empty());
}

/// The entry event of `mac` from `ip` claiming `serial`.
fn claiming(mac_text: &str, ip: &str, serial: &str, ms: i64) -> netboot_records::Event {
    let mut entry = full_boot(mac(mac_text), base())
        .into_iter()
        .find(|e| matches!(e.detail, EventDetail::HttpsEntry(_)))
        .unwrap();
    let EventDetail::HttpsEntry(https) = &mut entry.detail else {
        unreachable!()
    };
    https.hardware.serial = Some(serial.into());
    entry.at = at(base(), ms);
    entry.ip = Some(ip.parse().unwrap());
    entry
}

async fn claims_from_other_clients_never_replace_the_first_and_are_bounded(store: Store) {
    let victim = "52:54:00:00:00:aa";
    store
        .insert(&[claiming(victim, "10.0.0.20", "REAL-1", 0)])
        .await
        .unwrap();
    store
        .insert(&[claiming(victim, "10.0.0.20", "REAL-1", 1000)])
        .await
        .unwrap();
    // Another client claims to be the same machine with another serial number.
    store
        .insert(&[claiming(victim, "10.0.0.99", "FORGED", 2000)])
        .await
        .unwrap();
    let machine = store.machine(mac(victim)).await.unwrap().unwrap();
    assert_eq!(machine.serial.as_deref(), Some("REAL-1"), "the first claim stays");
    let serials: Vec<_> = store
        .claims_of(mac(victim))
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.field == "serial")
        .map(|c| (c.value, c.source, c.times, c.first_seen, c.last_seen))
        .collect();
    assert_eq!(
        serials,
        [
            ("REAL-1".into(), "10.0.0.20".into(), 2, base(), at(base(), 1000)),
            (
                "FORGED".into(),
                "10.0.0.99".into(),
                1,
                at(base(), 2000),
                at(base(), 2000)
            ),
        ]
    );

    // A client cycling through made-up serial numbers stops adding claims at the bound;
    // repeats of kept claims still count.
    let flood: Vec<_> = (0..100)
        .map(|i| claiming(victim, "10.0.0.99", &format!("MADE-UP-{i}"), 3000 + i))
        .collect();
    store.insert(&flood).await.unwrap();
    store
        .insert(&[claiming(victim, "10.0.0.20", "REAL-1", 9000)])
        .await
        .unwrap();
    let claims = store.claims_of(mac(victim)).await.unwrap();
    assert_eq!(claims.len() as i64, MAX_CLAIMS_PER_MACHINE);
    let real = claims.iter().find(|c| c.value == "REAL-1").unwrap();
    assert_eq!((real.times, real.last_seen), (3, at(base(), 9000)));
    assert_eq!(
        store
            .machine(mac(victim))
            .await
            .unwrap()
            .unwrap()
            .serial
            .as_deref(),
        Some("REAL-1")
    );
    // Retention forgets claims with their machine.
    store.apply_retention(Some(at(base(), 100_000)), 0).await.unwrap();
    assert!(store.claims_of(mac(victim)).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_client_flooding_events_is_cut_off_at_its_budget_and_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("records.db"), TIMEOUT)
        .await
        .unwrap();
    let options = RecorderOptions {
        retention: None,
        max_events_per_minute: 20,
        ..RecorderOptions::default()
    };
    let (recorder, writer) = Recorder::start(StoreSource::Open(store.clone()), options);
    let flooder = "10.0.0.66".parse().unwrap();
    // One address claiming a new MAC for every event spends its own budget all the same.
    for i in 0..200u8 {
        let mut event = full_boot(mac(&format!("52:54:00:00:02:{i:02x}")), base()).remove(1);
        event.ip = Some(flooder);
        recorder.record(event);
    }
    let honest = full_boot(mac("52:54:00:00:03:01"), base());
    let honest_events = honest.len() as u64;
    honest.into_iter().for_each(|event| recorder.record(event));
    writer.shutdown(Duration::from_secs(60)).await;
    let stats = recorder.stats();
    assert_eq!(stats.dropped_rate_limited, 180, "{stats:?}");
    assert_eq!(stats.written, 20 + honest_events, "{stats:?}");
    assert_eq!(store.event_count().await.unwrap(), 20 + honest_events);
}
