//! The webhook resolver against a scripted HTTP(S) service on loopback.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netboot_core::{BootDecision, BootRequest, BootResolver, BootStage, ClientArch, ResolveError};
use netboot_resolver::{WebhookOptions, WebhookResolver};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the service answers, in order; the last one repeats.
#[derive(Clone)]
enum Reply {
    Status(u16, &'static str),
    Hang,
}

#[derive(Default)]
struct Seen {
    requests: Vec<(String, Vec<String>, String)>,
}

struct Service {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, reply: Reply, seen: Arc<Mutex<Seen>>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded: a request larger than 64 KiB is not something these tests send.
    while !data.windows(4).any(|w| w == b"\r\n\r\n") && data.len() < 65536 {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let head_end = data.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default().to_string();
    let headers: Vec<String> = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.to_ascii_lowercase())
        .collect();
    let length: usize = headers
        .iter()
        .find_map(|h| h.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&data[head_end..head_end + length]).to_string();
    seen.lock().unwrap().requests.push((request_line, headers, body));
    match reply {
        Reply::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
        Reply::Status(code, body) => {
            let response = format!(
                "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }
}

async fn service(replies: Vec<Reply>, tls: Option<tokio_rustls::TlsAcceptor>) -> Service {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let replies = Arc::new(Mutex::new(VecDeque::from(replies)));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let reply = {
                let mut replies = replies.lock().unwrap();
                if replies.len() > 1 {
                    replies.pop_front().unwrap()
                } else {
                    replies.front().cloned().unwrap()
                }
            };
            let seen = shared.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => handle(tcp, reply, seen).await,
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            handle(stream, reply, seen).await;
                        }
                    }
                }
            });
        }
    });
    Service {
        url: format!("{scheme}://{addr}/pxe/decide?site=PS1"),
        seen,
    }
}

fn options(url: &str) -> WebhookOptions {
    WebhookOptions {
        url: url.to_string(),
        timeout: Duration::from_secs(5),
        retries: 2,
        retry_backoff: Duration::from_millis(10),
        bearer_token: Some("t0ken".into()),
        ca_file: None,
    }
}

fn request() -> BootRequest {
    let mut req = BootRequest::new(
        "52:54:00:12:34:56".parse().unwrap(),
        ClientArch::EfiX64,
        BootStage::Ipxe,
    )
    .with_uuid(Some("4c4c4544-0001-4a10-8000-b1c04f000001".parse().unwrap()));
    req.user_class = Some("iPXE".into());
    req
}

const MENU: &str = r#"{"decision":"boot","title":"Deployments","timeout_secs":10,"entries":[
  {"id":"PS120002","title":"Windows 11","deployment":"required",
   "target":{"kind":"wimboot","boot_wim":"winpe/x64/boot.wim"}}]}"#;

#[tokio::test]
async fn posts_the_request_and_reads_the_decision() {
    let svc = service(vec![Reply::Status(200, MENU)], None).await;
    let resolver = WebhookResolver::new(options(&svc.url)).unwrap();
    let decision = resolver.resolve(&request()).await.unwrap();
    let BootDecision::Boot(menu) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(menu.entries[0].id, "PS120002");
    assert_eq!(menu.timeout_secs, Some(10));

    let seen = svc.seen.lock().unwrap();
    let (line, headers, body) = &seen.requests[0];
    assert_eq!(line, "POST /pxe/decide?site=PS1 HTTP/1.1");
    assert!(
        headers.contains(&"content-type: application/json".to_string()),
        "{headers:?}"
    );
    assert!(
        headers.contains(&"authorization: bearer t0ken".to_string()),
        "{headers:?}"
    );
    let sent: BootRequest = serde_json::from_str(body).unwrap();
    assert_eq!(sent, request());
}

#[tokio::test]
async fn server_errors_are_retried_client_errors_are_not() {
    let svc = service(
        vec![
            Reply::Status(503, "busy"),
            Reply::Status(200, r#"{"decision":"ignore"}"#),
        ],
        None,
    )
    .await;
    let resolver = WebhookResolver::new(options(&svc.url)).unwrap();
    assert_eq!(resolver.resolve(&request()).await.unwrap(), BootDecision::Ignore);
    assert_eq!(svc.seen.lock().unwrap().requests.len(), 2);

    let svc = service(vec![Reply::Status(403, "no")], None).await;
    let resolver = WebhookResolver::new(options(&svc.url)).unwrap();
    let err = resolver.resolve(&request()).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    assert_eq!(svc.seen.lock().unwrap().requests.len(), 1);
}

#[tokio::test]
async fn a_malformed_answer_is_invalid_not_retried() {
    let svc = service(vec![Reply::Status(200, r#"{"decision":"reboot"}"#)], None).await;
    let resolver = WebhookResolver::new(options(&svc.url)).unwrap();
    let err = resolver.resolve(&request()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ResolveError::InvalidAnswer {
                backend: "webhook",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(svc.seen.lock().unwrap().requests.len(), 1);
}

#[tokio::test]
async fn a_silent_service_times_out_each_attempt() {
    let svc = service(vec![Reply::Hang], None).await;
    let mut opts = options(&svc.url);
    opts.timeout = Duration::from_millis(200);
    opts.retries = 1;
    let resolver = WebhookResolver::new(opts).unwrap();
    let err = resolver.resolve(&request()).await.unwrap_err();
    assert!(err.to_string().contains("no answer within"), "{err}");
    assert_eq!(svc.seen.lock().unwrap().requests.len(), 2);
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let mut opts = options(&url);
    opts.retries = 0;
    let err = WebhookResolver::new(opts)
        .unwrap()
        .resolve(&request())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ResolveError::Unavailable {
                backend: "webhook",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn bad_urls_and_the_token_stays_out_of_debug() {
    for url in ["ftp://x/", "not a url", "http://user:pw@host/"] {
        assert!(WebhookResolver::new(options(url)).is_err(), "{url}");
    }
    let resolver = WebhookResolver::new(options("http://127.0.0.1:9/")).unwrap();
    assert!(!format!("{resolver:?}").contains("t0ken"));
}

#[tokio::test]
async fn https_with_a_private_ca() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let svc = service(
        vec![Reply::Status(200, MENU)],
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(server))),
    )
    .await;

    let mut opts = options(&svc.url);
    opts.ca_file = Some(ca);
    let decision = WebhookResolver::new(opts)
        .unwrap()
        .resolve(&request())
        .await
        .unwrap();
    assert!(matches!(decision, BootDecision::Boot(_)));

    // Without that CA the certificate is not trusted.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let other_ca = dir.path().join("other.pem");
    std::fs::write(&other_ca, other.cert.pem()).unwrap();
    let mut opts = options(&svc.url);
    opts.ca_file = Some(other_ca);
    opts.retries = 0;
    let err = WebhookResolver::new(opts)
        .unwrap()
        .resolve(&request())
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::Unavailable { .. }), "{err:?}");
}
