//! Uploads (write requests) against the real binary on loopback: tftp-hpa, atftp, busybox and
//! curl must store byte-identical files, and every refusal must reach the client as the right
//! TFTP error without leaving a file behind.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::{
    assert_same_file, at, clients, have_tool, run_client, tempdir, upload_setup, write_test_file, Server,
};

/// A server accepting uploads into `<dir>/uploads` (given relative to the config file).
struct UploadServer {
    server: Server,
    uploads: PathBuf,
}

fn start_upload_server(dir: &Path, max_bytes: u64, overwrite: bool, single_port: bool) -> UploadServer {
    let settings = format!("max_upload_bytes = {max_bytes}\nupload_overwrite = {overwrite}\n");
    let (root, uploads, config) = upload_setup(dir, &settings);
    let mut extra = vec!["--config", config.to_str().unwrap()];
    if single_port {
        extra.push("--single-port");
    }
    UploadServer {
        server: Server::start(&root, &extra),
        uploads,
    }
}

fn tftp_hpa_put(server: &Server, mode: &str, local: &Path, remote: &str) -> Command {
    let mut command = Command::new("tftp");
    command
        .args([
            "-m",
            mode,
            &server.addr.ip().to_string(),
            &server.addr.port().to_string(),
            "-c",
            "put",
        ])
        .arg(local)
        .arg(remote);
    command
}

fn atftp_put(server: &Server, local: &Path, remote: &str, options: &[&str]) -> Command {
    clients::atftp_put(Command::new("atftp"), server.addr, local, remote, options)
}

fn busybox_put(server: &Server, local: &Path, remote: &str, blksize: Option<u32>) -> Command {
    let mut command = Command::new("busybox");
    command.args(["tftp", "-p", "-l"]).arg(local).args(["-r", remote]);
    if let Some(blksize) = blksize {
        command.args(["-b", &blksize.to_string()]);
    }
    command.args([server.addr.ip().to_string(), server.addr.port().to_string()]);
    command
}

fn curl_put(server: &Server, local: &Path, remote: &str, blksize: Option<u32>) -> Command {
    let mut command = Command::new("curl");
    command.args(["--silent", "--show-error", "--fail"]);
    if let Some(blksize) = blksize {
        command.args(["--tftp-blksize", &blksize.to_string()]);
    }
    command
        .arg("--upload-file")
        .arg(local)
        .arg(format!("tftp://{}/{remote}", server.addr));
    command
}

