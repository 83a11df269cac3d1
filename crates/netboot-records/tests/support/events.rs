//! Event fixtures: a complete boot, a failed one.

use chrono::{DateTime, Duration, Utc};
use netboot_core::{BootStage, ClientArch, HardwareInfo, MacAddr};
use netboot_records::{
    DecisionKind, DecisionRecord, ErrorRecord, Event, EventDetail, HttpsEntry, ImageDownload, ProxyOffer,
    Stage, TftpTransfer,
};

pub fn mac(text: &str) -> MacAddr {
    text.parse().unwrap()
}

pub fn at(base: DateTime<Utc>, ms: i64) -> DateTime<Utc> {
    base + Duration::milliseconds(ms)
}

pub fn offer(arch: ClientArch, stage: BootStage, port: u16) -> EventDetail {
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
        server_port: port,
        ipxe_features: Vec::new(),
    })
}

/// A full UEFI boot: DHCP offer → TFTP of ipxe.efi → iPXE DHCP → HTTPS entry → decision →
/// wimboot, BCD and boot.wim downloads.
pub fn full_boot(mac: MacAddr, start: DateTime<Utc>) -> Vec<Event> {
    let uuid = Some("8c4d7a2e-1f3b-4c5d-9e6f-0a1b2c3d4e5f".parse().unwrap());
    let step = |ms, detail| Event {
        at: at(start, ms),
        mac,
        uuid,
        ip: None,
        detail,
    };
    vec![
        Event {
            uuid: None,
            ..step(0, offer(ClientArch::EfiX64, BootStage::PxeFirmware, 67))
        },
        step(
            150,
            EventDetail::TftpTransfer(TftpTransfer {
                file: "ipxe.efi".into(),
                blksize: Some(1468),
                windowsize: Some(8),
                tsize: Some(1_040_000),
                bytes: 1_040_000,
                duration_ms: 420,
                retransmits: 2,
                error: None,
            }),
        ),
        step(900, offer(ClientArch::EfiX64, BootStage::Ipxe, 67)),
        step(
            1200,
            EventDetail::HttpsEntry(HttpsEntry {
                arch: Some(ClientArch::EfiX64),
                hardware: HardwareInfo {
                    manufacturer: Some("QEMU".into()),
                    product: Some("Standard PC (Q35 + ICH9, 2009)".into()),
                    serial: Some("SN-0042".into()),
                    asset: Some("ASSET-7".into()),
                    platform: Some("efi".into()),
                    buildarch: Some("x86_64".into()),
                },
                ipxe_version: Some("1.21.1".into()),
                features: vec!["HTTPS".into(), "EFI".into(), "Menu".into()],
                tls: true,
            }),
        ),
        step(
            1250,
            EventDetail::Decision(DecisionRecord {
                resolver: "static".into(),
                kind: DecisionKind::Boot,
                entries: vec!["Windows PE x64".into(), "Memtest".into()],
                choice: Some("Windows PE x64".into()),
                duration_ms: 3,
            }),
        ),
        step(1400, download("wimboot", 53_000, 40)),
        step(1500, download("winpe/x64/BCD", 16_384, 5)),
        step(1600, download("winpe/x64/boot.wim", 350_000_000, 9_000)),
    ]
}

pub fn download(path: &str, bytes: u64, duration_ms: u64) -> EventDetail {
    EventDetail::ImageDownload(ImageDownload {
        path: path.into(),
        bytes,
        range: None,
        duration_ms,
        status: 200,
        error: None,
        peerdist: None,
    })
}

/// A BIOS machine whose TFTP download fails.
pub fn failed_boot(mac: MacAddr, start: DateTime<Utc>) -> Vec<Event> {
    vec![
        Event {
            at: start,
            mac,
            uuid: None,
            ip: None,
            detail: offer(ClientArch::X86Bios, BootStage::PxeFirmware, 67),
        },
        Event {
            at: at(start, 300),
            mac,
            uuid: None,
            ip: None,
            detail: EventDetail::TftpTransfer(TftpTransfer {
                file: "undionly.kpxe".into(),
                bytes: 0,
                duration_ms: 5_000,
                retransmits: 5,
                error: Some("timed out waiting for ACK of block 1".into()),
                ..TftpTransfer::default()
            }),
        },
        Event {
            at: at(start, 301),
            mac,
            uuid: None,
            ip: None,
            detail: EventDetail::Error(ErrorRecord {
                stage: Stage::Tftp,
                cause: "client stopped acknowledging".into(),
            }),
        },
    ]
}
