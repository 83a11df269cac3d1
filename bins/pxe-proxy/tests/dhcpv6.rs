//! DHCPv6 through the real `pxe-proxy` binary: boot-only answers on loopback for every flow
//! (firmware Solicit, EDK2's port-4011 request, iPXE's Information-request, a relayed
//! Solicit), `dhcpv6 = false`, and on a real (virtual) Ethernet link a multicast Solicit from a
//! link-local address answered from the receiving interface.

mod common;

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};

use common::*;
use netboot_core::ClientArch;
use netboot_dhcp::v6::wire::*;
use netboot_testkit::netns::{ip, run_in, NamespacePair, CLIENT_DEV, SERVER_DEV};
use netboot_testkit::process::{have_tool, is_root};

const SERVER6: &str = "2001:db8::1";

fn have_ipv6() -> bool {
    UdpSocket::bind("[::1]:0").is_ok()
}

fn start(extra: &str) -> Proxy {
    Proxy::start(&format!(
        "[resolver.static]\nunmatched = \"exit\"\n[proxy]\nlisten = \"127.0.0.1\"\ndhcp_port = 0\npxe_port = 0\ndhcpv6_port = 0\nserver_address6 = \"{SERVER6}\"\n{extra}\n"
    ))
}

fn client6(addr: &str) -> UdpSocket {
    let socket = UdpSocket::bind(addr).unwrap();
    socket.set_read_timeout(Some(LIVENESS)).unwrap();
    socket
}

fn receive6(socket: &UdpSocket) -> (Dhcp6Message, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (len, from) = socket.recv_from(&mut buf).expect("no reply from pxe-proxy");
    (Dhcp6Message::parse(&buf[..len]).expect("the reply parses"), from)
}

/// A firmware message: DUID-LL client id (a loopback source shows no MAC), an IA_NA, the
/// architecture and the vendor class.
fn firmware(msg_type: MessageType, vendor: &str, arch: ClientArch) -> Dhcp6Message {
    Dhcp6Message {
        msg_type,
        header: Header::Transaction([0x12, 0x34, 0x56]),
        options: vec![
            Dhcp6Option::ClientId(Duid::link_layer([0x52, 0x54, 0, 0x66, 0, 1])),
            Dhcp6Option::IaNa(Ia {
                iaid: 1,
                t1: 0,
                t2: 0,
                options: Vec::new(),
            }),
            Dhcp6Option::Oro(vec![code::BOOTFILE_URL, code::BOOTFILE_PARAM]),
            Dhcp6Option::ClientArch(vec![arch]),
            Dhcp6Option::VendorClass(VendorClass {
                enterprise: PXE_ENTERPRISE,
                classes: vec![vendor.as_bytes().to_vec()],
            }),
        ],
    }
}

fn assert_boot_only(reply: &Dhcp6Message, request: &Dhcp6Message, msg_type: MessageType, url: &str) {
    assert_eq!(reply.msg_type, msg_type);
    assert_eq!(reply.header, request.header);
    assert_eq!(reply.client_id(), request.client_id());
    assert!(reply.server_id().is_some());
    assert_eq!(reply.bootfile_url(), Some(url.as_bytes()));
    assert!(
        reply
            .ia_nas()
            .all(|ia| !ia.options.iter().any(|o| matches!(o, Dhcp6Option::IaAddr(_)))),
        "never an address"
    );
}

