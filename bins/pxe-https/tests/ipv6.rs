//! pxe-https on its default `[::]` listeners: IPv4 and IPv6 clients both served from one
//! socket each, with the same path rules, and IPv4 clients logged (and recorded) by their IPv4
//! address rather than as `::ffff:a.b.c.d`.

mod common;

use std::process::Command;

use netboot_testkit::process::have_tool;

fn have_ipv6() -> bool {
    std::net::UdpSocket::bind("[::1]:0").is_ok()
}

fn curl_status(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args([
            "-s",
            "--globoff",
            "--path-as-is",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(args)
        .output()
        .expect("running curl");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn dual_stack_listeners_serve_both_families_with_the_same_rules() {
    if !have_ipv6() || !have_tool("curl", "curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("root/boot")).unwrap();
    std::fs::write(dir.path().join("root/boot/snponly.efi"), vec![7u8; 4096]).unwrap();
    let config = dir.path().join("netboot.toml");
    std::fs::write(
        &config,
        "[https]\nlisten = \"[::]:0\"\nhttp_listen = \"[::]:0\"\nroot = \"root\"\nipxe_dir = \"\"\nstate_dir = \"state\"\n",
    )
    .unwrap();
    let server = common::spawn(dir, &config, &[]);
    assert!(server.https.is_ipv6() && server.https.ip().is_unspecified());
    let http_port = server.http.unwrap().port();
    for host in ["[::1]", "127.0.0.1"] {
        let url = |path: &str| format!("http://{host}:{http_port}{path}");
        assert_eq!(curl_status(&[&url("/boot/snponly.efi")]), "200", "{host}");
        for refused in [
            "/../root/boot/snponly.efi",
            "/boot/%2e%2e/boot/snponly.efi",
            "/.state/x",
        ] {
            let status = curl_status(&[&url(refused)]);
            assert!(status.starts_with('4'), "{refused} via {host}: {status}");
        }
    }
    // HTTPS over IPv6 to the generated certificate, which names the loopback addresses.
    let https = format!("https://[::1]:{}/boot.ipxe", server.https.port());
    let cert = server.cert();
    let status = curl_status(&["--cacert", cert.to_str().unwrap(), &https]);
    assert_eq!(status, "200", "{https}");
    // Stock iPXE 2.0 sends the bracketed literal as the TLS server name; rustls refuses the
    // handshake, and the log says once what to do about it.
    if have_tool("openssl", "openssl") {
        for _ in 0..2 {
            let refused = Command::new("openssl")
                .args(["s_client", "-connect"])
                .arg(format!("[::1]:{}", server.https.port()))
                .args(["-servername", "[::1]"])
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&refused.stderr);
            assert!(said.contains("alert illegal parameter"), "{said}");
        }
    }
    let log = server.drain_log().join("\n");
    if have_tool("openssl", "openssl") {
        assert_eq!(
            log.matches("the client sent an invalid server name (SNI)")
                .count(),
            1,
            "explained once:\n{log}"
        );
    }
    assert!(
        log.contains("remote=127.0.0.1 "),
        "IPv4 clients by their IPv4 address:\n{log}"
    );
    assert!(log.contains("remote=::1 "), "{log}");
    assert!(!log.contains("::ffff:"), "{log}");
}
