//! Fetching boot images from a local HTTPS server standing in for a distribution point: real
//! TLS (rustls, a certificate from a private CA), NTLM bound to the connection as IIS does it,
//! basic authentication, short and altered bodies, and the cache limit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use netboot_dp::ntlm::{Authenticate, Challenge, Credentials};
use netboot_dp::{Auth, Availability, DpSettings, DpSource, Endpoint};
use tokio::net::TcpListener;

const SERVER_CHALLENGE: [u8; 8] = *b"dpchalng";

#[derive(Clone)]
enum Gate {
    Open,
    Basic(&'static str, &'static str),
    Ntlm(&'static str, &'static str, &'static str),
}

/// The stand-in DP: files by path, how it authenticates, and what it saw.
struct Dp {
    addr: std::net::SocketAddr,
    ca: PathBuf,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

#[derive(Default)]
struct Connection {
    challenged: bool,
    authenticated: bool,
}

fn boot_image(id: &str, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8) ^ id.as_bytes()[id.len() - 1])
        .collect()
}

/// Starts the stand-in on 127.0.0.1 with `files` (`id` → bytes), `gate`, and `short` (send
/// a `Content-Length` larger than the body, then close).
async fn start_dp(files: HashMap<String, Vec<u8>>, gate: Gate, short: bool) -> Dp {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, ca) = netboot_testkit::tls::localhost_acceptor(dir.path(), "dp-ca");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let files = Arc::new(files);
    let (seen_connections, seen_requests) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            seen_connections.fetch_add(1, Ordering::SeqCst);
            let (acceptor, files, gate, requests) = (
                acceptor.clone(),
                files.clone(),
                gate.clone(),
                seen_requests.clone(),
            );
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if short {
                    // Announce the whole image, send half, hang up (hyper would refuse to lie).
                    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        let Ok(n) = tls.read(&mut buf).await else { return };
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                    }
                    requests.fetch_add(1, Ordering::SeqCst);
                    let bytes = files.values().next().unwrap();
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", bytes.len());
                    let _ = tls.write_all(head.as_bytes()).await;
                    let _ = tls.write_all(&bytes[..bytes.len() / 2]).await;
                    let _ = tls.shutdown().await;
                    return;
                }
                let state = Arc::new(Mutex::new(Connection::default()));
                let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    requests.fetch_add(1, Ordering::SeqCst);
                    let answer = answer(&request, &files, &gate, &state);
                    async move { Ok::<_, std::convert::Infallible>(answer) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Dp {
        addr,
        ca,
        connections,
        requests,
        _dir: dir,
    }
}

fn answer(
    request: &Request<hyper::body::Incoming>,
    files: &HashMap<String, Vec<u8>>,
    gate: &Gate,
    state: &Mutex<Connection>,
) -> Response<Full<Bytes>> {
    let status = |code: StatusCode| {
        let mut response = Response::new(Full::new(Bytes::from_static(b"no\n")));
        *response.status_mut() = code;
        response
    };
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let allowed = match gate {
        Gate::Open => true,
        Gate::Basic(user, password) => {
            authorization == format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
        }
        Gate::Ntlm(user, domain, password) => {
            let mut connection = state.lock().unwrap();
            if connection.authenticated {
                true
            } else if let Some(token) = authorization.strip_prefix("NTLM ") {
                let message = STANDARD.decode(token).unwrap_or_default();
                if message.get(8) == Some(&1) {
                    // NEGOTIATE: challenge on this connection.
                    connection.challenged = true;
                    let challenge = Challenge {
                        flags: 0xe28a_8235,
                        server_challenge: SERVER_CHALLENGE,
                        target_info: {
                            let mut info = vec![2, 0, 8, 0];
                            info.extend("CORP".encode_utf16().flat_map(u16::to_le_bytes));
                            info.extend_from_slice(&[0; 4]);
                            info
                        },
                    };
                    let mut response = status(StatusCode::UNAUTHORIZED);
                    response.headers_mut().insert(
                        WWW_AUTHENTICATE,
                        format!("NTLM {}", STANDARD.encode(challenge.encode()))
                            .parse()
                            .unwrap(),
                    );
                    return response;
                }
                // AUTHENTICATE only counts on the connection that was challenged.
                let proven = connection.challenged
                    && Authenticate::parse(&message).is_ok_and(|auth| {
                        auth.user.eq_ignore_ascii_case(user)
                            && auth.domain.eq_ignore_ascii_case(domain)
                            && auth.proves(password, &SERVER_CHALLENGE)
                    });
                connection.authenticated = proven;
                proven
            } else {
                false
            }
        }
    };
    if !allowed {
        let mut response = status(StatusCode::UNAUTHORIZED);
        let scheme = match gate {
            Gate::Ntlm(..) => "NTLM",
            _ => "Basic realm=\"dp\"",
        };
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, scheme.parse().unwrap());
        return response;
    }
    let id = request.uri().path().split('/').nth(2).unwrap_or("");
    let expected = format!("/SMS_DP_SMSPKG$/{id}/boot.{id}.wim");
    match files.get(id) {
        Some(bytes) if request.uri().path() == expected => {
            Response::new(Full::new(Bytes::copy_from_slice(bytes)))
        }
        _ => status(StatusCode::NOT_FOUND),
    }
}

