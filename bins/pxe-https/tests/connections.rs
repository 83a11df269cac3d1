//! Connection timeouts and limits of the real binary on loopback: silent sockets are closed,
//! one client cannot take every connection, a client that stops reading a download is
//! disconnected, and a request with too many byte ranges gets the whole file.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Far beyond every timeout the tests configure: reaching it means the server did not act.
const BOUND: Duration = Duration::from_secs(15);

/// A TLS client that trusts the site CA the server's certificate comes from.
fn tls_connector(state: &Path) -> tokio_rustls::TlsConnector {
    let pem = std::fs::read(state.join("site-ca.crt")).expect("the site CA certificate");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_connect(server: &common::Running) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(server.https).await.unwrap();
    tls_connector(&server.dir.path().join("state"))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

/// Waits until the server closes `stream` (end of stream or reset), reading and counting
/// what arrives; panics when it is still open after [`BOUND`]. Returns the bytes read and
/// how long it took.
async fn until_closed(stream: &mut (impl AsyncRead + Unpin)) -> (u64, Duration) {
    let started = Instant::now();
    let mut total = 0u64;
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let left = BOUND.checked_sub(started.elapsed()).unwrap_or_default();
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => panic!("still open after {BOUND:?}, {total} bytes read"),
            Ok(Ok(0) | Err(_)) => return (total, started.elapsed()),
            Ok(Ok(read)) => total += read as u64,
        }
    }
}

/// A plain connection from `source` (any 127/8 address works on loopback).
async fn connect_from(source: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(server).await.unwrap()
}

/// Sends one HTTP/1.1 request and returns the status line's code.
async fn get_status(stream: &mut (impl AsyncRead + tokio::io::AsyncWrite + Unpin), path: &str) -> u16 {
    let status = tokio::time::timeout(BOUND, try_get_status(stream, path))
        .await
        .expect("an answer in time")
        .expect("reading the answer");
    status.unwrap_or_else(|| panic!("no status line in the answer to {path}"))
}

/// Sends one HTTP/1.1 request and returns the status line's code, `None` when the answer has
/// none (the server closed the connection at once), or the error of a reset connection.
async fn try_get_status(
    stream: &mut (impl AsyncRead + tokio::io::AsyncWrite + Unpin),
    path: &str,
) -> std::io::Result<Option<u16>> {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    Ok(text.split_whitespace().nth(1).and_then(|code| code.parse().ok()))
}

#[tokio::test]
async fn silent_connections_are_closed_after_the_header_timeout() {
    let server = common::start(
        "[https]\nheader_timeout_secs = 1\nidle_timeout_secs = 2\nhandshake_timeout_secs = 2\n\n",
        &[],
        |_| {},
    );
    // Plain HTTP: nothing sent, so not even the protocol is known.
    let mut plain = TcpStream::connect(server.http.unwrap()).await.unwrap();
    let (read, took) = until_closed(&mut plain).await;
    assert_eq!(read, 0);
    assert!(
        took >= Duration::from_millis(500),
        "closed after {took:?}, before the timeout"
    );
    // TLS: the handshake is done, then nothing.
    let mut tls = tls_connect(&server).await;
    let (read, _) = until_closed(&mut tls).await;
    assert_eq!(read, 0);
    // A connection that never even starts the handshake.
    let mut no_hello = TcpStream::connect(server.https).await.unwrap();
    until_closed(&mut no_hello).await;
    // Served connections still work, and an idle keep-alive one is closed in time too.
    let mut kept = TcpStream::connect(server.http.unwrap()).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let (read, _) = until_closed(&mut kept).await;
    assert!(
        read > 0,
        "the request was answered before the idle connection was closed"
    );
}

#[tokio::test]
async fn one_client_beyond_its_limit_does_not_keep_others_out() {
    let server = common::start(
        "[https]\nmax_connections_per_client = 4\nmax_connections = 100\n\n",
        &[],
        |_| {},
    );
    let http = server.http.unwrap();
    // The silent connections within the limit stay open (the header timeout is 30 s). All on
    // one listener: a connect returns once the kernel has queued the connection, and the
    // server accepts a listener's queue in order, so the refused one below comes after them
    // (across two listeners the server may accept a later connection first).
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from("127.0.0.2", http).await);
    }
    // Beyond the limit, on either listener: closed at once.
    for listener in [http, server.https, http] {
        let mut refused = connect_from("127.0.0.2", listener).await;
        let (read, took) = until_closed(&mut refused).await;
        assert_eq!(read, 0);
        assert!(took < Duration::from_secs(5), "refused only after {took:?}");
    }
    // Others are served, over plain HTTP and TLS.
    let mut other = connect_from("127.0.0.1", http).await;
    assert_eq!(get_status(&mut other, "/healthz").await, 200);
    let mut other = tls_connect(&server).await;
    assert_eq!(get_status(&mut other, "/healthz").await, 200);
    // The ones within the limit are still open.
    for stream in &mut held {
        let mut byte = [0; 1];
        let still_open = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await;
        assert!(still_open.is_err(), "a connection within the limit was closed");
    }
    // Closing them frees the client's places.
    drop(held);
    let deadline = Instant::now() + BOUND;
    loop {
        let mut again = connect_from("127.0.0.2", http).await;
        // Until the server has seen the others close, this one is refused: closed at once,
        // or reset when the request was already on its way.
        let answered =
            tokio::time::timeout(Duration::from_secs(5), try_get_status(&mut again, "/healthz")).await;
        if matches!(answered, Ok(Ok(Some(200)))) {
            break;
        }
        assert!(Instant::now() < deadline, "the client's places were not freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_a_download_is_disconnected() {
    const SIZE: u64 = 256 * 1024 * 1024;
    let server = common::start("[https]\nwrite_timeout_secs = 1\n\n", &[], |dir| {
        // Sparse: no disk space, reads as zeros.
        let file = std::fs::File::create(dir.join("root/big.bin")).unwrap();
        file.set_len(SIZE).unwrap();
    });
    let mut tls = tls_connect(&server).await;
    tls.write_all(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // Not reading: the socket buffers fill up and the server's writes stall.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (read, _) = until_closed(&mut tls).await;
    assert!(
        read < SIZE,
        "the whole file arrived ({read} bytes): the stalled connection was not closed"
    );
    // The server is fine.
    let mut other = tls_connect(&server).await;
    assert_eq!(get_status(&mut other, "/healthz").await, 200);
}

#[test]
fn a_request_with_too_many_ranges_gets_the_whole_file() {
    let content: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let server = common::start("", &[], |dir| {
        std::fs::write(dir.join("root/file.bin"), &content).unwrap();
    });
    let ranges = |count: usize| {
        (0..count)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect::<Vec<_>>()
            .join(",")
    };
    let (status, headers, body) = server.request(&["-r", &ranges(16)], "/file.bin", true);
    assert_eq!(status, 206, "{headers}");
    assert!(headers.contains("multipart/byteranges"), "{headers}");
    let (status, headers, body_many) = server.request(&["-r", &ranges(17)], "/file.bin", true);
    assert_eq!(status, 200, "{headers}");
    assert_eq!(body_many, content);
    assert!(body.len() < content.len());
}
