//! TFTP over IPv6 as the default `listen` sets it up: `0.0.0.0:P` and `[::]:P` side by side
//! (the IPv6 socket takes IPv6 only), in both port modes; IPv6 clients get the same files and
//! the same refusals of names outside the root as IPv4 clients.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use netboot_testkit::process::{have_tool, Service};
use support::clients::{bounded, curl};
use support::{assert_same_file, at, run_client, tempdir, write_test_file};

fn have_ipv6() -> bool {
    UdpSocket::bind("[::1]:0").is_ok()
}

/// A port free on both 0.0.0.0 and [::] a moment ago.
fn free_port() -> u16 {
    let probe = UdpSocket::bind("[::]:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// The first byte pair and error code of the server's answer to a read request for `name`.
fn answer_to(server: SocketAddr, name: &str) -> (u16, u16) {
    let client = UdpSocket::bind(if server.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    })
    .unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = vec![0, 1];
    request.extend_from_slice(name.as_bytes());
    request.extend_from_slice(b"\0octet\0");
    client.send_to(&request, server).unwrap();
    let mut buf = [0u8; 600];
    let (len, _) = client.recv_from(&mut buf).expect("an answer");
    assert!(len >= 4);
    (
        u16::from_be_bytes([buf[0], buf[1]]),
        u16::from_be_bytes([buf[2], buf[3]]),
    )
}

#[test]
fn both_stacks_on_one_port_serve_the_same_files_with_the_same_rules() {
    if !have_ipv6() {
        return;
    }
    let dir = tempdir();
    let root = at(dir.path(), "root");
    std::fs::create_dir(&root).unwrap();
    let expected = root.join("snponly.efi");
    write_test_file(&expected, 200_000, 0x66);
    for extra in [&[][..], &["--single-port"][..]] {
        let port = free_port();
        let config = at(dir.path(), "netboot.toml");
        std::fs::write(
            &config,
            format!("[tftp]\nlisten = [\"0.0.0.0:{port}\", \"[::]:{port}\"]\n"),
        )
        .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_pxe-tftp"));
        command
            .arg("--config")
            .arg(&config)
            .arg("--root")
            .arg(&root)
            .args(extra)
            .env("RUST_LOG", "info");
        let service = Service::spawn("pxe-tftp", &mut command);
        let listening = service.listening(2, Duration::from_secs(60));
        assert!(listening.iter().any(|l| l.addr.is_ipv4()), "{listening:?}");
        assert!(listening.iter().any(|l| l.addr.is_ipv6()), "{listening:?}");
        let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
        let v4: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        if have_tool("curl", "curl") {
            for server in [v6, v4] {
                let out = at(dir.path(), "out.efi");
                let _ = std::fs::remove_file(&out);
                run_client(curl(bounded(None, 60, "curl"), server, "snponly.efi", &out, &[]));
                assert_same_file(&expected, &out);
            }
        }
        for server in [v6, v4] {
            // DATA (3) for the file, ERROR (5) access violation (2) outside the root.
            assert_eq!(answer_to(server, "/snponly.efi"), (3, 1), "{server} {extra:?}");
            for name in ["../etc/passwd", "%2e%2e/etc/passwd", "\\..\\x"] {
                assert_eq!(answer_to(server, name), (5, 2), "{name} via {server} {extra:?}");
            }
        }
        drop(service);
    }
}
