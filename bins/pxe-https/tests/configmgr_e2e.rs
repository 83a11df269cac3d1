//! ConfigMgr menus end to end: `pxe-https` with the ConfigMgr resolver built from the
//! configuration by `netboot_resolver::build`, once reading the SQLite fixture
//! directly and once through SQL Server's wire protocol (tiberius against the TDS test
//! endpoint serving the same fixture). Both must render the same iPXE scripts, and the
//! boot image a menu entry names must be downloadable from the same server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use netboot_config::Config;
use netboot_configmgr::fixture;
use netboot_service::{Bound as _, Context, Service as _, Shutdown, ShutdownTrigger};
use netboot_tds_testserver::{Credentials, TdsTestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

const COMMON: &str = r#"
[https]
listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
root = "images"
ipxe_dir = ""
state_dir = "state"
countdown_secs = 5
menu_timeout_secs = 30

[resolver]
kind = "configmgr"
deadline_ms = 3000

[resolver.configmgr]
boot_image_dir = "images"
boot_image_url = ""
site_code = "PS1"
duplicate_macs = ["00:15:5d:00:00:99"]
"#;

/// A served `pxe-https`; stops when dropped.
struct Served {
    http: SocketAddr,
    _stop: ShutdownTrigger,
}

async fn serve(dir: &Path, name: &str, backend_toml: &str) -> Served {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, format!("{COMMON}{backend_toml}")).unwrap();
    let config = Config::load(Some(&path)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let context = Context::new(netboot_records::Telemetry::disabled());
    let server = pxe_https::Https::bind(Arc::new(config), context)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let http = server.http_addr().expect("plain HTTP listener");
    let (stop, shutdown) = Shutdown::new();
    tokio::spawn(server.serve(shutdown));
    Served { http, _stop: stop }
}

/// `(status, body)` of a plain HTTP/1.0 GET (the connection closes after the answer).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: pxe\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    netboot_testkit::ops::parse_response(&response)
}

fn decide(mac: &str, uuid: &str, platform: &str, buildarch: &str) -> String {
    format!("/boot.ipxe/decide?mac={mac}&uuid={uuid}&buildarch={buildarch}&platform={platform}")
}

