use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use netboot_core::{
    BootMenu, BootStage, BootTarget, ClientArch, Deployment, LedgerFuture, MacAddr, RecordedRun, SmbiosUuid,
    StaticResolver, StaticRules,
};

use super::*;
use crate::{CacheOptions, Cached};

/// Runs by MAC and by UUID, as the records store keeps them; can fail or hang.
#[derive(Debug, Default)]
struct Ledger {
    by_mac: Mutex<HashMap<MacAddr, Vec<String>>>,
    by_uuid: Mutex<HashMap<SmbiosUuid, Vec<String>>>,
    lookups: AtomicU64,
    failing: AtomicBool,
    hanging: AtomicBool,
}

impl Ledger {
    fn ran(&self, mac: &str, uuid: Option<&str>, deployment: &str) {
        let mac: MacAddr = mac.parse().unwrap();
        self.by_mac
            .lock()
            .unwrap()
            .entry(mac)
            .or_default()
            .push(deployment.into());
        if let Some(uuid) = uuid {
            let uuid: SmbiosUuid = uuid.parse().unwrap();
            self.by_uuid
                .lock()
                .unwrap()
                .entry(uuid)
                .or_default()
                .push(deployment.into());
        }
    }

    fn clear(&self) {
        self.by_mac.lock().unwrap().clear();
        self.by_uuid.lock().unwrap().clear();
    }
}

impl RunLedger for Ledger {
    fn runs_of<'a>(&'a self, mac: MacAddr, uuid: Option<SmbiosUuid>) -> LedgerFuture<'a> {
        Box::pin(async move {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            if self.hanging.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.failing.load(Ordering::SeqCst) {
                return Err("database down".into());
            }
            let mut ids = self.by_mac.lock().unwrap().get(&mac).cloned().unwrap_or_default();
            if let Some(uuid) = uuid {
                ids.extend(
                    self.by_uuid
                        .lock()
                        .unwrap()
                        .get(&uuid)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            Ok(ids
                .into_iter()
                .map(|deployment| RecordedRun {
                    deployment,
                    at: UNIX_EPOCH + Duration::from_secs(1_780_000_000),
                })
                .collect())
        })
    }
}

const RULES: &str = r#"
    [[actions]]
    id = "winpe"
    title = "Windows PE"
    target = { kind = "wimboot", boot_wim = "winpe/boot.wim" }
    [[actions]]
    id = "reimage"
    title = "Reimage"
    target = { kind = "wimboot", boot_wim = "winpe/boot.wim" }
    [[actions]]
    id = "thin-client"
    title = "Diskless"
    target = { kind = "linux", kernel = "thin/linux" }
    [[machines]]
    mac = "52:54:00:00:00:01"
    required = ["winpe", "thin-client"]
    available = ["reimage"]
    [[machines]]
    mac = "52:54:00:00:00:02"
    required = ["winpe"]
    [[machines]]
    mac = "52:54:00:00:00:03"
    available = ["winpe"]
"#;

fn rules() -> StaticResolver {
    StaticResolver::new(toml::from_str::<StaticRules>(RULES).unwrap()).unwrap()
}

fn request(mac: &str, uuid: Option<&str>) -> BootRequest {
    BootRequest::new(mac.parse().unwrap(), ClientArch::EfiX64, BootStage::Ipxe)
        .with_uuid(uuid.map(|u| u.parse().unwrap()))
}

fn entries(list: &[(&str, char)]) -> Vec<(String, char)> {
    list.iter().map(|(id, m)| (id.to_string(), *m)).collect()
}

const UUID: &str = "4c4c4544-0042-3510-8052-b4c04f4e4d32";

#[tokio::test]
async fn a_recorded_run_is_offered_as_available_for_that_machine_only() {
    let ledger = Arc::new(Ledger::default());
    let layer = RequiredOnce::new(rules(), ledger.clone());
    let first = layer
        .resolve_explained(&request("52:54:00:00:00:01", None))
        .await
        .unwrap();
    assert_eq!(
        first.decision.entry_markers(),
        entries(&[("winpe", 'R'), ("thin-client", 'R'), ("reimage", 'A')])
    );
    assert!(first.demotions.is_empty());

    ledger.ran("52:54:00:00:00:01", None, "winpe");
    let after = layer
        .resolve_explained(&request("52:54:00:00:00:01", None))
        .await
        .unwrap();
    assert_eq!(
        after.decision.entry_markers(),
        entries(&[("winpe", 'A'), ("thin-client", 'R'), ("reimage", 'A')]),
        "the diskless Linux entry is not an installation and keeps booting"
    );
    assert_eq!(
        after.demotions,
        [Demotion::Ran {
            deployment: "winpe".into(),
            at: UNIX_EPOCH + Duration::from_secs(1_780_000_000)
        }]
    );
    let other = layer.resolve(&request("52:54:00:00:00:02", None)).await.unwrap();
    assert_eq!(
        other.entry_markers(),
        entries(&[("winpe", 'R')]),
        "another machine is untouched"
    );

    ledger.clear();
    let cleared = layer.resolve(&request("52:54:00:00:00:01", None)).await.unwrap();
    assert_eq!(cleared.entry_markers(), first.decision.entry_markers());
}

#[tokio::test]
async fn a_run_recorded_under_another_nic_counts_through_the_uuid() {
    let ledger = Arc::new(Ledger::default());
    let layer = RequiredOnce::new(rules(), ledger.clone());
    ledger.ran("52:54:00:00:00:99", Some(UUID), "winpe");
    let decision = layer
        .resolve(&request("52:54:00:00:00:02", Some(UUID)))
        .await
        .unwrap();
    assert_eq!(decision.entry_markers(), entries(&[("winpe", 'A')]));
    let without_uuid = layer.resolve(&request("52:54:00:00:00:02", None)).await.unwrap();
    assert_eq!(without_uuid.entry_markers(), entries(&[("winpe", 'R')]));
}

