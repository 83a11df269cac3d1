//! A server listening on the wildcard address answers from the address each request was sent
//! to: clients (firmware above all) drop DATA from any other address. 127.0.0.1 and 127.0.0.2
//! are both local loopback addresses, so one host can play a multi-homed server.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use support::{assert_same_file, at, have_tool, run_client, tempdir, write_test_file, Server};

const FILE_LEN: usize = 3000;

fn start(root: &std::path::Path, extra: &[&str]) -> Server {
    let server = Server::start_with(
        Command::new(env!("CARGO_BIN_EXE_pxe-tftp")),
        root,
        "0.0.0.0:0",
        extra,
    );
    assert!(server.addr.ip().is_unspecified(), "listening on {}", server.addr);
    server
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Reads `name` block by block with a raw socket, sending the RRQ to `to`; returns the file and
/// the address every DATA packet came from (asserted to be one address).
fn fetch_raw(to: SocketAddr, name: &str) -> (Vec<u8>, SocketAddr) {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = vec![0, 1];
    request.extend_from_slice(name.as_bytes());
    request.extend_from_slice(b"\0octet\0");
    client.send_to(&request, to).unwrap();
    let mut file = Vec::new();
    let mut replies_from = None;
    let mut buf = [0u8; 600];
    // 512-byte blocks: the file's blocks and a final short one, with a bound on the loop.
    for expected_block in 1..=(FILE_LEN / 512 + 1) as u16 {
        let (len, from) = client.recv_from(&mut buf).expect("DATA from the server");
        assert_eq!(&buf[..2], &[0, 3], "expected DATA, got {:?}", &buf[..len]);
        assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), expected_block);
        assert_eq!(*replies_from.get_or_insert(from), from, "DATA from two addresses");
        file.extend_from_slice(&buf[4..len]);
        let mut ack = vec![0, 4];
        ack.extend_from_slice(&expected_block.to_be_bytes());
        client.send_to(&ack, from).unwrap();
        if len < 4 + 512 {
            break;
        }
    }
    (file, replies_from.expect("at least one DATA packet"))
}

/// Sends a request the server refuses and returns where the ERROR came from.
fn refusal_source(to: SocketAddr) -> SocketAddr {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Mode "mail" is obsolete and refused.
    client.send_to(b"\0\x01file.bin\0mail\0", to).unwrap();
    let mut buf = [0u8; 600];
    let (_, from) = client.recv_from(&mut buf).expect("ERROR from the server");
    assert_eq!(&buf[..2], &[0, 5], "expected ERROR");
    from
}

fn serve_test_file() -> (tempfile::TempDir, Vec<u8>) {
    let root = tempdir();
    write_test_file(&at(root.path(), "file.bin"), FILE_LEN, 42);
    let content = std::fs::read(at(root.path(), "file.bin")).unwrap();
    (root, content)
}

#[test]
fn transfer_sockets_answer_from_the_requested_address() {
    let (root, content) = serve_test_file();
    let server = start(root.path(), &[]);
    for last in [2, 1] {
        let to = SocketAddr::new(loopback(last), server.addr.port());
        let (file, from) = fetch_raw(to, "file.bin");
        assert_eq!(file, content);
        assert_eq!(from.ip(), loopback(last), "DATA for a request to {to}");
        assert_ne!(from.port(), server.addr.port(), "a transfer has its own port");
        assert_eq!(refusal_source(to), to, "ERROR for a request to {to}");
    }
}

#[test]
fn single_port_answers_from_the_requested_address() {
    let (root, content) = serve_test_file();
    let server = start(root.path(), &["--single-port"]);
    for last in [2, 1] {
        let to = SocketAddr::new(loopback(last), server.addr.port());
        let (file, from) = fetch_raw(to, "file.bin");
        assert_eq!(file, content);
        assert_eq!(from, to, "DATA for a request to {to}");
        assert_eq!(refusal_source(to), to, "ERROR for a request to {to}");
    }
}

#[test]
fn windowed_single_port_transfer_to_the_second_address_with_atftp() {
    if !have_tool("atftp", "atftp") {
        return;
    }
    let root = tempdir();
    // Large enough for full GSO windows, which carry the source address too.
    write_test_file(&at(root.path(), "big.bin"), 3 << 20, 7);
    let out = tempdir();
    for extra in [&[][..], &["--single-port"][..]] {
        let server = start(root.path(), extra);
        let local = at(out.path(), "big.bin");
        let _ = std::fs::remove_file(&local);
        let mut command = Command::new("atftp");
        command
            .args(["--get", "--remote-file", "big.bin", "--local-file"])
            .arg(&local)
            .args(["--option", "blksize 1428", "--option", "windowsize 16"])
            .args(["127.0.0.2", &server.addr.port().to_string()]);
        run_client(command);
        assert_same_file(&at(root.path(), "big.bin"), &local);
    }
}

#[test]
fn dual_stack_wildcard_answers_ipv4_requests_from_their_address() {
    let (root, content) = serve_test_file();
    for extra in [&[][..], &["--single-port"][..]] {
        let server = Server::start_with(
            Command::new(env!("CARGO_BIN_EXE_pxe-tftp")),
            root.path(),
            "[::]:0",
            extra,
        );
        let to = SocketAddr::new(loopback(2), server.addr.port());
        let (file, from) = fetch_raw(to, "file.bin");
        assert_eq!(file, content);
        assert_eq!(from.ip(), loopback(2), "DATA for a request to {to} ({extra:?})");
        assert_eq!(refusal_source(to), to, "ERROR for a request to {to} ({extra:?})");
    }
}
