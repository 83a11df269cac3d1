//! The `pxe-server` binary: starts all three services from one file on loopback, serves, and
//! stops cleanly on SIGTERM; refuses to start without the iPXE boot programs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use netboot_testkit::process::{terminate, Service};

/// Bounded waits: a hung server fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(30);

/// `listening on` lines of the test configuration: proxyDHCP (dhcp + pxe boot server, over
/// IPv4 and IPv6), TFTP, HTTPS and plain HTTP.
const LISTENERS: usize = 7;

fn write_config(dir: &Path, ipxe_dir: &Path) -> std::path::PathBuf {
    let config = format!(
        r#"
[log]
level = "info"

[proxy]
listen = "127.0.0.1"
dhcp_port = 0
pxe_port = 0
dhcpv6_port = 0

[tftp]
root = "{ipxe}"
listen = ["127.0.0.1:0"]

[https]
listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
root = "{files}"
ipxe_dir = "{ipxe}"
state_dir = "state"

[peerdist]
enabled = false
"#,
        ipxe = ipxe_dir.display(),
        files = dir.display(),
    );
    let path = dir.join("netboot.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn fake_ipxe_dir(dir: &Path) -> std::path::PathBuf {
    let ipxe = dir.join("ipxe");
    std::fs::create_dir_all(&ipxe).unwrap();
    std::fs::write(ipxe.join("undionly.kpxe"), b"bios boot program").unwrap();
    std::fs::write(ipxe.join("snponly.efi"), b"uefi boot program").unwrap();
    ipxe
}

#[test]
fn serves_all_three_roles_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ipxe = fake_ipxe_dir(dir.path());
    let config = write_config(dir.path(), &ipxe);
    let mut command = Command::new(env!("CARGO_BIN_EXE_pxe-server"));
    command.arg("--config").arg(&config);
    let mut server = Service::spawn("pxe-server", &mut command);
    // proxyDHCP (dhcp + pxe boot server, over IPv4 and IPv6), TFTP, HTTPS and plain HTTP.
    let listeners = server.listening(LISTENERS, WAIT);
    let labels: Vec<&str> = listeners.iter().map(|l| l.label.as_str()).collect();
    let http = listeners
        .iter()
        .find(|l| l.label.contains("(http)"))
        .expect("an http listener")
        .addr;
    assert!(labels.iter().any(|l| l.contains("dhcp")), "{labels:?}");
    assert!(labels.iter().any(|l| l.contains("pxe boot server")), "{labels:?}");
    assert!(labels.iter().any(|l| l.contains("(https)")), "{labels:?}");
    assert!(labels.iter().any(|l| l.contains("(dhcpv6)")), "{labels:?}");
    assert!(
        labels.iter().any(|l| l.contains("pxe boot server, IPv6")),
        "{labels:?}"
    );

    let mut stream = TcpStream::connect_timeout(&http, WAIT).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET /boot.ipxe HTTP/1.1\r\nHost: pxe\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("#!ipxe"), "{response}");

    let exit = server.terminate(WAIT);
    assert!(exit.success(), "{exit}");
}

#[test]
fn missing_boot_programs_name_the_debian_package() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let config = write_config(dir.path(), &empty);
    let output = Command::new(env!("CARGO_BIN_EXE_pxe-server"))
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a configuration error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert!(
        stderr.contains("tftp.root") && stderr.contains("undionly.kpxe") && stderr.contains("`ipxe` package"),
        "{stderr}"
    );
}

#[test]
fn a_closed_log_pipe_does_not_take_the_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let ipxe = fake_ipxe_dir(dir.path());
    let config = write_config(dir.path(), &ipxe);
    let mut child = Command::new(env!("CARGO_BIN_EXE_pxe-server"))
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read until every service is listening, then close the pipe.
    let stderr = child.stderr.take().unwrap();
    let (ready_tx, ready) = mpsc::channel();
    std::thread::spawn(move || {
        let mut listening = 0;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            listening += usize::from(line.contains("listening on "));
            if listening == LISTENERS {
                break;
            }
        }
        // The reader is dropped here, which closes the pipe.
        let _ = ready_tx.send(());
    });
    ready
        .recv_timeout(WAIT)
        .expect("pxe-server did not log that it is listening");
    // Shutting down logs into the closed pipe; the server must still exit cleanly.
    let exit = terminate(&mut child, "pxe-server", WAIT);
    assert!(exit.success(), "{exit}");
}

/// The decision kind `pxe-server` (started with `extra` arguments) logs for a machine no
/// rule names.
fn decision_for_an_unknown_machine(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let ipxe = fake_ipxe_dir(dir.path());
    let config = write_config(dir.path(), &ipxe);
    let mut command = Command::new(env!("CARGO_BIN_EXE_pxe-server"));
    command.arg("--config").arg(&config).args(extra);
    let server = Service::spawn("pxe-server", &mut command);
    let http = server
        .listening(LISTENERS, WAIT)
        .into_iter()
        .find(|l| l.label == "(http)")
        .expect("an http listener")
        .addr;
    let (status, _) = netboot_testkit::ops::http_get(
        http,
        "/boot.ipxe/decide?mac=52-54-00-0f-0f-0f&buildarch=x86_64&platform=efi",
    );
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let line = server
            .log()
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("a boot decision is logged");
        if let Some(at) = line.find("decision=") {
            return line[at..].split_whitespace().next().unwrap().to_string();
        }
    }
}

#[test]
fn without_rules_no_one_is_answered_unless_answer_all() {
    assert_eq!(decision_for_an_unknown_machine(&[]), "decision=\"ignore\"");
    assert_eq!(
        decision_for_an_unknown_machine(&["--answer-all"]),
        "decision=\"exit\""
    );
}
