//! The real binary on a real (virtual) Ethernet link that loses packets in the kernel, with
//! real clients running concurrently in another network namespace: every transfer must
//! complete with identical bytes.
//!
//! The server runs in one namespace, the clients in another, joined by a veth pair. nftables
//! rules drop a few percent of the UDP packets arriving on each end of the link, so both DATA
//! and ACK are lost. Half of the clients talk to the server directly; the other half go
//! through the seeded relay running in the server's namespace, which adds duplication and
//! reordering on top of the kernel's loss (this kernel has no `sch_netem` to do that).

mod support;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use netboot_testkit::netns::{self, NamespacePair, CLIENT_DEV, SERVER_DEV};
use support::clients::{atftp, bounded, curl, tftp_hpa, ATFTP_OUTLASTING_TIMEOUT};
use support::nft;
use support::relay::{Impairment, Relay};
use support::{assert_same_file, at, have_tool, run_client, tempdir, write_test_file, Server};

/// nftables table holding the loss rules, in both namespaces.
const TABLE: &str = "tftp_impair";
/// Named counter of the packets the loss rule dropped.
const LOST: &str = "lost";
/// Share of arriving UDP packets dropped on each end of the link.
const LOSS_PERCENT: u32 = 3;
/// Upper bound of one client run; a stuck transfer fails the test instead of hanging it.
const CLIENT_TIMEOUT_SECS: u32 = 45;
/// Size of the files fetched by tftp-hpa and curl: a few MiB, odd so the last block is short.
const FILE_BYTES: usize = 2 * 1024 * 1024 + 4097;
/// atftp runs with the `timeout 2` option (see [`support::clients::atftp`]), so every loss the
/// server repairs costs it up to two seconds: smaller files keep the test bounded.
const ATFTP_LOCKSTEP_BYTES: usize = 128 * 1024 + 4097;
/// Sixteen blocks per round trip make losses rarer per byte, so the windowed atftp gets more.
const ATFTP_WINDOWED_BYTES: usize = 1024 * 1024 + 4097;

/// Loss for packets arriving on `dev`. Dropping on arrival is what a lossy wire looks like to
/// both ends; a drop in the sender's output hook would fail its `sendmsg` with EPERM instead.
/// Two packets pass (matched at the start of the UDP payload): requests (opcode 1), which
/// clients retry only after seconds, and the ACK of block 0 that completes an option
/// handshake, because atftp 0.8 aborts on the OACK the server rightly repeats when that ACK is
/// lost ("unexpected OACK").
fn loss_rules(dev: &str) -> String {
    format!(
        "table inet {TABLE} {{
            counter {LOST} {{ }}
            chain inbound {{
                type filter hook input priority 0; policy accept;
                iifname \"{dev}\" meta l4proto udp @th,64,16 != 1 @th,64,32 != 0x00040000 \
                    numgen random mod 100 < {LOSS_PERCENT} counter name \"{LOST}\" drop
            }}
        }}"
    )
}

/// One client run: the command, the file it fetches and where it writes it.
struct Transfer {
    label: String,
    command: Command,
    expected: PathBuf,
    out: PathBuf,
}

/// Every available client against every target, each fetching a file of its own (so a
/// transfer crossed with another one shows up as different bytes).
fn transfers(pair: &NamespacePair, dir: &Path, root: &Path, targets: &[(&str, SocketAddr)]) -> Vec<Transfer> {
    let client = Some(pair.client.as_str());
    let mut transfers = Vec::new();
    for (target, addr) in targets {
        let mut add = |kind: &str, size: usize, command: &dyn Fn(&str, &Path) -> Command| {
            let n = transfers.len();
            let name = format!("{kind}-{target}.efi");
            let expected = root.join(&name);
            write_test_file(&expected, size + n * 1001, 0x10 + n as u64);
            let out = at(dir, &format!("{name}.out"));
            transfers.push(Transfer {
                label: format!("{kind} {target}"),
                command: command(&name, &out),
                expected,
                out,
            });
        };
        if have_tool("tftp", "tftp-hpa") {
            add("tftp-hpa", FILE_BYTES, &|name, out| {
                tftp_hpa(bounded(client, CLIENT_TIMEOUT_SECS, "tftp"), *addr, name, out)
            });
        }
        if have_tool("atftp", "atftp") {
            add("atftp-lockstep", ATFTP_LOCKSTEP_BYTES, &|name, out| {
                let command = bounded(client, CLIENT_TIMEOUT_SECS, "atftp");
                let options = ["blksize 1468", ATFTP_OUTLASTING_TIMEOUT];
                atftp(command, *addr, name, out, &options)
            });
            add("atftp-window16", ATFTP_WINDOWED_BYTES, &|name, out| {
                let command = bounded(client, CLIENT_TIMEOUT_SECS, "atftp");
                let options = [
                    "blksize 1468",
                    "windowsize 16",
                    "tsize 0",
                    ATFTP_OUTLASTING_TIMEOUT,
                ];
                atftp(command, *addr, name, out, &options)
            });
        }
        if have_tool("curl", "curl") {
            // Without options: curl would ask for `timeout 6`, making every loss cost six seconds.
            add("curl", FILE_BYTES, &|name, out| {
                let command = bounded(client, CLIENT_TIMEOUT_SECS, "curl");
                curl(command, *addr, name, out, &["--tftp-no-options"])
            });
        }
    }
    transfers
}

