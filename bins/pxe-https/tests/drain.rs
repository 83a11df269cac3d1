//! SIGTERM to the real `pxe-https` during downloads: new connections are refused at once,
//! a download that can finish within `[runtime] drain_secs` completes with identical bytes,
//! one that cannot is cut at the end of the drain time, and the server exits 0.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{start, Running};
use netboot_testkit::ops::{send_signal, wait_until_in_flight};
use netboot_testkit::process::have_tool;

const WAIT: Duration = Duration::from_secs(120);
const SLACK: Duration = Duration::from_secs(2);

/// A rate-limited HTTPS download of `/big.bin` into `out`.
fn download(server: &Running, out: &Path, rate: &str) -> Child {
    let mut command = Command::new("curl");
    command
        .args([
            "-sS",
            "--fail",
            "--max-time",
            "300",
            "--limit-rate",
            rate,
            "--cacert",
        ])
        .arg(server.cert())
        .args([
            "--resolve",
            &format!("localhost:{}:127.0.0.1", server.https.port()),
        ])
        .arg("-o")
        .arg(out)
        .arg(server.https_url("/big.bin"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_exit(server: &mut Running, since: Instant) -> (std::process::ExitStatus, Duration) {
    loop {
        if let Some(status) = server.exit_status() {
            return (status, since.elapsed());
        }
        assert!(since.elapsed() < WAIT, "pxe-https did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_inflight_download_completes_during_the_drain_and_new_connections_are_refused() {
    if !have_tool("curl", "curl") {
        return;
    }
    let len = 24 << 20;
    let mut server = start("[runtime]\ndrain_secs = 60\n", &[], |dir| {
        netboot_testkit::write_test_file(&dir.join("root/big.bin"), len, 21);
    });
    let out = server.dir.path().join("out.bin");
    let mut client = download(&server, &out, "8M");
    wait_until_in_flight(&out, 1 << 20, &mut client, WAIT);

    let signalled = Instant::now();
    send_signal(server.pid(), "TERM");
    std::thread::sleep(Duration::from_millis(300));
    let late = server.curl(&["--fail", "--max-time", "5", &server.https_url("/healthz")]);
    assert!(
        !late.status.success(),
        "a new connection during the drain must be refused"
    );

    let status = client.wait().unwrap();
    assert!(status.success(), "the in-flight download completes: {status}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(server.dir.path().join("root/big.bin")).unwrap()
    );
    let (exit, took) = wait_exit(&mut server, signalled);
    assert!(exit.success(), "{exit}");
    assert!(
        took < Duration::from_secs(60),
        "exits once the download is done: {took:?}"
    );
}

#[test]
fn a_download_beyond_the_drain_time_is_cut_and_the_server_exits_0() {
    if !have_tool("curl", "curl") {
        return;
    }
    let drain = Duration::from_secs(1);
    let mut server = start("[runtime]\ndrain_secs = 1\n", &[], |dir| {
        netboot_testkit::write_test_file(&dir.join("root/big.bin"), 64 << 20, 22);
    });
    let out = server.dir.path().join("out.bin");
    let mut client = download(&server, &out, "4M");
    wait_until_in_flight(&out, 1 << 20, &mut client, WAIT);

    let signalled = Instant::now();
    send_signal(server.pid(), "TERM");
    let (exit, took) = wait_exit(&mut server, signalled);
    assert!(exit.success(), "{exit}");
    assert!(took <= drain + SLACK, "pxe-https took {took:?} to exit");
    let status = client.wait().unwrap();
    assert!(!status.success(), "the cut download fails instead of hanging");
    assert!(signalled.elapsed() <= drain + SLACK + SLACK);
}
