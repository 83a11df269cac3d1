//! Blocks larger than the link's MTU, over a real 1500-byte veth link between two network
//! namespaces: windows of them cannot go out as one UDP GSO send (the kernel refuses segments
//! above the MTU), so they must leave as single, IP-fragmented datagrams, and uploads of them
//! must reach the transfer whole in single-port mode. Loopback's 64 KiB MTU hides both.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use netboot_testkit::netns::{self, NamespacePair};
use support::clients::{atftp, atftp_put, bounded};
use support::{
    assert_same_file, at, have_tool, is_root, run_client, tempdir, upload_setup, write_test_file, Server,
};

/// Upper bound of one client run.
const CLIENT_TIMEOUT_SECS: u32 = 60;

fn can_run() -> bool {
    is_root() && have_tool("ip", "iproute2") && have_tool("atftp", "atftp")
}

/// `pxe-tftp` in the server namespace of `pair`, uploads enabled into `<dir>/uploads`.
fn start_server(pair: &NamespacePair, dir: &Path, extra: &[&str]) -> (Server, PathBuf) {
    let (root, uploads, config) = upload_setup(dir, "");
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend(extra);
    let server = Server::start_with(
        netns::command(&pair.server, env!("CARGO_BIN_EXE_pxe-tftp")),
        &root,
        &SocketAddr::from((pair.server_ip, 0)).to_string(),
        &args,
    );
    (server, uploads)
}

fn windows_of_oversized_blocks_cross_a_1500_byte_link(tag: &str, subnet: u8, extra: &[&str]) {
    if !can_run() {
        return;
    }
    let pair = NamespacePair::create(&format!("tftp-{tag}"), [10, 198, subnet]);
    let dir = tempdir();
    let (server, uploads) = start_server(&pair, dir.path(), extra);
    let root = at(dir.path(), "root");
    // Window and block size keep a window within the client's default socket buffer, so the
    // test exercises fragmentation, not receive-buffer overruns.
    let cases: [(&str, &[&str]); 3] = [
        ("bs8192-w16", &["blksize 8192", "windowsize 16"]),
        ("bs4000-w8", &["blksize 4000", "windowsize 8"]),
        ("bs65464-w2", &["blksize 65464", "windowsize 2"]),
    ];
    for (index, (name, options)) in cases.into_iter().enumerate() {
        let file = format!("{name}.bin");
        let expected = root.join(&file);
        write_test_file(&expected, 3 * 1024 * 1024 + 17 * index, 0xf7a9 + index as u64);
        let out = at(dir.path(), &format!("{name}.out"));
        let command = bounded(Some(&pair.client), CLIENT_TIMEOUT_SECS, "atftp");
        run_client(atftp(command, server.addr, &file, &out, options));
        assert_same_file(&expected, &out);

        let command = bounded(Some(&pair.client), CLIENT_TIMEOUT_SECS, "atftp");
        let remote = format!("up-{file}");
        run_client(atftp_put(command, server.addr, &expected, &remote, options));
        assert_same_file(&expected, &uploads.join(remote));
    }
}

#[test]
fn oversized_blocks_in_windows_with_a_port_per_transfer() {
    windows_of_oversized_blocks_cross_a_1500_byte_link("frag-pt", 11, &[]);
}

#[test]
fn oversized_blocks_in_windows_in_single_port_mode() {
    windows_of_oversized_blocks_cross_a_1500_byte_link("frag-sp", 12, &["--single-port"]);
}
