//! Shared fixtures of the admin tests: a records database with a successful and a failed boot.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use netboot_admin::{
    AdminState, ApprovalDecision, ApprovalDesk, ApprovalError, Credentials, PendingApproval,
};
use netboot_core::{BootStage, ClientArch, HardwareInfo, MacAddr};
use netboot_records::{
    DecisionKind, DecisionRecord, ErrorRecord, Event, EventDetail, HttpsEntry, ImageDownload, Metrics,
    ProxyOffer, Recorder, Stage, Store, TftpTransfer,
};

pub const TOKEN: &str = "test-token-0123456789";
pub const USER: &str = "ops";
pub const PASSWORD: &str = "correct horse";
pub const GOOD: &str = "52:54:00:12:34:56";
pub const BAD: &str = "52:54:00:ab:cd:ef";

fn offer(arch: ClientArch, stage: BootStage) -> EventDetail {
    EventDetail::ProxyOffer(ProxyOffer {
        arch,
        stage,
        firmware: if stage == BootStage::Ipxe {
            "ipxe".into()
        } else {
            "uefi".into()
        },
        relay: None,
        nic: Some("UNDI 3.16".into()),
        boot_file: Some("ipxe.efi".into()),
        server_port: 67,
        ipxe_features: Vec::new(),
    })
}

/// A UEFI machine that booted all the way to its WIM, and a BIOS one whose TFTP timed out.
pub fn events(now: DateTime<Utc>) -> Vec<Event> {
    let good: MacAddr = GOOD.parse().unwrap();
    let bad: MacAddr = BAD.parse().unwrap();
    let uuid = Some("8c4d7a2e-1f3b-4c5d-9e6f-0a1b2c3d4e5f".parse().unwrap());
    let t = |ms: i64| now - chrono::Duration::seconds(120) + chrono::Duration::milliseconds(ms);
    let step = |ms, detail| Event {
        at: t(ms),
        mac: good,
        uuid,
        ip: None,
        detail,
    };
    vec![
        step(0, offer(ClientArch::EfiX64, BootStage::PxeFirmware)),
        step(
            600,
            EventDetail::TftpTransfer(TftpTransfer {
                file: "ipxe.efi".into(),
                blksize: Some(1468),
                windowsize: Some(8),
                tsize: Some(1_040_000),
                bytes: 1_040_000,
                duration_ms: 420,
                retransmits: 0,
                error: None,
            }),
        ),
        step(1500, offer(ClientArch::EfiX64, BootStage::Ipxe)),
        step(
            1800,
            EventDetail::HttpsEntry(HttpsEntry {
                arch: Some(ClientArch::EfiX64),
                hardware: HardwareInfo {
                    manufacturer: Some("QEMU".into()),
                    product: Some("Standard PC <script>alert(1)</script>".into()),
                    serial: Some("SN-0042".into()),
                    asset: None,
                    platform: Some("efi".into()),
                    buildarch: Some("x86_64".into()),
                },
                ipxe_version: Some("1.21.1".into()),
                features: vec!["HTTPS".into(), "EFI".into()],
                tls: true,
            }),
        ),
        step(
            1850,
            EventDetail::Decision(DecisionRecord {
                resolver: "static".into(),
                kind: DecisionKind::Boot,
                entries: vec!["Windows PE x64".into()],
                choice: Some("Windows PE x64".into()),
                duration_ms: 2,
            }),
        ),
        step(
            2100,
            EventDetail::ImageDownload(ImageDownload {
                path: "wimboot".into(),
                bytes: 53_000,
                duration_ms: 60,
                status: 200,
                ..ImageDownload::default()
            }),
        ),
        step(
            9000,
            EventDetail::ImageDownload(ImageDownload {
                path: "winpe/x64/boot.wim".into(),
                bytes: 350_000_000,
                duration_ms: 6800,
                status: 200,
                ..ImageDownload::default()
            }),
        ),
        Event {
            at: t(500),
            mac: bad,
            uuid: None,
            ip: None,
            detail: offer(ClientArch::X86Bios, BootStage::PxeFirmware),
        },
        Event {
            at: t(5600),
            mac: bad,
            uuid: None,
            ip: None,
            detail: EventDetail::TftpTransfer(TftpTransfer {
                file: "undionly.kpxe".into(),
                duration_ms: 5000,
                retransmits: 5,
                error: Some("timed out waiting for ACK of block 1".into()),
                ..TftpTransfer::default()
            }),
        },
        Event {
            at: t(5601),
            mac: bad,
            uuid: None,
            ip: None,
            detail: EventDetail::Error(ErrorRecord {
                stage: Stage::Tftp,
                cause: "client stopped acknowledging".into(),
            }),
        },
    ]
}

