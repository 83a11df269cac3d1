//! Text a client or an operator controls (SMBIOS strings, file names, error causes, user
//! names, deployment ids, search words) is shown escaped on every page that shows it.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use chrono::Utc;
use http_body_util::BodyExt as _;
use netboot_core::{BootStage, ClientArch, HardwareInfo, MacAddr};
use netboot_records::{
    Event, EventDetail, HttpsEntry, ImageDownload, LoginOutcome, LoginRecord, PeerDistDelivery, ProxyOffer,
    RequiredRun, RequiredRuns, TftpTransfer,
};
use support::{Desk, TOKEN};
use tower::ServiceExt as _;

const HOSTILE: &str = "<script>alert(1)</script>\"'&";
const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;";
const MAC: &str = "52:54:00:66:66:66";

/// `GET uri` with the token: status and body.
async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// `count` escaped copies of the hostile text, and not one raw.
#[track_caller]
fn assert_escaped(page: &str, body: &str, count: usize) {
    assert!(!body.contains(HOSTILE), "{page}: raw hostile text in {body}");
    assert!(!body.contains("<script"), "{page}: a script element in {body}");
    assert_eq!(body.matches(ESCAPED).count(), count, "{page}: {body}");
}

/// A machine whose every client-supplied string is the hostile text.
fn hostile_events(mac: MacAddr) -> Vec<Event> {
    let at = |ms| Utc::now() - chrono::Duration::seconds(60) + chrono::Duration::milliseconds(ms);
    let event = |ms, detail| Event {
        at: at(ms),
        mac,
        uuid: None,
        ip: None,
        detail,
    };
    vec![
        event(
            0,
            EventDetail::ProxyOffer(ProxyOffer {
                arch: ClientArch::EfiX64,
                stage: BootStage::PxeFirmware,
                firmware: HOSTILE.into(),
                relay: None,
                nic: Some(HOSTILE.into()),
                boot_file: Some("ipxe.efi".into()),
                server_port: 67,
                ipxe_features: Vec::new(),
            }),
        ),
        event(
            500,
            EventDetail::HttpsEntry(HttpsEntry {
                arch: Some(ClientArch::EfiX64),
                hardware: HardwareInfo {
                    manufacturer: Some(HOSTILE.into()),
                    product: Some(HOSTILE.into()),
                    serial: Some(HOSTILE.into()),
                    asset: Some(HOSTILE.into()),
                    platform: Some(HOSTILE.into()),
                    buildarch: None,
                },
                ipxe_version: None,
                features: vec![HOSTILE.into()],
                tls: false,
            }),
        ),
        event(
            600,
            EventDetail::Login(LoginRecord {
                user: "ops".into(),
                outcome: LoginOutcome::Refused,
                reason: Some(HOSTILE.into()),
            }),
        ),
        event(
            700,
            EventDetail::ImageDownload(ImageDownload {
                path: HOSTILE.into(),
                bytes: 4_000,
                duration_ms: 5,
                status: 200,
                peerdist: Some(PeerDistDelivery::ContentInformation {
                    version: "2.0".into(),
                    content_bytes: 1_000_000,
                }),
                ..ImageDownload::default()
            }),
        ),
        event(
            900,
            EventDetail::TftpTransfer(TftpTransfer {
                file: "undionly.kpxe".into(),
                duration_ms: 100,
                error: Some(HOSTILE.into()),
                ..TftpTransfer::default()
            }),
        ),
    ]
}

#[tokio::test]
async fn hostile_text_is_escaped_on_every_page_that_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let (state, store) = support::state(&dir, "/admin", false).await;
    let mac: MacAddr = MAC.parse().unwrap();
    store.insert(&hostile_events(mac)).await.unwrap();
    let runs = RequiredRuns::over(store.clone());
    runs.record(&RequiredRun {
        mac,
        uuid: None,
        resource_id: Some(16_777_220),
        deployment: HOSTILE.into(),
        boot_image: Some(HOSTILE.into()),
        client_ip: None,
        at: Utc::now(),
    })
    .await
    .unwrap();
    let desk = Desk::waiting_for(&["HOSTL1"], HOSTILE);
    let app = netboot_admin::router(
        state
            .with_required_runs(Some(runs))
            .with_approvals(Some(Arc::new(desk))),
    );

    let (status, index) = get(&app, "/admin/").await;
    assert_eq!(status, StatusCode::OK);
    // Model (manufacturer and product), serial, firmware; the refused login's reason and the
    // failed transfer's cause in the failures table; the waiting console's machine.
    assert_escaped("index", &index, 7);

    let (_, search) = get(&app, "/admin/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E%22'%26").await;
    assert!(
        search.contains(&format!("name=\"q\" value=\"{ESCAPED}\"")),
        "the search words are kept in the box: {search}"
    );
    // The words match the hostile machine: the index's seven and the search box.
    assert_escaped("search", &search, 8);

    let (status, machine) = get(&app, &format!("/admin/machines/{MAC}")).await;
    assert_eq!(status, StatusCode::OK, "{machine}");
    assert!(machine.contains("id=\"claims\"") && machine.contains("id=\"required-runs\""));
    assert!(machine.contains("BranchCache image"));
    // Facts: manufacturer, product, serial, asset tag, firmware, NIC, iPXE platform and
    // features (8); claims: four values (4); Required runs: deployment and boot image (2);
    // the image path in the PeerDist table (1); in the timeline's titles and again in the
    // events table, the offer's firmware, the entry's product, the login's reason, the image
    // path and the transfer's error (5 × 2); the verdict naming the refused login (1).
    assert_escaped("machine", &machine, 26);

    let (status, error) = get(&app, "/admin/machines/%3Cscript%3Ealert(1)%3C%2Fscript%3E%22'%26").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!error.contains("<script"), "{error}");
    assert!(error.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{error}");
}
