//! Golden tests from real DHCPv6 captures (OVMF PXE and HTTP Boot over IPv6, iPXE stateful and
//! stateless, a dnsmasq relay agent): every datagram parses and re-encodes byte for byte, and
//! its rendering, classification and this server's reply match `testdata/dhcpv6/<capture>.txt`.

mod common;

use std::net::SocketAddrV6;
use std::time::Instant;

use netboot_core::BootDecision;
use netboot_dhcp::chainload::ChainloadGuard;
use netboot_dhcp::proxy::{ListenPort, ProxySettings};
use netboot_dhcp::v6::class::ClientMacs;
use netboot_dhcp::v6::proxy::{classify, Dhcp6Settings, RequestMeta6};
use netboot_dhcp::v6::wire::{Dhcp6Message, Duid, MessageType};
use netboot_testkit::{golden, pcap, testdata};

const DHCP6_PORTS: [u16; 3] = [546, 547, 4011];

/// The server's DUID in the lab captures (DUID-LL of the lab proxy's interface).
fn settings() -> Dhcp6Settings {
    Dhcp6Settings::new(Duid::link_layer([0x02, 0, 0, 0, 0, 0x01]))
}

#[test]
fn captured_dhcpv6_round_trips_and_matches_golden() {
    let mut corpus = Vec::new();
    for path in pcap::captures_in("pcap/ipv6") {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let datagrams = pcap::udp6_datagrams(&std::fs::read(&path).unwrap());
        let mut rendered = String::new();
        let mut count = 0;
        let mut guard = ChainloadGuard::default();
        let mut macs = ClientMacs::default();
        // An arbitrary origin: the responder never reads the clock itself.
        #[allow(clippy::disallowed_methods)]
        let boot_started = Instant::now();
        for datagram in datagrams.iter().filter(|d| DHCP6_PORTS.contains(&d.dst.port())) {
            let message = Dhcp6Message::parse(&datagram.payload)
                .unwrap_or_else(|e| panic!("{name} frame {}: {e}", datagram.frame));
            assert_eq!(
                message.to_bytes().unwrap(),
                datagram.payload,
                "{name} frame {} re-encodes",
                datagram.frame
            );
            count += 1;
            rendered.push_str(&common::frame_heading(
                datagram.frame,
                datagram.src,
                datagram.dst,
                datagram.payload.len(),
            ));
            rendered.push_str(&common::render6(&message));
            let from_client = matches!(
                message.msg_type,
                MessageType::Solicit
                    | MessageType::Request
                    | MessageType::Confirm
                    | MessageType::Renew
                    | MessageType::Rebind
                    | MessageType::Release
                    | MessageType::Decline
                    | MessageType::InformationRequest
                    | MessageType::RelayForward
            );
            if from_client && matches!(datagram.dst.port(), 547 | 4011) {
                rendered.push_str(&answer(
                    &datagram.payload,
                    datagram.src,
                    datagram.dst,
                    &mut guard,
                    &mut macs,
                    boot_started,
                ));
                corpus.push((format!("{name}-{}", datagram.frame), datagram.payload.clone()));
            }
        }
        assert!(count > 0, "{name} has no DHCPv6 packets");
        golden::check(&testdata().join("dhcpv6").join(format!("{name}.txt")), &rendered);
    }
    common::write_corpus("dhcpv6", corpus);
}

/// The classification and the reply this server would give, as golden text.
fn answer(
    payload: &[u8],
    src: SocketAddrV6,
    dst: SocketAddrV6,
    guard: &mut ChainloadGuard,
    macs: &mut ClientMacs,
    now: Instant,
) -> String {
    let port = if dst.port() == 4011 {
        ListenPort::PxeBootServer
    } else {
        ListenPort::Dhcp
    };
    let meta = RequestMeta6 {
        source: src,
        server_addr: "fd77:0:0:77::1".parse().unwrap(),
        port,
        source_mac: None,
    };
    let settings = settings();
    match classify(&meta, payload, &settings, macs) {
        Err(reason) => format!("  => drop: {reason}\n"),
        Ok(pending) => {
            pending.remember_mac(macs);
            let class = pending.class();
            let request = pending.request();
            let reply = pending
                .respond_remembering(
                    &BootDecision::EXIT,
                    &ProxySettings::default(),
                    &settings,
                    guard,
                    now,
                )
                .unwrap();
            let parsed = Dhcp6Message::parse(&reply.bytes).unwrap();
            format!(
                "  => {:?} arch={} mac={} uuid={} user_class={:?} ndi={:?} stage={:?} relay_hops={}\n  => reply {:?} to {} url={:?}\n",
                class.kind,
                class.arch,
                class.mac,
                request.uuid.map(|u| u.to_string()).unwrap_or_else(|| "-".into()),
                class.user_class,
                class.ndi,
                request.stage,
                pending.relay_hops(),
                parsed.msg_type,
                reply.target,
                reply.url,
            )
        }
    }
}

#[test]
fn corpus_runs_through_the_fuzzing_entry_point() {
    // Every prefix and a few corruptions of real packets must not panic either.
    common::replay_corpus("dhcpv6", 1, 0, 5, netboot_dhcp::fuzzing::dhcpv6_round_trip);
}