/// A fresh SQLite store holding [`events`], and admin state over it (token and basic auth).
pub async fn state(dir: &tempfile::TempDir, base: &str, metrics_public: bool) -> (AdminState, Store) {
    let store = Store::open_sqlite(&dir.path().join("records.db"), Duration::from_secs(5))
        .await
        .unwrap();
    store.insert(&events(Utc::now())).await.unwrap();
    let mut credentials = Credentials::token(TOKEN).with_basic(USER, PASSWORD);
    credentials.metrics_public = metrics_public;
    let metrics = Arc::new(Metrics::default());
    metrics.dhcp.drops.inc("not_pxe_client");
    metrics.tftp.bytes_sent.add(1_040_000);
    let state = AdminState::new(
        Some(store.clone()),
        Recorder::disabled(),
        metrics,
        credentials,
        base,
    )
    .with_required_runs(Some(netboot_records::RequiredRuns::over(store.clone())))
    .with_approvals(Some(Arc::new(Desk::waiting(&["APPRV2", "DENY34"]))));
    (state, store)
}

/// Consoles waiting with the given codes (the HTTPS service's table is tested with it).
#[derive(Debug, Default)]
pub struct Desk {
    waiting: std::sync::Mutex<Vec<PendingApproval>>,
    /// Every decision taken: code, decision, operator.
    pub decided: std::sync::Mutex<Vec<(String, ApprovalDecision, String)>>,
}

impl Desk {
    pub fn waiting(codes: &[&str]) -> Self {
        Self::waiting_for(codes, "QEMU <Standard> PC")
    }

    /// Consoles of a machine that reported itself as `machine`.
    pub fn waiting_for(codes: &[&str], machine: &str) -> Self {
        let now = Utc::now();
        let waiting = codes
            .iter()
            .map(|code| PendingApproval {
                code: (*code).to_owned(),
                mac: GOOD.parse().unwrap(),
                ip: "192.0.2.7".parse().unwrap(),
                machine: Some(machine.into()),
                requested: now - chrono::Duration::seconds(42),
                expires: now + chrono::Duration::minutes(15),
            })
            .collect();
        Self {
            waiting: std::sync::Mutex::new(waiting),
            decided: std::sync::Mutex::default(),
        }
    }
}

impl ApprovalDesk for Desk {
    fn pending(&self) -> Vec<PendingApproval> {
        self.waiting.lock().unwrap().clone()
    }

    fn decide(
        &self,
        code: &str,
        decision: ApprovalDecision,
        operator: &str,
    ) -> Result<PendingApproval, ApprovalError> {
        let code = code.to_ascii_uppercase();
        let mut decided = self.decided.lock().unwrap();
        if let Some((_, earlier, _)) = decided.iter().find(|(c, _, _)| *c == code) {
            return Err(ApprovalError::AlreadyDecided(code, earlier.past_tense()));
        }
        let mut waiting = self.waiting.lock().unwrap();
        let index = waiting
            .iter()
            .position(|p| p.code == code)
            .ok_or_else(|| ApprovalError::Unknown(code.clone()))?;
        decided.push((code, decision, operator.to_owned()));
        Ok(waiting.remove(index))
    }
}
