//! Approval of boot consoles through the real binary with curl: the waiting script with its
//! code over HTTPS only, polls that keep waiting, the code bound to its machine and address,
//! an operator's approval through the admin API giving the menu with a token that opens the
//! protected files, a denial sending the machine on, and both on the machine's timeline.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{identity_query, start, Running};
use netboot_testkit::process::have_tool;

const MAC: &str = "52:54:00:00:00:0c";
const MAC_HEXHYP: &str = "52-54-00-00-00-0c";
const OTHER_MAC: &str = "52:54:00:00:00:0d";
const KERNEL: &[u8] = b"a protected kernel";
const TOKEN: &str = "approval-test-token-0123456789";
const USER: &str = "ops";
const PASSWORD: &str = "correct horse battery";

fn config() -> String {
    format!(
        r#"[auth]
enabled = true
method = "approval"
approval_minutes = 5
approval_poll_secs = 2

[admin]
enabled = true
token = "{TOKEN}"
username = "{USER}"
password = "{PASSWORD}"

[records]
enabled = true
database = "sqlite://records.db"

[[resolver.static.actions]]
id = "tools"
title = "Tools"
auth = true
target = {{ kind = "linux", kernel = "tools/vmlinuz", initrds = ["tools/initrd"] }}

[[resolver.static.actions]]
id = "open"
title = "Open"
target = {{ kind = "linux", kernel = "open/vmlinuz" }}

[[resolver.static.machines]]
available = ["tools", "open"]
"#
    )
}

