//! Broadcast and IP_PKTINFO behaviour on a real (virtual) Ethernet link: the proxy runs in
//! one network namespace on the standard ports, a client in another sends a broadcast
//! DISCOVER, and the OFFER must come back as a broadcast from the address of the interface
//! the request arrived on, with no address configured anywhere. Both namespaces are created
//! by the test and always removed.

mod common;

use std::net::{SocketAddr, UdpSocket};

use common::*;
use netboot_core::ClientArch;
use netboot_dhcp::wire::MessageType;
use netboot_testkit::netns::{run_in, NamespacePair, SERVER_DEV};
use netboot_testkit::process::{have_tool, is_root};

/// Netns tests need root and iproute2: skip without them, fail under CI.
fn can_run() -> bool {
    is_root() && have_tool("ip", "iproute2")
}

#[test]
fn broadcast_discover_is_answered_by_broadcast_from_the_receiving_interface() {
    if !can_run() {
        return;
    }
    let namespaces = NamespacePair::create("pxp", [10, 199, 77]);
    let _proxy = Proxy::start_with(
        &format!("[proxy]\ninterfaces = [\"{SERVER_DEV}\"]\n[resolver.static]\nunmatched = \"exit\"\n"),
        Some(&namespaces.server),
    );
    let server = namespaces.server_ip;
    let client_ip = namespaces.client_ip;
    route_broadcasts_through_the_link(&namespaces.client);

    let (offer, offer_from, discover, ack, ack_from, request) = run_in(&namespaces.client, move || {
        // Like firmware: no address yet, DHCP client port 68, broadcast to 67.
        let socket = client_socket("0.0.0.0:68");
        socket.set_broadcast(true).unwrap();
        let discover = firmware_message(
            MessageType::Discover,
            0xabc,
            [0x52, 0x54, 0, 1, 2, 3],
            ClientArch::EfiX64,
            "PXEClient",
        );
        socket
            .send_to(&discover.to_bytes(), "255.255.255.255:67")
            .unwrap();
        let (offer, offer_from, _) = receive(&socket);

        // Like OVMF: the boot-server request leaves from port 4011 and expects the reply there.
        let pxe = UdpSocket::bind((client_ip, 4011)).unwrap();
        pxe.set_read_timeout(Some(LIVENESS)).unwrap();
        let mut request = firmware_message(
            MessageType::Request,
            0xabd,
            [0x52, 0x54, 0, 1, 2, 3],
            ClientArch::EfiX64,
            "PXEClient",
        );
        request.ciaddr = client_ip;
        pxe.send_to(&request.to_bytes(), (offer.server_id().unwrap(), 4011))
            .unwrap();
        let (ack, ack_from, _) = receive(&pxe);
        (offer, offer_from, discover, ack, ack_from, request)
    });

    assert_eq!(
        offer_from,
        SocketAddr::from((server, 67)),
        "reply sent from the receiving interface's address"
    );
    assert_proxy_reply(&offer, &discover, MessageType::Offer, server);
    assert_eq!(offer.siaddr, server);
    assert_eq!(file_field(&offer), "snponly.efi");

    assert_eq!(ack_from, SocketAddr::from((server, 4011)));
    assert_proxy_reply(&ack, &request, MessageType::Ack, server);
    assert_eq!(file_field(&ack), "snponly.efi");
}
