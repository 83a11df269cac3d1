//! The real `pxe-proxy` binary on loopback, answering firmware-shaped requests.
//!
//! The proxy listens on 127.0.0.1. Port-67 clients are simulated as relayed (giaddr
//! 127.0.0.2, replies come back to the relay on the DHCP port) or as clients that already
//! have an address (ciaddr, replies unicast to the configured client port); port-4011
//! requests are answered to their source, as for real firmware.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

use common::*;
use netboot_core::ClientArch;
use netboot_dhcp::wire::{DhcpMessage, DhcpOption, MessageType};

const SERVER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const RELAY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

struct Lab {
    proxy: Proxy,
    /// Plays the relay agent: bound to 127.0.0.2 on the proxy's DHCP port.
    relay: UdpSocket,
    /// Plays a client with an address: receives port-67 replies for ciaddr 127.0.0.1.
    client: UdpSocket,
}

fn lab(extra: &str) -> Lab {
    let client = client_socket("127.0.0.1:0");
    let client_port = client.local_addr().unwrap().port();
    // Every PXE client is answered, as on a configured boot server (the default answers only
    // machines a rule names; see `a_first_run_answers_no_one_*`).
    let config = format!(
        "[resolver.static]\nunmatched = \"exit\"\n\
         [proxy]\nlisten = \"127.0.0.1\"\ndhcp_port = 0\npxe_port = 0\ndhcpv6_port = 0\nclient_port = {client_port}\n{extra}\n"
    );
    let proxy = Proxy::start(&config);
    let relay = client_socket(&format!("{RELAY}:{}", proxy.dhcp_port));
    Lab { proxy, relay, client }
}

impl Lab {
    fn dhcp(&self) -> SocketAddr {
        SocketAddr::from((SERVER, self.proxy.dhcp_port))
    }
    fn pxe(&self) -> SocketAddr {
        SocketAddr::from((SERVER, self.proxy.pxe_port))
    }

    /// Sends a DISCOVER through the "relay" and returns the reply the relay receives.
    fn relayed(&self, mut request: DhcpMessage) -> (DhcpMessage, DhcpMessage) {
        request.giaddr = RELAY;
        request.hops = 1;
        self.relay.send_to(&request.to_bytes(), self.dhcp()).unwrap();
        let (reply, from, _) = receive(&self.relay);
        assert_eq!(from, self.dhcp(), "relayed replies come from the DHCP port");
        (request, reply)
    }

    /// Sends a boot-server REQUEST to 4011 from a fresh client socket; returns the reply.
    fn boot_server(&self, request: &DhcpMessage) -> DhcpMessage {
        let socket = client_socket("127.0.0.1:0");
        socket.send_to(&request.to_bytes(), self.pxe()).unwrap();
        let (reply, from, _) = receive(&socket);
        assert_eq!(
            from,
            self.pxe(),
            "4011 replies come from 4011, to the source port"
        );
        reply
    }
}

#[test]
fn bios_firmware_gets_undionly_with_discovery_disabled_and_relay_info_echoed() {
    let lab = lab("");
    let mut discover = firmware_message(
        MessageType::Discover,
        0x1001,
        MAC,
        ClientArch::X86Bios,
        "PXEClient",
    );
    discover
        .options
        .push(DhcpOption::RelayAgentInfo(vec![1, 4, b'p', b'o', b'r', b't']));
    let (discover, offer) = lab.relayed(discover);
    assert_proxy_reply(&offer, &discover, MessageType::Offer, SERVER);
    assert_eq!(offer.siaddr, SERVER, "next-server");
    assert_eq!(file_field(&offer), "undionly.kpxe");
    assert_eq!(offer.bootfile_name(), Some(&b"undionly.kpxe"[..]));
    assert_eq!(offer.vendor_class(), Some(&b"PXEClient"[..]));
    assert_eq!(
        offer.vendor_specific(),
        Some(&[6, 1, 8, 255][..]),
        "43: use this boot file, no discovery"
    );
    assert_eq!(
        offer.relay_agent_info(),
        Some(&[1, 4, b'p', b'o', b'r', b't'][..]),
        "82 echoed"
    );
    assert_eq!(offer.ciaddr, Ipv4Addr::UNSPECIFIED);
}

