//! The Windows PE hand-off through the real binary with curl: per-boot URLs for secret files
//! and task sequence variables, bound to one MAC, one client address and HTTPS.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{identity_query, start, Running};
use netboot_testkit::process::have_tool;

const MAC: &str = "52:54:00:00:00:0a";
const MAC_HEXHYP: &str = "52-54-00-00-00-0a";

const CONFIG: &str = r#"[https]
private_dir = "private"

[[resolver.static.actions]]
id = "PS120002"
title = "Windows 11 (ConfigMgr)"
target = { kind = "wimboot", boot_wim = "PS100004/boot.wim", files = [
  { name = "winpeshl.ini", path = "handoff/winpeshl.ini" },
  { name = "variables.dat", path = "PS100004/variables.dat", secret = true },
], variables = { OSDComputerName = "PC-0042", SMSTSPreferredAdvertID = "PS120002" } }

[[resolver.static.actions]]
id = "vars-only"
title = "Variables only"
target = { kind = "wimboot", boot_wim = "PS100004/boot.wim", variables = { OSDComputerName = "PC-0043" } }

[[resolver.static.machines]]
mac = "52:54:00:00:00:0a"
required = ["PS120002"]
available = ["vars-only"]
"#;

const MEDIA_VARIABLES: &[u8] = b"<encrypted media variables, stand-in>";

fn server() -> Running {
    start(CONFIG, &[], |dir| {
        let private = dir.join("private/PS100004");
        std::fs::create_dir_all(&private).unwrap();
        std::fs::write(private.join("variables.dat"), MEDIA_VARIABLES).unwrap();
        std::fs::create_dir_all(dir.join("root/handoff")).unwrap();
        std::fs::write(dir.join("root/handoff/winpeshl.ini"), "[LaunchApps]\n").unwrap();
    })
}

/// The per-boot URL of `name` in a decision script, as iPXE would expand it for `mac`.
fn per_boot_url(script: &str, name: &str, mac: &str) -> String {
    let line = script
        .lines()
        .find(|l| l.starts_with(&format!("initrd --name {name} /boot.ipxe/handoff/")))
        .unwrap_or_else(|| panic!("no per-boot initrd for {name} in\n{script}"));
    let url = line.split_whitespace().nth(3).unwrap();
    url.replace("${netX/mac:hexhyp}", mac)
}

fn status_and_body(output: &std::process::Output) -> (String, Vec<u8>) {
    let stdout = output.stdout.clone();
    let (body, status) = stdout.split_at(stdout.len() - 3);
    (String::from_utf8_lossy(status).into_owned(), body.to_vec())
}

/// `curl` over HTTPS from `source`, printing the body and then the status.
fn fetch(server: &Running, path: &str, source: &str) -> (String, Vec<u8>) {
    let output = server.curl(&[
        "--interface",
        source,
        "-w",
        "%{http_code}",
        &server.https_url(path),
    ]);
    status_and_body(&output)
}

/// `curl` over plain HTTP, printing the body and then the status.
fn fetch_plain(server: &Running, path: &str) -> (String, Vec<u8>) {
    let output = std::process::Command::new("curl")
        .args(["-sS", "--globoff", "-w", "%{http_code}", &server.http_url(path)])
        .output()
        .unwrap();
    status_and_body(&output)
}

#[test]
fn secret_files_and_variables_reach_only_their_machine_over_https() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = server();
    let script = server.get(&format!("/boot.ipxe/decide?{}", identity_query(MAC)));
    assert!(
        !script.contains("PS100004/variables.dat"),
        "the private path stays private:\n{script}"
    );
    let secret = per_boot_url(&script, "variables.dat", MAC_HEXHYP);
    let variables = per_boot_url(&script, "netboot-variables.txt", MAC_HEXHYP);

    // The machine itself gets both.
    let (status, body) = fetch(&server, &secret, "127.0.0.1");
    assert_eq!(status, "200");
    assert_eq!(body, MEDIA_VARIABLES);
    let (status, body) = fetch(&server, &variables, "127.0.0.1");
    assert_eq!(status, "200");
    let decoded = netboot_core::handoff::decode_variables(&body).expect("a variables file");
    assert_eq!(decoded["OSDComputerName"], "PC-0042");
    assert_eq!(decoded["SMSTSPreferredAdvertID"], "PS120002");

    // Replayed from another address, or for another MAC.
    let (status, _) = fetch(&server, &secret, "127.0.0.2");
    assert_eq!(status, "403");
    let other_mac = secret.replace(MAC_HEXHYP, "52-54-00-00-00-0b");
    let (status, _) = fetch(&server, &other_mac, "127.0.0.1");
    assert_eq!(status, "403");
    let (status, _) = fetch(&server, &secret.replace("?mac=", "?nomac="), "127.0.0.1");
    assert_eq!(status, "403");

    // A tampered token, or another file name under a valid token.
    let token_start = "/boot.ipxe/handoff/".len();
    let mut tampered = secret.clone().into_bytes();
    tampered[token_start + 3] = if tampered[token_start + 3] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let (status, _) = fetch(&server, &String::from_utf8(tampered).unwrap(), "127.0.0.1");
    assert_eq!(status, "403");
    let (status, _) = fetch(
        &server,
        &secret.replace("variables.dat", "other.dat"),
        "127.0.0.1",
    );
    assert_eq!(status, "404");

    // The valid URL over plain HTTP: refused.
    let (status, body) = fetch_plain(&server, &secret);
    assert_eq!(status, "403");
    assert!(String::from_utf8_lossy(&body).contains("only served over HTTPS"));

    // The private directory is not reachable through the public file routes.
    let (status, _) = fetch(&server, "/PS100004/variables.dat", "127.0.0.1");
    assert_eq!(status, "404");
    let (status, _) = fetch(&server, "/../private/PS100004/variables.dat", "127.0.0.1");
    assert_ne!(status, "200");

    // No token or secret ever reaches the log.
    let log = server.drain_log().join("\n");
    let token = &secret[token_start..secret[token_start..].find('/').unwrap() + token_start];
    assert!(!log.contains(token), "token in the log:\n{log}");
    assert!(log.contains("hand-off refused"), "{log}");
}

#[test]
fn a_decision_over_plain_http_never_hands_out_secret_files() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = server();
    let (status, script) = fetch_plain(&server, &format!("/boot.ipxe/decide?{}", identity_query(MAC)));
    assert_eq!(status, "200");
    let script = String::from_utf8(script).unwrap();
    // The entry with secret files explains itself; the variables-only entry still works.
    assert!(script.contains("only served over HTTPS"), "{script}");
    assert!(!script.contains("initrd --name variables.dat"), "{script}");
    let variables = per_boot_url(&script, "netboot-variables.txt", MAC_HEXHYP);
    let (status, body) = fetch_plain(&server, &variables);
    assert_eq!(status, "200");
    let decoded = netboot_core::handoff::decode_variables(&body).unwrap();
    assert_eq!(decoded["OSDComputerName"], "PC-0043");
}

#[test]
fn the_token_key_is_private_and_survives_restarts() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = server();
    let key = server.dir.path().join("state/boot-token.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let script = server.get(&format!("/boot.ipxe/decide?{}", identity_query(MAC)));
    let first = std::fs::read(&key).unwrap();
    drop(script);
    assert_eq!(std::fs::read(&key).unwrap(), first);
}
