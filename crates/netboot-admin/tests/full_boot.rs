//! A whole boot through the real binaries, all recording into one SQLite file: a relayed
//! DHCPDISCOVER and a port-4011 request to `pxe-proxy`, a TFTP download with curl from
//! `pxe-tftp`, and the iPXE entry script, decision and a boot file with curl from
//! `pxe-https`, whose admin API must then show that journey as one boot.
//!
//! The binaries are the workspace's own debug builds next to this test; the test runs
//! `cargo build` for them first so it never exercises a stale build.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netboot_core::ClientArch;
use netboot_dhcp::wire::{DhcpMessage, DhcpOption, MessageType};
use netboot_records::Store;
use netboot_testkit::net::unused_loopback_port;
use netboot_testkit::process::{have_tool, skip_or_fail, Service};

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const MAC_TEXT: &str = "52:54:00:12:34:56";
const TOKEN: &str = "full-boot-admin-token-42";
const RELAY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const WAIT: Duration = Duration::from_secs(30);

/// Brings the three service binaries up to date (once per test process), so a stale build
/// is never what gets tested. A nested `cargo build` shares the target directory and waits
/// for its lock like any other build.
fn build_services() -> bool {
    static BUILT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut child = match Command::new(cargo)
            .args(["build", "-p", "pxe-proxy", "-p", "pxe-tftp", "-p", "pxe-https"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                eprintln!("cannot run cargo to build the services: {e}");
                return false;
            }
        };
        let deadline = Instant::now() + Duration::from_secs(1200);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    })
}

fn binary(name: &str) -> Option<PathBuf> {
    assert!(
        build_services(),
        "building pxe-proxy, pxe-tftp and pxe-https failed"
    );
    let deps = std::env::current_exe().ok()?;
    let path = deps.parent()?.parent()?.join(name);
    path.exists().then_some(path)
}

/// Starts one of the service binaries with the shared config, its log copied to the test's
/// stderr.
fn start(name: &str, binary: &Path, config: &Path) -> Service {
    let mut command = Command::new(binary);
    command.arg("--config").arg(config).env("RUST_LOG", "info");
    Service::spawn_echoing(name, &mut command)
}

fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let output = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "20",
            "--write-out",
            "%{http_code}",
            "--output",
            "-",
        ])
        .args(args)
        .output()
        .expect("running curl");
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut body = output.stdout;
    let code = String::from_utf8(body.split_off(body.len() - 3)).unwrap();
    (code, body)
}

fn firmware_request(kind: MessageType, xid: u32) -> DhcpMessage {
    let mut message = DhcpMessage::new_request(xid, MAC);
    message.options = vec![
        DhcpOption::MessageType(kind),
        DhcpOption::ParameterRequestList(vec![1, 3, 43, 60, 66, 67, 97]),
        DhcpOption::ClientArch(vec![ClientArch::X86Bios]),
        DhcpOption::VendorClass(b"PXEClient:Arch:00000:UNDI:002001".to_vec()),
        DhcpOption::ClientNdi {
            kind: 1,
            major: 2,
            minor: 1,
        },
        DhcpOption::ClientMachineId {
            kind: 0,
            id: vec![0x11; 16],
        },
    ];
    message
}

fn exchange(socket: &UdpSocket, request: &DhcpMessage, to: SocketAddr) -> DhcpMessage {
    socket.send_to(&request.to_bytes(), to).unwrap();
    let mut buf = [0u8; 2048];
    let (len, _) = socket.recv_from(&mut buf).expect("pxe-proxy answers");
    DhcpMessage::parse(&buf[..len]).unwrap()
}