#[test]
fn uefi_x64_boot_server_request_gets_snponly_and_boot_item_echo() {
    let lab = lab("");
    let mut request = firmware_message(MessageType::Request, 0x2002, MAC, ClientArch::EfiX64, "PXEClient");
    request.ciaddr = SERVER;
    request.flags = 0;
    request.options.push(DhcpOption::VendorSpecific(vec![
        71, 4, 0x80, 0x00, 0x00, 0x00, 255,
    ]));
    let ack = lab.boot_server(&request);
    assert_proxy_reply(&ack, &request, MessageType::Ack, SERVER);
    assert_eq!(ack.ciaddr, SERVER, "ACK keeps ciaddr");
    assert_eq!(ack.siaddr, SERVER);
    assert_eq!(file_field(&ack), "snponly.efi");
    assert_eq!(ack.vendor_class(), Some(&b"PXEClient"[..]));
    assert_eq!(
        ack.vendor_specific(),
        Some(&[71, 4, 0x80, 0, 0, 0, 255][..]),
        "43.71 echoed, no discovery control"
    );
}

#[test]
fn uefi_x64_discover_is_offered_snponly() {
    let lab = lab("");
    let discover = firmware_message(
        MessageType::Discover,
        0x2003,
        MAC,
        ClientArch::EfiX64,
        "PXEClient",
    );
    let (discover, offer) = lab.relayed(discover);
    assert_proxy_reply(&offer, &discover, MessageType::Offer, SERVER);
    assert_eq!(file_field(&offer), "snponly.efi");
    // No PXE discovery sub-options: EDK2 then takes the offer as "ProxyBinl" and asks for its
    // boot file on port 4011, the exchange the boot-server tests below answer.
    assert_eq!(offer.vendor_specific(), None);
}

#[test]
fn uefi_arm64_gets_the_arm64_program_and_ebc_counts_as_x64() {
    let lab = lab("[proxy.boot_files]\narm64-uefi = \"arm64/ipxe.efi\"\n");
    let mut request = firmware_message(
        MessageType::Request,
        0x3003,
        MAC,
        ClientArch::EfiArm64,
        "PXEClient",
    );
    request.ciaddr = SERVER;
    let ack = lab.boot_server(&request);
    assert_proxy_reply(&ack, &request, MessageType::Ack, SERVER);
    assert_eq!(file_field(&ack), "arm64/ipxe.efi");

    let mut ebc = firmware_message(MessageType::Request, 0x3004, MAC, ClientArch::EfiBc, "PXEClient");
    ebc.ciaddr = SERVER;
    assert_eq!(file_field(&lab.boot_server(&ebc)), "snponly.efi");
}

#[test]
fn http_boot_client_gets_a_url_and_httpclient_vendor_class() {
    let lab = lab("");
    let discover = firmware_message(
        MessageType::Discover,
        0x4004,
        MAC,
        ClientArch::EfiX64Http,
        "HTTPClient",
    );
    let (discover, offer) = lab.relayed(discover);
    assert_proxy_reply(&offer, &discover, MessageType::Offer, SERVER);
    assert_eq!(offer.vendor_class(), Some(&b"HTTPClient"[..]));
    assert_eq!(offer.bootfile_name(), Some(&b"http://127.0.0.1/snponly.efi"[..]));
    assert_eq!(file_field(&offer), "http://127.0.0.1/snponly.efi");
    assert_eq!(offer.vendor_specific(), None, "no PXE sub-options for HTTP Boot");
}

