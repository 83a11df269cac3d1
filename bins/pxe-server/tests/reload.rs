//! Real signals to the real `pxe-server`: SIGHUP changes a static rule and replaces the TLS
//! certificate while a 300 MiB TFTP download and a 300 MiB HTTPS download are in flight;
//! both complete with identical bytes, the next decision follows the new rule, new TLS
//! handshakes get the new certificate, a broken file is rejected and keys that need a
//! restart are named. SIGTERM then stops it with status 0 and the boot records flushed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use netboot_testkit::ops::{send_signal, wait_until_in_flight};
use netboot_testkit::process::{have_tool, Service};

/// Bounded waits: a hung server or client fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(120);
const BIG: usize = 300 << 20;
const MAC: &str = "52:54:00:5e:10:ad";

/// The configuration before the reload: no rule for `MAC`.
fn config(machine_rule: bool, extra: &str) -> String {
    let mut text = format!(
        r#"
[log]
level = "info"
host_id = "reload-test-host"

[records]
enabled = true
database = "sqlite://records.db"

[proxy]
listen = "127.0.0.1"
dhcp_port = 0
dhcpv6_port = 0
pxe_port = 0

[tftp]
root = "ipxe"
listen = ["127.0.0.1:0"]

[https]
listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
root = "files"
ipxe_dir = "ipxe"
cert = "tls.crt"
key = "tls.key"
countdown_secs = 0

[resolver.static]
unmatched = "exit"

[[resolver.static.actions]]
id = "winpe"
title = "Reloaded WinPE"
target = {{ kind = "chain", url = "winpe.ipxe" }}
{extra}"#
    );
    if machine_rule {
        text.push_str(&format!(
            "\n[[resolver.static.machines]]\nmac = \"{MAC}\"\nrequired = [\"winpe\"]\n"
        ));
    }
    text
}

/// A self-signed certificate for `localhost` with its key, from the openssl CLI.
fn make_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN=localhost/O={name}")])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running openssl");
    assert!(status.success(), "openssl req failed");
    (cert, key)
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    Command::new("cmp")
        .arg("--silent")
        .arg(a)
        .arg(b)
        .status()
        .is_ok_and(|s| s.success())
}

/// Waits for a log line containing `needle`, returning it.
fn wait_for_line(log: &Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(remaining) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("no log line with {needle:?} within {WAIT:?}"),
        }
    }
}

