//! Golden tests from real firmware captures: every DHCP datagram parses, re-encodes byte for
//! byte, and its rendering and classification match `testdata/dhcp/<capture>.txt`.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use netboot_core::BootDecision;
use netboot_dhcp::chainload::ChainloadGuard;
use netboot_dhcp::proxy::{classify, ListenPort, ProxySettings, RequestMeta};
use netboot_dhcp::wire::{DhcpMessage, BOOTREQUEST};
use netboot_testkit::{golden, pcap, testdata};

const DHCP_PORTS: [u16; 3] = [67, 68, 4011];

#[test]
fn captured_packets_round_trip_and_match_golden() {
    let mut corpus = Vec::new();
    for path in pcap::captures() {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let datagrams = pcap::udp_datagrams(&std::fs::read(&path).unwrap());
        let mut rendered = String::new();
        let mut count = 0;
        // One capture is one boot: the server remembers which machines it chainloaded.
        let mut guard = ChainloadGuard::default();
        // An arbitrary origin: the responder never reads the clock itself.
        #[allow(clippy::disallowed_methods)]
        let boot_started = Instant::now();
        for datagram in datagrams.iter().filter(|d| DHCP_PORTS.contains(&d.dst.port())) {
            let message = DhcpMessage::parse(&datagram.payload)
                .unwrap_or_else(|e| panic!("{name} frame {}: {e}", datagram.frame));
            assert_eq!(
                message.to_bytes(),
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
            rendered.push_str(&common::render(&message));
            if message.op == BOOTREQUEST {
                rendered.push_str(&classification(
                    &datagram.payload,
                    datagram.src,
                    datagram.dst,
                    &mut guard,
                    boot_started,
                ));
                corpus.push((format!("{name}-{}", datagram.frame), datagram.payload.clone()));
            }
        }
        assert!(count > 0, "{name} has no DHCP packets");
        golden::check(&testdata().join("dhcp").join(format!("{name}.txt")), &rendered);
    }
    common::write_corpus("dhcp", corpus);
}

/// The classification and the reply this proxy would give, as golden text.
fn classification(
    payload: &[u8],
    src: SocketAddrV4,
    dst: SocketAddrV4,
    guard: &mut ChainloadGuard,
    now: Instant,
) -> String {
    let port = if dst.port() == 4011 {
        ListenPort::PxeBootServer
    } else {
        ListenPort::Dhcp
    };
    let server_addr = Ipv4Addr::new(10, 77, 0, 1);
    let meta = RequestMeta {
        source: src,
        server_addr,
        port,
    };
    match classify(&meta, payload) {
        Err(reason) => format!("  => drop: {reason}\n"),
        Ok(pending) => {
            let class = pending.class();
            let request = pending.request();
            let reply = pending
                .respond_remembering(&BootDecision::EXIT, &ProxySettings::default(), guard, now)
                .unwrap();
            let answer = DhcpMessage::parse(&reply.bytes).unwrap();
            let file = String::from_utf8_lossy(answer.bootfile_name().unwrap_or_default()).into_owned();
            format!(
                "  => {:?} arch={} mac={} uuid={} user_class={:?} ndi={:?} stage={:?}\n  => reply {:?} to {:?} siaddr={} file={file:?}\n",
                class.kind,
                class.arch,
                class.mac,
                request.uuid.map(|u| u.to_string()).unwrap_or_else(|| "-".into()),
                class.user_class,
                class.ndi,
                request.stage,
                answer.message_type().unwrap(),
                reply.target,
                answer.siaddr,
            )
        }
    }
}

#[test]
fn corpus_runs_through_the_fuzzing_entry_point() {
    // Every prefix and a few corruptions of real packets must not panic either.
    common::replay_corpus("dhcp", 7, 240, 11, netboot_dhcp::fuzzing::parse_round_trip);
}