/// Runs all transfers at once, then fails naming every transfer that did not deliver the
/// right bytes.
fn run_concurrently(transfers: Vec<Transfer>) {
    let failures: Vec<String> = std::thread::scope(|scope| {
        let running: Vec<_> = transfers
            .into_iter()
            .map(|transfer| {
                let label = transfer.label.clone();
                let handle = scope.spawn(move || {
                    let started = Instant::now();
                    run_client(transfer.command);
                    assert_same_file(&transfer.expected, &transfer.out);
                    eprintln!("{}: {:?}", transfer.label, started.elapsed());
                });
                (label, handle)
            })
            .collect();
        running
            .into_iter()
            .filter_map(|(label, handle)| {
                let panic = handle.join().err()?;
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                Some(format!("{label}: {message}"))
            })
            .collect()
    });
    assert!(failures.is_empty(), "failed transfers:\n{}", failures.join("\n"));
}

/// The server started with `extra` arguments in namespaces named after `tag`, on test subnet
/// `10.198.<subnet>.0/24`, serving every client at once over the impaired link.
fn transfers_complete_over_a_lossy_link(tag: &str, subnet: u8, extra: &[&str]) {
    if !nft::can_run() {
        return;
    }
    let pair = NamespacePair::create(&format!("tftp-{tag}"), [10, 198, subnet]);
    nft::load(&pair.server, &loss_rules(SERVER_DEV));
    nft::load(&pair.client, &loss_rules(CLIENT_DEV));

    let dir = tempdir();
    let root = at(dir.path(), "root");
    std::fs::create_dir(&root).unwrap();
    let config = at(dir.path(), "tftp.toml");
    // A short retransmission timeout keeps lock-step transfers quick despite the loss; 100
    // retries (the interval grows to 400 ms, so about 40 s) outlast bursts (a window sent with
    // UDP GSO crosses netfilter as one packet) and the clients' own retransmission timers.
    // atftp asks for `timeout 2`, which the server keeps without backing off: atftp gives up
    // after a few silent seconds of its own.
    std::fs::write(&config, "[tftp]\ntimeout_ms = 50\nretries = 100\n").unwrap();
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend(extra);
    let server = Server::start_with(
        netns::command(&pair.server, env!("CARGO_BIN_EXE_pxe-tftp")),
        &root,
        &SocketAddr::from((pair.server_ip, 0)).to_string(),
        &args,
    );
    let relay = Relay::start(
        Some(&pair.server),
        IpAddr::V4(pair.server_ip),
        server.addr,
        Impairment {
            seed: 0x5eed_0000_0000_0000 | u64::from(subnet),
            // The kernel does the losing.
            loss_percent: 0,
            duplicate_percent: 3,
            delay_percent: 10,
            max_delay_ms: 5,
        },
    );

    let transfers = transfers(
        &pair,
        dir.path(),
        &root,
        &[("direct", server.addr), ("relayed", relay.addr)],
    );
    if transfers.is_empty() {
        return;
    }
    let started = Instant::now();
    let count = transfers.len();
    run_concurrently(transfers);
    eprintln!("{count} concurrent transfers took {:?}", started.elapsed());

    let lost_acks = nft::counter(&pair.server, TABLE, LOST);
    let lost_data = nft::counter(&pair.client, TABLE, LOST);
    let relayed = relay.counts();
    eprintln!(
        "dropped by the kernel: {lost_data} toward the client, {lost_acks} toward the server; \
         relay: {relayed:?}"
    );
    assert!(lost_data > 0, "no packet toward the client was dropped");
    assert!(lost_acks > 0, "no packet toward the server was dropped");
    relayed.assert_duplicated_and_reordered();
}

#[test]
fn per_transfer_ports_over_a_lossy_link() {
    transfers_complete_over_a_lossy_link("pt", 1, &[]);
}

#[test]
fn single_port_over_a_lossy_link() {
    transfers_complete_over_a_lossy_link("sp", 2, &["--single-port"]);
}
