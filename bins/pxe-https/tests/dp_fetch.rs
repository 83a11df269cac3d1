//! A ConfigMgr boot image that is not on this server comes from a distribution point (a local
//! rustls server standing in for it): the first decision tells the client it is being copied
//! and to ask again, a later one boots it, and the server then serves the fetched file.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netboot_config::Config;
use netboot_configmgr::fixture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const IMAGE_LEN: usize = 3 << 20;

/// Serves the one boot image over TLS, slowly enough that a client sees it in progress.
async fn start_dp(dir: &Path) -> (SocketAddr, std::path::PathBuf) {
    let (acceptor, ca) = netboot_testkit::tls::localhost_acceptor(dir, "dp-ca");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let wanted = String::from_utf8_lossy(&request)
                    .starts_with("GET /SMS_DP_SMSPKG$/PS100004/boot.PS100004.wim ");
                if !wanted {
                    let _ = tls
                        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                }
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {IMAGE_LEN}\r\n\r\n");
                let _ = tls.write_all(head.as_bytes()).await;
                for chunk in image().chunks(256 << 10) {
                    if tls.write_all(chunk).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, ca)
}

fn image() -> Vec<u8> {
    (0..IMAGE_LEN).map(|i| (i % 251) as u8).collect()
}

async fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: pxe\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response[split + 4..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_boot_image_is_copied_from_the_distribution_point_while_the_client_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture::create(dir.path()).await.unwrap();
    std::fs::remove_file(dir.path().join("images/PS100004/boot.wim")).unwrap();
    let (dp, ca) = start_dp(dir.path()).await;
    let toml = format!(
        r#"
[https]
listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
root = "images"
ipxe_dir = ""
state_dir = "state"
countdown_secs = 0

[resolver]
kind = "configmgr"
deadline_ms = 3000

[resolver.configmgr]
backend = "sqlite"
sqlite = "{}"
boot_image_dir = "images"
boot_image_url = ""
site_code = "PS1"

[resolver.configmgr.distribution_point]
url = "https://localhost:{}/SMS_DP_SMSPKG$/{{package_id}}/boot.{{package_id}}.wim"
auth = "none"
ca_file = "{}"
"#,
        fixture.database.display(),
        dp.port(),
        ca.display()
    );
    let path = dir.path().join("netboot.toml");
    std::fs::write(&path, toml).unwrap();
    let config = Config::load(Some(&path)).unwrap();
    let context = netboot_service::Context::new(netboot_service::Telemetry::disabled());
    let server = pxe_https::Server::bind(Arc::new(config), context).await.unwrap();
    let http = server.http_addr().unwrap();
    let (_stop, shutdown) = netboot_service::Shutdown::new();
    tokio::spawn(netboot_service::Bound::serve(server, shutdown));

    // The machine with one required deployment of boot image PS100004.
    let decide = "/boot.ipxe/decide?mac=00-15-5d-00-00-02&uuid=4c4c4544-0002-4a10-8000-b1c04f000002&buildarch=x86_64&platform=efi";
    let (status, first) = get(http, decide).await;
    let first = String::from_utf8(first).unwrap();
    assert_eq!(status, 200);
    assert!(
        first.contains("is being copied from distribution point localhost"),
        "{first}"
    );
    assert!(
        first.contains("sleep 10\nchain --autofree --replace /boot.ipxe"),
        "{first}"
    );
    assert!(!first.contains("initrd"), "{first}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let (_, script) = get(http, decide).await;
        let script = String::from_utf8(script).unwrap();
        if script.contains("initrd --name boot.wim /PS100004/boot.PS100004.wim") {
            break script;
        }
        assert!(Instant::now() < deadline, "never became ready:\n{script}");
        assert!(!script.contains("could not be copied"), "{script}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(ready.contains("kernel /wimboot"), "{ready}");
    let (status, body) = get(http, "/PS100004/boot.PS100004.wim").await;
    assert_eq!(status, 200);
    assert!(body == image(), "the served image is the DP's");
    // The hash file and a partial download are never served.
    let (status, _) = get(http, "/PS100004/.boot.PS100004.wim.sha256").await;
    assert_eq!(status, 404);
}
