//! The admin router: authentication, JSON API, OpenAPI document, pages and metrics.

mod support;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use serde_json::Value;
use support::{BAD, GOOD, PASSWORD, TOKEN, USER};
use tower::ServiceExt as _;

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn send(app: &axum::Router, uri: &str, authorization: Option<&str>) -> Reply {
    send_method(app, "GET", uri, authorization).await
}

async fn send_method(app: &axum::Router, method: &str, uri: &str, authorization: Option<&str>) -> Reply {
    send_full(app, method, uri, authorization, None).await
}

/// `GET uri` as a connection from `client` would arrive (failed logins count per address).
async fn send_from(app: &axum::Router, uri: &str, authorization: Option<&str>, client: &str) -> Reply {
    let client: std::net::SocketAddr = client.parse().unwrap();
    send_full(app, "GET", uri, authorization, Some(client)).await
}

async fn send_full(
    app: &axum::Router,
    method: &str,
    uri: &str,
    authorization: Option<&str>,
    client: Option<std::net::SocketAddr>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    if let Some(client) = client {
        request = request.extension(axum::extract::ConnectInfo(client));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

async fn test_app(metrics_public: bool) -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (state, _store) = support::state(&dir, "/admin", metrics_public).await;
    (netboot_admin::router(state), dir)
}

#[tokio::test]
async fn every_route_refuses_missing_or_wrong_credentials() {
    let (app, _dir) = test_app(false).await;
    let routes = [
        "/admin",
        "/admin/",
        "/admin/machines/52:54:00:12:34:56",
        "/admin/api/v1/machines",
        "/admin/api/v1/machines/52:54:00:12:34:56/timeline",
        "/admin/api/v1/failures",
        "/admin/api/v1/stats/boots-per-day",
        "/admin/api/v1/export?format=csv",
        "/admin/api/openapi.json",
        "/admin/metrics",
        "/admin/api/v1/machines/52:54:00:12:34:56/required-runs",
        "/admin/api/v1/approvals",
    ];
    let wrong_basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:nope"))
    );
    for (index, route) in routes.into_iter().enumerate() {
        // One address per route, so the failures stay below the lockout.
        let client = format!("192.0.2.{}:40000", index + 1);
        for authorization in [
            None,
            Some("Bearer wrong-token-0123456789"),
            Some(wrong_basic.as_str()),
        ] {
            let reply = send_from(&app, route, authorization, &client).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{route} with {authorization:?}"
            );
            assert!(reply.headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Basic realm="));
            assert!(!reply.body.contains(GOOD));
        }
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    assert_eq!(send(&app, "/admin/", Some(&basic)).await.status, StatusCode::OK);
    assert_eq!(
        send(&app, "/admin", Some(&basic)).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn repeated_failed_logins_lock_out_their_address_only() {
    let (app, _dir) = test_app(false).await;
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:wrong-password-1"))
    );
    let right = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let attacker = "198.51.100.9:5000";
    // Without credentials a browser is only being asked for them: not a failure.
    for _ in 0..10 {
        assert_eq!(
            send_from(&app, "/admin/", None, attacker).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    for _ in 0..netboot_admin::FREE_FAILURES {
        let reply = send_from(&app, "/admin/", Some(&wrong), attacker).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    for authorization in [&wrong, &right] {
        let reply = send_from(&app, "/admin/", Some(authorization), attacker).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = reply.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=netboot_admin::FIRST_LOCKOUT.as_secs()).contains(&retry_after));
    }
    // Another port of the same address is the same client; another address is not.
    let reply = send_from(&app, "/admin/", Some(&right), "198.51.100.9:5001").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let reply = send_from(&app, "/admin/", Some(&right), "198.51.100.10:5000").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn machines_search_and_timeline() {
    let (app, _dir) = test_app(false).await;
    let all = send(&app, "/admin/api/v1/machines", Some(&bearer())).await.json();
    let macs: Vec<&str> = all["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mac"].as_str().unwrap())
        .collect();
    assert_eq!(macs, [GOOD, BAD], "most recently seen first");

    let by_serial = send(&app, "/admin/api/v1/machines?q=sn-0042", Some(&bearer()))
        .await
        .json();
    assert_eq!(by_serial["machines"][0]["mac"], GOOD);
    assert_eq!(by_serial["machines"][0]["last_outcome"], "image_loaded");
    assert_eq!(
        by_serial["machines"][0]["ipxe_features"],
        serde_json::json!(["HTTPS", "EFI"])
    );
    let by_uuid = send(&app, "/admin/api/v1/machines?q=8C4D7A2E-1F3B", Some(&bearer()))
        .await
        .json();
    assert_eq!(by_uuid["machines"].as_array().unwrap().len(), 1);
    let failed = send(&app, "/admin/api/v1/machines?outcome=failed", Some(&bearer()))
        .await
        .json();
    assert_eq!(failed["machines"][0]["mac"], BAD);
    assert_eq!(
        send(&app, "/admin/api/v1/machines?outcome=bogus", Some(&bearer()))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let one = send(&app, "/admin/api/v1/machines/52-54-00-AB-CD-EF", Some(&bearer()))
        .await
        .json();
    assert_eq!(one["arches"], serde_json::json!(["bios"]));
    assert_eq!(
        send(&app, "/admin/api/v1/machines/00:00:00:00:00:01", Some(&bearer()))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, "/admin/api/v1/machines/not-a-mac", Some(&bearer()))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let timeline = send(
        &app,
        "/admin/api/v1/machines/52:54:00:12:34:56/timeline",
        Some(&bearer()),
    )
    .await
    .json();
    let boot = &timeline["boots"][0];
    assert_eq!(boot["outcome"], "image_loaded");
    assert_eq!(boot["reached"], "image");
    let kinds: Vec<&str> = boot["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "proxy_offer",
            "tftp_transfer",
            "proxy_offer",
            "https_entry",
            "decision",
            "image_download",
            "image_download"
        ]
    );
    let bad = send(
        &app,
        "/admin/api/v1/machines/52:54:00:ab:cd:ef/timeline",
        Some(&bearer()),
    )
    .await
    .json();
    assert_eq!(bad["boots"][0]["outcome"], "failed");
    assert_eq!(bad["boots"][0]["reached"], "tftp");
}

#[tokio::test]
async fn failures_statistics_and_status() {
    let (app, _dir) = test_app(false).await;
    let failures = send(&app, "/admin/api/v1/failures", Some(&bearer())).await.json();
    let failures = failures["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2);
    assert!(failures.iter().all(|f| f["mac"] == BAD && f["ok"] == false));

    let days = send(&app, "/admin/api/v1/stats/boots-per-day?days=7", Some(&bearer()))
        .await
        .json();
    let days = days["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    let total: u64 = days.iter().map(|d| d["boots"].as_u64().unwrap()).sum();
    assert_eq!(total, 2, "two boots began (the iPXE offer belongs to the first)");

    let arches = send(&app, "/admin/api/v1/stats/architectures", Some(&bearer()))
        .await
        .json();
    assert_eq!(
        arches["architectures"],
        serde_json::json!([{"key": "bios", "count": 1}, {"key": "x64-uefi", "count": 1}])
    );
    let outcomes = send(&app, "/admin/api/v1/stats/outcomes", Some(&bearer()))
        .await
        .json();
    assert_eq!(
        outcomes["outcomes"],
        serde_json::json!([{"key": "failed", "count": 1}, {"key": "image_loaded", "count": 1}])
    );

    let status = send(&app, "/admin/api/v1/status", Some(&bearer())).await.json();
    assert_eq!(status["records"]["backend"], "sqlite");
    assert_eq!(status["records"]["queue"]["dropped_queue_full"], 0);
}

#[tokio::test]
async fn export_streams_csv_and_json() {
    let (app, _dir) = test_app(false).await;
    let csv = send(&app, "/admin/api/v1/export?format=csv", Some(&bearer())).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(csv.body.lines().count(), 11);
    assert!(csv
        .body
        .starts_with("id,at,mac,uuid,stage,kind,ok,boot_start,duration_ms,detail\r\n"));
    let json = send(&app, "/admin/api/v1/export?format=json", Some(&bearer()))
        .await
        .json();
    assert_eq!(json.as_array().unwrap().len(), 10);
    assert_eq!(
        send(&app, "/admin/api/v1/export?format=xml", Some(&bearer()))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn openapi_documents_every_api_route() {
    let (app, _dir) = test_app(false).await;
    let document = send(&app, "/admin/api/openapi.json", Some(&bearer()))
        .await
        .json();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3."),
        "{document}"
    );
    assert_eq!(document["servers"][0]["url"], "/admin");
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    assert!(document["components"]["securitySchemes"]["basic"].is_object());
    let paths = document["paths"].as_object().unwrap();
    for (path, object) in paths {
        let methods = object.as_object().unwrap();
        assert!(!methods.is_empty(), "{path}");
        for (method, operation) in methods {
            assert!(operation["summary"].is_string(), "{path}");
            assert!(operation["responses"]["401"].is_object(), "{method} {path}");
            // Every documented route answers (parameters filled with sample values).
            let code = if path.ends_with("/deny") {
                "DENY34"
            } else {
                "APPRV2"
            };
            let uri = format!("/admin{}", path.replace("{mac}", GOOD).replace("{code}", code));
            let reply = send_method(&app, &method.to_uppercase(), &uri, Some(&bearer())).await;
            assert_eq!(reply.status, StatusCode::OK, "{method} {uri}: {}", reply.body);
        }
    }
    assert_eq!(paths.len(), 14);
    // Every $ref resolves.
    let text = document.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(document["components"]["schemas"][name].is_object(), "{name}");
    }
}

/// The API paths the router serves, as axum's `Debug` of the router lists them (it names
/// every route's path; nothing else enumerates a router's routes).
fn routed_api_paths(app: &axum::Router) -> std::collections::BTreeSet<String> {
    let text = format!("{app:?}");
    text.split('"')
        .filter(|part| part.starts_with("/admin/api/v1/"))
        .map(|path| path.trim_start_matches("/admin").to_owned())
        .collect()
}

#[tokio::test]
async fn the_document_and_the_router_list_the_same_operations() {
    let (app, _dir) = test_app(false).await;
    let document = netboot_admin::openapi_document("/admin");
    let documented: std::collections::BTreeSet<String> =
        document["paths"].as_object().unwrap().keys().cloned().collect();
    let routed = routed_api_paths(&app);
    assert!(routed.len() >= 14, "{routed:?}");
    assert_eq!(routed, documented);
    // On each path, the methods the document names answer and no other does.
    for (path, operations) in document["paths"].as_object().unwrap() {
        let uri = format!("/admin{}", path.replace("{mac}", BAD).replace("{code}", "NOSUCH"));
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let reply = send_method(&app, method, &uri, Some(&bearer())).await;
            let documented = operations.get(method.to_lowercase()).is_some();
            assert_eq!(
                reply.status != StatusCode::METHOD_NOT_ALLOWED,
                documented,
                "{method} {uri}: {}",
                reply.status
            );
        }
    }
}

#[tokio::test]
async fn pages_render_machines_and_escape_client_text() {
    let (app, _dir) = test_app(false).await;
    let index = send(&app, "/admin/", Some(&bearer())).await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(index.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert!(
        index.body.contains("href=\"/admin/machines/52:54:00:12:34:56\""),
        "{}",
        index.body
    );
    assert!(index.body.contains("class=\"chart boots-per-day\""));
    assert!(index.body.contains("class=\"chart outcomes\""));
    assert!(!index.body.contains("<script"), "client text is escaped");
    assert!(index.body.contains("&lt;script&gt;"));
    assert!(
        !index.body.contains("http://") || !index.body.contains("src=\"http"),
        "no external resources"
    );

    let timeline = send(&app, "/admin/machines/52:54:00:ab:cd:ef", Some(&bearer())).await;
    assert_eq!(timeline.status, StatusCode::OK);
    assert!(timeline.body.contains("<svg class=\"timeline\""));
    assert!(timeline.body.contains("stopped at TFTP"), "{}", timeline.body);
    assert!(timeline.body.contains("timed out waiting for ACK of block 1"));
    let good = send(&app, "/admin/machines/52:54:00:12:34:56", Some(&bearer())).await;
    assert!(good.body.contains("reached IMAGE"), "{}", good.body);

    let filtered = send(&app, "/admin/?q=sn-0042", Some(&bearer())).await;
    let machines_table = &filtered.body
        [filtered.body.find("id=\"machines\"").unwrap()..filtered.body.find("id=\"failures\"").unwrap()];
    assert!(machines_table.contains(GOOD) && !machines_table.contains(BAD));
    assert_eq!(
        send(&app, "/admin/machines/00:00:00:00:00:09", Some(&bearer()))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn metrics_exposition_and_public_option() {
    let (app, _dir) = test_app(false).await;
    let metrics = send(&app, "/admin/metrics", Some(&bearer())).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    assert!(metrics
        .body
        .contains("netboot_dhcp_drops_total{reason=\"not_pxe_client\"} 1"));
    assert!(metrics.body.contains("netboot_tftp_bytes_sent_total 1040000"));

    let (public, _dir) = test_app(true).await;
    assert_eq!(send(&public, "/admin/metrics", None).await.status, StatusCode::OK);
    assert_eq!(
        send(&public, "/admin/api/v1/machines", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn disabled_records_answer_503_but_metrics_work() {
    let state = netboot_admin::AdminState::new(
        None,
        netboot_records::Recorder::disabled(),
        std::sync::Arc::default(),
        netboot_admin::Credentials::token(TOKEN),
        "",
    );
    let app = netboot_admin::router(state);
    let reply = send(&app, "/api/v1/machines", Some(&bearer())).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.json()["error"].as_str().unwrap().contains("disabled"));
    assert_eq!(
        send(&app, "/", Some(&bearer())).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        send(&app, "/metrics", Some(&bearer())).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn clearing_required_runs_needs_credentials_a_mac_and_a_same_site_request() {
    let (app, _dir) = test_app(false).await;
    let clear = "/admin/api/v1/machines/52:54:00:12:34:56/clear-required";
    assert_eq!(
        send_method(&app, "POST", clear, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send_method(&app, "POST", clear, Some("Bearer wrong-token-0123456789"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let bearer = bearer();
    for (mac, status) in [
        ("not-a-mac", StatusCode::BAD_REQUEST),
        ("52:54:00:12:34", StatusCode::BAD_REQUEST),
        ("52%3A54%3A00%3A12%3A34%3A5g", StatusCode::BAD_REQUEST),
        ("52-54-00-de-ad-00", StatusCode::NOT_FOUND),
        ("52-54-00-12-34-56", StatusCode::OK),
    ] {
        let uri = format!("/admin/api/v1/machines/{mac}/clear-required");
        let reply = send_method(&app, "POST", &uri, Some(&bearer)).await;
        assert_eq!(reply.status, status, "{mac}: {}", reply.body);
    }
    // The page's form: 403 without its token (a foreign page cannot know it).
    let form = send_method(
        &app,
        "POST",
        "/admin/machines/52:54:00:12:34:56/clear-required",
        Some(&bearer),
    )
    .await;
    assert_eq!(form.status, StatusCode::FORBIDDEN, "{}", form.body);
    // GET on the POST route is refused.
    assert_eq!(
        send(&app, clear, Some(&bearer)).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn a_machine_page_lists_conflicting_hardware_claims_with_their_sources() {
    let dir = tempfile::tempdir().unwrap();
    let (state, store) = support::state(&dir, "/admin", false).await;
    let app = netboot_admin::router(state);
    let mut forged = support::events(chrono::Utc::now())
        .into_iter()
        .find(|e| {
            e.mac.to_string() == support::GOOD
                && matches!(e.detail, netboot_records::EventDetail::HttpsEntry(_))
        })
        .unwrap();
    let netboot_records::EventDetail::HttpsEntry(entry) = &mut forged.detail else {
        unreachable!()
    };
    entry.hardware.serial = Some("FORGED-<b>".into());
    forged.ip = Some("10.9.9.9".parse().unwrap());
    store.insert(&[forged]).await.unwrap();

    let page = send(
        &app,
        &format!("/admin/machines/{}", support::GOOD),
        Some(&bearer()),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let facts_serial = page
        .body
        .find("SN-0042")
        .expect("the first serial stays in the facts");
    let claims = page.body.find("Hardware claims").expect("claims card");
    assert!(facts_serial < claims, "{}", page.body);
    assert!(
        page.body.contains("Clients disagree about: serial"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("FORGED-&lt;b&gt;") && page.body.contains("10.9.9.9"),
        "{}",
        page.body
    );
}

/// `POST uri` with a form body and extra headers, as a browser sends the page's buttons.
async fn post_form(
    app: &axum::Router,
    uri: &str,
    authorization: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::AUTHORIZATION, authorization)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn pending_approvals_are_listed_and_decided_by_a_named_operator() {
    let dir = tempfile::tempdir().unwrap();
    let (state, _store) = support::state(&dir, "/admin", false).await;
    let desk = std::sync::Arc::new(support::Desk::waiting(&["K7QX2M", "ABCDE2", "ZZZZZ9"]));
    let app = netboot_admin::router(state.with_approvals(Some(desk.clone())));
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );

    let list = send(&app, "/admin/api/v1/approvals", Some(&bearer())).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let listed = list.json();
    assert_eq!(listed["approvals"].as_array().unwrap().len(), 3);
    assert_eq!(listed["approvals"][0]["code"], "K7QX2M");
    assert_eq!(listed["approvals"][0]["mac"], GOOD);
    assert_eq!(listed["approvals"][0]["ip"], "192.0.2.7");

    // The API: the bearer token approves as `api-token`; a second decision conflicts.
    let approved = send_method(
        &app,
        "POST",
        "/admin/api/v1/approvals/k7qx2m/approve",
        Some(&bearer()),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.json()["decision"], "approved");
    assert_eq!(approved.json()["operator"], "api-token");
    let again = send_method(&app, "POST", "/admin/api/v1/approvals/K7QX2M/deny", Some(&basic)).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let unknown = send_method(
        &app,
        "POST",
        "/admin/api/v1/approvals/NOSUCH/approve",
        Some(&basic),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    assert_eq!(
        send_method(&app, "POST", "/admin/api/v1/approvals/ABCDE2/approve", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let foreign = post_form(
        &app,
        "/admin/api/v1/approvals/ABCDE2/approve",
        &basic,
        "",
        &[("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);

    // The page: the card lists what still waits, escaped, with a button per decision.
    let index = send(&app, "/admin/", Some(&basic)).await;
    assert_eq!(index.status, StatusCode::OK, "{}", index.body);
    assert!(index.body.contains("Pending approvals"), "{}", index.body);
    assert!(!index.body.contains("K7QX2M"), "decided codes are gone");
    assert!(index.body.contains("ABCDE2") && index.body.contains("192.0.2.7"));
    assert!(index.body.contains("QEMU &lt;Standard&gt; PC"), "{}", index.body);
    let action = "action=\"/admin/approvals/ZZZZZ9/deny\"><input type=\"hidden\" name=\"csrf\" value=\"";
    let at = index.body.find(action).expect("a deny button") + action.len();
    let csrf = &index.body[at..at + 64];
    // Without the page's token, or sent from another site, the form is refused.
    let forged = post_form(&app, "/admin/approvals/ZZZZZ9/deny", &basic, "csrf=00", &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let other_action = post_form(
        &app,
        "/admin/approvals/ZZZZZ9/approve",
        &basic,
        &format!("csrf={csrf}"),
        &[],
    )
    .await;
    assert_eq!(
        other_action.status,
        StatusCode::FORBIDDEN,
        "the token names its action"
    );
    let cross = post_form(
        &app,
        "/admin/approvals/ZZZZZ9/deny",
        &basic,
        &format!("csrf={csrf}"),
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let denied = post_form(
        &app,
        "/admin/approvals/ZZZZZ9/deny",
        &basic,
        &format!("csrf={csrf}"),
        &[],
    )
    .await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER, "{}", denied.body);
    assert_eq!(denied.headers[header::LOCATION], "/admin/");

    let decided = desk.decided.lock().unwrap().clone();
    assert_eq!(
        decided,
        [
            (
                "K7QX2M".to_owned(),
                netboot_admin::ApprovalDecision::Approve,
                "api-token".to_owned()
            ),
            (
                "ZZZZZ9".to_owned(),
                netboot_admin::ApprovalDecision::Deny,
                USER.to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn without_approvals_the_api_says_so_and_the_page_has_no_card() {
    let dir = tempfile::tempdir().unwrap();
    let (state, _store) = support::state(&dir, "/admin", false).await;
    let app = netboot_admin::router(state.with_approvals(None));
    let list = send(&app, "/admin/api/v1/approvals", Some(&bearer())).await;
    assert_eq!(list.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(list.json()["error"].as_str().unwrap().contains("method"));
    let index = send(&app, "/admin/", Some(&bearer())).await;
    assert!(!index.body.contains("Pending approvals"));
}
