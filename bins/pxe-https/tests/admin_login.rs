//! The admin interface of the real binary: failed logins are logged and locked out per
//! client address, and its own plain-HTTP listener closes silent and slow connections.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use netboot_testkit::process::Listening;

const USER: &str = "ops";
const PASSWORD: &str = "correct horse battery";
const WRONG: &str = "wrong-guess-0123";

fn admin_config() -> String {
    format!(
        "[https]\nheader_timeout_secs = 1\nidle_timeout_secs = 2\n\n\
         [admin]\nenabled = true\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\nlisten = \"127.0.0.1:0\"\n"
    )
}

/// The status and `Retry-After` of `GET /admin/metrics` over HTTPS with basic auth, sent from
/// `source` (a 127/8 address).
fn login(server: &common::Running, user_password: &str, source: &str) -> (u16, Option<String>) {
    let (status, headers, _) = server.request(
        &["--interface", source, "--user", user_password],
        "/admin/metrics",
        false,
    );
    let retry_after = headers
        .lines()
        .find_map(|line| line.strip_prefix("retry-after:"))
        .map(|value| value.trim().to_owned());
    (status, retry_after)
}

#[test]
fn failed_logins_are_logged_and_locked_out_per_client_address() {
    let server = common::start(&admin_config(), &[], |_| {});
    let wrong = format!("intruder:{WRONG}");
    for attempt in 1..=netboot_admin::FREE_FAILURES {
        assert_eq!(login(&server, &wrong, "127.0.0.1").0, 401, "attempt {attempt}");
    }
    // Locked out now: even the right password is not tried.
    let (status, retry_after) = login(&server, &wrong, "127.0.0.1");
    assert_eq!(status, 429);
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After: {retry_after}");
    let right = format!("{USER}:{PASSWORD}");
    assert_eq!(login(&server, &right, "127.0.0.1").0, 429);
    // Another address is not affected.
    assert_eq!(login(&server, &right, "127.0.0.2").0, 200);

    let log = server.drain_log().join("\n");
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("admin: login failed"))
        .collect();
    assert_eq!(
        failures.len(),
        netboot_admin::FREE_FAILURES as usize,
        "one warning per failure:\n{log}"
    );
    for line in &failures {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("127.0.0.1"), "the client address: {line}");
        assert!(line.contains("intruder"), "the user name: {line}");
    }
    assert!(log.contains("too many failed logins"), "{log}");
    assert!(!log.contains(WRONG), "a tried password is in the log:\n{log}");
    assert!(!log.contains(PASSWORD), "the password is in the log:\n{log}");
}

#[test]
fn the_admin_listener_closes_silent_and_slow_connections() {
    let server = common::start(&admin_config(), &[], |_| {});
    let admin = server
        .drain_log()
        .iter()
        .filter_map(|line| Listening::parse(line))
        .find(|l| l.label.contains("admin"))
        .expect("the admin listener")
        .addr;
    let closed_within = |stream: &mut TcpStream| {
        stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let started = Instant::now();
        let mut buffer = [0; 1024];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => return started.elapsed(),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("still open after {:?}", started.elapsed())
                }
                Err(_) => return started.elapsed(),
            }
        }
    };
    // Nothing sent.
    let mut silent = TcpStream::connect(admin).unwrap();
    closed_within(&mut silent);
    // Headers started but never finished.
    let mut slow = TcpStream::connect(admin).unwrap();
    slow.write_all(b"GET /admin/ HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    closed_within(&mut slow);
    // It still answers (with the challenge).
    let (status, _) = netboot_testkit::ops::http_get(admin, "/admin/");
    assert_eq!(status, 401);
}