/// (what, query, text the script must contain).
fn cases() -> Vec<(&'static str, String, &'static str)> {
    let efi = |mac: &str, uuid: &str| decide(mac, uuid, "efi", "x86_64");
    vec![
        (
            "one available",
            efi("00-15-5d-00-00-01", "4c4c4544-0001-4a10-8000-b1c04f000001"),
            "Windows 11 Enterprise 24H2",
        ),
        (
            "one required",
            efi("00-15-5d-00-00-02", "4c4c4544-0002-4a10-8000-b1c04f000002"),
            "Windows 11 Enterprise (required)",
        ),
        (
            "both",
            efi("00-15-5d-00-00-03", "4c4c4544-0003-4a10-8000-b1c04f000003"),
            "Windows 11 Enterprise 24H2",
        ),
        (
            "required already ran",
            efi("00-15-5d-00-00-06", "4c4c4544-0006-4a10-8000-b1c04f000006"),
            "(required)",
        ),
        (
            "rules",
            efi("00-15-5d-00-00-07", "4c4c4544-0007-4a10-8000-b1c04f000007"),
            "Hardware inventory (WinPE)",
        ),
        (
            "nothing deployed",
            efi("00-15-5d-00-00-08", "4c4c4544-0008-4a10-8000-b1c04f000008"),
            "exit",
        ),
        (
            "unknown x64",
            efi("00-15-5d-00-10-00", ""),
            "Windows 11 Enterprise 24H2",
        ),
        (
            "unknown BIOS",
            decide("00-15-5d-00-10-01", "", "pcbios", "i386"),
            "Windows 10 x86 legacy",
        ),
        (
            "unknown ARM64",
            decide("00-15-5d-00-10-03", "", "efi", "arm64"),
            "exit",
        ),
        (
            "shared USB NIC",
            efi("00-15-5d-00-00-99", "4c4c4544-000a-4a10-8000-b1c04f00000a"),
            "(required)",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_tds_backends_render_the_same_menus() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture::create(dir.path()).await.unwrap();
    let credentials = Credentials {
        user: "pxe_reader".into(),
        password: "e2e-Secret".into(),
        database: "CM_PS1".into(),
    };
    let tds = TdsTestServer::start(&fixture.database, credentials)
        .await
        .unwrap();
    // The connection string comes from the environment, as the configuration recommends.
    let variable = format!("NETBOOT_E2E_CONFIGMGR_SQL_{}", std::process::id());
    std::env::set_var(&variable, tds.ado_string());

    let sqlite = serve(
        dir.path(),
        "sqlite",
        "backend = \"sqlite\"\nsqlite = \"configmgr.sqlite\"\n",
    )
    .await;
    let sql_server = serve(
        dir.path(),
        "sql-server",
        &format!("backend = \"sql-server\"\nconnection_string_env = \"{variable}\"\n"),
    )
    .await;

    for (what, query, expected) in cases() {
        let (status_a, from_sqlite) = get(sqlite.http, &query).await;
        let (status_b, from_tds) = get(sql_server.http, &query).await;
        assert_eq!((status_a, status_b), (200, 200), "{what}");
        assert!(from_sqlite.starts_with("#!ipxe"), "{what}: {from_sqlite}");
        assert!(from_sqlite.contains(expected), "{what}: {from_sqlite}");
        assert_eq!(
            without_marks(&from_tds),
            without_marks(&from_sqlite),
            "{what}: the two backends disagree"
        );
    }
    assert!(tds.queries() > 0, "the SQL Server path was not used");

    // Required counts down and names the deployment's boot image, which the server serves.
    let (_, script) = get(sqlite.http, &cases()[1].1).await;
    assert!(script.contains("prompt --timeout 5000"), "{script}");
    assert!(script.contains("/PS100004/boot.wim"), "{script}");
    let (status, wim) = get(sqlite.http, "/PS100004/boot.wim").await;
    assert_eq!((status, wim.as_str()), (200, "placeholder boot image PS100004\n"));
    // "Both": a menu with R and A markers.
    let (_, menu) = get(sql_server.http, &cases()[2].1).await;
    assert!(
        menu.contains("item a0 [R] Windows 11 Enterprise (required)"),
        "{menu}"
    );
    assert!(menu.contains("item a1 [A] Windows 11 Enterprise 24H2"), "{menu}");
    std::env::remove_var(&variable);
}

/// The script with each Required entry's random boot image mark replaced by `<mark>`.
fn without_marks(script: &str) -> String {
    let mut out = String::with_capacity(script.len());
    let mut rest = script;
    while let Some(at) = rest.find("required_run=") {
        let (before, after) = rest.split_at(at + "required_run=".len());
        out.push_str(before);
        out.push_str("<mark>");
        rest = after.trim_start_matches(|c: char| c.is_ascii_hexdigit());
    }
    out.push_str(rest);
    out
}

/// The demo configuration shipped in `testdata/configmgr` gives a ConfigMgr menu with no site
/// server (the listeners are not bound here; their fixed ports may be taken).
#[tokio::test]
async fn demo_configuration_shows_a_configmgr_menu() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/configmgr/demo.toml");
    let config = Config::load(Some(&path)).unwrap();
    let resolver = netboot_resolver::build(&config).unwrap();
    let request = netboot_core::BootRequest::new(
        "00:15:5d:00:00:03".parse().unwrap(),
        netboot_core::ClientArch::EfiX64,
        netboot_core::BootStage::Ipxe,
    )
    .with_uuid(Some("4c4c4544-0003-4a10-8000-b1c04f000003".parse().unwrap()));
    let decision = resolver.resolve(&request).await.unwrap();
    let netboot_core::BootDecision::Boot(menu) = decision else {
        panic!("{decision:?}")
    };
    let ids: Vec<_> = menu
        .entries
        .iter()
        .map(|e| (e.id.as_str(), e.deployment.marker()))
        .collect();
    assert_eq!(ids, [("PS120002", 'R'), ("PS120001", 'A')]);
    assert_eq!(
        menu.title.as_deref(),
        Some("ConfigMgr deployments (demo site PS1)")
    );
}

/// `kind = "webhook"` from the configuration: `netboot_resolver::build` reads the token from the named
/// environment variable, POSTs the machine and serves the service's decision through the cache.
#[tokio::test]
async fn webhook_resolver_from_the_configuration() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, seen_rx) = oneshot::channel::<String>();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Read up to the end of the JSON body (it ends with the `hardware` object); bounded.
        while !String::from_utf8_lossy(&request).ends_with("}}") && request.len() < 65536 {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let body = r#"{"decision":"exit","message":"not today"}"#;
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(reply.as_bytes()).await.unwrap();
        let _ = seen_tx.send(String::from_utf8_lossy(&request).to_string());
    });
    let variable = format!("NETBOOT_E2E_WEBHOOK_TOKEN_{}", std::process::id());
    std::env::set_var(&variable, "hook-token");
    let toml = format!(
        "[resolver]\nkind = \"webhook\"\n[resolver.webhook]\nurl = \"http://{addr}/decide\"\nbearer_token_env = \"{variable}\"\n"
    );
    let config = Config::from_toml_str(&toml).unwrap();
    let resolver = netboot_resolver::build(&config).unwrap();
    assert!(!format!("{resolver:?}").contains("hook-token"));
    let request = netboot_core::BootRequest::new(
        "52:54:00:aa:bb:cc".parse().unwrap(),
        netboot_core::ClientArch::EfiX64,
        netboot_core::BootStage::Ipxe,
    );
    let decision = resolver.resolve(&request).await.unwrap();
    assert_eq!(
        decision,
        netboot_core::BootDecision::Exit {
            message: Some("not today".into())
        }
    );
    // A second ask is answered from the cache (the service accepted only one connection).
    assert_eq!(resolver.resolve(&request).await.unwrap(), decision);
    let seen = seen_rx.await.unwrap().to_ascii_lowercase();
    assert!(seen.starts_with("post /decide http/1.1"), "{seen}");
    assert!(seen.contains("authorization: bearer hook-token"), "{seen}");
    assert!(seen.contains("\"mac\":\"52:54:00:aa:bb:cc\""), "{seen}");
    std::env::remove_var(&variable);
}