#[test]
fn ipxe_gets_the_script_url_and_never_a_boot_program() {
    // With chainloading off even NIC-ROM iPXE (full vendor class) goes straight to the script.
    let lab = lab("chainload_ipxe_roms = false\n");
    // An iPXE build with HTTPS (175.0x14) gets the HTTPS entry URL.
    let discover = ipxe_discover(0x5005, MAC, ClientArch::EfiX64, &[0x13, 0x14, 0x24]);
    let (discover, offer) = lab.relayed(discover);
    assert_proxy_reply(&offer, &discover, MessageType::Offer, SERVER);
    assert_eq!(offer.bootfile_name(), Some(&b"https://127.0.0.1/boot.ipxe"[..]));
    assert_eq!(
        offer.siaddr, SERVER,
        "siaddr + filename let iPXE skip the 4011 round"
    );
    assert_eq!(offer.vendor_class(), Some(&b"PXEClient"[..]));

    // Without HTTPS (Debian 12, QEMU ROMs) it gets the plain-HTTP script URL.
    let discover = ipxe_discover(0x5006, MAC, ClientArch::X86Bios, &[0x13, 0x15]);
    let (_, offer) = lab.relayed(discover);
    assert_eq!(offer.bootfile_name(), Some(&b"http://127.0.0.1/boot.ipxe"[..]));

    // RFC 3004 user class form, sent to 4011.
    let mut request = firmware_message(
        MessageType::Request,
        0x5007,
        MAC,
        ClientArch::EfiArm64,
        "PXEClient",
    );
    request.ciaddr = SERVER;
    request.options.push(DhcpOption::UserClass(b"\x04iPXE".to_vec()));
    let ack = lab.boot_server(&request);
    assert_eq!(ack.bootfile_name(), Some(&b"https://127.0.0.1/boot.ipxe"[..]));
}

#[test]
fn configured_urls_and_server_address_are_used() {
    let lab = lab(
        "server_address = \"10.9.8.7\"\ntftp_server = \"10.9.8.6\"\nipxe_script_url = \"https://boot.example:8443/x/boot.ipxe?s={server}\"\nipxe_script_url_without_https = \"\"\nchainload_ipxe_roms = false\n",
    );
    let (_, offer) = lab.relayed(ipxe_discover(0x6006, MAC, ClientArch::X86Bios, &[]));
    assert_eq!(offer.server_id(), Some(Ipv4Addr::new(10, 9, 8, 7)));
    assert_eq!(
        offer.bootfile_name(),
        Some(&b"https://boot.example:8443/x/boot.ipxe?s=10.9.8.7"[..])
    );

    let (_, offer) = lab.relayed(firmware_message(
        MessageType::Discover,
        0x6007,
        MAC,
        ClientArch::X86Bios,
        "PXEClient",
    ));
    assert_eq!(
        offer.siaddr,
        Ipv4Addr::new(10, 9, 8, 6),
        "TFTP server override is next-server"
    );
}

#[test]
fn client_with_an_address_gets_a_unicast_to_its_client_port() {
    let lab = lab("");
    let mut discover = firmware_message(
        MessageType::Discover,
        0x7007,
        MAC,
        ClientArch::X86Bios,
        "PXEClient",
    );
    discover.ciaddr = SERVER;
    lab.client.send_to(&discover.to_bytes(), lab.dhcp()).unwrap();
    let (offer, from, _) = receive(&lab.client);
    assert_eq!(from, lab.dhcp());
    assert_proxy_reply(&offer, &discover, MessageType::Offer, SERVER);
}

#[test]
fn garbage_truncated_and_foreign_packets_get_no_reply_and_the_server_keeps_answering() {
    let mut lab = lab("");
    let valid = firmware_message(
        MessageType::Discover,
        0x8008,
        MAC,
        ClientArch::X86Bios,
        "PXEClient",
    );
    let mut relayed = valid.clone();
    relayed.giaddr = RELAY;
    let bytes = relayed.to_bytes();

    let mut not_pxe = relayed.clone();
    not_pxe
        .options
        .retain(|o| !matches!(o, DhcpOption::VendorClass(_)));
    not_pxe
        .options
        .push(DhcpOption::VendorClass(b"MSFT 5.0".to_vec()));
    let mut other_server = relayed.clone();
    other_server.options[0] = DhcpOption::MessageType(MessageType::Request);
    other_server
        .options
        .push(DhcpOption::ServerId(Ipv4Addr::new(127, 0, 0, 9)));
    let mut reply_op = relayed.clone();
    reply_op.op = 2;
    let mut bad_cookie = bytes.clone();
    bad_cookie[236] = 0;

    let mut junk: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0xff; 1400],
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        bad_cookie,
        not_pxe.to_bytes(),
        reply_op.to_bytes(),
    ];
    junk.extend((0..bytes.len()).step_by(13).map(|len| bytes[..len].to_vec()));
    // A REQUEST naming another server is not ours on port 67 (it is valid on 4011).
    lab.relay.send_to(&other_server.to_bytes(), lab.dhcp()).unwrap();
    let pxe_client = client_socket("127.0.0.1:0");
    for packet in &junk {
        lab.relay.send_to(packet, lab.dhcp()).unwrap();
        pxe_client.send_to(packet, lab.pxe()).unwrap();
    }

    // The server handles datagrams in order, so an answer to any of the junk would arrive
    // before the answer to this valid request.
    lab.relay.send_to(&bytes, lab.dhcp()).unwrap();
    let (offer, _, _) = receive(&lab.relay);
    assert_eq!(offer.xid, 0x8008);
    assert_eq!(file_field(&offer), "undionly.kpxe");

    let mut request = valid.clone();
    request.xid = 0x8009;
    request.options[0] = DhcpOption::MessageType(MessageType::Request);
    pxe_client.send_to(&request.to_bytes(), lab.pxe()).unwrap();
    let (ack, _, _) = receive(&pxe_client);
    assert_eq!((ack.xid, ack.message_type()), (0x8009, Some(MessageType::Ack)));
    assert!(lab.proxy.is_running());
}

