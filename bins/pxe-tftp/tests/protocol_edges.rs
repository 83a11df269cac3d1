//! Raw-UDP probes of the real binary: traversal attempts, uploads, strangers, the transfer limit.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use netboot_tftp::{ErrorCode, Packet};
use support::{at, tempdir, write_test_file, Server};

fn client() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    socket
}

fn rrq(name: &[u8], options: &[(&str, &str)]) -> Vec<u8> {
    let mut wire = vec![0, 1];
    wire.extend_from_slice(name);
    wire.extend_from_slice(b"\0octet\0");
    for (k, v) in options {
        wire.extend_from_slice(format!("{k}\0{v}\0").as_bytes());
    }
    wire
}

/// Sends `request` and returns the first reply and where it came from.
fn ask(socket: &UdpSocket, server: SocketAddr, request: &[u8]) -> (Vec<u8>, SocketAddr) {
    socket.send_to(request, server).unwrap();
    let mut buf = vec![0; 70_000];
    let (len, from) = socket.recv_from(&mut buf).expect("no reply from pxe-tftp");
    buf.truncate(len);
    (buf, from)
}

fn error_code(reply: &[u8]) -> Option<ErrorCode> {
    match Packet::parse(reply).unwrap() {
        Packet::Error { code, .. } => Some(code),
        _ => None,
    }
}

fn served_root() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempdir();
    let root = at(dir.path(), "root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(dir.path().join("secret"), b"outside the root").unwrap();
    std::fs::write(root.join("inside.txt"), b"inside").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), root.join("escape")).unwrap();
    std::os::unix::fs::symlink(dir.path(), root.join("updir")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("no-such-file"), root.join("dangling")).unwrap();
    std::fs::write(root.join(".hidden"), b"hidden").unwrap();
    std::fs::create_dir(root.join(".hidden-dir")).unwrap();
    std::fs::write(root.join(".hidden-dir/file"), b"hidden").unwrap();
    (dir, root)
}

#[test]
fn traversal_attempts_are_refused() {
    let (_dir, root) = served_root();
    let server = Server::start(&root, &[]);
    let socket = client();
    let refused: &[(&[u8], ErrorCode)] = &[
        (b"../secret", ErrorCode::AccessViolation),
        (br"..\secret", ErrorCode::AccessViolation),
        (b"sub/../../secret", ErrorCode::AccessViolation),
        (b"%2e%2e/secret", ErrorCode::AccessViolation),
        (b"..%2fsecret", ErrorCode::AccessViolation),
        (b"%2E%2E%5Csecret", ErrorCode::AccessViolation),
        (br"\\host\share\secret", ErrorCode::AccessViolation),
        (br"C:\secret", ErrorCode::AccessViolation),
        // An absolute name is looked up under the root, where there is no such file.
        (b"/etc/passwd", ErrorCode::FileNotFound),
        (b"missing.efi", ErrorCode::FileNotFound),
    ];
    for (name, code) in refused {
        let (reply, _) = ask(&socket, server.addr, &rrq(name, &[]));
        assert_eq!(
            error_code(&reply),
            Some(*code),
            "{}",
            String::from_utf8_lossy(name)
        );
    }
    // Outside the root through a symlink, hidden names, and missing files get the very same
    // answer, so none of them tells whether something exists.
    let (missing, _) = ask(&socket, server.addr, &rrq(b"missing.efi", &[]));
    assert_eq!(error_code(&missing), Some(ErrorCode::FileNotFound));
    for name in [
        &b"escape"[..],
        b"updir/secret",
        b"updir/no-such-file",
        b"dangling",
        b".hidden",
        b".hidden-dir/file",
        br"\boot\.git\config",
    ] {
        let (reply, _) = ask(&socket, server.addr, &rrq(name, &[]));
        assert_eq!(reply, missing, "{}", String::from_utf8_lossy(name));
    }
    // Mixed into the same run, an ordinary name still works.
    let (reply, _) = ask(&socket, server.addr, &rrq(b"/inside.txt", &[]));
    assert_eq!(
        Packet::parse(&reply).unwrap(),
        Packet::Data {
            block: netboot_tftp::BlockNum(1),
            data: b"inside"
        }
    );
}