fn wait_success(client: &mut Child, name: &str) {
    let deadline = Instant::now() + WAIT * 3;
    loop {
        if let Some(status) = client.try_wait().unwrap() {
            assert!(status.success(), "{name} failed: {status}");
            return;
        }
        assert!(Instant::now() < deadline, "{name} did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The decision script for `MAC` over plain HTTP.
fn decide(http: SocketAddr) -> String {
    let output = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "20"])
        .arg(format!(
            "http://{http}/boot.ipxe/decide?mac={}&buildarch=x86_64&platform=efi",
            MAC.replace(':', "-")
        ))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Whether a TLS handshake with `https` succeeds when trusting only `ca`.
fn trusted_by(https: SocketAddr, ca: &Path) -> bool {
    Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "20", "-o", "/dev/null", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", https.port())])
        .arg(format!("https://localhost:{}/boot.ipxe", https.port()))
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn sighup_reloads_rules_and_certificate_while_300_mib_downloads_complete() {
    if !have_tool("curl", "curl") || !have_tool("openssl", "openssl") || !have_tool("cmp", "diffutils") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["ipxe", "files", "out"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    for program in ["undionly.kpxe", "snponly.efi"] {
        std::fs::write(root.join("ipxe").join(program), b"boot program").unwrap();
    }
    std::fs::write(root.join("files/winpe.ipxe"), "#!ipxe\necho reloaded\n").unwrap();
    let big = root.join("ipxe/big.bin");
    netboot_testkit::write_test_file(&big, BIG, 31);
    // The same file for HTTPS, without a second 300 MiB on disk.
    std::fs::hard_link(&big, root.join("files/big.bin")).unwrap();
    let (first_cert, first_key) = make_certificate(root, "first");
    let (second_cert, second_key) = make_certificate(root, "second");
    std::fs::copy(&first_cert, root.join("tls.crt")).unwrap();
    std::fs::copy(&first_key, root.join("tls.key")).unwrap();
    let config_path = root.join("netboot.toml");
    std::fs::write(&config_path, config(false, "")).unwrap();

    let mut command = Command::new(env!("CARGO_BIN_EXE_pxe-server"));
    command.arg("--config").arg(&config_path).env_remove("RUST_LOG");
    let mut server = Service::spawn("pxe-server", &mut command);
    let listeners = server.listening(7, WAIT);
    let find = |label: &str| listeners.iter().find(|l| l.label == label).unwrap().addr;
    let (tftp, https, http) = (find("(tftp)"), find("(https)"), find("(http)"));
    assert!(
        !decide(http).contains("winpe.ipxe"),
        "no rule yet: the script exits"
    );
    assert!(trusted_by(https, &first_cert));

    // Both downloads start and are well under way before the reload.
    let tftp_out = root.join("out/tftp.bin");
    let mut tftp_client = Command::new("timeout")
        .args(["600", "curl", "-sS", "--fail", "--tftp-blksize", "1468", "-o"])
        .arg(&tftp_out)
        .arg(format!("tftp://{tftp}/big.bin"))
        .spawn()
        .unwrap();
    let https_out = root.join("out/https.bin");
    let mut https_client = Command::new("timeout")
        .args(["600", "curl", "-sS", "--fail", "--limit-rate", "25M", "--cacert"])
        .arg(&first_cert)
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", https.port())])
        .arg("-o")
        .arg(&https_out)
        .arg(format!("https://localhost:{}/big.bin", https.port()))
        .spawn()
        .unwrap();
    wait_until_in_flight(&tftp_out, 4 << 20, &mut tftp_client, WAIT);
    wait_until_in_flight(&https_out, 4 << 20, &mut https_client, WAIT);
    server.drain_log();

    // A renewed certificate written over the old files, and a rule for the machine.
    std::fs::copy(&second_cert, root.join("tls.crt")).unwrap();
    std::fs::copy(&second_key, root.join("tls.key")).unwrap();
    std::fs::write(&config_path, config(true, "")).unwrap();
    send_signal(server.id(), "HUP");
    let reloaded = wait_for_line(server.log(), "configuration reloaded");
    assert!(reloaded.contains("resolver.static.machines"), "{reloaded}");
    for (client, name) in [(&mut tftp_client, "TFTP"), (&mut https_client, "HTTPS")] {
        assert!(
            client.try_wait().unwrap().is_none(),
            "the {name} download must still be in flight after the reload"
        );
    }
    let script = decide(http);
    assert!(script.contains("winpe.ipxe"), "the new rule decides: {script}");
    assert!(
        trusted_by(https, &second_cert),
        "new handshakes get the renewed certificate"
    );
    assert!(!trusted_by(https, &first_cert), "and no longer the old one");

    wait_success(&mut tftp_client, "the TFTP download");
    wait_success(&mut https_client, "the HTTPS download");
    assert!(same_bytes(&big, &tftp_out), "TFTP bytes differ");
    assert!(same_bytes(&big, &https_out), "HTTPS bytes differ");
    assert!(server.is_running());

    // A file that fails the checks is rejected and the running rules stay.
    std::fs::write(&config_path, format!("{}\n[tftp.typo]\n", config(false, ""))).unwrap();
    send_signal(server.id(), "HUP");
    let rejected = wait_for_line(server.log(), "reload rejected");
    assert!(rejected.contains("netboot.toml"), "{rejected}");
    assert!(decide(http).contains("winpe.ipxe"), "the last good rules stay");

    // A key that needs a restart is named, and what can change still changes.
    let restart = "[runtime]\ndrain_secs = 5\n";
    std::fs::write(
        &config_path,
        config(false, restart).replace("countdown_secs = 0", "countdown_secs = 3"),
    )
    .unwrap();
    send_signal(server.id(), "HUP");
    let applied = wait_for_line(server.log(), "configuration reloaded");
    assert!(applied.contains("runtime.drain_secs"), "{applied}");
    let waiting = wait_for_line(server.log(), "need a restart");
    assert!(waiting.contains("https.countdown_secs"), "{waiting}");
    assert!(!decide(http).contains("winpe.ipxe"), "the rule is gone again");

    let exit = server.terminate(WAIT);
    assert!(exit.success(), "SIGTERM ends with status 0: {exit}");

    // The records of this run were flushed before the exit, carrying the host id.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = runtime.block_on(async {
        let store = netboot_records::Store::open_sqlite(&root.join("records.db"), Duration::from_secs(10))
            .await
            .unwrap();
        store.events_of(MAC.parse().unwrap(), 100).await.unwrap()
    });
    let decisions = events
        .iter()
        .filter(|e| matches!(e.detail, netboot_records::EventDetail::Decision(_)))
        .count();
    assert_eq!(decisions, 4, "{events:#?}");
    assert!(
        events
            .iter()
            .all(|e| e.host.as_deref() == Some("reload-test-host")),
        "{events:#?}"
    );
}
