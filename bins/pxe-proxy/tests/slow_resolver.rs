//! A resolver that never answers for some machines must not delay anyone else, and those
//! machines still get the fallback answer once the deadline passes.

mod common;

use std::sync::Arc;

use common::firmware_message;
use netboot_core::{BootDecision, BootRequest, BootResolver, ClientArch, MacAddr, ResolveFuture};
use netboot_dhcp::proxy::ListenPort;
use netboot_dhcp::wire::{DhcpMessage, MessageType};
use netboot_service::{Bound as _, Context, Service as _, Shutdown};

const SLOW: [u8; 6] = [0x52, 0x54, 0, 0, 0, 0x51];

/// Hangs forever for the `SLOW` MAC, answers at once for everyone else.
#[derive(Debug)]
struct HangsForOneMachine;

impl BootResolver for HangsForOneMachine {
    fn resolve<'a>(&'a self, request: &'a BootRequest) -> ResolveFuture<'a> {
        let hang = request.mac == MacAddr(SLOW);
        Box::pin(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            Ok(BootDecision::EXIT)
        })
    }
    fn name(&self) -> &'static str {
        "hangs-for-one-machine"
    }
}

#[tokio::test]
async fn slow_lookups_do_not_delay_other_clients() {
    let config = netboot_config::Config::from_toml_str(
        "[proxy]\nlisten = \"127.0.0.1\"\ndhcp_port = 0\npxe_port = 0\ndhcpv6_port = 0\n[resolver]\ndeadline_ms = 500\n",
    )
    .unwrap();
    let context = Context::with_resolver(
        netboot_records::Telemetry::disabled(),
        Arc::new(HangsForOneMachine),
    );
    let proxy = pxe_proxy::Proxy::bind(Arc::new(config), context).await.unwrap();
    let pxe = proxy
        .ports()
        .into_iter()
        .find(|(port, _)| *port == ListenPort::PxeBootServer)
        .unwrap()
        .1;
    let (stop, shutdown) = Shutdown::new();
    let server = tokio::spawn(proxy.serve(shutdown));

    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let request = |xid: u32, mac: [u8; 6]| {
        let mut message = firmware_message(MessageType::Request, xid, mac, ClientArch::EfiX64, "PXEClient");
        message.ciaddr = std::net::Ipv4Addr::LOCALHOST;
        message.to_bytes()
    };
    for xid in 1..=3 {
        client.send_to(&request(xid, SLOW), pxe).await.unwrap();
    }
    for xid in 10..15 {
        client
            .send_to(&request(xid, [0x52, 0x54, 0, 0, 0, xid as u8]), pxe)
            .await
            .unwrap();
    }

    let mut order = Vec::new();
    let mut buf = [0u8; 1500];
    for _ in 0..8 {
        let (len, _) = tokio::time::timeout(common::LIVENESS, client.recv_from(&mut buf))
            .await
            .expect("every client is answered, the slow ones after the deadline")
            .unwrap();
        let reply = DhcpMessage::parse(&buf[..len]).unwrap();
        assert_eq!(reply.message_type(), Some(MessageType::Ack));
        order.push(reply.xid);
    }
    assert_eq!(
        &order[..5],
        &[10, 11, 12, 13, 14],
        "fast clients first: {order:?}"
    );
    let mut slow = order[5..].to_vec();
    slow.sort();
    assert_eq!(slow, [1, 2, 3], "slow clients get the fallback answer: {order:?}");

    stop.drain();
    server.await.unwrap().unwrap();
}
