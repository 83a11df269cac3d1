//! The OpenSSL compatibility TLS listener against independent clients: `openssl s_client`
//! proves which suites each listener accepts, `curl` fetches the entry script through it.
//!
//! Run with `cargo test -p pxe-https --features openssl-compat --test compat_tls`; without the
//! feature only the "configured but not compiled in" refusal is checked.

// Without the feature most helpers have no caller.
#![cfg_attr(not(feature = "openssl-compat"), allow(dead_code))]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use netboot_testkit::process::{Listening, Service};

fn run(command: &mut Command) -> Output {
    let output = command.stdin(Stdio::null()).output().expect("running a tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A private CA and an RSA server certificate for `localhost`/127.0.0.1 signed by it, made
/// with the openssl CLI the way a site would. Returns (ca.crt, server.crt, server.key).
fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = dir.join("ca.key");
    let ca_cert = dir.join("ca.crt");
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let cert = dir.join("server.crt");
    let ext = dir.join("server.ext");
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=compat test CA", "-keyout"])
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca_cert));
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(&ca_cert)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&cert));
    (ca_cert, cert, key)
}

/// A running `pxe-https` with its listeners, killed on drop.
struct Running {
    _service: Service,
    https: SocketAddr,
    compat: Option<SocketAddr>,
    _dir: tempfile::TempDir,
}

/// Starts the binary with `https_keys` added to a loopback-only `[https]` table and waits
/// for its `listening on` lines, or for it to exit (then returns its log as the error).
fn start(dir: tempfile::TempDir, https_keys: &str, want_compat: bool) -> Result<Running, String> {
    std::fs::create_dir_all(dir.path().join("root")).unwrap();
    let config = format!(
        "[https]\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"off\"\nroot = \"root\"\nipxe_dir = \"\"\nstate_dir = \"state\"\n{https_keys}\n"
    );
    let config_path = dir.path().join("netboot.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pxe-https"));
    command.arg("--config").arg(&config_path).env("RUST_LOG", "info");
    let service = Service::spawn("pxe-https", &mut command);
    let address =
        |found: &[Listening], label: &str| found.iter().find(|l| l.label.starts_with(label)).map(|l| l.addr);
    let found = service.wait_for_listening(Duration::from_secs(60), |found| {
        address(found, "(https)").is_some() && (!want_compat || address(found, "(compat-tls").is_some())
    })?;
    Ok(Running {
        https: address(&found, "(https)").unwrap(),
        compat: address(&found, "(compat-tls"),
        _service: service,
        _dir: dir,
    })
}

#[cfg(not(feature = "openssl-compat"))]
#[test]
fn configuring_the_listener_without_the_feature_names_the_feature() {
    let error = start(
        tempfile::tempdir().unwrap(),
        "compat_tls_listen = \"127.0.0.1:0\"",
        true,
    )
    .err()
    .expect("the binary must refuse to start");
    assert!(error.contains("openssl-compat"), "{error}");
    assert!(error.contains("https.compat_tls_listen"), "{error}");
}

#[cfg(feature = "openssl-compat")]
mod with_openssl {
    use netboot_testkit::process::have_tool;

    use super::*;

    /// Starts a server whose compat listener uses a private-CA certificate; returns it with
    /// the CA certificate clients should trust.
    fn start_with_private_ca() -> (Running, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = private_ca(dir.path());
        let keys = format!(
            "compat_tls_listen = \"127.0.0.1:0\"\ncompat_tls_cert = {:?}\ncompat_tls_key = {:?}",
            cert.display().to_string(),
            key.display().to_string()
        );
        let server = start(dir, &keys, true).unwrap_or_else(|log| panic!("did not start:\n{log}"));
        // The CA file lives in the server's temp dir, which the server keeps alive.
        (server, ca)
    }

