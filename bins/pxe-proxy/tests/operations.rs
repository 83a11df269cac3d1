//! The operational contract of `pxe-proxy` alone: `--check-config` names each mistake's key
//! and exits 2, and `[metrics] listen` serves counters that move under a real DHCP client
//! (busybox udhcpc presenting itself as BIOS PXE firmware) on a virtual Ethernet link.

mod common;

use common::Proxy;
use netboot_testkit::netns::{self, run_in, NamespacePair, CLIENT_DEV, SERVER_DEV};
use netboot_testkit::ops::{assert_config_error, assert_config_ok, http_get, sample};
use netboot_testkit::process::{have_tool, is_root};

const BINARY: &str = env!("CARGO_BIN_EXE_pxe-proxy");

#[test]
fn check_config_exits_2_naming_the_key_of_each_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let webhook = "[resolver]\nkind = \"webhook\"\n[resolver.webhook]\nurl = \"https://cmdb.example/pxe\"\n";
    let unset = format!("NETBOOT_TEST_UNSET_{}", std::process::id());
    assert_config_ok(BINARY, dir.path(), "[proxy]\ndhcp_port = 1067\n", &[]);
    assert_config_ok(
        BINARY,
        dir.path(),
        &format!("{webhook}bearer_token_env = \"{unset}\"\n"),
        &[(&unset, "token")],
    );
    let cases = [
        // An unknown key.
        ("[proxy]\ndhcp_prot = 1067\n".to_string(), "dhcp_prot"),
        // A log filter that does not parse.
        ("[log]\nlevel = \"pxe_proxy=loud\"\n".to_string(), "log.level"),
        // An environment variable the configuration names but the environment lacks.
        (
            format!("{webhook}bearer_token_env = \"{unset}\"\n"),
            "resolver.webhook.bearer_token_env",
        ),
        // A certificate file that is not there (the webhook's CA bundle).
        (
            format!("{webhook}ca_file = \"missing-ca.pem\"\n"),
            "resolver.webhook.ca_file",
        ),
    ];
    for (toml, key) in cases {
        assert_config_error(BINARY, dir.path(), &toml, &[], key);
    }
}

#[test]
fn metrics_count_a_real_dhcp_clients_requests_and_the_answers() {
    if !is_root() || !have_tool("ip", "iproute2") || !have_tool("busybox", "busybox") {
        return;
    }
    let namespaces = NamespacePair::create("pxm", [10, 199, 78]);
    let _proxy = Proxy::start_with(
        &format!(
            "[proxy]\ninterfaces = [\"{SERVER_DEV}\"]\n[metrics]\nlisten = \"127.0.0.1:9181\"\n\
             [resolver.static]\nunmatched = \"exit\"\n"
        ),
        Some(&namespaces.server),
    );
    let metrics = "127.0.0.1:9181".parse().unwrap();
    let scrape = |namespace: &str| run_in(namespace, move || http_get(metrics, "/metrics"));
    let (status, before) = scrape(&namespaces.server);
    assert_eq!(status, 200);
    let requests = "netboot_dhcp_requests_total{type=\"dhcp\"}";
    let replies = "netboot_dhcp_replies_total{kind=\"dhcp\"}";
    assert_eq!(sample(&before, requests), 0.0, "{before}");

    // BIOS PXE firmware as busybox can pretend to be it: vendor class PXEClient, option 93
    // (architecture) 0. It broadcasts a DISCOVER, takes the proxy's offer (of no address)
    // and REQUESTs it from the proxy, which ACKs; `-n -t 2` bounds it when nothing answers.
    let output = netns::command(&namespaces.client, "timeout")
        .args([
            "30", "busybox", "udhcpc", "-f", "-n", "-q", "-t", "2", "-T", "1", "-A", "1",
        ])
        .args(["-i", CLIENT_DEV, "-s", "/bin/true"])
        .args(["-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000"])
        .output()
        .expect("running busybox udhcpc");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("broadcasting discover"), "{said}");

    let (_, after) = scrape(&namespaces.server);
    assert!(sample(&after, requests) >= 2.0, "{after}");
    assert!(sample(&after, replies) >= 1.0, "{after}");
    assert!(after.contains("netboot_host_info{host="), "{after}");
    let (status, health) = run_in(&namespaces.server, move || http_get(metrics, "/healthz"));
    assert_eq!((status, health.as_str()), (200, "ok\n"));
}