#[test]
fn ignored_machines_and_unconfigured_architectures_get_no_reply() {
    let lab = lab(
        "[proxy.boot_files]\nbios = \"\"\n[[resolver.static.machines]]\nmac = \"52:54:00:00:00:99\"\nignore = true\n",
    );
    let ignored = firmware_message(
        MessageType::Discover,
        0x9001,
        [0x52, 0x54, 0, 0, 0, 0x99],
        ClientArch::EfiX64,
        "PXEClient",
    );
    let bios = firmware_message(
        MessageType::Discover,
        0x9002,
        MAC,
        ClientArch::X86Bios,
        "PXEClient",
    );
    for message in [ignored, bios] {
        let mut message = message;
        message.giaddr = RELAY;
        lab.relay.send_to(&message.to_bytes(), lab.dhcp()).unwrap();
    }
    let (_, valid) = lab.relayed(firmware_message(
        MessageType::Discover,
        0x9003,
        MAC,
        ClientArch::EfiX64,
        "PXEClient",
    ));
    assert_eq!(valid.xid, 0x9003);
}

#[test]
fn check_config_and_errors() {
    let binary = env!("CARGO_BIN_EXE_pxe-proxy");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[proxy]\nipxe_script_url = \"ftp://x\"\n").unwrap();
    let output = std::process::Command::new(binary)
        .arg("--config")
        .arg(&bad)
        .arg("--check-config")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a configuration error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("Error: ") && stderr.contains("proxy.ipxe_script_url"),
        "{stderr}"
    );

    let output = std::process::Command::new(binary)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(output.status.success());

    // A busy port is reported with the address and a hint. (A busy DHCP port is served
    // beside its holder instead: see tests/coexist.rs.)
    let busy = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let good = dir.path().join("busy.toml");
    std::fs::write(
        &good,
        "[proxy]\nlisten = \"127.0.0.1\"\ndhcp_port = 0\ndhcpv6 = false\n",
    )
    .unwrap();
    let output = std::process::Command::new(binary)
        .arg("--config")
        .arg(&good)
        .args(["--pxe-port", &port.to_string()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "a runtime error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("binding UDP 127.0.0.1:{port}")) && stderr.contains("port busy"),
        "{stderr}"
    );
}

/// iPXE's DISCOVER as the chainloaded `undionly.kpxe` sends it: plain `PXEClient`.
fn chainloaded_bios_ipxe(xid: u32, mac: [u8; 6]) -> DhcpMessage {
    let mut discover = ipxe_discover(xid, mac, ClientArch::X86Bios, &[0x13, 0x15]);
    for option in &mut discover.options {
        if let DhcpOption::VendorClass(vendor) = option {
            *vendor = b"PXEClient".to_vec();
        }
    }
    discover
}