#[test]
fn firmware_and_ipxe_get_boot_options_and_never_addresses() {
    if !have_ipv6() {
        return;
    }
    // TFTP on another host: named in the port-4011 Reply only, as the Advertise names the
    // server EDK2 sends that Request to.
    let proxy = start("tftp_server6 = \"2001:db8::69\"");
    let server: SocketAddr = (Ipv6Addr::LOCALHOST, proxy.dhcpv6_port.unwrap()).into();
    let socket = client6("[::1]:0");

    let solicit = firmware(
        MessageType::Solicit,
        "PXEClient:Arch:00007:UNDI:003000",
        ClientArch::EfiX64,
    );
    socket.send_to(&solicit.to_bytes().unwrap(), server).unwrap();
    let (advertise, from) = receive6(&socket);
    assert_eq!(from, server, "answered from the port it was sent to");
    assert_boot_only(
        &advertise,
        &solicit,
        MessageType::Advertise,
        "tftp://[2001:db8::1]/snponly.efi",
    );
    assert_eq!(advertise.ia_nas().count(), 0);

    // EDK2's boot-server request: from its own port 4011 to ours, answered back there.
    let mut request = firmware(
        MessageType::Request,
        "PXEClient:Arch:00007:UNDI:003000",
        ClientArch::EfiX64,
    );
    request.options.retain(|o| o.code() != code::IA_NA);
    request
        .options
        .push(Dhcp6Option::ServerId(advertise.server_id().unwrap().clone()));
    let pxe = client6("[::1]:0");
    let pxe_server: SocketAddr = (Ipv6Addr::LOCALHOST, proxy.pxe6_port.unwrap()).into();
    pxe.send_to(&request.to_bytes().unwrap(), pxe_server).unwrap();
    let (reply, from) = receive6(&pxe);
    assert_eq!(from, pxe_server);
    assert_boot_only(
        &reply,
        &request,
        MessageType::Reply,
        "tftp://[2001:db8::69]/snponly.efi",
    );

    // The snponly.efi this machine was just handed asks statelessly: the script URL.
    let mut inform = firmware(
        MessageType::InformationRequest,
        "PXEClient:Arch:00007:UNDI:003010",
        ClientArch::EfiX64,
    );
    inform.options.retain(|o| o.code() != code::IA_NA);
    inform
        .options
        .push(Dhcp6Option::UserClass(vec![b"iPXE".to_vec()]));
    socket.send_to(&inform.to_bytes().unwrap(), server).unwrap();
    let (reply, _) = receive6(&socket);
    assert_boot_only(
        &reply,
        &inform,
        MessageType::Reply,
        "https://[2001:db8::1]/boot.ipxe",
    );

    // HTTP Boot: the URL of the boot program, vendor class HTTPClient.
    let http = firmware(
        MessageType::Solicit,
        "HTTPClient:Arch:00016:UNDI:003000",
        ClientArch::EfiX64Http,
    );
    socket.send_to(&http.to_bytes().unwrap(), server).unwrap();
    let (advertise, _) = receive6(&socket);
    assert_boot_only(
        &advertise,
        &http,
        MessageType::Advertise,
        "http://[2001:db8::1]/snponly.efi",
    );
    assert_eq!(
        advertise.vendor_classes().next().unwrap().classes,
        [b"HTTPClient".to_vec()]
    );

    // iPXE soliciting an address is left to the address server: no answer. A Request for the
    // site's server neither; the next datagram answered proves the proxy is still there.
    let mut ipxe = firmware(
        MessageType::Solicit,
        "PXEClient:Arch:00007:UNDI:003010",
        ClientArch::EfiX64,
    );
    ipxe.options.push(Dhcp6Option::UserClass(vec![b"iPXE".to_vec()]));
    socket.send_to(&ipxe.to_bytes().unwrap(), server).unwrap();
    let mut for_the_site = firmware(
        MessageType::Request,
        "PXEClient:Arch:00007:UNDI:003000",
        ClientArch::EfiX64,
    );
    for_the_site.options.push(Dhcp6Option::ServerId(Duid(vec![
        0, 1, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ])));
    socket.send_to(&for_the_site.to_bytes().unwrap(), server).unwrap();
    socket.send_to(&solicit.to_bytes().unwrap(), server).unwrap();
    let (reply, _) = receive6(&socket);
    assert_eq!(
        reply.msg_type,
        MessageType::Advertise,
        "only the last Solicit is answered"
    );
}

#[test]
fn relayed_solicits_are_answered_to_the_relay_agent() {
    if !have_ipv6() {
        return;
    }
    let proxy = start("tftp_server6 = \"2001:db8::69\"");
    let server: SocketAddr = (Ipv6Addr::LOCALHOST, proxy.dhcpv6_port.unwrap()).into();
    let relay = client6("[::1]:0");
    let solicit = Dhcp6Message {
        options: firmware(
            MessageType::Solicit,
            "PXEClient:Arch:00011:UNDI:003000",
            ClientArch::EfiArm64,
        )
        .options
        .into_iter()
        .filter(|o| o.code() != code::CLIENT_ID)
        .chain([Dhcp6Option::ClientId(Duid([&[0, 4][..], &[9; 16]].concat()))])
        .collect(),
        ..firmware(MessageType::Solicit, "", ClientArch::EfiArm64)
    };
    let forward = Dhcp6Message {
        msg_type: MessageType::RelayForward,
        header: Header::Relay {
            hop_count: 0,
            link_address: "2001:db8:5::1".parse().unwrap(),
            peer_address: "fe80::5054:ff:fe66:2".parse().unwrap(),
        },
        options: vec![
            Dhcp6Option::InterfaceId(b"vlan5".to_vec()),
            Dhcp6Option::RelayMessage(Box::new(solicit.clone())),
        ],
    };
    relay.send_to(&forward.to_bytes().unwrap(), server).unwrap();
    let (reply, _) = receive6(&relay);
    assert_eq!(reply.msg_type, MessageType::RelayReply);
    assert_eq!(reply.header, forward.header);
    assert_eq!(reply.interface_id(), Some(&b"vlan5"[..]));
    let advertise = reply.relayed().unwrap();
    // The Advertise names this server, where EDK2 sends its port-4011 Request next; only
    // that Reply names `tftp_server6`.
    assert_boot_only(
        advertise,
        &solicit,
        MessageType::Advertise,
        &format!("tftp://[{SERVER6}]/snponly-arm64.efi"),
    );
}

