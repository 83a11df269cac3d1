//! Boot-console logins against a real directory: a private OpenLDAP `slapd` (Debian's `slapd`
//! package) on loopback with its own CA, and the real binary driven with curl. Group
//! membership direct and nested, wrong and empty passwords, filter metacharacters in the
//! name, StartTLS, a certificate from another CA, and a directory that is gone.

mod common;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{identity_query, start, Running};
use netboot_testkit::net::unused_loopback_port;
use netboot_testkit::process::{have_tool, skip_or_fail};
use netboot_testkit::slapd;

const MAC: &str = "52:54:00:00:00:1c";
const MAC_HEXHYP: &str = "52-54-00-00-00-1c";
const ALICE: &str = "alice's directory password";
const BOB: &str = "bob's directory password";
const CAROL: &str = "carol's directory password";
const SERVICE: &str = "the service account's password";
const KERNEL: &[u8] = b"a protected kernel";
const BASE: &str = "dc=example,dc=org";
const GROUP: &str = "cn=netboot-admins,ou=groups,dc=example,dc=org";

/// A private slapd, killed on drop.
struct Slapd {
    child: Child,
    dir: tempfile::TempDir,
    ldap_port: u16,
    ldaps_port: u16,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CA and server certificate of a test directory.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn ca() -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test directory CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    (params.self_signed(&key).unwrap(), key)
}