#[test]
fn ipxe_nic_roms_are_chainloaded_once_and_the_chainloaded_ipxe_gets_the_script() {
    let lab = lab("tftp_server = \"127.0.0.9\"\n");
    // BIOS: the NIC's iPXE ROM gets undionly.kpxe from the TFTP server...
    let (_, offer) = lab.relayed(ipxe_discover(0x7001, MAC, ClientArch::X86Bios, &[0x13, 0x15]));
    assert_eq!(file_field(&offer), "undionly.kpxe");
    assert_eq!(offer.bootfile_name(), Some(&b"undionly.kpxe"[..]));
    assert_eq!(offer.siaddr, Ipv4Addr::new(127, 0, 0, 9));
    // ... and the chainloaded undionly.kpxe (plain PXEClient) its script URL.
    let (_, offer) = lab.relayed(chainloaded_bios_ipxe(0x7002, MAC));
    assert_eq!(offer.bootfile_name(), Some(&b"http://127.0.0.1/boot.ipxe"[..]));
    // Should a chainloaded build keep the ROM's vendor class, the proxy remembers the machine.
    let (_, offer) = lab.relayed(ipxe_discover(0x7003, MAC, ClientArch::X86Bios, &[0x13, 0x15]));
    assert_eq!(offer.bootfile_name(), Some(&b"http://127.0.0.1/boot.ipxe"[..]));

    // UEFI: firmware PXE gets snponly.efi on 4011; snponly's iPXE sends the full vendor class
    // like a ROM would, and gets the script because the machine was just handed a boot file.
    let uefi_mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x57];
    let mut request = firmware_message(
        MessageType::Request,
        0x7004,
        uefi_mac,
        ClientArch::EfiX64,
        "PXEClient",
    );
    request.ciaddr = SERVER;
    let ack = lab.boot_server(&request);
    assert_eq!(file_field(&ack), "snponly.efi");
    let (_, offer) = lab.relayed(ipxe_discover(
        0x7005,
        uefi_mac,
        ClientArch::EfiX64,
        &[0x13, 0x14, 0x24],
    ));
    assert_eq!(offer.bootfile_name(), Some(&b"https://127.0.0.1/boot.ipxe"[..]));

    // Another machine's ROM is still chainloaded.
    let other = [0x52, 0x54, 0x00, 0x12, 0x34, 0x58];
    let (_, offer) = lab.relayed(ipxe_discover(
        0x7006,
        other,
        ClientArch::EfiX64,
        &[0x13, 0x14, 0x24],
    ));
    assert_eq!(file_field(&offer), "snponly.efi");
}

#[test]
fn a_first_run_answers_no_one_and_says_once_what_would_answer_each_machine() {
    // The embedded defaults, on loopback ports: no rule, so nobody is answered.
    let proxy =
        Proxy::start("[proxy]\nlisten = \"127.0.0.1\"\ndhcp_port = 0\npxe_port = 0\ndhcpv6 = false\n");
    let relay = client_socket(&format!("{RELAY}:{}", proxy.dhcp_port));
    relay
        .set_read_timeout(Some(std::time::Duration::from_secs(1)))
        .unwrap();
    let dhcp = SocketAddr::from((SERVER, proxy.dhcp_port));
    let discover = |xid| {
        let mut message = firmware_message(MessageType::Discover, xid, MAC, ClientArch::X86Bios, "PXEClient");
        message.giaddr = RELAY;
        message.to_bytes()
    };
    let mut buf = [0u8; 1500];
    relay.send_to(&discover(0x7001), dhcp).unwrap();
    let reported = wait_for_line(proxy.service(), "not answering PXE client 52:54:00:12:34:56");
    assert!(reported.contains("arch bios"), "{reported}");
    assert!(
        reported.contains("vendor class \"PXEClient:Arch:00000:UNDI:002001\""),
        "{reported}"
    );
    assert!(
        reported.contains("[[resolver.static.machines]] mac = \"52:54:00:12:34:56\""),
        "{reported}"
    );
    assert!(relay.recv_from(&mut buf).is_err(), "a first run answers no one");
    // The firmware asks again: it is not reported twice.
    relay.send_to(&discover(0x7002), dhcp).unwrap();
    assert!(relay.recv_from(&mut buf).is_err());
    let again: Vec<String> = proxy
        .service()
        .drain_log()
        .into_iter()
        .filter(|l| l.contains("not answering PXE client"))
        .collect();
    assert!(again.is_empty(), "reported once: {again:?}");

    // The line the report suggests, applied with SIGHUP, answers the machine.
    let mut config = std::fs::read_to_string(proxy.config_path()).unwrap();
    config.push_str("[[resolver.static.machines]]\nmac = \"52:54:00:12:34:56\"\n");
    std::fs::write(proxy.config_path(), config).unwrap();
    netboot_testkit::ops::send_signal(proxy.service().id(), "HUP");
    wait_for_line(proxy.service(), "configuration reloaded");
    relay.set_read_timeout(Some(LIVENESS)).unwrap();
    relay.send_to(&discover(0x7003), dhcp).unwrap();
    let (reply, _, _) = receive(&relay);
    assert_eq!(reply.xid, 0x7003);
    assert_eq!(file_field(&reply), "undionly.kpxe");
}

