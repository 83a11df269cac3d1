//! Event details are decoded from database text: properties of that decoder.

use netboot_core::{BootStage, ClientArch};
use netboot_records::{
    fuzzing, ApprovalOutcome, ApprovalRecord, DecisionKind, DecisionRecord, ErrorRecord, EventDetail,
    ImageDownload, LoginOutcome, LoginRecord, PeerDistDelivery, ProxyOffer, RequiredChange,
    RequiredRunRecord, Stage, TftpTransfer,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    "[ -~\u{e9}\u{4e2d}\"\\\\\n]{0,24}"
}

fn peerdist() -> impl Strategy<Value = PeerDistDelivery> {
    prop_oneof![
        Just(PeerDistDelivery::MissingData),
        Just(PeerDistDelivery::NotReady),
        (text(), any::<u64>()).prop_map(|(version, content_bytes)| PeerDistDelivery::ContentInformation {
            version,
            content_bytes
        }),
    ]
}

fn detail() -> impl Strategy<Value = EventDetail> {
    prop_oneof![
        (any::<u16>(), text(), proptest::option::of(text()), any::<u16>()).prop_map(
            |(arch, firmware, nic, port)| {
                EventDetail::ProxyOffer(ProxyOffer {
                    arch: ClientArch::from(arch),
                    stage: BootStage::PxeFirmware,
                    firmware,
                    relay: None,
                    nic,
                    boot_file: None,
                    server_port: port,
                    ipxe_features: Vec::new(),
                })
            }
        ),
        (
            text(),
            any::<u64>(),
            any::<u32>(),
            proptest::option::of(text()),
            proptest::option::of(any::<u16>())
        )
            .prop_map(
                |(file, bytes, retransmits, error, blksize)| EventDetail::TftpTransfer(TftpTransfer {
                    file,
                    bytes,
                    retransmits,
                    error,
                    blksize,
                    ..TftpTransfer::default()
                })
            ),
        (text(), proptest::collection::vec(text(), 0..4), any::<u64>()).prop_map(
            |(resolver, entries, duration_ms)| {
                EventDetail::Decision(DecisionRecord {
                    resolver,
                    kind: DecisionKind::Boot,
                    choice: entries.first().cloned(),
                    entries,
                    duration_ms,
                })
            }
        ),
        (
            text(),
            any::<u64>(),
            any::<u16>(),
            proptest::option::of(peerdist())
        )
            .prop_map(
                |(path, bytes, status, peerdist)| EventDetail::ImageDownload(ImageDownload {
                    path,
                    bytes,
                    status,
                    peerdist,
                    ..ImageDownload::default()
                })
            ),
        text().prop_map(|cause| EventDetail::Error(ErrorRecord {
            stage: Stage::Image,
            cause
        })),
        (
            text(),
            0..4usize,
            proptest::option::of(0..4_102_444_800_000i64),
            proptest::option::of(any::<i64>()),
            proptest::option::of(text()),
            proptest::option::of(text())
        )
            .prop_map(|(deployment, change, ran_at, resource_id, boot_image, note)| {
                EventDetail::RequiredRun(RequiredRunRecord {
                    deployment,
                    change: [
                        RequiredChange::Ran,
                        RequiredChange::OfferedAsAvailable,
                        RequiredChange::Unverified,
                        RequiredChange::Cleared,
                    ][change],
                    ran_at: ran_at.and_then(chrono::DateTime::from_timestamp_millis),
                    resource_id,
                    boot_image,
                    note,
                })
            }),
        (text(), 0..4usize, proptest::option::of(text())).prop_map(|(user, outcome, reason)| {
            EventDetail::Login(LoginRecord {
                user,
                outcome: [
                    LoginOutcome::Accepted,
                    LoginOutcome::Refused,
                    LoginOutcome::Locked,
                    LoginOutcome::Unavailable,
                ][outcome],
                reason,
            })
        }),
        (text(), proptest::option::of(text()), 0..3usize).prop_map(|(code, operator, outcome)| {
            EventDetail::Approval(ApprovalRecord {
                code,
                operator,
                outcome: [
                    ApprovalOutcome::Approved,
                    ApprovalOutcome::Denied,
                    ApprovalOutcome::Expired,
                ][outcome],
            })
        }),
    ]
}

