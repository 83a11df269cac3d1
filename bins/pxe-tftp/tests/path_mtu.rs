//! `fit_blksize_to_mtu`: over a veth link whose MTU is 1400, a client asking for 8192-byte
//! blocks is granted the largest block that crosses unfragmented (1400 minus IP, UDP and TFTP
//! headers: 1368 over IPv4, 1348 over IPv6), in both port modes, and atftp downloads the file
//! intact at that size. Without the setting the same request gets its 8192.

mod support;

use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use netboot_testkit::netns::{self, NamespacePair, CLIENT_DEV, SERVER_DEV};
use netboot_tftp::{ErrorCode, Packet};
use support::clients::{atftp, bounded};
use support::{assert_same_file, at, have_tool, is_root, run_client, tempdir, write_test_file, Server};

/// Below Ethernet's 1500, as on a tunnel; IPv6 needs at least 1280.
const LINK_MTU: u32 = 1400;
const FILE: &str = "nbp.efi";

/// Both ends of the link get MTU 1400 and an IPv6 address next to the IPv4 one.
fn narrow_link(tag: &str, subnet: u8) -> (NamespacePair, Ipv6Addr, Ipv6Addr) {
    let pair = NamespacePair::create(&format!("tftp-{tag}"), [10, 198, subnet]);
    let v6 = |host: u16| Ipv6Addr::new(0xfd00, 0x198, u16::from(subnet), 0, 0, 0, 0, host);
    for (namespace, dev, address) in [
        (&pair.server, SERVER_DEV, v6(1)),
        (&pair.client, CLIENT_DEV, v6(2)),
    ] {
        netns::ip(&["-n", namespace, "link", "set", dev, "mtu", &LINK_MTU.to_string()]);
        // `nodad`: usable at once, without waiting for duplicate address detection.
        netns::ip(&[
            "-n",
            namespace,
            "addr",
            "add",
            &format!("{address}/64"),
            "dev",
            dev,
            "nodad",
        ]);
    }
    (pair, v6(1), v6(2))
}

/// The `blksize` the server's OACK grants to a request for 8192 from `client` (in the client
/// namespace); the transfer is then cancelled with an ERROR.
fn granted_blksize(pair: &NamespacePair, client: IpAddr, server: SocketAddr) -> u16 {
    netns::run_in(&pair.client, move || {
        let socket = UdpSocket::bind((client, 0)).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let request = format!("\x00\x01{FILE}\x00octet\x00blksize\x008192\x00");
        socket.send_to(request.as_bytes(), server).unwrap();
        let mut buf = [0u8; 600];
        let (len, from) = socket.recv_from(&mut buf).expect("an answer to the RRQ");
        let Ok(Packet::Oack(options)) = Packet::parse(&buf[..len]) else {
            panic!("not an OACK: {:?}", &buf[..len]);
        };
        let granted = options
            .get("blksize")
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
            .expect("blksize in the OACK");
        let mut cancel = [0u8; 64];
        let len = netboot_tftp::write_error(&mut cancel, ErrorCode::NotDefined, "done");
        socket.send_to(&cancel[..len], from).unwrap();
        granted
    })
}

fn start(pair: &NamespacePair, root: &Path, listen: &str, config: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend(extra);
    Server::start_with(
        netns::command(&pair.server, env!("CARGO_BIN_EXE_pxe-tftp")),
        root,
        listen,
        &args,
    )
}

fn blocks_fit_a_narrow_link(tag: &str, subnet: u8, extra: &[&str]) {
    if !(is_root() && have_tool("ip", "iproute2")) {
        return;
    }
    let (pair, server_v6, client_v6) = narrow_link(tag, subnet);
    let dir = tempdir();
    let root = at(dir.path(), "root");
    std::fs::create_dir(&root).unwrap();
    let expected = root.join(FILE);
    write_test_file(&expected, 512 * 1024 + 77, 0x3177);
    let fitted = at(dir.path(), "fitted.toml");
    std::fs::write(&fitted, "[tftp]\nfit_blksize_to_mtu = true\n").unwrap();
    let plain = at(dir.path(), "plain.toml");
    std::fs::write(&plain, "[tftp]\n").unwrap();

    // On the wildcard addresses the request's interface is known; on a specific IPv6 address
    // the interface holding it is looked up.
    let v4_any = start(&pair, &root, "0.0.0.0:0", &fitted, extra);
    let v6_any = start(&pair, &root, "[::]:0", &fitted, extra);
    let v6_bound = start(&pair, &root, &format!("[{server_v6}]:0"), &fitted, extra);
    let unfitted = start(&pair, &root, "0.0.0.0:0", &plain, extra);
    let server_v4 = IpAddr::V4(pair.server_ip);
    let client_v4 = IpAddr::V4(pair.client_ip);
    let on = |ip: IpAddr, server: &Server| SocketAddr::new(ip, server.addr.port());

    assert_eq!(granted_blksize(&pair, client_v4, on(server_v4, &v4_any)), 1368);
    assert_eq!(
        granted_blksize(&pair, client_v6.into(), on(server_v6.into(), &v6_any)),
        1348
    );
    assert_eq!(
        granted_blksize(&pair, client_v6.into(), on(server_v6.into(), &v6_bound)),
        1348
    );
    assert_eq!(granted_blksize(&pair, client_v4, on(server_v4, &unfitted)), 8192);

    if have_tool("atftp", "atftp") {
        let out = at(dir.path(), "nbp.out");
        let command = bounded(Some(&pair.client), 60, "atftp");
        run_client(atftp(
            command,
            on(server_v4, &v4_any),
            FILE,
            &out,
            &["blksize 8192"],
        ));
        assert_same_file(&expected, &out);
    }
}

#[test]
fn blksize_fits_the_path_mtu_with_a_port_per_transfer() {
    blocks_fit_a_narrow_link("mtu-pt", 21, &[]);
}

#[test]
fn blksize_fits_the_path_mtu_in_single_port_mode() {
    blocks_fit_a_narrow_link("mtu-sp", 22, &["--single-port"]);
}
