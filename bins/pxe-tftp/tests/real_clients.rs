//! Third-party TFTP clients against the real binary on loopback: curl, tftp-hpa, atftp and
//! busybox must each receive byte-identical files.

mod support;

use std::process::Command;

use support::{assert_same_file, at, have_tool, run_client, tempdir, write_test_file, Server};

fn curl(server: &Server, name: &str, blksize: u32, out: &std::path::Path) -> Command {
    let mut command = Command::new("curl");
    command
        .args([
            "--silent",
            "--show-error",
            "--fail",
            "--tftp-blksize",
            &blksize.to_string(),
            "--output",
        ])
        .arg(out)
        .arg(format!("tftp://{}/{name}", server.addr));
    command
}

fn tftp_hpa(server: &Server, name: &str, out: &std::path::Path) -> Command {
    let mut command = Command::new("tftp");
    command
        .args([
            "-m",
            "binary",
            &server.addr.ip().to_string(),
            &server.addr.port().to_string(),
            "-c",
            "get",
            name,
        ])
        .arg(out);
    command
}

fn atftp(server: &Server, name: &str, out: &std::path::Path, options: &[&str]) -> Command {
    let mut command = Command::new("atftp");
    command
        .args(["--get", "--remote-file", name, "--local-file"])
        .arg(out);
    for option in options {
        command.args(["--option", option]);
    }
    command.args([server.addr.ip().to_string(), server.addr.port().to_string()]);
    command
}

fn busybox(server: &Server, name: &str, out: &std::path::Path, blksize: u32) -> Command {
    let mut command = Command::new("busybox");
    command.args(["tftp", "-g", "-r", name, "-l"]).arg(out).args([
        "-b",
        &blksize.to_string(),
        &server.addr.ip().to_string(),
        &server.addr.port().to_string(),
    ]);
    command
}

/// Sizes around block boundaries: empty, one short block, exact multiples (which end with an
/// empty block), and a typical NBP.
const SMALL_SIZES: &[usize] = &[0, 1, 511, 512, 513, 1468, 2936, 100_000, 1_048_576];

#[test]
fn small_files_are_byte_identical_with_every_client() {
    let dir = tempdir();
    let root = at(dir.path(), "root");
    std::fs::create_dir_all(root.join("boot/x64")).unwrap();
    for (i, &size) in SMALL_SIZES.iter().enumerate() {
        write_test_file(&root.join(format!("f{size}.bin")), size, i as u64 + 1);
    }
    write_test_file(&root.join("boot/x64/wdsmgfw.efi"), 70_001, 99);
    let server = Server::start(&root, &[]);
    let out = at(dir.path(), "out");
    let mut clients_run = 0;
    for &size in SMALL_SIZES {
        let name = format!("f{size}.bin");
        let expected = root.join(&name);
        if have_tool("curl", "curl") {
            for blksize in [512, 1468] {
                run_client(curl(&server, &name, blksize, &out));
                assert_same_file(&expected, &out);
                clients_run += 1;
            }
        }
        if have_tool("tftp", "tftp-hpa") {
            run_client(tftp_hpa(&server, &name, &out));
            assert_same_file(&expected, &out);
            clients_run += 1;
        }
        if have_tool("atftp", "atftp") {
            for options in [&[][..], &["blksize 1468", "windowsize 16", "tsize 0"][..]] {
                run_client(atftp(&server, &name, &out, options));
                assert_same_file(&expected, &out);
                clients_run += 1;
            }
        }
        if have_tool("busybox", "busybox") {
            run_client(busybox(&server, &name, &out, 1468));
            assert_same_file(&expected, &out);
            clients_run += 1;
        }
    }
    if have_tool("tftp", "tftp-hpa") {
        // Windows Boot Manager style: backslashes and a leading separator.
        run_client(tftp_hpa(&server, r"\boot\x64\wdsmgfw.efi", &out));
        assert_same_file(&root.join("boot/x64/wdsmgfw.efi"), &out);
    }
    eprintln!("{clients_run} client transfers checked");
}

#[test]
fn netascii_converts_line_ends() {
    if !have_tool("tftp", "tftp-hpa") {
        return;
    }
    let dir = tempdir();
    let root = at(dir.path(), "root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("menu.txt"), b"line one\nline two\n").unwrap();
    let server = Server::start(&root, &[]);
    let out = at(dir.path(), "menu.txt");
    let mut command = Command::new("tftp");
    command
        .args([
            "-m",
            "netascii",
            &server.addr.ip().to_string(),
            &server.addr.port().to_string(),
            "-c",
            "get",
            "menu.txt",
        ])
        .arg(&out);
    run_client(command);
    // tftp-hpa converts netascii back to the local convention, so the round trip is exact.
    assert_eq!(std::fs::read(&out).unwrap(), b"line one\nline two\n");
}

#[test]
fn single_port_mode_serves_every_client() {
    let dir = tempdir();
    let root = at(dir.path(), "root");
    std::fs::create_dir(&root).unwrap();
    write_test_file(&root.join("nbp.efi"), 1_000_003, 5);
    let server = Server::start(&root, &["--single-port"]);
    let out = at(dir.path(), "out");
    if have_tool("curl", "curl") {
        run_client(curl(&server, "nbp.efi", 1468, &out));
        assert_same_file(&root.join("nbp.efi"), &out);
    }
    if have_tool("atftp", "atftp") {
        run_client(atftp(
            &server,
            "nbp.efi",
            &out,
            &["blksize 1468", "windowsize 32"],
        ));
        assert_same_file(&root.join("nbp.efi"), &out);
    }
    if have_tool("busybox", "busybox") {
        run_client(busybox(&server, "nbp.efi", &out, 512));
        assert_same_file(&root.join("nbp.efi"), &out);
    }
}

/// 64 MiB at blksize 512 is 131 072 blocks: the block number wraps from 65535 to 0 twice.
#[test]
fn large_file_rolls_block_numbers_over_at_blksize_512() {
    let dir = tempdir();
    let root = at(dir.path(), "root");
    std::fs::create_dir(&root).unwrap();
    write_test_file(&root.join("boot.wim"), 64 << 20, 64);
    let server = Server::start(&root, &[]);
    let out = at(dir.path(), "out");
    if have_tool("tftp", "tftp-hpa") {
        run_client(tftp_hpa(&server, "boot.wim", &out));
        assert_same_file(&root.join("boot.wim"), &out);
    }
    if have_tool("curl", "curl") {
        run_client(curl(&server, "boot.wim", 512, &out));
        assert_same_file(&root.join("boot.wim"), &out);
    }
}

/// 300 MiB at blksize 1468 and windowsize 16: 214 286 blocks, three wraps, windowed.
#[test]
fn very_large_file_with_windowsize_16() {
    if !have_tool("atftp", "atftp") {
        return;
    }
    let dir = tempdir();
    let root = at(dir.path(), "root");
    std::fs::create_dir(&root).unwrap();
    write_test_file(&root.join("install.img"), 300 << 20, 300);
    let server = Server::start(&root, &[]);
    let out = at(dir.path(), "out");
    run_client(atftp(
        &server,
        "install.img",
        &out,
        &["blksize 1468", "windowsize 16"],
    ));
    assert_same_file(&root.join("install.img"), &out);
    if have_tool("curl", "curl") {
        run_client(curl(&server, "install.img", 1468, &out));
        assert_same_file(&root.join("install.img"), &out);
    }
}