#[tokio::test]
async fn the_ledger_is_asked_only_for_decisions_the_rule_applies_to() {
    let ledger = Arc::new(Ledger::default());
    let layer = RequiredOnce::new(rules(), ledger.clone());
    layer.resolve(&request("52:54:00:00:00:03", None)).await.unwrap();
    layer.resolve(&request("52:54:00:00:00:77", None)).await.unwrap();
    assert_eq!(ledger.lookups.load(Ordering::SeqCst), 0);
    layer.resolve(&request("52:54:00:00:00:02", None)).await.unwrap();
    assert_eq!(ledger.lookups.load(Ordering::SeqCst), 1);
}

/// A resolver that always answers one Required WinPE entry and counts its calls.
#[derive(Debug, Default)]
struct Site {
    calls: AtomicU64,
}

impl BootResolver for Site {
    fn resolve<'a>(&'a self, _request: &'a BootRequest) -> ResolveFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {
            Ok(BootDecision::Boot(BootMenu {
                entries: vec![netboot_core::BootAction {
                    auth: false,
                    id: "PS120002".into(),
                    title: "Windows 11".into(),
                    deployment: Deployment::Required,
                    target: BootTarget::Wimboot {
                        boot_wim: "configmgr/PS100004/boot.wim".into(),
                        bcd: None,
                        boot_sdi: None,
                        files: vec![],
                        wimboot_args: None,
                        variables: Default::default(),
                    },
                }],
                resource_id: Some(16_777_218),
                ..BootMenu::default()
            }))
        })
    }

    fn name(&self) -> &'static str {
        "site"
    }
}

#[tokio::test]
async fn a_cached_required_decision_never_auto_boots_after_the_run_is_recorded() {
    let ledger = Arc::new(Ledger::default());
    let options = CacheOptions {
        ttl: Duration::from_secs(3600),
        ..CacheOptions::default()
    };
    let site = Arc::new(Site::default());
    let layer = RequiredOnce::new(Cached::new(site.clone(), options), ledger.clone());
    let machine = request("00:15:5d:00:00:02", Some(UUID));
    assert_eq!(
        layer.resolve(&machine).await.unwrap().entry_markers(),
        entries(&[("PS120002", 'R')])
    );
    ledger.ran("00:15:5d:00:00:02", Some(UUID), "PS120002");
    assert_eq!(
        layer.resolve(&machine).await.unwrap().entry_markers(),
        entries(&[("PS120002", 'A')])
    );
    assert_eq!(
        site.calls.load(Ordering::SeqCst),
        1,
        "the second decision came from the cache"
    );
    assert_eq!(layer.name(), "site");
}

#[tokio::test]
async fn an_unreadable_or_slow_ledger_offers_required_installations_as_available() {
    let ledger = Arc::new(Ledger::default());
    let layer = RequiredOnce::new(rules(), ledger.clone()).with_ledger_timeout(Duration::from_millis(50));
    ledger.failing.store(true, Ordering::SeqCst);
    let failed = layer
        .resolve_explained(&request("52:54:00:00:00:01", None))
        .await
        .unwrap();
    assert_eq!(
        failed.decision.entry_markers(),
        entries(&[("winpe", 'A'), ("thin-client", 'R'), ("reimage", 'A')])
    );
    assert!(
        matches!(&failed.demotions[..], [Demotion::LedgerUnavailable { deployment, error }]
            if deployment == "winpe" && error.contains("database down")),
        "{:?}",
        failed.demotions
    );

    // Right after a failure the ledger is not asked: an outage must not slow every boot.
    ledger.failing.store(false, Ordering::SeqCst);
    let lookups = ledger.lookups.load(Ordering::SeqCst);
    let skipped = layer
        .resolve_explained(&request("52:54:00:00:00:02", None))
        .await
        .unwrap();
    assert_eq!(skipped.decision.entry_markers(), entries(&[("winpe", 'A')]));
    assert_eq!(ledger.lookups.load(Ordering::SeqCst), lookups);

    let layer = RequiredOnce::new(rules(), ledger.clone()).with_ledger_timeout(Duration::from_millis(50));
    ledger.hanging.store(true, Ordering::SeqCst);
    let slow = layer
        .resolve_explained(&request("52:54:00:00:00:02", None))
        .await
        .unwrap();
    assert_eq!(slow.decision.entry_markers(), entries(&[("winpe", 'A')]));
    assert_eq!(slow.demotions[0].deployment(), "winpe");
}

#[tokio::test]
async fn the_ledger_is_asked_again_after_a_pause() {
    let ledger = Arc::new(Ledger::default());
    let layer = RequiredOnce::new(rules(), ledger.clone());
    ledger.failing.store(true, Ordering::SeqCst);
    layer.resolve(&request("52:54:00:00:00:02", None)).await.unwrap();
    ledger.failing.store(false, Ordering::SeqCst);
    // The pause is over.
    *layer.ledger_down_until.lock().unwrap() = Some(Instant::now());
    let decision = layer.resolve(&request("52:54:00:00:00:02", None)).await.unwrap();
    assert_eq!(decision.entry_markers(), entries(&[("winpe", 'R')]));
    assert_eq!(ledger.lookups.load(Ordering::SeqCst), 2);
}
