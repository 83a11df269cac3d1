//! The site CA through the binary: made on first start, trusted alone by real TLS clients
//! (openssl, curl), negotiated suites logged per connection, IP-address SNI not flooding the
//! log, and the `site-ca` commands.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use netboot_testkit::process::{have_tool, Service};

fn config(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("root")).unwrap();
    let path = dir.join("netboot.toml");
    std::fs::write(
        &path,
        "[https]\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"off\"\nroot = \"root\"\nipxe_dir = \"\"\nstate_dir = \"state\"\n",
    )
    .unwrap();
    path
}

fn start(config: &Path) -> (Service, u16) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pxe-https"));
    command
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info,pxe_https=debug");
    let service = Service::spawn("pxe-https", &mut command);
    let listening = service
        .wait_for_listening(Duration::from_secs(60), |found| !found.is_empty())
        .unwrap_or_else(|log| panic!("pxe-https did not start; log:\n{log}"));
    (service, listening[0].addr.port())
}

fn site_ca_command(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pxe-https"))
        .arg("--config")
        .arg(config)
        .arg("site-ca")
        .args(args)
        .output()
        .unwrap()
}

/// `openssl s_client` offering one TLS 1.2 suite over one group, trusting only `ca`.
fn handshake(port: u16, ca: &Path, cipher: &str, group: &str, server_name: &str) -> String {
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-tls1_2"])
        .args(["-cipher", cipher, "-groups", group, "-servername", server_name])
        .args(["-verify_return_error", "-CAfile"])
        .arg(ca)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_site_ca_is_made_on_first_start_and_clients_trusting_it_alone_connect() {
    if !have_tool("openssl", "openssl") || !have_tool("curl", "curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (server, port) = start(&config);
    let state = dir.path().join("state");
    let ca = state.join("site-ca.crt");
    let mode = |name: &str| std::fs::metadata(state.join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("site-ca.key"), 0o600);
    assert_eq!(mode("pxe-https.key"), 0o600);

    // The suites and groups iPXE 2.0 offers, as an iPXE with TRUST= the site CA would check:
    // the chain must verify against the CA alone, for the address iPXE connects to. (In TLS
    // 1.2 the offered groups also bound the curve of an ECDSA certificate, so P-256 is in
    // every offer, as it is in iPXE's.)
    for (cipher, group) in [
        ("ECDHE-ECDSA-AES128-GCM-SHA256", "X25519:P-256"),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", "P-256"),
        ("ECDHE-ECDSA-AES128-GCM-SHA256", "P-256:P-384"),
    ] {
        // iPXE sends the address as SNI (`https://127.0.0.1/...`).
        let out = handshake(port, &ca, cipher, group, "127.0.0.1");
        assert!(
            out.contains(&format!("Cipher is {cipher}")),
            "{cipher}/{group}: {out}"
        );
        assert!(
            out.contains("Verify return code: 0 (ok)"),
            "{cipher}/{group}: {out}"
        );
    }
    let curl = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "20", "--cacert"])
        .arg(&ca)
        .arg(format!("https://127.0.0.1:{port}/healthz"))
        .output()
        .unwrap();
    assert!(curl.status.success(), "{}", String::from_utf8_lossy(&curl.stderr));

    std::thread::sleep(Duration::from_millis(300));
    let log = server.drain_log().join("\n");
    let handshakes: Vec<&str> = log.lines().filter(|l| l.contains("TLS handshake done")).collect();
    assert!(handshakes.len() >= 4, "{log}");
    assert!(
        handshakes
            .iter()
            .all(|l| l.contains("TLSv1_2") || l.contains("TLSv1_3")),
        "{log}"
    );
    for (suite, group) in [
        ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "X25519"),
        ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "secp256r1"),
    ] {
        assert!(
            handshakes.iter().any(|l| l.contains(suite) && l.contains(group)),
            "no handshake logged with {suite} over {group}: {log}"
        );
    }
    assert!(
        !log.contains("Illegal SNI"),
        "an address as SNI must not warn on every connection: {log}"
    );
}

#[test]
fn site_ca_commands_export_issue_and_show() {
    if !have_tool("openssl", "openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());

    // Export before the first start makes the CA (so iPXE can be built first).
    let exported = site_ca_command(&config, &["export"]);
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let ca = dir.path().join("state/site-ca.crt");
    assert_eq!(exported.stdout, std::fs::read(&ca).unwrap());
    assert!(String::from_utf8_lossy(&exported.stderr).contains("created the site CA"));
    let again = site_ca_command(
        &config,
        &["export", "--out", dir.path().join("ca.pem").to_str().unwrap()],
    );
    assert!(again.status.success());
    assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), exported.stdout);

    // A certificate for another host of the site, verifiable against the CA.
    let cert = dir.path().join("pxe2.crt");
    let key = dir.path().join("pxe2.key");
    let issue = |extra: &[&str]| {
        let mut args = vec![
            "issue",
            "--name",
            "pxe2.example.test",
            "--name",
            "10.0.0.6",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        site_ca_command(&config, &args)
    };
    let issued = issue(&[]);
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&ca)
        .args(["-verify_ip", "10.0.0.6", "-purpose", "sslserver"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let refused = issue(&[]);
    assert!(!refused.status.success(), "existing files need --force");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert!(issue(&["--force", "--rsa"]).status.success());
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("rsaEncryption"));
    let bad = site_ca_command(&config, &["issue", "--name", "a b", "--cert", "x", "--key", "y"]);
    assert!(!bad.status.success());

    let show = site_ca_command(&config, &["show"]);
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(show.status.success(), "{}", String::from_utf8_lossy(&show.stderr));
    assert!(shown.contains("site CA"), "{shown}");
    assert!(shown.contains("is issued at the next start"), "{shown}");
}