fn pki() -> Pki {
    let (ca, ca_key) = ca();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// The test directory: alice in netboot-admins, carol in helpdesk (a member of
/// netboot-admins), bob in no group, and the service account.
fn directory_ldif() -> String {
    format!(
        "{}dn: cn=netboot-svc,{BASE}\nobjectClass: organizationalRole\n\
         objectClass: simpleSecurityObject\ncn: netboot-svc\nuserPassword: {SERVICE}\n\n{}{}{}{}{}",
        slapd::skeleton(BASE),
        slapd::person(BASE, "alice", ALICE),
        slapd::person(BASE, "bob", BOB),
        slapd::person(BASE, "carol", CAROL),
        slapd::group(BASE, "helpdesk", &[&format!("uid=carol,ou=people,{BASE}")]),
        slapd::group(
            BASE,
            "netboot-admins",
            &[
                &format!("uid=alice,ou=people,{BASE}"),
                &format!("cn=helpdesk,ou=groups,{BASE}")
            ]
        ),
    )
}

impl Slapd {
    /// Starts slapd on two free loopback ports (ldap:// and ldaps://), or reports why it
    /// cannot (skipped outside CI, a failure under CI).
    fn start(pki: &Pki) -> Option<Self> {
        let Some((slapd, slapadd)) = slapd::binaries() else {
            skip_or_fail(
                "slapd is not installed (Debian package slapd, in TEST_PACKAGES of xtask/src/deps.rs)",
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("netboot-slapd-")
            .tempdir()
            .unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("ca.pem"), &pki.ca_pem).unwrap();
        std::fs::write(path("server.pem"), &pki.cert_pem).unwrap();
        std::fs::write(path("server.key"), &pki.key_pem).unwrap();
        let directory = slapd::Directory::prepare(&slapadd, dir.path(), BASE, &directory_ldif()).unwrap();
        let (ldap_port, ldaps_port) = (unused_loopback_port(), unused_loopback_port());
        let child = Command::new(&slapd)
            .args(directory.command_args(&[
                format!("ldap://127.0.0.1:{ldap_port}/"),
                format!("ldaps://127.0.0.1:{ldaps_port}/"),
            ]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            dir,
            ldap_port,
            ldaps_port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while [ldap_port, ldaps_port]
            .iter()
            .any(|&port| TcpStream::connect(("127.0.0.1", port)).is_err())
        {
            assert!(Instant::now() < deadline, "slapd did not listen within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca.pem")).unwrap()
    }
}

/// The `[auth]` tables (the rest of the configuration is [`rules`]).
fn auth(ldap: &str, max_failures_per_user: u32) -> String {
    format!(
        "[auth]\nenabled = true\nbackend = \"ldap\"\nmax_attempts = 3\n\
         max_failures_per_user = {max_failures_per_user}\nmax_failures_per_machine = 1000\n\
         lockout_secs = 600\n\n[auth.ldap]\n{ldap}\n\
         [records]\nenabled = true\ndatabase = \"sqlite://records.db\"\n\n{}",
        rules()
    )
}

fn rules() -> &'static str {
    r#"[[resolver.static.actions]]
id = "tools"
title = "Tools"
auth = true
target = { kind = "linux", kernel = "tools/vmlinuz", initrds = ["tools/initrd"] }

[[resolver.static.machines]]
available = ["tools"]
"#
}

/// Search mode over ldaps:// with the service account and the group.
fn search_mode(slapd: &Slapd, nested: bool) -> String {
    format!(
        "url = \"ldaps://127.0.0.1:{}\"\nca_file = \"directory-ca.pem\"\n\
         bind_dn = \"cn=netboot-svc,{BASE}\"\nbind_password_file = \"svc.password\"\n\
         user_search_base = \"ou=people,{BASE}\"\nrequired_group = \"{GROUP}\"\n\
         nested_groups = {nested}\ntimeout_secs = 5\n",
        slapd.ldaps_port
    )
}

fn server(toml: &str, ca_pem: &str) -> Running {
    let ca_pem = ca_pem.to_owned();
    start(toml, &[], move |dir| {
        std::fs::write(dir.join("directory-ca.pem"), ca_pem).unwrap();
        std::fs::write(dir.join("svc.password"), format!("{SERVICE}\n")).unwrap();
        for (path, body) in [
            ("root/tools/vmlinuz", KERNEL),
            ("root/tools/initrd", b"initrd".as_slice()),
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

/// `curl` over HTTPS: status and body.
fn fetch(server: &Running, args: &[&str], path: &str) -> (String, String) {
    let mut all = vec!["-w", "\n%{http_code}"];
    all.extend_from_slice(args);
    let url = server.https_url(path);
    all.push(&url);
    let output = server.curl(&all);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.to_owned(), body.to_owned())
}

/// The script answering a login form POSTed as iPXE does.
fn login(server: &Running, user: &str, password: &str, attempt: u32) -> String {
    let body = format!(
        "username={}&password={}&attempt={attempt}&{}",
        hexhyp(user),
        hexhyp(password),
        identity_query(MAC)
    );
    let (status, script) = fetch(server, &["--data-binary", &body], "/boot.ipxe/login");
    assert_eq!(status, "200", "{script}");
    script
}

/// Logs in and checks the menu came with a token that opens the protected kernel.
fn assert_boots(server: &Running, user: &str, password: &str) {
    let menu = login(server, user, password, 1);
    let marker = "/tools/vmlinuz?auth=";
    let start = menu
        .find(marker)
        .unwrap_or_else(|| panic!("{user}: no tokened kernel URL in\n{menu}"))
        + marker.len();
    let token = menu[start..].split('&').next().unwrap();
    let (status, body) = fetch(
        server,
        &[],
        &format!("/tools/vmlinuz?auth={token}&mac={MAC_HEXHYP}"),
    );
    assert_eq!((status.as_str(), body.as_bytes()), ("200", KERNEL));
}

/// Logs in and checks the form came back (no token), saying why.
fn assert_refused(server: &Running, user: &str, password: &str) {
    let again = login(server, user, password, 1);
    assert!(again.contains("Wrong user name or password"), "{user}: {again}");
    assert!(!again.contains("auth="), "{user}: {again}");
}

/// The login records (user, outcome, reason) the server wrote to its SQLite records, once
/// there are at least `count`.
fn login_records(server: &Running, count: usize) -> Vec<(String, String, String)> {
    use sqlx::{Connection as _, Row as _};
    let db = server.dir.path().join("records.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut records = Vec::new();
            if let Ok(mut conn) =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display())).await
            {
                let rows = sqlx::query("SELECT detail FROM events WHERE kind = 'login' ORDER BY id")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap_or_default();
                for row in rows {
                    let detail: String = row.get(0);
                    let value: serde_json::Value = serde_json::from_str(&detail).unwrap();
                    let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
                    records.push((text("user"), text("outcome"), text("reason")));
                }
                conn.close().await.ok();
            }
            if records.len() >= count || Instant::now() > deadline {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

fn tools_ready() -> bool {
    have_tool("curl", "curl")
}

#[test]
fn directory_users_log_in_by_group_and_nothing_else_gets_through() {
    if !tools_ready() {
        return;
    }
    let Some(slapd) = Slapd::start(&pki()) else {
        return;
    };
    let server = server(&auth(&search_mode(&slapd, true), 100), &slapd.ca_pem());

    // Before a login: the form, and the protected kernel is refused.
    let form = server.get(&format!("/boot.ipxe/decide?{}", identity_query(MAC)));
    assert!(form.contains("\nlogin || goto cancelled\n"), "{form}");
    let (status, _) = fetch(&server, &[], "/tools/vmlinuz");
    assert_eq!(status, "403");

    assert_boots(&server, "alice", ALICE);
    // Carol is in helpdesk, which is in netboot-admins.
    assert_boots(&server, "carol", CAROL);
    assert_refused(&server, "bob", BOB);
    assert_refused(&server, "alice", "not alice's password");
    // An empty password never reaches the server (it would be an anonymous bind).
    assert_refused(&server, "alice", "");
    // Filter metacharacters are escaped: `al*` would otherwise find alice alone, and her
    // password would log in a name that is not hers.
    assert_refused(&server, "al*", ALICE);
    assert_refused(&server, "*)(uid=*", ALICE);
    assert_refused(&server, "mallory", ALICE);

    let records = login_records(&server, 8);
    let summary: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|(u, o, r)| (u.as_str(), o.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("alice", "accepted", ""),
            ("carol", "accepted", ""),
            ("bob", "refused", "not in group"),
            ("alice", "refused", "wrong password"),
            ("alice", "refused", "empty password"),
            ("al*", "refused", "no such user"),
            ("*)(uid=*", "refused", "no such user"),
            ("mallory", "refused", "no such user"),
        ]
    );
    let log = server.drain_log().join("\n");
    for secret in [ALICE, BOB, CAROL, SERVICE, "not alice's password"] {
        assert!(!log.contains(secret), "a password in the log:\n{log}");
        assert!(!log.contains(&hexhyp(secret)), "a password in the log:\n{log}");
    }
    drop(server);

    // Without nested groups, carol's membership through helpdesk does not count.
    let direct = server_for(&slapd, &search_mode(&slapd, false), 100);
    assert_boots(&direct, "alice", ALICE);
    assert_refused(&direct, "carol", CAROL);
    let records = login_records(&direct, 2);
    assert_eq!(records[1].2, "not in group", "{records:?}");
    drop(direct);

    // StartTLS on ldap://, users by DN template, no service account: the group is read as
    // the user who logged in.
    let starttls = format!(
        "url = \"ldap://127.0.0.1:{}\"\nstarttls = true\nca_file = \"directory-ca.pem\"\n\
         user_dn_template = \"uid={{user}},ou=people,{BASE}\"\nrequired_group = \"{GROUP}\"\n",
        slapd.ldap_port
    );
    let templated = server_for(&slapd, &starttls, 100);
    assert_boots(&templated, "alice", ALICE);
    assert_refused(&templated, "alice", "not alice's password");
    assert_refused(&templated, "bob", BOB);
    // A DN-special name stays one RDN value.
    assert_refused(&templated, "alice,ou=people", ALICE);
    let records = login_records(&templated, 4);
    let reasons: Vec<&str> = records.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "",
            "wrong user name or password",
            "not in group",
            "wrong user name or password"
        ]
    );
}

fn server_for(slapd: &Slapd, ldap: &str, max_failures_per_user: u32) -> Running {
    server(&auth(ldap, max_failures_per_user), &slapd.ca_pem())
}

#[test]
fn an_untrusted_or_unreachable_directory_boots_nothing_and_locks_nobody() {
    if !tools_ready() {
        return;
    }
    let Some(slapd) = Slapd::start(&pki()) else {
        return;
    };
    // A certificate from a CA the configuration does not trust: TLS is checked.
    let other_ca = pki().ca_pem;
    let untrusting = server(&auth(&search_mode(&slapd, true), 1), &other_ca);
    let script = login(&untrusting, "alice", ALICE, 1);
    assert_unreachable(&script);
    let records = login_records(&untrusting, 1);
    assert_eq!(records[0].1, "unavailable", "{records:?}");
    assert!(records[0].2.contains("connecting to ldaps://"), "{records:?}");
    drop(untrusting);

    // One failure would lock alice; a directory that is gone is not her failure.
    let server = server_for(&slapd, &search_mode(&slapd, true), 1);
    assert_boots(&server, "alice", ALICE);
    drop(slapd);
    for attempt in 1..=3 {
        let script = login(&server, "alice", ALICE, attempt);
        assert_unreachable(&script);
    }
    let (status, _) = fetch(&server, &[], "/tools/vmlinuz");
    assert_eq!(status, "403");
    let records = login_records(&server, 4);
    let outcomes: Vec<&str> = records.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(
        outcomes,
        ["accepted", "unavailable", "unavailable", "unavailable"]
    );
    let log = server.drain_log().join("\n");
    assert!(log.contains("the directory cannot be reached"), "{log}");
    assert!(!log.contains(ALICE) && !log.contains(SERVICE), "{log}");
}

fn assert_unreachable(script: &str) {
    assert!(script.contains("The directory cannot be reached"), "{script}");
    assert!(script.trim_end().ends_with("exit 1"), "{script}");
    assert!(!script.contains("auth="), "{script}");
    assert!(!script.contains("login ||"), "{script}");
}
