//! Logins at the boot console through the real binary with curl: the login form over HTTPS
//! only, the menu with a per-boot token after a good password, protected files refused
//! without it, from another machine or address, tampered or expired; failures, the attempt
//! limit and the lockout; and no password in the log.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{identity_query, start, Running};
use netboot_testkit::process::have_tool;

const MAC: &str = "52:54:00:00:00:0c";
const MAC_HEXHYP: &str = "52-54-00-00-00-0c";
const PASSWORD: &str = "correct horse battery staple";
const KERNEL: &[u8] = b"a protected kernel";

const CONFIG: &str = r#"[auth]
enabled = true
users_file = "boot-users"
max_attempts = 3
max_failures_per_user = 3
max_failures_per_machine = 100
lockout_secs = 600

[[resolver.static.actions]]
id = "tools"
title = "Tools"
auth = true
target = { kind = "linux", kernel = "tools/vmlinuz", initrds = ["tools/initrd"] }

[[resolver.static.actions]]
id = "open"
title = "Open"
target = { kind = "linux", kernel = "open/vmlinuz" }

[[resolver.static.machines]]
available = ["tools", "open"]
"#;

fn add_user(dir: &Path, name: &str, password: &str) -> std::process::Output {
    let config = dir.join("users.toml");
    std::fs::write(&config, "[auth]\nusers_file = \"boot-users\"\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pxe-https"))
        .arg("--config")
        .arg(&config)
        .args(["auth-user", "add", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
}

fn server() -> Running {
    start(CONFIG, &[], |dir| {
        let output = add_user(dir, "alice", PASSWORD);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let short = add_user(dir, "carol", "too short");
        assert!(!short.status.success(), "a short password is refused");
        for (path, body) in [
            ("root/tools/vmlinuz", KERNEL),
            ("root/tools/initrd", b"initrd".as_slice()),
            ("root/open/vmlinuz", b"open kernel".as_slice()),
        ] {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
    })
}

fn hexhyp(text: &str) -> String {
    text.bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join("-")
}

/// The body iPXE POSTs from the login form.
fn login_body(user: &str, password: &str, attempt: u32) -> String {
    format!(
        "username={}&password={}&attempt={attempt}&{}",
        hexhyp(user),
        hexhyp(password),
        identity_query(MAC)
    )
}

/// `curl` over HTTPS from `source`: status and body.
fn fetch(server: &Running, args: &[&str], path: &str, source: &str) -> (String, String) {
    let mut all = vec!["--interface", source, "-w", "\n%{http_code}"];
    all.extend_from_slice(args);
    let url = server.https_url(path);
    all.push(&url);
    let output = server.curl(&all);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.to_owned(), body.to_owned())
}

fn login(server: &Running, user: &str, password: &str, attempt: u32) -> String {
    let body = login_body(user, password, attempt);
    let (status, script) = fetch(server, &["--data-binary", &body], "/boot.ipxe/login", "127.0.0.1");
    assert_eq!(status, "200", "{script}");
    script
}

/// The token on the protected kernel's URL in a menu script.
fn token_of(menu: &str) -> String {
    let start =
        menu.find("/tools/vmlinuz?auth=").expect("a tokened kernel URL") + "/tools/vmlinuz?auth=".len();
    menu[start..].split('&').next().unwrap().to_owned()
}

fn kernel_path(token: &str, mac: &str) -> String {
    format!("/tools/vmlinuz?auth={token}&mac={mac}")
}

#[test]
fn a_good_login_unlocks_the_menu_and_its_files_for_that_machine_only() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = server();
    let decide = format!("/boot.ipxe/decide?{}", identity_query(MAC));

    // Before a login: the form, not the menu, and the protected files are refused.
    let form = server.get(&decide);
    assert!(form.contains("\nlogin || goto cancelled\n"), "{form}");
    assert!(form.contains("/boot.ipxe/login##params=login"), "{form}");
    assert!(!form.contains("tools/vmlinuz"), "{form}");
    let (status, _) = fetch(&server, &[], "/tools/vmlinuz", "127.0.0.1");
    assert_eq!(status, "403");
    let (status, _) = fetch(&server, &[], "/tools/initrd", "127.0.0.1");
    assert_eq!(status, "403");
    let (status, body) = fetch(&server, &[], "/open/vmlinuz", "127.0.0.1");
    assert_eq!((status.as_str(), body.as_str()), ("200", "open kernel"));

    // The right password: the menu, every file URL with the token and the booting MAC.
    let menu = login(&server, "alice", PASSWORD, 1);
    assert!(menu.contains("choose"), "{menu}");
    assert!(menu.contains("\nclear password\n"), "{menu}");
    let token = token_of(&menu);
    assert!(
        menu.contains(&format!("/tools/initrd?auth={token}&mac=${{netX/mac:hexhyp}}")),
        "{menu}"
    );
    assert!(
        menu.contains(&format!("/open/vmlinuz?auth={token}&mac=")),
        "{menu}"
    );
    let (status, body) = fetch(&server, &[], &kernel_path(&token, MAC_HEXHYP), "127.0.0.1");
    assert_eq!((status.as_str(), body.as_bytes()), ("200", KERNEL));

    // Replayed from another address or for another MAC, tampered with, or without a MAC.
    let (status, _) = fetch(&server, &[], &kernel_path(&token, MAC_HEXHYP), "127.0.0.2");
    assert_eq!(status, "403");
    let (status, _) = fetch(
        &server,
        &[],
        &kernel_path(&token, "52-54-00-00-00-0d"),
        "127.0.0.1",
    );
    assert_eq!(status, "403");
    let mut tampered = token.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (status, _) = fetch(&server, &[], &kernel_path(&tampered, MAC_HEXHYP), "127.0.0.1");
    assert_eq!(status, "403");
    let (status, _) = fetch(&server, &[], &format!("/tools/vmlinuz?auth={token}"), "127.0.0.1");
    assert_eq!(status, "403");

    // A token the server's key signed, but already expired.
    let key = netboot_runtime::token_key::load_or_create(&server.dir.path().join("state"))
        .unwrap()
        .0;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let scope = netboot_token::Scope::new("auth").unwrap();
    let claims = netboot_token::Claims::new(
        scope,
        MAC.parse().unwrap(),
        "127.0.0.1".parse().unwrap(),
        now - 1,
        "alice",
    )
    .unwrap();
    let expired = key.issue(&claims);
    let (status, _) = fetch(
        &server,
        &[],
        &kernel_path(expired.as_str(), MAC_HEXHYP),
        "127.0.0.1",
    );
    assert_eq!(status, "403");
    // The same key's token of another scope (a hand-off URL's) does not open the file either.
    let handoff = netboot_token::Claims::new(
        netboot_token::Scope::new("handoff").unwrap(),
        MAC.parse().unwrap(),
        "127.0.0.1".parse().unwrap(),
        now + 600,
        "tools",
    )
    .unwrap();
    let handoff = key.issue(&handoff);
    let (status, _) = fetch(
        &server,
        &[],
        &kernel_path(handoff.as_str(), MAC_HEXHYP),
        "127.0.0.1",
    );
    assert_eq!(status, "403");

    // Neither the password nor the token reach the log.
    let log = server.drain_log().join("\n");
    assert!(log.contains("login accepted"), "{log}");
    assert!(!log.contains(PASSWORD), "{log}");
    assert!(!log.contains(&hexhyp(PASSWORD)), "{log}");
    assert!(!log.contains(&token), "{log}");
}