fn output(mut command: Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

/// Names in `dir`, sorted, so a leftover temporary file shows up.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A minimal client speaking raw datagrams, to see exactly which error the server sends.
struct RawClient {
    socket: UdpSocket,
    server: SocketAddr,
}

impl RawClient {
    fn new(server: SocketAddr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self { socket, server }
    }

    /// Sends `packet` to `to` and returns the answer and where it came from.
    fn exchange(&self, packet: &[u8], to: SocketAddr) -> (Vec<u8>, SocketAddr) {
        self.socket.send_to(packet, to).unwrap();
        let mut buf = [0u8; 1024];
        let (len, from) = self.socket.recv_from(&mut buf).expect("no answer from pxe-tftp");
        (buf[..len].to_vec(), from)
    }

    fn write_request(&self, name: &[u8], options: &[(&str, &str)]) -> (Vec<u8>, SocketAddr) {
        let mut wrq = b"\x00\x02".to_vec();
        wrq.extend_from_slice(name);
        wrq.extend_from_slice(b"\0octet\0");
        for (option, value) in options {
            wrq.extend_from_slice(format!("{option}\0{value}\0").as_bytes());
        }
        self.exchange(&wrq, self.server)
    }
}

/// The code of an ERROR packet; fails on anything else.
fn error_code(packet: &[u8]) -> u16 {
    assert_eq!(&packet[..2], &[0, 5], "expected an ERROR, got {packet:?}");
    u16::from_be_bytes([packet[2], packet[3]])
}

fn data(block: u16, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![0, 3];
    packet.extend_from_slice(&block.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

/// Sizes around block boundaries: empty, one short block, exact multiples (which end with an
/// empty block), and larger files.
const SIZES: &[usize] = &[0, 1, 511, 512, 513, 1468, 100_000, 1_048_576];

#[test]
fn every_client_uploads_byte_identical_files() {
    let dir = tempdir();
    let up = start_upload_server(dir.path(), 1 << 30, false, false);
    let sources = at(dir.path(), "sources");
    std::fs::create_dir_all(&sources).unwrap();
    for (i, &size) in SIZES.iter().enumerate() {
        write_test_file(&sources.join(format!("f{size}")), size, i as u64 + 1);
    }
    type Client = (&'static str, &'static str, fn(&Server, &Path, &str) -> Command);
    let clients: &[Client] = &[
        ("tftp", "tftp-hpa", |s, l, r| tftp_hpa_put(s, "binary", l, r)),
        ("atftp", "atftp", |s, l, r| atftp_put(s, l, r, &[])),
        ("atftp", "atftp", |s, l, r| atftp_put(s, l, r, &["blksize 1468"])),
        ("atftp", "atftp", |s, l, r| {
            atftp_put(s, l, r, &["blksize 1468", "windowsize 16"])
        }),
        ("busybox", "busybox", |s, l, r| busybox_put(s, l, r, None)),
        ("busybox", "busybox", |s, l, r| busybox_put(s, l, r, Some(1468))),
        ("curl", "curl", |s, l, r| curl_put(s, l, r, None)),
        ("curl", "curl", |s, l, r| curl_put(s, l, r, Some(1468))),
    ];
    let mut uploads_run = 0;
    for (n, (tool, package, command)) in clients.iter().enumerate() {
        if !have_tool(tool, package) {
            continue;
        }
        for &size in SIZES {
            let local = sources.join(format!("f{size}"));
            let remote = format!("{tool}-{n}-f{size}");
            run_client(command(&up.server, &local, &remote));
            assert_same_file(&local, &up.uploads.join(&remote));
            uploads_run += 1;
        }
    }
    eprintln!("{uploads_run} uploads checked");
    assert!(
        entries(&up.uploads).iter().all(|name| !name.starts_with('.')),
        "temporary files left: {:?}",
        entries(&up.uploads)
    );
}

#[test]
fn a_large_upload_rolls_block_numbers_over() {
    // 33 MiB at 512-byte blocks is 67 584 blocks: the numbers pass 65535 and restart at 0.
    if !have_tool("tftp", "tftp-hpa") {
        return;
    }
    let dir = tempdir();
    let up = start_upload_server(dir.path(), 1 << 30, false, false);
    let local = at(dir.path(), "capture.img");
    write_test_file(&local, 33 << 20, 42);
    run_client(tftp_hpa_put(&up.server, "binary", &local, "capture.img"));
    assert_same_file(&local, &up.uploads.join("capture.img"));
}

#[test]
fn netascii_uploads_are_stored_with_local_line_ends() {
    if !have_tool("tftp", "tftp-hpa") {
        return;
    }
    let dir = tempdir();
    let up = start_upload_server(dir.path(), 1 << 30, false, false);
    let local = at(dir.path(), "boot.log");
    let text = "line one\nline two\n\nlast line without end".repeat(100);
    std::fs::write(&local, &text).unwrap();
    run_client(tftp_hpa_put(&up.server, "netascii", &local, "boot.log"));
    assert_eq!(
        std::fs::read_to_string(up.uploads.join("boot.log")).unwrap(),
        text
    );
}

#[test]
fn uploads_into_existing_subdirectories_only() {
    if !have_tool("curl", "curl") {
        return;
    }
    let dir = tempdir();
    let up = start_upload_server(dir.path(), 1 << 30, false, false);
    std::fs::create_dir_all(up.uploads.join("logs/host1")).unwrap();
    let local = at(dir.path(), "dmesg.txt");
    write_test_file(&local, 5000, 3);
    run_client(curl_put(&up.server, &local, "logs/host1/dmesg.txt", None));
    assert_same_file(&local, &up.uploads.join("logs/host1/dmesg.txt"));

    let client = RawClient::new(up.server.addr);
    let (reply, _) = client.write_request(b"missing/dir/file", &[]);
    assert_eq!(error_code(&reply), 1, "a missing directory is not created");
    assert!(!up.uploads.join("missing").exists());
}

#[test]
fn uploads_are_refused_when_disabled() {
    let dir = tempdir();
    let root = at(dir.path(), "root");
    std::fs::create_dir_all(&root).unwrap();
    let server = Server::start(&root, &[]);
    let client = RawClient::new(server.addr);
    let (reply, from) = client.write_request(b"upload.bin", &[("tsize", "10")]);
    assert_eq!(error_code(&reply), 2);
    assert!(reply.ends_with(b"Uploads are disabled\0"));
    assert_eq!(
        from, server.addr,
        "refused from the request port, no transfer started"
    );
    if have_tool("curl", "curl") {
        let local = at(dir.path(), "local.bin");
        write_test_file(&local, 1000, 1);
        let result = output(curl_put(&server, &local, "upload.bin", None));
        assert!(
            !result.status.success(),
            "curl upload succeeded with uploads disabled"
        );
    }
    assert_eq!(entries(&root), Vec::<String>::new());
}

#[test]
fn traversal_and_symlinked_names_are_refused() {
    let dir = tempdir();
    let up = start_upload_server(dir.path(), 1 << 30, false, false);
    let outside = at(dir.path(), "outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, up.uploads.join("escape")).unwrap();
    std::os::unix::fs::symlink(outside.join("target"), up.uploads.join("dangling")).unwrap();
    let client = RawClient::new(up.server.addr);
    for name in [
        &b"../outside/x"[..],
        b"logs/../../outside/x",
        b"..\\outside\\x",
        b"C:\\x",
        b"%2e%2e/x",
        b"escape/x",
        b"dangling",
    ] {
        let (reply, _) = client.write_request(name, &[]);
        assert_eq!(
            error_code(&reply),
            2,
            "{:?} was not refused as an access violation",
            String::from_utf8_lossy(name)
        );
    }
    assert_eq!(
        entries(&outside),
        Vec::<String>::new(),
        "a file was written outside"
    );
    // A leading slash means the top of the upload directory, never the host's root.
    if have_tool("curl", "curl") {
        let local = at(dir.path(), "local.bin");
        write_test_file(&local, 700, 9);
        run_client(curl_put(&up.server, &local, "/top.bin", None));
        assert_same_file(&local, &up.uploads.join("top.bin"));
    }
}

#[test]
fn an_existing_file_is_refused_unless_overwriting_is_enabled() {
    let dir = tempdir();
    let up = start_upload_server(dir.path(), 1 << 30, false, false);
    std::fs::write(up.uploads.join("kept.txt"), b"original").unwrap();
    let client = RawClient::new(up.server.addr);
    let (reply, _) = client.write_request(b"kept.txt", &[]);
    assert_eq!(error_code(&reply), 6);
    assert!(reply.ends_with(b"File already exists\0"));
    if have_tool("tftp", "tftp-hpa") {
        let local = at(dir.path(), "new.txt");
        write_test_file(&local, 2000, 5);
        let result = output(tftp_hpa_put(&up.server, "binary", &local, "kept.txt"));
        let said =
            String::from_utf8_lossy(&result.stderr).into_owned() + &String::from_utf8_lossy(&result.stdout);
        assert!(said.contains("File already exists"), "tftp said: {said}");
    }
    assert_eq!(std::fs::read(up.uploads.join("kept.txt")).unwrap(), b"original");

    let dir = tempdir();
    let up = start_upload_server(dir.path(), 1 << 30, true, false);
    std::fs::write(up.uploads.join("replaced.txt"), b"original").unwrap();
    if have_tool("curl", "curl") {
        let local = at(dir.path(), "new.txt");
        write_test_file(&local, 2000, 5);
        run_client(curl_put(&up.server, &local, "replaced.txt", None));
        assert_same_file(&local, &up.uploads.join("replaced.txt"));
    }
}

#[test]
fn uploads_over_the_limit_get_disk_full_and_leave_no_file() {
    let dir = tempdir();
    let up = start_upload_server(dir.path(), 10_000, false, false);
    let client = RawClient::new(up.server.addr);
    // Announced too large: refused before any data.
    let (reply, _) = client.write_request(b"big.img", &[("tsize", "10001")]);
    assert_eq!(error_code(&reply), 3);
    assert!(reply.ends_with(b"Disk full or allocation exceeded\0"));

    // Not announced: refused when the data passes the limit.
    let (reply, transfer_port) = client.write_request(b"big.img", &[]);
    assert_eq!(reply, [0, 4, 0, 0], "ACK 0 starts the upload");
    let mut last = Vec::new();
    for block in 1..=20u16 {
        let (reply, _) = client.exchange(&data(block, &[block as u8; 512]), transfer_port);
        last = reply;
        if last[..2] == [0, 5] {
            assert_eq!(block, 20, "10 000 bytes fit in 19 full blocks and a bit");
            break;
        }
        assert_eq!(last, [0, 4, (block >> 8) as u8, block as u8]);
    }
    assert_eq!(error_code(&last), 3);
    assert_eq!(
        entries(&up.uploads),
        Vec::<String>::new(),
        "no file, temporary or final"
    );

    // Real clients see the refusal too.
    let local = at(dir.path(), "big.img");
    write_test_file(&local, 50_000, 8);
    if have_tool("curl", "curl") {
        assert!(!output(curl_put(&up.server, &local, "big-curl.img", None))
            .status
            .success());
    }
    if have_tool("tftp", "tftp-hpa") {
        let result = output(tftp_hpa_put(&up.server, "binary", &local, "big-hpa.img"));
        let said =
            String::from_utf8_lossy(&result.stderr).into_owned() + &String::from_utf8_lossy(&result.stdout);
        assert!(said.contains("Disk full"), "tftp said: {said}");
    }
    assert_eq!(entries(&up.uploads), Vec::<String>::new());
}

#[test]
fn single_port_mode_receives_uploads_on_the_request_port() {
    let dir = tempdir();
    let up = start_upload_server(dir.path(), 1 << 30, false, true);
    let client = RawClient::new(up.server.addr);
    let (reply, from) = client.write_request(b"raw.bin", &[]);
    assert_eq!(reply, [0, 4, 0, 0]);
    assert_eq!(from, up.server.addr, "answered from the request port");
    let (reply, from) = client.exchange(&data(1, b"short"), from);
    assert_eq!((reply, from), (vec![0, 4, 0, 1], up.server.addr));
    assert_eq!(std::fs::read(up.uploads.join("raw.bin")).unwrap(), b"short");

    // Blocks larger than the 512 bytes forwarded inline reach the transfer whole.
    let client = RawClient::new(up.server.addr);
    let (reply, from) = client.write_request(b"large-blocks.bin", &[("blksize", "1468")]);
    assert_eq!(
        reply, b"\x00\x06blksize\x001468\x00",
        "OACK granting 1468-byte blocks"
    );
    let first: Vec<u8> = (0..1468u32).map(|i| (i % 251) as u8).collect();
    let (reply, _) = client.exchange(&data(1, &first), from);
    assert_eq!(reply, [0, 4, 0, 1]);
    let (reply, _) = client.exchange(&data(2, b"tail"), from);
    assert_eq!(reply, [0, 4, 0, 2]);
    let mut expected = first;
    expected.extend_from_slice(b"tail");
    assert_eq!(
        std::fs::read(up.uploads.join("large-blocks.bin")).unwrap(),
        expected
    );

    let local = at(dir.path(), "image.bin");
    write_test_file(&local, 300_001, 11);
    let mut checked = 0;
    if have_tool("atftp", "atftp") {
        run_client(atftp_put(
            &up.server,
            &local,
            "atftp.bin",
            &["blksize 1468", "windowsize 8"],
        ));
        assert_same_file(&local, &up.uploads.join("atftp.bin"));
        checked += 1;
    }
    if have_tool("curl", "curl") {
        run_client(curl_put(&up.server, &local, "curl.bin", Some(1468)));
        assert_same_file(&local, &up.uploads.join("curl.bin"));
        checked += 1;
    }
    if have_tool("tftp", "tftp-hpa") {
        run_client(tftp_hpa_put(&up.server, "binary", &local, "hpa.bin"));
        assert_same_file(&local, &up.uploads.join("hpa.bin"));
        checked += 1;
    }
    eprintln!("{checked} clients uploaded in single-port mode");
}

#[test]
fn a_file_created_during_the_upload_is_not_replaced() {
    let dir = tempdir();
    let up = start_upload_server(dir.path(), 1 << 30, false, false);
    let client = RawClient::new(up.server.addr);
    let (reply, transfer_port) = client.write_request(b"race.log", &[]);
    assert_eq!(reply, [0, 4, 0, 0]);
    let (reply, _) = client.exchange(&data(1, &[1; 512]), transfer_port);
    assert_eq!(reply, [0, 4, 0, 1]);
    std::fs::write(up.uploads.join("race.log"), b"written meanwhile").unwrap();
    let (reply, _) = client.exchange(&data(2, b"end"), transfer_port);
    assert_eq!(error_code(&reply), 6, "the last block gets ERROR 6, not its ACK");
    assert_eq!(
        std::fs::read(up.uploads.join("race.log")).unwrap(),
        b"written meanwhile"
    );
    assert_eq!(entries(&up.uploads), ["race.log"], "the temporary file is gone");
}