#[test]
fn uploads_and_unknown_modes_are_refused() {
    let (_dir, root) = served_root();
    let server = Server::start(&root, &[]);
    let socket = client();
    let (reply, _) = ask(&socket, server.addr, b"\0\x02new.bin\0octet\0");
    assert_eq!(error_code(&reply), Some(ErrorCode::AccessViolation));
    assert!(!root.join("new.bin").exists());
    let (reply, _) = ask(&socket, server.addr, b"\0\x01inside.txt\0mail\0");
    assert_eq!(error_code(&reply), Some(ErrorCode::IllegalOperation));
}

#[test]
fn strangers_get_unknown_transfer_id_and_the_transfer_continues() {
    let (_dir, root) = served_root();
    write_test_file(&root.join("two-blocks"), 700, 1);
    let server = Server::start(&root, &[]);
    let socket = client();
    let (reply, transfer_port) = ask(&socket, server.addr, &rrq(b"two-blocks", &[]));
    assert!(matches!(
        Packet::parse(&reply).unwrap(),
        Packet::Data {
            block: netboot_tftp::BlockNum(1),
            ..
        }
    ));
    let stranger = client();
    let (reply, _) = ask(&stranger, transfer_port, b"\0\x04\0\x01");
    assert_eq!(error_code(&reply), Some(ErrorCode::UnknownTransferId));
    let (reply, _) = ask(&socket, transfer_port, b"\0\x04\0\x01");
    let Packet::Data { block, data } = Packet::parse(&reply).unwrap() else {
        panic!("expected DATA 2")
    };
    assert_eq!((block.0, data.len()), (2, 188));
}

#[test]
fn the_transfer_limit_refuses_politely() {
    let (dir, root) = served_root();
    write_test_file(&root.join("big"), 100_000, 2);
    let config = at(dir.path(), "tftp.toml");
    std::fs::write(&config, "[tftp]\nmax_transfers = 1\ntimeout_ms = 5000\n").unwrap();
    let server = Server::start(&root, &["--config", config.to_str().unwrap()]);
    let first = client();
    let (reply, _) = ask(&first, server.addr, &rrq(b"big", &[]));
    assert!(error_code(&reply).is_none(), "the first transfer starts");
    let second = client();
    let (reply, _) = ask(&second, server.addr, &rrq(b"inside.txt", &[]));
    assert_eq!(
        error_code(&reply),
        Some(ErrorCode::NotDefined),
        "the second is told the server is busy"
    );
}

#[test]
fn options_are_negotiated_and_capped() {
    let (dir, root) = served_root();
    write_test_file(&root.join("nbp"), 5000, 3);
    let config = at(dir.path(), "tftp.toml");
    std::fs::write(&config, "[tftp]\nmax_blksize = 1468\nmax_window = 8\n").unwrap();
    let server = Server::start(&root, &["--config", config.to_str().unwrap()]);
    let socket = client();
    let request = rrq(
        b"nbp",
        &[
            ("blksize", "9000"),
            ("tsize", "0"),
            ("windowsize", "64"),
            ("msftwindow", "31416"),
            ("x-vendor-option", "1"),
        ],
    );
    let (reply, _) = ask(&socket, server.addr, &request);
    let Packet::Oack(options) = Packet::parse(&reply).unwrap() else {
        panic!("expected OACK")
    };
    assert_eq!(options.get("blksize"), Some(&b"1468"[..]));
    assert_eq!(options.get("tsize"), Some(&b"5000"[..]));
    assert_eq!(options.get("windowsize"), Some(&b"8"[..]));
    assert_eq!(
        options.get("msftwindow"),
        Some(&b"27182"[..]),
        "Windows Boot Manager's variable window is accepted with its answer value"
    );
    assert_eq!(
        options.get("x-vendor-option"),
        None,
        "unknown options are not acknowledged"
    );
}