#[test]
fn wrong_passwords_get_the_form_again_then_exit_then_lock_the_user() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = server();
    let wrong = "not the password at all";

    let again = login(&server, "alice", wrong, 1);
    assert!(
        again.contains("Wrong user name or password (2 attempts left)"),
        "{again}"
    );
    assert!(again.contains("param --params login attempt 2"), "{again}");
    assert!(!again.contains("auth="), "no token after a failure:\n{again}");
    // An unknown user is refused the same way.
    let unknown = login(&server, "mallory", wrong, 2);
    assert!(
        unknown.contains("Wrong user name or password (1 attempt left)"),
        "{unknown}"
    );
    // The last attempt at this console: exit to the next boot device.
    let last = login(&server, "alice", wrong, 3);
    assert!(last.contains("too many attempts"), "{last}");
    assert!(last.trim_end().ends_with("exit 1"), "{last}");
    assert!(!last.contains("login ||"), "{last}");

    // A third failure for alice within the window locks her, even with the right password.
    let _ = login(&server, "alice", wrong, 1);
    let locked = login(&server, "alice", PASSWORD, 1);
    assert!(locked.contains("locked for 10 minutes"), "{locked}");
    assert!(!locked.contains("auth="), "{locked}");

    let log = server.drain_log().join("\n");
    assert!(log.contains("login refused"), "{log}");
    assert!(!log.contains(wrong), "{log}");
    assert!(!log.contains(PASSWORD), "{log}");
}

#[test]
fn over_plain_http_there_is_no_login_only_the_way_to_the_next_boot_device() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = server();
    let url = server.http_url(&format!("/boot.ipxe/decide?{}", identity_query(MAC)));
    let output = Command::new("curl")
        .args(["-sS", "--fail", &url])
        .output()
        .unwrap();
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(script.contains("only possible over HTTPS"), "{script}");
    assert!(script.contains("exit 1"), "{script}");
    assert!(!script.contains("login ||"), "{script}");

    // A login POSTed over plain HTTP anyway is not checked, and gives no token.
    let body = login_body("alice", PASSWORD, 1);
    let url = server.http_url("/boot.ipxe/login");
    let output = Command::new("curl")
        .args(["-sS", "--fail", "--data-binary", &body, &url])
        .output()
        .unwrap();
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(script.contains("only possible over HTTPS"), "{script}");
    assert!(!script.contains("auth="), "{script}");
    let log = server.drain_log().join("\n");
    assert!(!log.contains("login accepted"), "{log}");
}
