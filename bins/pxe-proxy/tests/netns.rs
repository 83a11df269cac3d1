//! Broadcast and IP_PKTINFO behaviour on a real (virtual) Ethernet link: the proxy runs in
//! one network namespace on the standard ports, a client in another sends a broadcast
//! DISCOVER, and the OFFER must come back as a broadcast from the address of the interface
//! the request arrived on, with no address configured anywhere. Both namespaces are created
//! by the test and always removed.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;

use common::*;
use netboot_core::ClientArch;
use netboot_dhcp::wire::MessageType;
use netboot_testkit::process::{have_tool, is_root};

struct Namespaces {
    server: String,
    client: String,
}

impl Namespaces {
    fn create(subnet: u8) -> Self {
        let id = std::process::id();
        let ns = Self {
            server: format!("pxp-s-{id}"),
            client: format!("pxp-c-{id}"),
        };
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), ns.server.clone()],
            vec!["netns".into(), "add".into(), ns.client.clone()],
            format!(
                "link add pxp-s netns {} type veth peer name pxp-c netns {}",
                ns.server, ns.client
            )
            .split(' ')
            .map(String::from)
            .collect(),
        ];
        for step in steps {
            ip(&step);
        }
        for (name, dev, host) in [(&ns.server, "pxp-s", 1), (&ns.client, "pxp-c", 2)] {
            let run = |args: &str| {
                let mut full = vec!["-n".to_string(), name.clone()];
                full.extend(args.split(' ').map(String::from));
                ip(&full);
            };
            run(&format!("addr add 10.199.{subnet}.{host}/24 dev {dev}"));
            run(&format!("link set {dev} up"));
            run("link set lo up");
        }
        ns
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

fn ip(args: &[String]) {
    let status = Command::new("ip").args(args).status().expect("running ip");
    assert!(status.success(), "ip {} failed", args.join(" "));
}

/// Netns tests need root and iproute2: skip without them, fail under CI.
fn can_run() -> bool {
    is_root() && have_tool("ip", "iproute2")
}

/// Runs `f` on a thread that has entered network namespace `name`.
fn in_netns<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{name}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("entering the client namespace");
        f()
    })
    .join()
    .unwrap()
}

#[test]
fn broadcast_discover_is_answered_by_broadcast_from_the_receiving_interface() {
    if !can_run() {
        return;
    }
    let namespaces = Namespaces::create(77);
    let _proxy = Proxy::start_with("[proxy]\ninterfaces = [\"pxp-s\"]\n", Some(&namespaces.server));
    let server = Ipv4Addr::new(10, 199, 77, 1);

    let (offer, offer_from, discover, ack, ack_from, request) = in_netns(&namespaces.client, move || {
        ip(&[
            "route".into(),
            "add".into(),
            "default".into(),
            "dev".into(),
            "pxp-c".into(),
        ]);
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
        let pxe = UdpSocket::bind("10.199.77.2:4011").unwrap();
        pxe.set_read_timeout(Some(LIVENESS)).unwrap();
        let mut request = firmware_message(
            MessageType::Request,
            0xabd,
            [0x52, 0x54, 0, 1, 2, 3],
            ClientArch::EfiX64,
            "PXEClient",
        );
        request.ciaddr = Ipv4Addr::new(10, 199, 77, 2);
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