/// Waits (bounded) until the shared database holds `count` events of the machine.
async fn wait_for_events(store: &Store, count: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = store
            .events_of(MAC_TEXT.parse().unwrap(), 100)
            .await
            .unwrap()
            .len();
        if found >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {found} of {count} events were recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_boot_through_the_real_binaries_records_one_timeline() {
    let (Some(proxy_bin), Some(tftp_bin), Some(https_bin)) =
        (binary("pxe-proxy"), binary("pxe-tftp"), binary("pxe-https"))
    else {
        skip_or_fail("pxe-proxy, pxe-tftp and pxe-https are not built (cargo build -p pxe-proxy -p pxe-tftp -p pxe-https)");
        return;
    };
    if !have_tool("curl", "curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tftp")).unwrap();
    std::fs::write(dir.path().join("tftp/undionly.kpxe"), vec![0x55; 70_000]).unwrap();
    std::fs::create_dir_all(dir.path().join("files")).unwrap();
    std::fs::write(dir.path().join("files/wimboot"), vec![0xaa; 50_000]).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let config = format!(
        r#"
[records]
enabled = true
database = "sqlite://records.db"

[admin]
enabled = true
token = "{TOKEN}"

[resolver]
kind = "static"

[[resolver.static.actions]]
id = "winpe"
title = "Windows PE x64"
target = {{ kind = "wimboot", boot_wim = "winpe/x64/boot.wim", bcd = "winpe/x64/BCD", boot_sdi = "winpe/boot.sdi" }}

[[resolver.static.machines]]
mac = "{MAC_TEXT}"
required = ["winpe"]

[proxy]
listen = "127.0.0.1"
dhcp_port = 0
pxe_port = 0
dhcpv6 = false
client_port = {client_port}

[tftp]
listen = ["127.0.0.1:0"]
root = "tftp"

[https]
listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
root = "files"
ipxe_dir = ""
state_dir = "state"
"#,
        client_port = client.local_addr().unwrap().port()
    );
    let config_path = dir.path().join("netboot.toml");
    std::fs::write(&config_path, config).unwrap();

    let proxy = start("pxe-proxy", &proxy_bin, &config_path);
    let proxy_ports = proxy.listening(2, WAIT);
    let dhcp = proxy_ports
        .iter()
        .find(|l| l.label.contains("(dhcp"))
        .unwrap()
        .addr;
    let pxe = proxy_ports
        .iter()
        .find(|l| !l.label.contains("(dhcp"))
        .unwrap()
        .addr;
    let tftp = start("pxe-tftp", &tftp_bin, &config_path);
    let tftp_addr = tftp.listening(1, WAIT)[0].addr;
    let https = start("pxe-https", &https_bin, &config_path);
    let https_ports = https.listening(2, WAIT);
    let https_addr = https_ports
        .iter()
        .find(|l| l.label.contains("(https)"))
        .unwrap()
        .addr;
    let http_addr = https_ports
        .iter()
        .find(|l| l.label.contains("(http)"))
        .unwrap()
        .addr;
    let store = Store::open_sqlite(&dir.path().join("records.db"), Duration::from_secs(5))
        .await
        .unwrap();

    // DHCP: the firmware's DISCOVER through a relay agent, then its boot-server request to
    // 4011 from its own address.
    let relay = UdpSocket::bind(SocketAddr::from((RELAY, dhcp.port()))).unwrap();
    relay.set_read_timeout(Some(WAIT)).unwrap();
    let mut discover = firmware_request(MessageType::Discover, 0x0b00_7001);
    discover.giaddr = RELAY;
    discover.hops = 1;
    let offer = exchange(&relay, &discover, dhcp);
    assert!(!offer.to_bytes().is_empty());
    let mut request = firmware_request(MessageType::Request, 0x0b00_7002);
    request.ciaddr = Ipv4Addr::LOCALHOST;
    let ack = exchange(&client, &request, pxe);
    assert_eq!(ack.chaddr[..6], MAC);
    wait_for_events(&store, 2).await;

    // TFTP: the boot program, fetched by address only.
    let (_, program) = curl(&[
        "--tftp-blksize",
        "1468",
        &format!("tftp://{tftp_addr}/undionly.kpxe"),
    ]);
    assert_eq!(program.len(), 70_000);
    wait_for_events(&store, 3).await;

    // HTTPS: iPXE's entry script and decision, then a boot file over plain HTTP.
    let (code, entry) = curl(&["--insecure", &format!("https://{https_addr}/boot.ipxe")]);
    assert_eq!(code, "200");
    assert!(String::from_utf8_lossy(&entry).starts_with("#!ipxe"));
    let decide = format!(
        "https://{https_addr}/boot.ipxe/decide?mac={MAC_TEXT}&platform=pcbios&buildarch=i386&manufacturer=QEMU&product=Standard%20PC&serial=SN-77"
    );
    let (code, script) = curl(&["--insecure", &decide]);
    assert_eq!(code, "200");
    assert!(
        String::from_utf8_lossy(&script).contains("wimboot"),
        "{}",
        String::from_utf8_lossy(&script)
    );
    let (code, wimboot) = curl(&[&format!("http://{http_addr}/wimboot")]);
    assert_eq!((code.as_str(), wimboot.len()), ("200", 50_000));
    wait_for_events(&store, 6).await;

    // The admin API (on pxe-https, over TLS) shows it as one boot, in order.
    let timeline_url = format!("https://{https_addr}/admin/api/v1/machines/{MAC_TEXT}/timeline");
    let (code, _) = curl(&["--insecure", &timeline_url]);
    assert_eq!(code, "401", "the admin API needs the token");
    let (code, body) = curl(&[
        "--insecure",
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
        &timeline_url,
    ]);
    assert_eq!(code, "200");
    let timeline: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let boots = timeline["boots"].as_array().unwrap();
    assert_eq!(boots.len(), 1, "{timeline:#}");
    let events = boots[0]["events"].as_array().unwrap();
    let steps: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["stage"].as_str().unwrap().to_string(),
                e["detail"]["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("dhcp", "proxy_offer"),
        ("dhcp", "proxy_offer"),
        ("tftp", "tftp_transfer"),
        ("https", "https_entry"),
        ("https", "decision"),
        ("image", "image_download"),
    ];
    assert_eq!(
        steps,
        expected.map(|(s, k)| (s.to_string(), k.to_string())),
        "{timeline:#}"
    );
    assert_eq!(events[0]["detail"]["server_port"], 67);
    assert_eq!(events[0]["detail"]["relay"], "127.0.0.2");
    assert_eq!(events[0]["detail"]["boot_file"], "undionly.kpxe");
    assert_eq!(events[1]["detail"]["server_port"], 4011);
    assert_eq!(events[2]["detail"]["file"], "undionly.kpxe");
    assert_eq!(events[2]["detail"]["bytes"], 70_000);
    assert_eq!(events[2]["detail"]["blksize"], 1468);
    assert_eq!(events[3]["detail"]["tls"], true);
    assert_eq!(events[3]["detail"]["hardware"]["serial"], "SN-77");
    assert_eq!(events[4]["detail"]["decision"], "boot");
    assert_eq!(events[4]["detail"]["choice"], "Windows PE x64");
    assert_eq!(events[5]["detail"]["path"], "wimboot");
    assert_eq!(boots[0]["outcome"], "image_loaded");
    assert_eq!(boots[0]["reached"], "image");

    let machine = store.machine(MAC_TEXT.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(machine.boot_count, 1);
    assert_eq!(machine.nic.as_deref(), Some("UNDI 2.1"));
    assert_eq!(machine.serial.as_deref(), Some("SN-77"));
    assert_eq!(machine.tls, Some(true));

    // Metrics of the HTTPS process count what it served.
    let (code, metrics) = curl(&[
        "--insecure",
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
        &format!("https://{https_addr}/admin/metrics"),
    ]);
    assert_eq!(code, "200");
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("netboot_https_decisions_total{kind=\"boot\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("netboot_records_dropped_total{reason=\"queue_full\"} 0"),
        "{metrics}"
    );
    // Never on the plain-HTTP listener: credentials would cross the network in clear text.
    let (code, _) = curl(&[
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
        &format!("http://{http_addr}/admin/metrics"),
    ]);
    assert_eq!(code, "404");
    drop((proxy, tftp, https));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_never_stops_a_boot_and_losses_are_counted() {
    let Some(https_bin) = binary("pxe-https") else {
        skip_or_fail("pxe-https is not built (cargo build -p pxe-https)");
        return;
    };
    if !have_tool("curl", "curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("files")).unwrap();
    // A loopback port nobody listens on: every connection attempt is refused.
    let closed = unused_loopback_port();
    let config = format!(
        r#"
[records]
enabled = true
database = "postgres://netboot@127.0.0.1:{closed}/records"
connect_timeout_secs = 1

[admin]
enabled = true
token = "{TOKEN}"
listen = "127.0.0.1:0"

[[resolver.static.actions]]
id = "winpe"
title = "Windows PE x64"
target = {{ kind = "wimboot", boot_wim = "winpe/x64/boot.wim", bcd = "winpe/x64/BCD", boot_sdi = "winpe/boot.sdi" }}

[[resolver.static.machines]]
mac = "{MAC_TEXT}"
required = ["winpe"]

[https]
listen = "127.0.0.1:0"
http_listen = "off"
root = "files"
ipxe_dir = ""
state_dir = "state"
"#
    );
    let config_path = dir.path().join("netboot.toml");
    std::fs::write(&config_path, config).unwrap();
    let https = start("pxe-https", &https_bin, &config_path);
    let listening = https.listening(2, WAIT);
    let addr = listening
        .iter()
        .find(|l| l.label.contains("(https)"))
        .unwrap()
        .addr;
    let admin = listening
        .iter()
        .find(|l| l.label.contains("(admin)"))
        .expect("the [admin] listen listener")
        .addr;

    // Clients boot as if records were off.
    for _ in 0..3 {
        let decide = format!("https://{addr}/boot.ipxe/decide?mac={MAC_TEXT}&platform=efi&buildarch=x86_64");
        let (code, script) = curl(&["--insecure", &decide]);
        assert_eq!(code, "200");
        assert!(String::from_utf8_lossy(&script).contains("wimboot"));
    }

    // Each decision is three events (iPXE entry, decision, and its Required entry offered as
    // Available because the run records, in the same database, are unreachable too): nine
    // lost, and said so.
    let auth = format!("Authorization: Bearer {TOKEN}");
    let metrics_url = format!("https://{addr}/admin/metrics");
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, metrics) = curl(&["--insecure", "-H", &auth, &metrics_url]);
        let metrics = String::from_utf8(metrics).unwrap();
        if metrics.contains("netboot_records_dropped_total{reason=\"store_error\"} 9\n") {
            assert!(metrics.contains("netboot_records_written_total 0\n"), "{metrics}");
            assert!(metrics.contains("netboot_records_store_up 0\n"), "{metrics}");
            break;
        }
        assert!(Instant::now() < deadline, "losses not counted: {metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, status) = curl(&[
        "--insecure",
        "-H",
        &auth,
        &format!("https://{addr}/admin/api/v1/status"),
    ]);
    assert_eq!(code, "200");
    let status: serde_json::Value = serde_json::from_slice(&status).unwrap();
    assert_eq!(status["records"]["queue"]["dropped_store_error"], 9, "{status:#}");
    assert!(
        status["records"]["problem"]
            .as_str()
            .unwrap()
            .contains("connecting"),
        "{status:#}"
    );
    let (code, _) = curl(&[
        "--insecure",
        "-H",
        &auth,
        &format!("https://{addr}/admin/api/v1/machines"),
    ]);
    assert_eq!(code, "503", "the API says the records are unavailable");
    // The same interface on the separate plain-HTTP admin listener, also behind the token.
    let (code, _) = curl(&[&format!("http://{admin}/admin/api/v1/status")]);
    assert_eq!(code, "401");
    let (code, _) = curl(&["-H", &auth, &format!("http://{admin}/admin/api/v1/status")]);
    assert_eq!(code, "200");
}