fn server() -> Running {
    start(&config(), &[], |dir| {
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

/// The script a decision request from `source` gets.
fn decide(server: &Running, mac: &str, source: &str) -> String {
    let (status, script) = fetch(
        server,
        &[],
        &format!("/boot.ipxe/decide?{}", identity_query(mac)),
        source,
    );
    assert_eq!(status, "200", "{script}");
    script
}

/// What the waiting script POSTs: the code and the machine's identity.
fn poll(server: &Running, code: &str, mac: &str, source: &str) -> String {
    let body = format!("code={code}&{}", identity_query(mac));
    let (status, script) = fetch(server, &["--data-binary", &body], "/boot.ipxe/approval", source);
    assert_eq!(status, "200", "{script}");
    script
}

/// The code in a waiting script.
fn code_of(script: &str) -> String {
    let line = script
        .lines()
        .find_map(|l| l.strip_prefix("param --params approval code "))
        .unwrap_or_else(|| panic!("no code in:\n{script}"));
    line.trim().to_owned()
}

/// An admin API call over HTTPS with `auth` (curl's `--user` or a bearer header).
fn admin(server: &Running, method: &str, path: &str, auth: &[&str]) -> (String, String) {
    let mut args = vec!["-X", method];
    args.extend_from_slice(auth);
    fetch(server, &args, path, "127.0.0.1")
}

fn basic() -> [String; 2] {
    ["--user".into(), format!("{USER}:{PASSWORD}")]
}

fn bearer() -> [String; 2] {
    ["-H".into(), format!("Authorization: Bearer {TOKEN}")]
}

fn strs(args: &[String; 2]) -> [&str; 2] {
    [args[0].as_str(), args[1].as_str()]
}

fn token_of(menu: &str) -> String {
    let start =
        menu.find("/tools/vmlinuz?auth=").expect("a tokened kernel URL") + "/tools/vmlinuz?auth=".len();
    menu[start..].split('&').next().unwrap().to_owned()
}

#[test]
fn an_approved_console_gets_the_menu_and_its_files_a_denied_one_moves_on() {
    if !have_tool("curl", "curl") {
        return;
    }
    let server = server();

    // The decision: the waiting script with a code, and the same code when asked again.
    let wait = decide(&server, MAC, "127.0.0.1");
    let code = code_of(&wait);
    assert_eq!(code.len(), 6, "{wait}");
    assert!(
        code.bytes()
            .all(|b| b"23456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b)),
        "{code}"
    );
    assert!(
        wait.contains(&format!(
            "echo Approval code: {code} - ask an operator to approve this machine (MAC {MAC})"
        )),
        "{wait}"
    );
    assert!(wait.contains("\nsleep 2 || goto cancelled\n"), "{wait}");
    assert!(wait.contains("/boot.ipxe/approval##params=approval"), "{wait}");
    assert!(!wait.contains("tools/vmlinuz"), "{wait}");
    assert!(!wait.contains("\nlogin"), "{wait}");
    assert_eq!(code_of(&decide(&server, MAC, "127.0.0.1")), code);
    let (status, _) = fetch(&server, &[], "/tools/vmlinuz", "127.0.0.1");
    assert_eq!(status, "403");

    // Polling before a decision: still waiting.
    let still = poll(&server, &code, MAC, "127.0.0.1");
    assert_eq!(code_of(&still), code);
    assert!(still.contains("sleep 2"), "{still}");

    // The code from another address or for another MAC is refused, and stays valid.
    for (mac, source) in [(MAC, "127.0.0.2"), (OTHER_MAC, "127.0.0.1")] {
        let refused = poll(&server, &code, mac, source);
        assert!(refused.contains("not this machine"), "{refused}");
        assert!(refused.trim_end().ends_with("exit 1"), "{refused}");
        assert!(!refused.contains("auth="), "{refused}");
    }
    let lowercase = poll(&server, &code.to_ascii_lowercase(), MAC, "127.0.0.1");
    assert_eq!(code_of(&lowercase), code);

    // The operator sees it waiting, and approves it.
    let (status, _) = admin(&server, "GET", "/admin/api/v1/approvals", &[]);
    assert_eq!(status, "401");
    let (status, listed) = admin(&server, "GET", "/admin/api/v1/approvals", &strs(&basic()));
    assert_eq!(status, "200", "{listed}");
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let waiting = &listed["approvals"][0];
    assert_eq!(waiting["code"], code.as_str());
    assert_eq!(waiting["mac"], MAC);
    assert_eq!(waiting["ip"], "127.0.0.1");
    assert_eq!(waiting["machine"], "QEMU");
    let approve = format!("/admin/api/v1/approvals/{code}/approve");
    let (status, approved) = admin(&server, "POST", &approve, &strs(&basic()));
    assert_eq!(status, "200", "{approved}");
    assert!(approved.contains("\"operator\":\"ops\""), "{approved}");
    let (status, _) = admin(&server, "POST", &approve, &strs(&basic()));
    assert_eq!(status, "409");

    // The next poll: the menu with the token, which opens the protected files for this
    // machine; the code is then spent.
    let menu = poll(&server, &code, MAC, "127.0.0.1");
    assert!(menu.contains("choose"), "{menu}");
    let token = token_of(&menu);
    let kernel = format!("/tools/vmlinuz?auth={token}&mac={MAC_HEXHYP}");
    let (status, body) = fetch(&server, &[], &kernel, "127.0.0.1");
    assert_eq!((status.as_str(), body.as_bytes()), ("200", KERNEL));
    let (status, _) = fetch(&server, &[], &kernel, "127.0.0.2");
    assert_eq!(status, "403");
    let spent = poll(&server, &code, MAC, "127.0.0.1");
    assert!(spent.contains("Unknown approval code"), "{spent}");
    assert!(spent.trim_end().ends_with("exit 1"), "{spent}");

    // Another machine: denied with the API token, it moves on to its next boot device.
    let other = code_of(&decide(&server, OTHER_MAC, "127.0.0.3"));
    assert_ne!(other, code);
    let (status, denied) = admin(
        &server,
        "POST",
        &format!("/admin/api/v1/approvals/{other}/deny"),
        &strs(&bearer()),
    );
    assert_eq!(status, "200", "{denied}");
    assert!(denied.contains("\"decision\":\"denied\""), "{denied}");
    let exit = poll(&server, &other, OTHER_MAC, "127.0.0.3");
    assert!(exit.contains("An operator denied this machine"), "{exit}");
    assert!(exit.trim_end().ends_with("exit 1"), "{exit}");
    assert!(!exit.contains("auth="), "{exit}");
    let (status, _) = admin(
        &server,
        "POST",
        "/admin/api/v1/approvals/ZZZZZZ/approve",
        &strs(&bearer()),
    );
    assert_eq!(status, "404");

    // Both decisions are on the machines' timelines, with the operator.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, export) = admin(
            &server,
            "GET",
            "/admin/api/v1/export?format=json",
            &strs(&basic()),
        );
        assert_eq!(status, "200", "{export}");
        let approval = format!(r#""code":"{code}","operator":"ops","outcome":"approved""#);
        let denial = format!(r#""code":"{other}","operator":"api-token","outcome":"denied""#);
        if export.contains(&approval) && export.contains(&denial) {
            break;
        }
        assert!(Instant::now() < deadline, "no approval events in:\n{export}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let log = server.drain_log().join("\n");
    assert!(log.contains("boot console decided"), "{log}");
    assert!(!log.contains(&token), "{log}");
}

#[test]
fn over_plain_http_there_is_no_approval_only_the_way_to_the_next_boot_device() {
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
    assert!(!script.contains("approval code"), "{script}");

    // A poll over plain HTTP with a code made over HTTPS gets no menu either.
    let code = code_of(&decide(&server, MAC, "127.0.0.1"));
    let body = format!("code={code}&{}", identity_query(MAC));
    let url = server.http_url("/boot.ipxe/approval");
    let output = Command::new("curl")
        .args(["-sS", "--fail", "--data-binary", &body, &url])
        .output()
        .unwrap();
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(script.contains("only possible over HTTPS"), "{script}");
    assert!(!script.contains("auth="), "{script}");
    // A password login POSTed anyway is not checked: the console is shown its code instead.
    let (status, login) = fetch(
        &server,
        &[
            "--data-binary",
            &format!("username=61&password=62&{}", identity_query(MAC)),
        ],
        "/boot.ipxe/login",
        "127.0.0.1",
    );
    assert_eq!(status, "200");
    assert_eq!(code_of(&login), code);
}