proptest! {
    #[test]
    fn round_trip(detail in detail()) {
        let text = serde_json::to_string(&detail).unwrap();
        prop_assert_eq!(serde_json::from_str::<EventDetail>(&text).unwrap(), detail);
        fuzzing::event_detail_round_trip(text.as_bytes());
    }

    #[test]
    fn every_truncated_prefix_errors(detail in detail()) {
        let text = serde_json::to_string(&detail).unwrap();
        for end in (0..text.len()).filter(|end| text.is_char_boundary(*end)) {
            prop_assert!(serde_json::from_str::<EventDetail>(&text[..end]).is_err(), "prefix {} decoded", end);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        fuzzing::event_detail_round_trip(&bytes);
    }
}

#[test]
fn corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/records/corpus");
    let mut decoded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        fuzzing::event_detail_round_trip(&bytes);
        decoded += usize::from(serde_json::from_slice::<EventDetail>(&bytes).is_ok());
    }
    assert!(decoded >= 9, "the corpus holds one valid example of each kind");
}

/// Records written before PeerDist existed still decode, and downloads without PeerDist are
/// stored without the field.
#[test]
fn image_downloads_without_peerdist_keep_their_stored_form() {
    let old = r#"{"kind":"image_download","path":"boot.wim","bytes":1,"range":null,"duration_ms":2,"status":200,"error":null}"#;
    let detail: EventDetail = serde_json::from_str(old).unwrap();
    assert_eq!(serde_json::to_string(&detail).unwrap(), old);
}

/// A login event's stored form: the user and outcome, never a password; a refusal is not a
/// successful step of the boot.
#[test]
fn logins_keep_their_stored_form() {
    let stored = r#"{"kind":"login","user":"alice","outcome":"locked","reason":"too many failures"}"#;
    let detail: EventDetail = serde_json::from_str(stored).unwrap();
    assert_eq!(serde_json::to_string(&detail).unwrap(), stored);
    assert_eq!(detail.kind(), "login");
    assert_eq!(detail.stage(), Stage::Https);
    assert!(!detail.is_ok());
    let accepted = r#"{"kind":"login","user":"alice","outcome":"accepted"}"#;
    let detail: EventDetail = serde_json::from_str(accepted).unwrap();
    assert!(detail.is_ok());
    assert_eq!(serde_json::to_string(&detail).unwrap(), accepted);
    // Not checked because the directory was down: not a successful step either.
    let unavailable =
        r#"{"kind":"login","user":"alice","outcome":"unavailable","reason":"no answer within 5 s"}"#;
    let detail: EventDetail = serde_json::from_str(unavailable).unwrap();
    assert!(!detail.is_ok());
    assert_eq!(serde_json::to_string(&detail).unwrap(), unavailable);
    let EventDetail::Login(login) = detail else {
        panic!("a login")
    };
    assert_eq!(
        login.summary(),
        "login by alice not checked, directory unavailable: no answer within 5 s"
    );
}

/// An approval event's stored form: the code and who decided; only an approval is a
/// successful step of the boot.
#[test]
fn approvals_keep_their_stored_form() {
    let stored = r#"{"kind":"approval","code":"K7QX2M","operator":"ops","outcome":"approved"}"#;
    let detail: EventDetail = serde_json::from_str(stored).unwrap();
    assert_eq!(serde_json::to_string(&detail).unwrap(), stored);
    assert_eq!(detail.kind(), "approval");
    assert_eq!(detail.stage(), Stage::Https);
    assert!(detail.is_ok());
    let EventDetail::Approval(record) = &detail else {
        unreachable!()
    };
    assert_eq!(record.summary(), "boot approved by ops (code K7QX2M)");
    let expired = r#"{"kind":"approval","code":"K7QX2M","outcome":"expired"}"#;
    let detail: EventDetail = serde_json::from_str(expired).unwrap();
    assert!(!detail.is_ok());
    assert_eq!(serde_json::to_string(&detail).unwrap(), expired);
}