    /// `openssl s_client` TLS 1.2 handshake offering only `cipher`; its stdout.
    fn handshake(addr: SocketAddr, ca: &Path, cipher: &str) -> String {
        let output = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr.to_string(),
                "-tls1_2",
                "-cipher",
                cipher,
            ])
            .args(["-servername", "localhost", "-verify_return_error", "-CAfile"])
            .arg(ca)
            .stdin(Stdio::null())
            .output()
            .expect("running openssl s_client");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn negotiated(out: &str, cipher: &str) -> bool {
        out.contains(&format!("Cipher is {cipher}")) && out.contains("Verify return code: 0 (ok)")
    }

    #[test]
    fn rsa_and_dhe_key_exchange_work_on_the_compat_listener_only() {
        if !have_tool("openssl", "openssl") {
            return;
        }
        let (server, ca) = start_with_private_ca();
        let compat = server.compat.unwrap();
        // What OVMF 2022.11 negotiates, and the DHE suites it also offers.
        for cipher in [
            "AES256-GCM-SHA384",
            "AES128-GCM-SHA256",
            "DHE-RSA-AES128-GCM-SHA256",
            "DHE-RSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES256-GCM-SHA384",
        ] {
            let out = handshake(compat, &ca, cipher);
            assert!(negotiated(&out, cipher), "{cipher} on the compat listener: {out}");
        }
        // The rustls listener has no RSA key transport: the same offer must fail there.
        let out = handshake(server.https, &ca, "AES256-GCM-SHA384");
        assert!(
            !out.contains("Cipher is AES256-GCM-SHA384"),
            "rustls accepted RSA kex: {out}"
        );
        assert!(
            out.contains("Cipher is (NONE)") || !out.contains("Cipher is"),
            "{out}"
        );
    }

    #[test]
    fn the_offer_of_ovmf_2022_gets_an_aead_suite() {
        if !have_tool("openssl", "openssl") {
            return;
        }
        // OVMF 2022.11's ClientHello (testdata/pcap/uefi-httpsboot-customca.pcap), in its order.
        let ovmf_offer = "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:\
DHE-RSA-AES256-SHA256:DHE-RSA-AES128-SHA256:DHE-RSA-AES256-SHA:DHE-RSA-AES128-SHA:\
AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA256:AES128-SHA256:AES256-SHA:AES128-SHA";
        let (server, ca) = start_with_private_ca();
        let out = handshake(server.compat.unwrap(), &ca, ovmf_offer);
        assert!(
            negotiated(&out, "DHE-RSA-AES256-GCM-SHA384"),
            "OVMF's first choice is an AEAD suite the listener has: {out}"
        );
    }

    #[test]
    fn cbc_suites_are_refused_on_both_listeners() {
        if !have_tool("openssl", "openssl") {
            return;
        }
        let (server, ca) = start_with_private_ca();
        for addr in [server.compat.unwrap(), server.https] {
            for cipher in [
                "AES128-SHA",
                "AES256-SHA256",
                "DHE-RSA-AES128-SHA256",
                "ECDHE-RSA-AES256-SHA384",
            ] {
                let out = handshake(addr, &ca, cipher);
                assert!(
                    !out.contains(&format!("Cipher is {cipher}")),
                    "{addr} accepted {cipher}: {out}"
                );
            }
        }
    }

    #[test]
    fn curl_fetches_the_entry_script_trusting_only_the_private_ca() {
        if !have_tool("curl", "curl") {
            return;
        }
        let (server, ca) = start_with_private_ca();
        let port = server.compat.unwrap().port();
        let output = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "20", "--tlsv1.2", "--cacert"])
            .arg(&ca)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .arg(format!("https://localhost:{port}/boot.ipxe"))
            .output()
            .expect("running curl");
        let body = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(body.starts_with("#!ipxe"), "{body}");
        assert!(body.contains("/boot.ipxe/decide"), "{body}");
    }

    #[test]
    fn without_its_own_certificate_the_listener_gets_an_rsa_one_from_the_site_ca() {
        if !have_tool("openssl", "openssl") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let site_ca = dir.path().join("state/site-ca.crt");
        let issued = dir.path().join("state/pxe-https-compat.crt");
        let server = start(dir, "compat_tls_listen = \"127.0.0.1:0\"", true)
            .unwrap_or_else(|log| panic!("did not start:\n{log}"));
        // RSA key transport works, and the chain verifies against the site CA alone.
        let out = handshake(server.compat.unwrap(), &site_ca, "AES256-GCM-SHA384");
        assert!(negotiated(&out, "AES256-GCM-SHA384"), "{out}");
        let text = std::fs::read_to_string(issued).unwrap();
        assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 2, "leaf and site CA");
    }

    #[test]
    fn a_non_rsa_certificate_is_refused_at_start() {
        if !have_tool("openssl", "openssl") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("ec.key");
        let cert = dir.path().join("ec.crt");
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let keys =
            "compat_tls_listen = \"127.0.0.1:0\"\ncompat_tls_cert = \"ec.crt\"\ncompat_tls_key = \"ec.key\"";
        let log = start(dir, keys, true).err().expect("must refuse an EC key");
        assert!(log.contains("not an RSA key"), "{log}");
    }

    /// Reads from `stream` until the server closes it; panics when it is still open after
    /// 15 s. Returns how long that took.
    fn closed_within(stream: &mut std::net::TcpStream) -> Duration {
        use std::io::Read as _;
        stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let started = std::time::Instant::now();
        let mut buffer = [0; 1024];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => return started.elapsed(),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("still open after {:?}", started.elapsed())
                }
                Err(_) => return started.elapsed(),
            }
        }
    }

    #[test]
    fn silent_connections_and_connections_beyond_the_limit_are_closed() {
        if !have_tool("openssl", "openssl") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = private_ca(dir.path());
        let keys = format!(
            "compat_tls_listen = \"127.0.0.1:0\"\ncompat_tls_cert = {:?}\ncompat_tls_key = {:?}\n\
             header_timeout_secs = 1\nidle_timeout_secs = 2\n",
            cert.display().to_string(),
            key.display().to_string()
        );
        let server = start(dir, &keys, true).unwrap_or_else(|log| panic!("did not start:\n{log}"));
        let compat = server.compat.unwrap();
        // Nothing sent at all.
        let mut silent = std::net::TcpStream::connect(compat).unwrap();
        closed_within(&mut silent);
        // A finished handshake, then nothing: s_client ends when the server closes.
        let mut client = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &compat.to_string(),
                "-servername",
                "localhost",
            ])
            .arg("-CAfile")
            .arg(&ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = client.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(15) {
                let _ = client.kill();
                panic!("the silent TLS connection is still open after 15 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut out = String::new();
        std::io::Read::read_to_string(client.stdout.as_mut().unwrap(), &mut out).unwrap();
        assert!(
            out.contains("Verify return code: 0 (ok)"),
            "the handshake was done: {status} {out}"
        );

        // The per-client limit: beyond it a connection is closed at once (long before the
        // default 30 s header timeout), within it they stay open.
        let dir = tempfile::tempdir().unwrap();
        let (_, cert, key) = private_ca(dir.path());
        let keys = format!(
            "compat_tls_listen = \"127.0.0.1:0\"\ncompat_tls_cert = {:?}\ncompat_tls_key = {:?}\n\
             max_connections_per_client = 2\n",
            cert.display().to_string(),
            key.display().to_string()
        );
        let server = start(dir, &keys, true).unwrap_or_else(|log| panic!("did not start:\n{log}"));
        let compat = server.compat.unwrap();
        let held: Vec<_> = (0..2)
            .map(|_| std::net::TcpStream::connect(compat).unwrap())
            .collect();
        let mut beyond = std::net::TcpStream::connect(compat).unwrap();
        let took = closed_within(&mut beyond);
        assert!(took < Duration::from_secs(10), "refused only after {took:?}");
        for stream in &held {
            stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            let mut byte = [0; 1];
            let still_open = std::io::Read::read(&mut &*stream, &mut byte);
            assert!(still_open.is_err(), "a connection within the limit was closed");
        }
    }
}
