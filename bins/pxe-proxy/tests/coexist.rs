//! A host whose own DHCP server holds port 67: the proxy receives the requests through a
//! packet socket beside it and still answers PXE clients from port 67, while the DHCP server
//! (Debian's dnsmasq here) hands out the addresses. Both namespaces are created by the test
//! and always removed.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use netboot_core::ClientArch;
use netboot_dhcp::wire::{DhcpMessage, MessageType};
use netboot_testkit::netns::{self, run_in, NamespacePair, SERVER_DEV};
use netboot_testkit::process::{have_tool, is_root};

/// The site DHCP server, killed on drop.
struct SiteDhcp(Child);

impl Drop for SiteDhcp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_dnsmasq(namespaces: &NamespacePair, dir: &std::path::Path) -> SiteDhcp {
    let range = {
        let [a, b, c, _] = namespaces.server_ip.octets();
        format!("{a}.{b}.{c}.100,{a}.{b}.{c}.150,255.255.255.0,1h")
    };
    let child = netns::command(&namespaces.server, "dnsmasq")
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--port=0",
            &format!("--interface={SERVER_DEV}"),
            &format!("--dhcp-range={range}"),
        ])
        .arg(format!("--dhcp-leasefile={}", dir.join("leases").display()))
        .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting dnsmasq");
    let site = SiteDhcp(child);
    // Ready once port 67 is taken in the server's namespace.
    let server = namespaces.server.clone();
    let deadline = Instant::now() + LIVENESS;
    while run_in(&server, || std::net::UdpSocket::bind("0.0.0.0:67").is_ok()) {
        assert!(Instant::now() < deadline, "dnsmasq did not bind port 67");
        std::thread::sleep(Duration::from_millis(50));
    }
    site
}

#[test]
fn the_proxy_answers_beside_a_dhcp_server_holding_port_67() {
    if !(is_root() && have_tool("ip", "iproute2") && have_tool("dnsmasq", "dnsmasq-base")) {
        return;
    }
    let namespaces = NamespacePair::create("pxc", [10, 199, 79]);
    let dir = tempfile::tempdir().unwrap();
    let _dnsmasq = start_dnsmasq(&namespaces, dir.path());
    let proxy = Proxy::start_with(
        &format!(
            "[proxy]\ninterfaces = [\"{SERVER_DEV}\"]\ndhcpv6 = false\n\
             [resolver.static]\nunmatched = \"exit\"\n"
        ),
        Some(&namespaces.server),
    );
    assert!(
        proxy.dhcp_label.contains("packet socket"),
        "the proxy says it captures beside the DHCP server: {}",
        proxy.dhcp_label
    );
    assert_eq!(proxy.dhcp_port, 67);

    // Like firmware without an address: broadcasts leave through the only link.
    route_broadcasts_through_the_link(&namespaces.client);
    let mac = [0x52, 0x54, 0, 7, 8, 9];
    let (replies, discover) = run_in(&namespaces.client, move || {
        let socket = client_socket("0.0.0.0:68");
        socket.set_broadcast(true).unwrap();
        let discover = firmware_message(
            MessageType::Discover,
            0x5150,
            mac,
            ClientArch::EfiX64,
            "PXEClient",
        );
        socket
            .send_to(&discover.to_bytes(), "255.255.255.255:67")
            .unwrap();
        // Both servers answer: the address from dnsmasq, the boot program from the proxy.
        let mut replies: Vec<(DhcpMessage, SocketAddr)> = Vec::new();
        while replies.len() < 2 {
            let (reply, from, _) = receive(&socket);
            replies.push((reply, from));
        }
        (replies, discover)
    });
    let server = namespaces.server_ip;
    let (address_offer, _) = replies
        .iter()
        .find(|(reply, _)| !reply.yiaddr.is_unspecified())
        .expect("dnsmasq offered an address");
    assert_eq!(address_offer.xid, 0x5150);
    let (proxy_offer, from) = replies
        .iter()
        .find(|(reply, _)| reply.yiaddr.is_unspecified())
        .expect("the proxy answered");
    assert_eq!(
        *from,
        SocketAddr::from((server, 67)),
        "sent from port 67 and the interface's address"
    );
    assert_proxy_reply(proxy_offer, &discover, MessageType::Offer, server);
    assert_eq!(file_field(proxy_offer), "snponly.efi");
}
