//! The real binary behind the seeded lossy, duplicating, reordering relay on loopback, with
//! real clients running at once: every transfer must complete with identical bytes.
//!
//! This is the variant that runs without root; `lossy_netns.rs` puts the loss in the kernel
//! on a veth link between network namespaces.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use support::clients::{atftp, bounded, curl, tftp_hpa, ATFTP_OUTLASTING_TIMEOUT};
use support::relay::{Impairment, Relay};
use support::{assert_same_file, at, have_tool, run_client, tempdir, write_test_file, Server};

/// Upper bound of one client run; a stuck transfer fails the test instead of hanging it.
const CLIENT_TIMEOUT_SECS: u32 = 45;

fn real_clients_complete_through_the_relay(extra: &[&str]) {
    let dir = tempdir();
    let root = at(dir.path(), "root");
    std::fs::create_dir(&root).unwrap();
    write_test_file(&root.join("other.efi"), 1_200_007, 13);
    // atftp asks for `timeout 2` (see `support::clients::atftp`) and curl for `timeout 6`
    // (its default), which the server honours, so each loss it repairs costs them seconds:
    // smaller files.
    write_test_file(&root.join("nbp.efi"), 500_001, 11);
    write_test_file(&root.join("small.efi"), 20_001, 12);
    let config = at(dir.path(), "tftp.toml");
    // A short retransmission timeout keeps the test quick; 100 retries (5 s) outlast bursts of
    // loss and the clients' own retransmission timers.
    std::fs::write(&config, "[tftp]\ntimeout_ms = 50\nretries = 100\n").unwrap();
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend(extra);
    let server = Server::start(&root, &args);
    let relay = Relay::start(
        None,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        server.addr,
        Impairment {
            seed: 0x5eed_1234_abcd_0001,
            loss_percent: 3,
            duplicate_percent: 2,
            delay_percent: 10,
            max_delay_ms: 5,
        },
    );
    let out = |name: &str| at(dir.path(), &format!("{name}.out"));
    let mut clients = Vec::new();
    if have_tool("curl", "curl") {
        let command = bounded(None, CLIENT_TIMEOUT_SECS, "curl");
        let extra = ["--tftp-blksize", "1468"];
        let command = curl(command, relay.addr, "small.efi", &out("curl"), &extra);
        clients.push(("curl", command, "small.efi"));
    }
    if have_tool("atftp", "atftp") {
        let command = bounded(None, CLIENT_TIMEOUT_SECS, "atftp");
        let options = ["blksize 1468", "windowsize 8", ATFTP_OUTLASTING_TIMEOUT];
        let command = atftp(command, relay.addr, "nbp.efi", &out("atftp"), &options);
        clients.push(("atftp", command, "nbp.efi"));
    }
    if have_tool("tftp", "tftp-hpa") {
        let command = bounded(None, CLIENT_TIMEOUT_SECS, "tftp");
        let command = tftp_hpa(command, relay.addr, "other.efi", &out("tftp-hpa"));
        clients.push(("tftp-hpa", command, "other.efi"));
    }
    if clients.is_empty() {
        return;
    }
    std::thread::scope(|scope| {
        for (name, client, file) in clients {
            let (root, out) = (&root, out(name));
            scope.spawn(move || {
                let started = std::time::Instant::now();
                run_client(client);
                eprintln!("{name} through the relay: {:?}", started.elapsed());
                assert_same_file(&root.join(file), &out);
            });
        }
    });
    let counts = relay.counts();
    eprintln!("relay: {counts:?}");
    assert!(counts.dropped > 0, "the relay dropped nothing");
    counts.assert_duplicated_and_reordered();
}

#[test]
fn per_transfer_ports_through_a_lossy_reordering_relay() {
    real_clients_complete_through_the_relay(&[]);
}

#[test]
fn single_port_through_a_lossy_reordering_relay() {
    real_clients_complete_through_the_relay(&["--single-port"]);
}