#[test]
fn dhcpv6_can_be_turned_off() {
    let proxy = start("dhcpv6 = false");
    assert_eq!(proxy.dhcpv6_port, None);
    assert_eq!(proxy.pxe6_port, None);
}

/// Waits (bounded) until `dev` in `ns` has a link-local address that passed duplicate address
/// detection, which a freshly created veth gets within a second or two.
fn wait_for_link_local(ns: &str, dev: &str) {
    for _ in 0..100 {
        let output = std::process::Command::new("ip")
            .args(["-n", ns, "-6", "addr", "show", "dev", dev, "scope", "link"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        if text.contains("fe80") && !text.contains("tentative") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{dev} in {ns} got no usable link-local address");
}

/// Netns tests need root and iproute2: skip without them, fail under CI.
fn can_run() -> bool {
    is_root() && have_tool("ip", "iproute2")
}

#[test]
fn multicast_solicit_from_a_link_local_address_is_answered_through_the_link() {
    if !can_run() {
        return;
    }
    let namespaces = NamespacePair::create("pxp6", [10, 199, 78]);
    for (ns, dev) in [(&namespaces.server, SERVER_DEV), (&namespaces.client, CLIENT_DEV)] {
        wait_for_link_local(ns, dev);
    }
    ip(&[
        "-n",
        &namespaces.server,
        "-6",
        "addr",
        "add",
        "fd99:78::1/64",
        "dev",
        SERVER_DEV,
        "nodad",
    ]);
    let _proxy = Proxy::start_with(
        &format!("[resolver.static]\nunmatched = \"exit\"\n[proxy]\ninterfaces = [\"{SERVER_DEV}\"]\n"),
        Some(&namespaces.server),
    );
    let (advertise, from, solicit) = run_in(&namespaces.client, move || {
        let ifindex = nix::net::if_::if_nametoindex(CLIENT_DEV).unwrap();
        // Like firmware: from the DHCPv6 client port to All_DHCP_Relay_Agents_and_Servers.
        let socket = client6("[::]:546");
        let solicit = Dhcp6Message {
            options: firmware(
                MessageType::Solicit,
                "PXEClient:Arch:00007:UNDI:003000",
                ClientArch::EfiX64,
            )
            .options
            .into_iter()
            .map(|o| match o {
                Dhcp6Option::ClientId(_) => Dhcp6Option::ClientId(Duid([&[0, 4][..], &[7; 16]].concat())),
                other => other,
            })
            .collect(),
            ..firmware(MessageType::Solicit, "", ClientArch::EfiX64)
        };
        let group = std::net::SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, ifindex);
        // The group membership is set up right after start; a resend covers the first one.
        let mut answer = None;
        for _ in 0..5 {
            socket.send_to(&solicit.to_bytes().unwrap(), group).unwrap();
            socket
                .set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let mut buf = [0u8; 2048];
            if let Ok((len, from)) = socket.recv_from(&mut buf) {
                answer = Some((Dhcp6Message::parse(&buf[..len]).unwrap(), from));
                break;
            }
        }
        let (advertise, from) = answer.expect("no Advertise over the link");
        (advertise, from, solicit)
    });
    let SocketAddr::V6(from) = from else {
        panic!("{from}")
    };
    assert!(
        from.ip().segments()[0] == 0xfe80,
        "from the server's link-local address: {from}"
    );
    assert_eq!(from.port(), 547);
    assert_boot_only(
        &advertise,
        &solicit,
        MessageType::Advertise,
        "tftp://[fd99:78::1]/snponly.efi",
    );
    // The server DUID is a DUID-LL of one of the server's NICs.
    assert!(matches!(
        advertise.server_id().unwrap().view(),
        DuidView::LinkLayer { .. }
    ));
}
