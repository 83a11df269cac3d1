//! Required once, end to end: the real `pxe-https` binary over the ConfigMgr SQLite fixture,
//! driven with curl as iPXE would drive it. A Required deployment counts down on the first
//! boot; once the machine has downloaded that entry's boot image to the end it is offered
//! as Available (menu, no countdown), also after a restart, until an administrator clears it
//! (admin API, admin page button, command line). Downloads that are partial, aborted, from
//! another address, of another entry or of another file never count.
//!
//! Run three times: runs kept in the records database on SQLite and on a private PostgreSQL
//! server, and with records off in the 0600 file in `https.state_dir`.

mod common;

#[path = "../../../crates/netboot-records/tests/support/pg.rs"]
#[allow(unreachable_pub, dead_code)]
mod pg;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{spawn, Running};
use netboot_ipxe::fuzzing::assert_safe;
use netboot_testkit::process::have_tool;
use serde_json::Value;

const TOKEN: &str = "required-once-admin-token-0123456789";
/// PC-REQ: one Required deployment (`PS120002`), ResourceID 16777221.
const REQ: (&str, &str) = ("00-15-5d-00-00-02", "4c4c4544-0002-4a10-8000-b1c04f000002");
/// PC-BOTH: `PS120002` Required and `PS120001` Available, both on boot image `PS100004`.
const BOTH: (&str, &str) = ("00-15-5d-00-00-03", "4c4c4544-0003-4a10-8000-b1c04f000003");
/// Machines the site does not know; the x64 unknown computer object's deployment `PS120020`
/// is made Required for this test.
const UNKNOWN: (&str, &str) = ("00-15-5d-00-10-07", "9f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f7");
const OTHER_UNKNOWN: (&str, &str) = ("00-15-5d-00-10-08", "");
/// The boot image, large enough that an aborted download cannot have been streamed whole
/// into the loopback socket buffers before the client gave up.
const WIM_BYTES: u64 = 64 << 20;

/// Where the runs are kept.
enum Records {
    Off,
    Sqlite,
    Postgres(String),
}

fn decide_path((mac, uuid): (&str, &str)) -> String {
    format!("/boot.ipxe/decide?mac={mac}&uuid={uuid}&buildarch=x86_64&platform=efi")
}

/// The boot image URL of each entry of a script, in entry order.
fn wim_urls(script: &str) -> Vec<String> {
    script
        .lines()
        .filter(|l| l.starts_with("initrd --name boot.wim "))
        .map(|l| l.split_whitespace().nth(3).unwrap().to_string())
        .collect()
}

/// `Required`: a countdown that boots by itself, the entry's boot image marked.
fn assert_required(script: &str, title: &str) {
    assert_safe(script);
    assert!(
        script.contains(&format!("item a0 [R] {title}")),
        "not Required:\n{script}"
    );
    assert!(wim_urls(script)[0].contains("?required_run="), "{script}");
}

/// `Available`: a menu, no countdown, nothing preselected, no mark.
fn assert_available(script: &str, title: &str) {
    assert_safe(script);
    assert!(
        script.contains(&format!("[A] {title}")),
        "not Available:\n{script}"
    );
    assert!(!script.contains("[R]"), "{script}");
    assert!(!script.contains("prompt --timeout 5000 Booting"), "{script}");
    assert!(script.contains("--default exit"), "{script}");
    assert!(!script.contains("required_run="), "{script}");
}

struct Site {
    server: Running,
}

impl Site {
    fn decide(&self, machine: (&str, &str)) -> String {
        self.server.get(&decide_path(machine))
    }

