//! The operational contract of `pxe-tftp` alone: `--check-config` names each mistake's key
//! and exits 2, and `[metrics] listen` serves counters that move under real clients.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use netboot_testkit::ops::{assert_config_error, assert_config_ok, http_get, sample};
use netboot_testkit::process::Service;
use support::clients::{bounded, curl, tftp_hpa};
use support::{assert_same_file, have_tool, run_client, tempdir, write_test_file};

const BINARY: &str = env!("CARGO_BIN_EXE_pxe-tftp");

#[test]
fn check_config_exits_2_naming_the_key_of_each_mistake() {
    let dir = tempdir();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let good = format!("[tftp]\nroot = \"{}\"\n", root.display());
    assert_config_ok(BINARY, dir.path(), &good, &[]);
    let cases = [
        // An unknown key.
        (format!("{good}max_windowsize = 8\n"), vec![], "max_windowsize"),
        // A log filter that does not parse (it used to become `info` silently).
        (
            format!("{good}[log]\nlevel = \"info,pxe_tftp=loud\"\n"),
            vec![],
            "log.level",
        ),
        // The same in the environment variable that overrides it.
        (good.clone(), vec![("RUST_LOG", "pxe_tftp=loud")], "RUST_LOG"),
        // A served root that is not there.
        (
            "[tftp]\nroot = \"no-such-dir\"\n".to_string(),
            vec![],
            "tftp.root",
        ),
        // An upload directory that is not there.
        (
            format!("{good}allow_upload = true\nupload_dir = \"no-such-uploads\"\n"),
            vec![],
            "tftp.upload_dir",
        ),
        // A value out of range.
        (
            format!("{good}[runtime]\ndrain_secs = 7200\n"),
            vec![],
            "runtime.drain_secs",
        ),
    ];
    for (toml, env, key) in cases {
        assert_config_error(BINARY, dir.path(), &toml, &env, key);
    }
}

/// `pxe-tftp` with `[metrics] listen` on loopback; returns the service and both addresses.
fn start_with_metrics(dir: &std::path::Path) -> (Service, SocketAddr, SocketAddr) {
    let config = dir.join("netboot.toml");
    std::fs::write(
        &config,
        "[tftp]\nroot = \"root\"\nlisten = [\"127.0.0.1:0\"]\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut command = Command::new(BINARY);
    command.arg("--config").arg(&config).env("RUST_LOG", "info");
    let service = Service::spawn("pxe-tftp", &mut command);
    let listeners = service.listening(2, Duration::from_secs(60));
    let find = |label: &str| {
        listeners
            .iter()
            .find(|l| l.label == label)
            .unwrap_or_else(|| panic!("no {label} listener in {listeners:?}"))
            .addr
    };
    (service, find("(tftp)"), find("(metrics)"))
}

#[test]
fn metrics_count_real_clients_transfers() {
    if !have_tool("tftp", "tftp-hpa") || !have_tool("curl", "curl") {
        return;
    }
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("root")).unwrap();
    let file = dir.path().join("root/boot.bin");
    let len = 300_000;
    write_test_file(&file, len, 7);
    let (_service, tftp, metrics) = start_with_metrics(dir.path());

    let (status, health) = http_get(metrics, "/healthz");
    assert_eq!((status, health.as_str()), (200, "ok\n"));
    let (status, before) = http_get(metrics, "/metrics");
    assert_eq!(status, 200);
    let complete = "netboot_tftp_transfers_total{outcome=\"complete\"}";
    assert_eq!(sample(&before, complete), 0.0, "{before}");
    assert!(before.contains("netboot_host_info{host="), "{before}");

    let out = dir.path().join("hpa.bin");
    run_client(tftp_hpa(bounded(None, 60, "tftp"), tftp, "boot.bin", &out));
    assert_same_file(&file, &out);
    let out = dir.path().join("curl.bin");
    run_client(curl(bounded(None, 60, "curl"), tftp, "boot.bin", &out, &[]));
    assert_same_file(&file, &out);
    // A file that is not there is counted too.
    let missing = dir.path().join("missing.bin");
    let _ = bounded(None, 60, "curl")
        .args(["--silent", "--output"])
        .arg(&missing)
        .arg(format!("tftp://{tftp}/missing.bin"))
        .status();

    let (_, after) = http_get(metrics, "/metrics");
    assert_eq!(sample(&after, complete), 2.0, "{after}");
    assert_eq!(
        sample(&after, "netboot_tftp_transfers_total{outcome=\"not_served\"}"),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "netboot_tftp_bytes_sent_total"),
        2.0 * len as f64,
        "{after}"
    );
    assert_eq!(sample(&after, "netboot_tftp_active_transfers"), 0.0, "{after}");
}

#[test]
fn sighup_changes_the_log_level() {
    if !have_tool("curl", "curl") {
        return;
    }
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("root")).unwrap();
    std::fs::write(dir.path().join("root/a.bin"), b"boot program").unwrap();
    let config = dir.path().join("netboot.toml");
    let write = |level: &str| {
        std::fs::write(
            &config,
            format!("[log]\nlevel = \"{level}\"\n[tftp]\nroot = \"root\"\nlisten = [\"127.0.0.1:0\"]\n"),
        )
        .unwrap();
    };
    // Quiet but for the start-up lines the test needs.
    write("warn,netboot_service=info");
    let mut command = Command::new(BINARY);
    command.arg("--config").arg(&config).env_remove("RUST_LOG");
    let service = Service::spawn("pxe-tftp", &mut command);
    let tftp = service.listening(1, Duration::from_secs(60))[0].addr;
    let fetch = || {
        run_client(curl(
            bounded(None, 60, "curl"),
            tftp,
            "a.bin",
            &dir.path().join("out.bin"),
            &[],
        ))
    };
    fetch();
    // A line written at all arrives within moments; none must come.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !service.drain_log().iter().any(|l| l.contains("path=a.bin")),
        "transfers are not logged at warn"
    );
    write("info");
    netboot_testkit::ops::send_signal(service.id(), "HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !service
        .drain_log()
        .iter()
        .any(|l| l.contains("configuration reloaded"))
    {
        assert!(std::time::Instant::now() < deadline, "no reload logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    fetch();
    while !service
        .drain_log()
        .iter()
        .any(|l| l.contains("sent") && l.contains("path=a.bin"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "transfers are logged at info after the reload"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