#[test]
fn sighup_changes_the_boot_file_names_without_a_restart() {
    let lab = lab("[proxy.boot_files]\nbios = \"first.kpxe\"\n");
    let discover = |xid| firmware_message(MessageType::Discover, xid, MAC, ClientArch::X86Bios, "PXEClient");
    let (_, reply) = lab.relayed(discover(0x8001));
    assert_eq!(file_field(&reply), "first.kpxe");

    let path = lab.proxy.config_path();
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, config.replace("first.kpxe", "second.kpxe")).unwrap();
    netboot_testkit::ops::send_signal(lab.proxy.service().id(), "HUP");
    let reloaded = wait_for_line(lab.proxy.service(), "configuration reloaded");
    assert!(reloaded.contains("proxy.boot_files.bios"), "{reloaded}");
    let (_, reply) = lab.relayed(discover(0x8002));
    assert_eq!(file_field(&reply), "second.kpxe");
}

#[test]
fn forged_relays_and_ciaddrs_get_no_reply_and_unicasts_to_one_address_are_limited() {
    const ALLOWED_RELAY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
    let lab = lab(&format!(
        "allowed_relays = [\"{ALLOWED_RELAY}\"]\nmax_replies_per_destination = 2\n"
    ));
    let discover = |xid| firmware_message(MessageType::Discover, xid, MAC, ClientArch::X86Bios, "PXEClient");
    let allowed_relay = client_socket(&format!("{ALLOWED_RELAY}:{}", lab.proxy.dhcp_port));
    // Whoever an unlisted giaddr or a ciaddr other than the sender's names would be sent to.
    let victim = client_socket(&format!("127.0.0.5:{}", lab.client.local_addr().unwrap().port()));
    let mut buf = [0u8; 1500];

    let mut forged_relay = discover(0x9001);
    forged_relay.giaddr = RELAY;
    lab.relay.send_to(&forged_relay.to_bytes(), lab.dhcp()).unwrap();
    let mut forged_ciaddr = discover(0x9002);
    forged_ciaddr.ciaddr = Ipv4Addr::new(127, 0, 0, 5);
    lab.client.send_to(&forged_ciaddr.to_bytes(), lab.dhcp()).unwrap();
    let mut relayed = discover(0x9003);
    relayed.giaddr = ALLOWED_RELAY;
    allowed_relay.send_to(&relayed.to_bytes(), lab.dhcp()).unwrap();
    // Datagrams are handled in order: once the allowed relay has its answer, the forged
    // requests before it were dropped, not delayed.
    let (offer, _, _) = receive(&allowed_relay);
    assert_eq!(offer.xid, 0x9003);
    for socket in [&lab.relay, &victim] {
        socket.set_nonblocking(true).unwrap();
        assert!(
            socket.recv_from(&mut buf).is_err(),
            "a forged destination got a reply"
        );
    }

    // A flood of boot-server requests from one address: two replies a second reach it, and
    // another address is answered at once.
    let flooding = client_socket("127.0.0.6:0");
    let request = |xid| {
        let mut request = firmware_message(MessageType::Request, xid, MAC, ClientArch::EfiX64, "PXEClient");
        request.flags = 0;
        request.to_bytes()
    };
    for xid in 0..20 {
        flooding.send_to(&request(0xa000 + xid), lab.pxe()).unwrap();
    }
    let other = client_socket("127.0.0.7:0");
    other.send_to(&request(0xb000), lab.pxe()).unwrap();
    let (ack, _, _) = receive(&other);
    assert_eq!(ack.xid, 0xb000);
    flooding.set_nonblocking(true).unwrap();
    let answered = std::iter::from_fn(|| flooding.recv_from(&mut buf).ok()).count();
    assert!(
        (1..=4).contains(&answered),
        "{answered} of 20 flooded requests answered"
    );
}
