//! SIGTERM to the real `pxe-tftp` during downloads by real clients: a transfer that can
//! finish within `[runtime] drain_secs` completes with identical bytes while new requests go
//! unanswered; transfers that cannot get an ERROR packet, so tftp-hpa and atftp end within
//! `drain_secs` + 2 s instead of hanging; the server exits 0. A second signal exits at once.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use netboot_testkit::ops::{send_signal, wait_until_in_flight};
use netboot_testkit::process::Service;
use support::clients::{atftp, bounded, curl, tftp_hpa};
use support::{assert_same_file, have_tool, tempdir, write_test_file};

/// Bounded waits: a hung server or client fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(120);
/// The promise: within the drain time plus this, every client has an answer.
const SLACK: Duration = Duration::from_secs(2);

/// `pxe-tftp` serving `dir/root` on loopback with `[runtime] drain_secs`.
fn start(dir: &Path, drain_secs: u64) -> (Service, SocketAddr) {
    let config = dir.join("netboot.toml");
    std::fs::write(
        &config,
        format!(
            "[tftp]\nroot = \"root\"\nlisten = [\"127.0.0.1:0\"]\n[runtime]\ndrain_secs = {drain_secs}\n"
        ),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pxe-tftp"));
    command.arg("--config").arg(&config).env("RUST_LOG", "info");
    let service = Service::spawn("pxe-tftp", &mut command);
    let addr = service.listening(1, WAIT)[0].addr;
    (service, addr)
}

fn spawn(mut command: Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the client")
}

/// The client's output once it ends, and how long after `since` that was.
fn ended(mut client: Child, since: Instant) -> (Output, Duration) {
    let deadline = since + WAIT;
    while client.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the client never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = since.elapsed();
    (client.wait_with_output().unwrap(), took)
}

/// The server's exit, and how long after `since` it came.
fn server_exit(server: &mut Service, since: Instant) -> (std::process::ExitStatus, Duration) {
    let deadline = since + WAIT;
    loop {
        if let Some(status) = server.exit_status() {
            return (status, since.elapsed());
        }
        assert!(Instant::now() < deadline, "pxe-tftp did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn transfers_beyond_the_drain_time_get_an_error_packet_and_the_server_exits_0() {
    if !have_tool("tftp", "tftp-hpa") || !have_tool("atftp", "atftp") {
        return;
    }
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("root")).unwrap();
    // Far more than 512-byte lock-step moves in the drain time.
    write_test_file(&dir.path().join("root/big.bin"), 300 << 20, 11);
    let drain = Duration::from_secs(1);
    let (mut server, addr) = start(dir.path(), drain.as_secs());
    let hpa_out = dir.path().join("hpa.bin");
    let mut hpa = spawn(tftp_hpa(bounded(None, 300, "tftp"), addr, "big.bin", &hpa_out));
    let atftp_out = dir.path().join("atftp.bin");
    let mut atftp_client = spawn(atftp(
        bounded(None, 300, "atftp"),
        addr,
        "big.bin",
        &atftp_out,
        &[],
    ));
    wait_until_in_flight(&hpa_out, 256 << 10, &mut hpa, WAIT);
    wait_until_in_flight(&atftp_out, 256 << 10, &mut atftp_client, WAIT);

    let signalled = Instant::now();
    send_signal(server.id(), "TERM");
    for (client, name) in [(hpa, "tftp-hpa"), (atftp_client, "atftp")] {
        let (output, took) = ended(client, signalled);
        assert!(
            took <= drain + SLACK,
            "{name} ended {took:?} after SIGTERM, beyond drain_secs + {SLACK:?}"
        );
        // tftp-hpa exits 0 even after an ERROR; both print the server's message.
        let said = text(&output);
        assert!(
            said.contains("Server shutting down"),
            "{name} must end with the server's ERROR packet: {} {said}",
            output.status
        );
    }
    let (status, took) = server_exit(&mut server, signalled);
    assert!(status.success(), "pxe-tftp exits 0 after the drain: {status}");
    assert!(took <= drain + SLACK, "pxe-tftp took {took:?} to exit");
}

#[test]
fn a_transfer_within_the_drain_time_completes_while_new_requests_go_unanswered() {
    if !have_tool("atftp", "atftp") || !have_tool("curl", "curl") {
        return;
    }
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("root")).unwrap();
    let file = dir.path().join("root/medium.bin");
    write_test_file(&file, 64 << 20, 12);
    let drain = Duration::from_secs(60);
    let (mut server, addr) = start(dir.path(), drain.as_secs());
    let out = dir.path().join("atftp.bin");
    let mut client = spawn(atftp(
        bounded(None, 120, "atftp"),
        addr,
        "medium.bin",
        &out,
        &["blksize 1468"],
    ));
    wait_until_in_flight(&out, 1 << 20, &mut client, WAIT);

    let signalled = Instant::now();
    send_signal(server.id(), "TERM");
    // Stopping accepts no new transfer: a request now gets no answer at all.
    let refused = dir.path().join("refused.bin");
    let late = curl(
        bounded(None, 30, "curl"),
        addr,
        "medium.bin",
        &refused,
        &["--max-time", "2"],
    )
    .output()
    .unwrap();
    assert!(
        !late.status.success(),
        "a request during the drain must not be served"
    );
    assert!(!refused.exists() || std::fs::metadata(&refused).unwrap().len() == 0);

    let (output, _) = ended(client, signalled);
    assert!(output.status.success(), "atftp: {}", text(&output));
    assert_same_file(&file, &out);
    let (status, took) = server_exit(&mut server, signalled);
    assert!(status.success(), "{status}");
    assert!(
        took < drain,
        "pxe-tftp exits once its transfers are done, not at the end of the drain"
    );
}

#[test]
fn a_second_signal_exits_at_once() {
    if !have_tool("tftp", "tftp-hpa") {
        return;
    }
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("root")).unwrap();
    write_test_file(&dir.path().join("root/big.bin"), 64 << 20, 13);
    let (mut server, addr) = start(dir.path(), 600);
    let out = dir.path().join("hpa.bin");
    let mut client = spawn(tftp_hpa(bounded(None, 300, "tftp"), addr, "big.bin", &out));
    wait_until_in_flight(&out, 64 << 10, &mut client, WAIT);
    send_signal(server.id(), "TERM");
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.is_running(), "draining: the transfer may go on");
    let second = Instant::now();
    send_signal(server.id(), "INT");
    let (status, took) = server_exit(&mut server, second);
    assert!(!status.success(), "a forced exit is not a clean stop: {status}");
    assert!(took <= SLACK, "the second signal took {took:?}");
    let _ = client.kill();
    let _ = client.wait();
}
