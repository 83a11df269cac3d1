//! The webhook resolver against a scripted HTTP(S) service on loopback.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netboot_core::{BootDecision, BootRequest, BootResolver, BootStage, ClientArch, ResolveError};
use netboot_resolver::{WebhookOptions, WebhookResolver};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the service answers, request by request; the last one repeats.
#[derive(Clone)]
enum Reply {
    /// That status and body, keeping the connection open for the next request.
    Status(u16, &'static str),
    Hang,
    /// Announces a body of that many bytes and sends it.
    Sized(usize),
    /// A chunked body that never ends.
    Endless,
}

#[derive(Default)]
struct Seen {
    requests: Vec<(String, Vec<String>, String)>,
    connections: usize,
}

struct Service {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

/// One request from `data` (topped up from `stream`), removed from it; `None` at the end.
async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    data: &mut Vec<u8>,
) -> Option<(String, Vec<String>, String)> {
    let mut buf = [0u8; 4096];
    // Bounded: a request larger than 64 KiB is not something these tests send.
    while !data.windows(4).any(|w| w == b"\r\n\r\n") && data.len() < 65536 {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let head_end = data.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
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
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&data[head_end..head_end + length]).to_string();
    data.drain(..head_end + length);
    Some((request_line, headers, body))
}

/// Answers the requests of one connection until the client closes it.
async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    replies: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Seen>>,
) {
    let mut data = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut data).await {
        seen.lock().unwrap().requests.push(request);
        let reply = {
            let mut replies = replies.lock().unwrap();
            if replies.len() > 1 {
                replies.pop_front().unwrap()
            } else {
                replies.front().cloned().unwrap()
            }
        };
        let head = |code: u16, framing: String| {
            format!("HTTP/1.1 {code} X\r\nContent-Type: application/json\r\n{framing}\r\n\r\n")
        };
        match reply {
            Reply::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
            Reply::Status(code, body) => {
                let response = head(code, format!("Content-Length: {}", body.len())) + body;
                if stream.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
            Reply::Sized(size) => {
                let _ = stream
                    .write_all(head(200, format!("Content-Length: {size}")).as_bytes())
                    .await;
                let _ = stream.write_all(&vec![b' '; size]).await;
            }
            Reply::Endless => {
                let _ = stream
                    .write_all(head(200, "Transfer-Encoding: chunked".into()).as_bytes())
                    .await;
                let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
                // Until the client hangs up.
                while stream.write_all(chunk.as_bytes()).await.is_ok() {}
                return;
            }
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
            shared.lock().unwrap().connections += 1;
            let seen = shared.clone();
            let replies = replies.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => handle(tcp, replies, seen).await,
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            handle(stream, replies, seen).await;
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
        proxy_from_environment: false,
    }
}

/// The error of a lookup that gets one attempt.
async fn one_failed_attempt(url: &str) -> ResolveError {
    let mut opts = options(url);
    opts.retries = 0;
    WebhookResolver::new(opts)
        .unwrap()
        .resolve(&request())
        .await
        .unwrap_err()
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
    let err = one_failed_attempt(&url).await;
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

#[tokio::test]
async fn lookups_share_one_connection() {
    let svc = service(vec![Reply::Status(200, r#"{"decision":"ignore"}"#)], None).await;
    let resolver = WebhookResolver::new(options(&svc.url)).unwrap();
    for _ in 0..3 {
        assert_eq!(resolver.resolve(&request()).await.unwrap(), BootDecision::Ignore);
    }
    let seen = svc.seen.lock().unwrap();
    assert_eq!((seen.requests.len(), seen.connections), (3, 1));
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let svc = service(vec![Reply::Sized(2 << 20)], None).await;
    let err = one_failed_attempt(&svc.url).await;
    assert!(format!("{:?}", err).contains("bytes announced"), "{err:?}");

    // An answer just under the limit is read (and then is not a decision).
    let svc = service(vec![Reply::Sized((1 << 20) - 1)], None).await;
    let err = WebhookResolver::new(options(&svc.url))
        .unwrap()
        .resolve(&request())
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::InvalidAnswer { .. }), "{err:?}");
}

#[tokio::test]
async fn an_endless_answer_stops_at_the_limit() {
    let svc = service(vec![Reply::Endless], None).await;
    let err = one_failed_attempt(&svc.url).await;
    // Cut off by the size limit, well before the 5 s attempt timeout.
    assert!(
        format!("{:?}", err).contains("more than 1048576 bytes"),
        "{err:?}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let svc = service(vec![Reply::Status(307, "")], None).await;
    let err = one_failed_attempt(&svc.url).await;
    assert!(err.to_string().contains("307"), "{err}");
    assert_eq!(svc.seen.lock().unwrap().requests.len(), 1);
}

#[test]
fn bad_urls_and_the_token_stays_out_of_debug() {
    for url in ["ftp://x/", "not a url", "http://user:pw@host/"] {
        assert!(WebhookResolver::new(options(url)).is_err(), "{url}");
    }
    let resolver = WebhookResolver::new(options("http://127.0.0.1:9/")).unwrap();
    assert!(!format!("{resolver:?}").contains("t0ken"));

    let mut opts = options("http://127.0.0.1:9/");
    opts.bearer_token = Some("t0ken\nX-Injected: 1".into());
    let err = WebhookResolver::new(opts).unwrap_err();
    assert!(!format!("{err} {err:?}").contains("t0ken"), "{err:?}");
}

#[tokio::test]
async fn the_token_stays_out_of_failures() {
    let err = one_failed_attempt("http://127.0.0.1:9/").await;
    let mut text = format!("{err} {err:?}");
    let mut cause = std::error::Error::source(&err);
    while let Some(inner) = cause {
        text += &format!(" {inner} {inner:?}");
        cause = inner.source();
    }
    assert!(!text.contains("t0ken"), "{text}");
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
    let resolver = WebhookResolver::new(opts).unwrap();
    for _ in 0..2 {
        let decision = resolver.resolve(&request()).await.unwrap();
        assert!(matches!(decision, BootDecision::Boot(_)));
    }
    // The TLS session is kept, not negotiated again for the second lookup.
    assert_eq!(svc.seen.lock().unwrap().connections, 1);

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