    /// Downloads `url` (a path with its query) with curl and extra `args`; `(exit code,
    /// HTTP status, bytes received)`.
    fn download(&self, url: &str, args: &[&str]) -> (i32, String, u64) {
        let mut all = vec!["-o", "/dev/null", "-w", "%{http_code} %{size_download}"];
        all.extend_from_slice(args);
        let full = self.server.https_url(url);
        all.push(&full);
        let output = self.server.curl(&all);
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        let (status, size) = text.split_once(' ').unwrap_or(("", "0"));
        (
            output.status.code().unwrap_or(-1),
            status.to_string(),
            size.trim().parse().unwrap_or(0),
        )
    }

    fn admin(&self, method: &str, path: &str, extra: &[&str]) -> (String, String) {
        let url = self.server.https_url(&format!("/admin{path}"));
        let mut args = vec!["-X", method, "-w", "\n%{http_code}"];
        args.extend_from_slice(extra);
        args.push(&url);
        let output = self.server.curl(&args);
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.to_string(), body.to_string())
    }

    fn api(&self, method: &str, path: &str) -> (String, Value) {
        let bearer = format!("Authorization: Bearer {TOKEN}");
        let (status, body) = self.admin(method, &format!("/api/v1{path}"), &["-H", &bearer]);
        let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
        (status, json)
    }

    /// Waits until the machine's script satisfies `check` (the run is written just after the
    /// last byte left).
    fn wait_for(&self, machine: (&str, &str), what: &str, check: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let script = self.decide(machine);
            if check(&script) {
                return script;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{what}: still\n{script}\nlog:\n{}",
                self.server.drain_log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn config(records: &Records) -> String {
    let records = match records {
        Records::Off => String::new(),
        Records::Sqlite => "[records]\nenabled = true\ndatabase = \"sqlite://records.db\"\n".into(),
        Records::Postgres(url) => format!("[records]\nenabled = true\ndatabase = \"{url}\"\n"),
    };
    format!(
        r#"[https]
listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
root = "images"
ipxe_dir = ""
state_dir = "state"
countdown_secs = 5
menu_timeout_secs = 30

[resolver]
kind = "configmgr"
deadline_ms = 5000

[resolver.configmgr]
backend = "sqlite"
sqlite = "configmgr.sqlite"
boot_image_dir = "images"
boot_image_url = ""
site_code = "PS1"

# Decisions are cached far longer than the test runs: the demotion must not wait for it.
[resolver.cache]
ttl_secs = 3600
negative_ttl_secs = 10

[admin]
enabled = true
token_file = "admin.token"

{records}"#
    )
}

/// The fixture, the large boot image and the configuration in a new directory.
async fn prepare(records: &Records) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixture = netboot_configmgr::fixture::create(dir.path()).await.unwrap();
    // The unknown computers' deployment becomes Required.
    sqlx::query(
        "UPDATE v_Advertisement SET OfferType = 0, AssignedScheduleEnabled = 1 WHERE AdvertisementID = 'PS120020'",
    )
    .execute(fixture.site.pool())
    .await
    .unwrap();
    fixture.site.pool().close().await;
    let wim = std::fs::File::create(fixture.images.join("PS100004/boot.wim")).unwrap();
    wim.set_len(WIM_BYTES).unwrap();
    std::fs::write(dir.path().join("admin.token"), TOKEN).unwrap();
    std::fs::write(dir.path().join("netboot.toml"), config(records)).unwrap();
    dir
}

fn start(dir: tempfile::TempDir) -> Site {
    let config = dir.path().join("netboot.toml");
    Site {
        server: spawn(dir, &config, &[]),
    }
}

fn cli_clear(dir: &Path, mac: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_pxe-https"))
        .arg("--config")
        .arg(dir.join("netboot.toml"))
        .args(["clear-required", mac])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn scenario(records: Records) {
    let kept_in_records = !matches!(records, Records::Off);
    let site = start(prepare(&records).await);

    // First boot: Required, a countdown, the entry's boot image marked.
    let first = site.decide(REQ);
    assert_required(&first, "Windows 11 Enterprise (required)");
    assert!(first.contains("prompt --timeout 5000 Booting"), "{first}");
    let marked = wim_urls(&first)[0].clone();
    assert!(marked.starts_with("/PS100004/boot.wim?required_run="), "{marked}");
    assert_eq!(
        site.decide(REQ),
        first,
        "a second ask of the same boot gets the same mark"
    );

    // What does not count: the headers only, part of the file, an aborted download, the mark
    // replayed from another address or on another file of the entry.
    assert_eq!(site.download(&marked, &["-I"]).1, "200");
    assert_eq!(
        site.download(&marked, &["-r", "0-1048575"]),
        (0, "206".into(), 1 << 20)
    );
    let (code, status, got) = site.download(&marked, &["--limit-rate", "4M", "--max-time", "1"]);
    assert!(
        code == 28 && status == "200" && got < WIM_BYTES,
        "aborted: {code} {status} {got}"
    );
    let (code, _, got) = site.download(&marked, &["--interface", "127.0.0.2"]);
    assert_eq!(
        (code, got),
        (0, WIM_BYTES),
        "a full download from another address"
    );
    let mark = marked.split_once('?').unwrap().1;
    assert_eq!(site.download(&format!("/PS100004/BCD?{mark}"), &[]).1, "200");
    // Cancelling the countdown and picking the Available entry of the same boot image.
    let both = site.decide(BOTH);
    let urls = wim_urls(&both);
    assert!(
        urls[0].contains("required_run=") && !urls[1].contains("required_run="),
        "{both}"
    );
    assert_eq!(site.download(&urls[1], &[]), (0, "200".into(), WIM_BYTES));
    std::thread::sleep(Duration::from_millis(500));
    assert_required(&site.decide(REQ), "Windows 11 Enterprise (required)");
    assert!(site
        .decide(BOTH)
        .contains("item a0 [R] Windows 11 Enterprise (required)"));

    // The whole boot image, streamed: from now on Available, at once, despite the cache.
    assert_eq!(site.download(&marked, &[]), (0, "200".into(), WIM_BYTES));
    let second = site.wait_for(REQ, "Available after the download", |s| !s.contains("[R]"));
    assert_available(&second, "Windows 11 Enterprise (required)");
    assert!(
        site.decide(BOTH)
            .contains("item a0 [R] Windows 11 Enterprise (required)"),
        "other machines untouched"
    );

    // An unknown computer (no device record), resumed in two ranges; another stays Required.
    let unknown = site.decide(UNKNOWN);
    assert_required(&unknown, "Windows 11 Enterprise 24H2");
    let marked_unknown = wim_urls(&unknown)[0].clone();
    let half = WIM_BYTES / 2;
    assert_eq!(
        site.download(&marked_unknown, &["-r", &format!("{half}-")]).1,
        "206"
    );
    assert_eq!(
        site.download(&marked_unknown, &["-r", &format!("0-{}", half + 10)])
            .1,
        "206"
    );
    site.wait_for(UNKNOWN, "unknown computer Available", |s| !s.contains("[R]"));
    assert_required(&site.decide(OTHER_UNKNOWN), "Windows 11 Enterprise 24H2");

    // A restart keeps it.
    let site = Site {
        server: site.server.restart(&[]),
    };
    assert_available(&site.decide(REQ), "Windows 11 Enterprise (required)");
    assert_available(&site.decide(UNKNOWN), "Windows 11 Enterprise 24H2");
    if !kept_in_records {
        use std::os::unix::fs::PermissionsExt;
        let file = site.server.dir.path().join("state/required-runs.sqlite");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }

    // The runs, through the API.
    let (status, runs) = site.api("GET", "/machines/00-15-5d-00-00-02/required-runs");
    assert_eq!(status, "200", "{runs}");
    let run = &runs["runs"][0];
    assert_eq!(run["deployment"], "PS120002", "{runs}");
    assert_eq!(run["resource_id"], 16_777_221, "{runs}");
    assert_eq!(run["boot_image"], "PS100004/boot.wim", "{runs}");
    assert_eq!(run["client_ip"], "127.0.0.1", "{runs}");
    let (_, runs) = site.api("GET", "/machines/00:15:5d:00:10:07/required-runs");
    assert_eq!(runs["runs"][0]["deployment"], "PS120020", "{runs}");
    assert_eq!(
        runs["runs"][0]["resource_id"],
        Value::Null,
        "an unknown computer object is no machine's id"
    );

    // Clearing: refused without credentials, for a bad or unknown MAC, and cross-site.
    let clear = "/api/v1/machines/00-15-5d-00-00-02/clear-required";
    assert_eq!(site.admin("POST", clear, &[]).0, "401");
    assert_eq!(site.api("POST", "/machines/not-a-mac/clear-required").0, "400");
    assert_eq!(
        site.api("POST", "/machines/52-54-00-de-ad-00/clear-required").0,
        "404"
    );
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let evil = ["-H", bearer.as_str(), "-H", "Origin: https://evil.example"];
    assert_eq!(site.admin("POST", clear, &evil).0, "403");
    assert_available(&site.decide(REQ), "Windows 11 Enterprise (required)");

    // Cleared through the API: Required again, a countdown, at once.
    let (status, cleared) = site.api("POST", clear.trim_start_matches("/api/v1"));
    assert_eq!(status, "200", "{cleared}");
    assert_eq!(cleared["cleared"][0]["deployment"], "PS120002", "{cleared}");
    let again = site.decide(REQ);
    assert_required(&again, "Windows 11 Enterprise (required)");
    assert!(again.contains("prompt --timeout 5000 Booting"), "{again}");

    // Cleared from the command line.
    let printed = cli_clear(site.server.dir.path(), UNKNOWN.0);
    assert!(printed.contains("cleared PS120020"), "{printed}");
    assert_required(&site.decide(UNKNOWN), "Windows 11 Enterprise 24H2");
    assert!(cli_clear(site.server.dir.path(), UNKNOWN.0).contains("no Required deployment recorded"));

    if kept_in_records {
        // Ran again, then cleared with the machine page's button.
        assert_eq!(site.download(&wim_urls(&again)[0], &[]).2, WIM_BYTES);
        site.wait_for(REQ, "Available again", |s| !s.contains("[R]"));
        clear_with_the_page_button(&site);
        assert_required(&site.decide(REQ), "Windows 11 Enterprise (required)");
        timeline_shows_the_runs_and_the_clears(&site);
    }
}

/// The machine page lists the run with a button; its form only works with the page's token
/// and from the page's own origin.
fn clear_with_the_page_button(site: &Site) {
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let (status, page) = site.admin("GET", "/machines/00:15:5d:00:00:02", &["-H", &bearer]);
    assert_eq!(status, "200", "{page}");
    assert!(
        page.contains("Required deployments run") && page.contains("PS120002"),
        "{page}"
    );
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no form token in\n{page}"));
    let action = "/machines/00:15:5d:00:00:02/clear-required";
    let form = |csrf: &str| format!("csrf={csrf}");
    let wrong = form(&"0".repeat(64));
    assert_eq!(
        site.admin("POST", action, &["-H", &bearer, "--data", &wrong]).0,
        "403"
    );
    let good = form(token);
    let cross = [
        "-H",
        bearer.as_str(),
        "-H",
        "Sec-Fetch-Site: cross-site",
        "--data",
        good.as_str(),
    ];
    assert_eq!(site.admin("POST", action, &cross).0, "403");
    // HTTP/1.1: over HTTP/2 the 401 comes before the body is read and the stream is then
    // reset (NO_ERROR, as RFC 9113 8.1 allows), which curl reports as a framing error.
    assert_eq!(
        site.admin("POST", action, &["--http1.1", "--data", &good]).0,
        "401"
    );
    assert_available(&site.decide(REQ), "Windows 11 Enterprise (required)");
    let same = [
        "-H",
        bearer.as_str(),
        "-H",
        "Sec-Fetch-Site: same-origin",
        "--data",
        good.as_str(),
    ];
    let (status, _) = site.admin("POST", action, &same);
    assert_eq!(status, "303", "back to the machine page");
    let (_, page) = site.admin("GET", "/machines/00:15:5d:00:00:02", &["-H", &bearer]);
    assert!(page.contains("None recorded"), "{page}");
}

fn timeline_shows_the_runs_and_the_clears(site: &Site) {
    let started = Instant::now();
    loop {
        let (status, timeline) = site.api("GET", "/machines/00:15:5d:00:00:02/timeline?boots=20");
        let text = timeline.to_string();
        let wanted = [
            "\"change\":\"ran\"",
            "\"change\":\"offered_as_available\"",
            "\"change\":\"cleared\"",
            "the admin API",
            "the admin page",
        ];
        if status == "200" && wanted.iter().all(|w| text.contains(w)) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{status} {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let (_, page) = site.admin("GET", "/machines/00:15:5d:00:00:02", &["-H", &bearer]);
    for line in [
        "Required PS120002 booted: PS100004/boot.wim downloaded completely; from now on offered as Available",
        "; now offered as Available",
        "cleared by the admin API; Required again",
    ] {
        assert!(page.contains(line), "{line:?} not on the machine page");
    }
    assert!(
        page.contains("Required PS120002 booted at 20"),
        "the demotion names the time"
    );
}

/// What iPXE built with PeerDist sends with every download.
const PEERDIST_CLIENT: [&str; 6] = [
    "-H",
    "Accept-Encoding: peerdist",
    "-H",
    "X-P2P-PeerDist: Version=1.1",
    "-H",
    "X-P2P-PeerDistEx: MinContentInformation=1.0, MaxContentInformation=2.0",
];

/// PeerDist (on by default) answers a boot image with Content Information once it is hashed,
/// and the client then assembles the file from peers, out of this server's sight. A marked
/// boot image is therefore always sent whole, and its download counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marked_boot_image_is_sent_whole_even_to_peerdist_clients() {
    if !have_tool("curl", "curl") {
        return;
    }
    let site = start(prepare(&Records::Off).await);
    let marked = wim_urls(&site.decide(REQ))[0].clone();
    let headers = |url: &str| {
        let mut args = vec!["-D", "-", "-o", "/dev/null"];
        args.extend_from_slice(&PEERDIST_CLIENT);
        let full = site.server.https_url(url);
        args.push(&full);
        String::from_utf8_lossy(&site.server.curl(&args).stdout).to_ascii_lowercase()
    };
    let started = Instant::now();
    while !headers("/PS100004/boot.wim").contains("content-encoding: peerdist") {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "PeerDist Content Information never became ready"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let answer = headers(&marked);
    assert!(
        answer.starts_with("http/2 200") || answer.starts_with("http/1.1 200"),
        "{answer}"
    );
    assert!(!answer.contains("content-encoding"), "{answer}");
    assert!(
        answer.contains(&format!("content-length: {WIM_BYTES}")),
        "{answer}"
    );
    assert_eq!(
        site.download(&marked, &PEERDIST_CLIENT),
        (0, "200".into(), WIM_BYTES)
    );
    site.wait_for(REQ, "Available after the download", |s| !s.contains("[R]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_once_with_runs_in_the_state_dir_file() {
    if have_tool("curl", "curl") {
        scenario(Records::Off).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_once_with_runs_in_the_sqlite_records_database() {
    if have_tool("curl", "curl") {
        scenario(Records::Sqlite).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_once_with_runs_in_the_postgresql_records_database() {
    if !have_tool("curl", "curl") {
        return;
    }
    let Some(server) = pg::start_or_skip() else {
        return;
    };
    server.create_database("required_once").await;
    scenario(Records::Postgres(server.url("required_once"))).await;
}
