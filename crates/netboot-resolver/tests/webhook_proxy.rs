//! The webhook resolver and the proxy the environment names. A test binary of its own: it
//! sets `HTTP_PROXY` and `NO_PROXY`, which every test in the same process would see.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use netboot_core::{BootDecision, BootRequest, BootResolver, BootStage, ClientArch};
use netboot_resolver::{WebhookOptions, WebhookResolver};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A loopback listener answering every request with `ignore`; returns its address and the
/// request lines it received.
async fn answering() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                while !data.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => data.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&data);
                seen.lock()
                    .unwrap()
                    .push(head.lines().next().unwrap_or_default().to_string());
                let body = r#"{"decision":"ignore"}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(response.as_bytes()).await;
            });
        }
    });
    (addr, lines)
}

async fn ask(url: &str, proxy_from_environment: bool) -> BootDecision {
    let options = WebhookOptions {
        url: url.to_string(),
        timeout: Duration::from_secs(5),
        retries: 0,
        retry_backoff: Duration::from_millis(10),
        bearer_token: None,
        ca_file: None,
        proxy_from_environment,
    };
    let request = BootRequest::new(
        "52:54:00:12:34:56".parse().unwrap(),
        ClientArch::EfiX64,
        BootStage::Ipxe,
    );
    WebhookResolver::new(options)
        .unwrap()
        .resolve(&request)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_environment_proxy_is_used_only_when_asked_for() {
    let (service, direct) = answering().await;
    let (proxy, proxied) = answering().await;
    let url = format!("http://{service}/decide");
    std::env::set_var("HTTP_PROXY", format!("http://{proxy}"));
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");

    // By default the environment is ignored.
    assert_eq!(ask(&url, false).await, BootDecision::Ignore);
    assert_eq!(direct.lock().unwrap().len(), 1);
    assert!(proxied.lock().unwrap().is_empty());

    // Asked for, the request goes to the proxy, in absolute form.
    assert_eq!(ask(&url, true).await, BootDecision::Ignore);
    assert_eq!(*proxied.lock().unwrap(), [format!("POST {url} HTTP/1.1")]);

    // NO_PROXY still exempts the service.
    std::env::set_var("NO_PROXY", "127.0.0.1");
    assert_eq!(ask(&url, true).await, BootDecision::Ignore);
    assert_eq!(direct.lock().unwrap().len(), 2);
    assert_eq!(proxied.lock().unwrap().len(), 1);
}