fn source(dp: &Dp, auth: Auth, dir: &Path, max_cache_bytes: u64) -> Arc<DpSource> {
    source_with_ca(dp, auth, dir, max_cache_bytes, &dp.ca)
}

fn source_with_ca(dp: &Dp, auth: Auth, dir: &Path, max_cache_bytes: u64, ca: &Path) -> Arc<DpSource> {
    let mut endpoint = Endpoint::new("localhost", dp.addr.port(), Some(ca), auth).unwrap();
    endpoint.step_timeout = Duration::from_secs(5);
    DpSource::new(
        endpoint,
        DpSettings {
            url_template: format!(
                "https://localhost:{}/SMS_DP_SMSPKG$/{{package_id}}/boot.{{package_id}}.wim",
                dp.addr.port()
            ),
            dir: dir.to_owned(),
            max_cache_bytes,
            sha256: Default::default(),
        },
    )
}

/// Asks until the image is ready or failed (bounded), as the HTTPS service does per decision.
async fn settle(source: &Arc<DpSource>, id: &str) -> Availability {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = source.availability(id);
        if matches!(now, Availability::Ready | Availability::Failed(_)) || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ntlm_auth(password: &str) -> Auth {
    Auth::Ntlm(Credentials {
        user: "pxe-reader".into(),
        domain: "CORP".into(),
        password: password.into(),
    })
}

fn one_image(id: &str, len: usize) -> HashMap<String, Vec<u8>> {
    HashMap::from([(id.to_owned(), boot_image(id, len))])
}

#[tokio::test]
async fn ntlm_authenticates_one_connection_and_the_image_lands_checked() {
    let image = boot_image("PS100004", 300_000);
    let dp = start_dp(
        one_image("PS100004", 300_000),
        Gate::Ntlm("pxe-reader", "CORP", "S3cret!"),
        false,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let first = source(&dp, ntlm_auth("S3cret!"), dir.path(), 10_000_000);
    assert!(matches!(
        first.availability("PS100004"),
        Availability::Fetching { .. }
    ));
    assert_eq!(settle(&first, "PS100004").await, Availability::Ready);
    let folder = dir.path().join("PS100004");
    assert_eq!(std::fs::read(folder.join("boot.PS100004.wim")).unwrap(), image);
    let sidecar = std::fs::read_to_string(folder.join(".boot.PS100004.wim.sha256")).unwrap();
    assert!(sidecar.ends_with(" 300000\n"), "{sidecar}");
    assert!(!folder.join(".boot.PS100004.wim.part").exists());
    // NEGOTIATE and AUTHENTICATE (with the download) on one connection.
    assert_eq!(dp.connections.load(Ordering::SeqCst), 1);
    assert_eq!(dp.requests.load(Ordering::SeqCst), 2);

    // A new process checks the copy against its hash before using it.
    let again = source_with_ca(&dp, ntlm_auth("S3cret!"), dir.path(), 10_000_000, &dp.ca);
    assert_eq!(again.availability("PS100004"), Availability::Checking);
    assert_eq!(settle(&again, "PS100004").await, Availability::Ready);
    assert_eq!(
        dp.connections.load(Ordering::SeqCst),
        1,
        "a good copy is not fetched again"
    );

    // An altered copy is fetched anew.
    std::fs::write(folder.join("boot.PS100004.wim"), vec![0u8; 300_000]).unwrap();
    let third = source(&dp, ntlm_auth("S3cret!"), dir.path(), 10_000_000);
    assert_eq!(settle(&third, "PS100004").await, Availability::Ready);
    assert_eq!(std::fs::read(folder.join("boot.PS100004.wim")).unwrap(), image);
    assert_eq!(dp.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn wrong_credentials_an_untrusted_dp_and_missing_images_fail_clearly() {
    let dp = start_dp(
        one_image("PS100004", 1000),
        Gate::Ntlm("pxe-reader", "CORP", "S3cret!"),
        false,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = source(&dp, ntlm_auth("guess"), dir.path(), 1_000_000);
    let Availability::Failed(reason) = settle(&wrong, "PS100004").await else {
        panic!()
    };
    assert!(reason.contains("refused the credentials"), "{reason}");
    assert!(!reason.contains("guess"));
    // Reported, not retried at once.
    assert!(matches!(wrong.availability("PS100004"), Availability::Failed(_)));

    let missing = source(&dp, ntlm_auth("S3cret!"), dir.path(), 1_000_000);
    let Availability::Failed(reason) = settle(&missing, "PS100099").await else {
        panic!()
    };
    assert!(reason.contains("404"), "{reason}");

    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let other_ca = dir.path().join("other.pem");
    std::fs::write(&other_ca, other.cert.pem()).unwrap();
    let untrusted = source_with_ca(&dp, ntlm_auth("S3cret!"), dir.path(), 1_000_000, &other_ca);
    let Availability::Failed(reason) = settle(&untrusted, "PS100004").await else {
        panic!()
    };
    assert!(reason.contains("connecting to localhost"), "{reason}");
    assert!(!dir.path().join("PS100004/boot.PS100004.wim").exists());
    assert!(matches!(
        missing.availability("../etc"),
        Availability::Failed(reason) if reason.contains("PackageID")
    ));
}

#[tokio::test]
async fn basic_authentication() {
    let dp = start_dp(one_image("PS100005", 5000), Gate::Basic("CORP\\pxe", "pw"), false).await;
    let dir = tempfile::tempdir().unwrap();
    let basic = |password: &str| Auth::Basic {
        user: "CORP\\pxe".into(),
        password: password.into(),
    };
    let good = source(&dp, basic("pw"), dir.path(), 1_000_000);
    assert_eq!(settle(&good, "PS100005").await, Availability::Ready);
    let bad_dir = tempfile::tempdir().unwrap();
    let bad = source(&dp, basic("nope"), bad_dir.path(), 1_000_000);
    assert!(matches!(settle(&bad, "PS100005").await, Availability::Failed(_)));
}

#[tokio::test]
async fn a_short_body_a_wrong_hash_or_an_oversized_image_leave_nothing_behind() {
    let dp = start_dp(one_image("PS100006", 200_000), Gate::Open, true).await;
    let dir = tempfile::tempdir().unwrap();
    let short = source(&dp, Auth::None, dir.path(), 1_000_000);
    let Availability::Failed(reason) = settle(&short, "PS100006").await else {
        panic!()
    };
    assert!(
        reason.contains("broke off") || reason.contains("ended after"),
        "{reason}"
    );
    let folder = dir.path().join("PS100006");
    assert!(!folder.join("boot.PS100006.wim").exists());
    assert!(!folder.join(".boot.PS100006.wim.part").exists());

    let dp = start_dp(one_image("PS100006", 200_000), Gate::Open, false).await;
    let mut endpoint = Endpoint::new("localhost", dp.addr.port(), Some(&dp.ca), Auth::None).unwrap();
    endpoint.step_timeout = Duration::from_secs(5);
    let pinned = DpSource::new(
        endpoint,
        DpSettings {
            url_template: format!(
                "https://localhost:{}/SMS_DP_SMSPKG$/{{package_id}}/boot.{{package_id}}.wim",
                dp.addr.port()
            ),
            dir: dir.path().to_owned(),
            max_cache_bytes: 1_000_000,
            sha256: [("PS100006".to_owned(), "00".repeat(32))].into(),
        },
    );
    let Availability::Failed(reason) = settle(&pinned, "PS100006").await else {
        panic!()
    };
    assert!(reason.contains("SHA-256"), "{reason}");
    assert!(!folder.join("boot.PS100006.wim").exists());

    let small = source(&dp, Auth::None, dir.path(), 100_000);
    let Availability::Failed(reason) = settle(&small, "PS100006").await else {
        panic!()
    };
    assert!(reason.contains("more than the cache holds"), "{reason}");
}

#[tokio::test]
async fn the_least_recently_used_fetched_image_makes_room() {
    let files: HashMap<String, Vec<u8>> = ["PS100001", "PS100002", "PS100003"]
        .into_iter()
        .map(|id| (id.to_owned(), boot_image(id, 100_000)))
        .collect();
    let dp = start_dp(files, Gate::Open, false).await;
    let dir = tempfile::tempdir().unwrap();
    // A boot image copied by hand is never removed.
    std::fs::create_dir_all(dir.path().join("PS100009")).unwrap();
    std::fs::write(dir.path().join("PS100009/boot.wim"), vec![1u8; 150_000]).unwrap();
    let cache = source(&dp, Auth::None, dir.path(), 250_000);
    for id in ["PS100001", "PS100002"] {
        assert_eq!(settle(&cache, id).await, Availability::Ready);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(settle(&cache, "PS100003").await, Availability::Ready);
    let present = |id: &str| dir.path().join(id).join(format!("boot.{id}.wim")).exists();
    assert!(!present("PS100001"), "the oldest fetched image made room");
    assert!(present("PS100002") && present("PS100003"));
    assert!(dir.path().join("PS100009/boot.wim").exists());
    // The removed one is fetched again on demand.
    assert!(matches!(
        cache.availability("PS100001"),
        Availability::Fetching { .. }
    ));
}
