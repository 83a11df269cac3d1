//! Entry points shared by the cargo-fuzz targets and the corpus test.

use std::net::{Ipv4Addr, SocketAddrV4};

use netboot_core::BootDecision;

use crate::proxy::{classify, ListenPort, ProxySettings, RequestMeta};
use crate::pxe::{user_classes, IpxeFeatures, PxeVendorOptions};
use crate::wire::DhcpMessage;

/// Parses arbitrary bytes; whatever parses must re-encode to exactly the same bytes. Then
/// runs the option helpers and the whole responder on it.
pub fn parse_round_trip(data: &[u8]) {
    let Ok(message) = DhcpMessage::parse(data) else {
        return;
    };
    let bytes = message.to_bytes();
    assert_eq!(bytes, data, "emit(parse(b)) == b");
    if let Some(vendor) = message.vendor_specific() {
        if let Ok(pxe) = PxeVendorOptions::parse(vendor) {
            assert_eq!(PxeVendorOptions::parse(&pxe.to_bytes()).as_ref(), Ok(&pxe));
        }
    }
    if let Some(classes) = message.user_class() {
        assert!(!user_classes(classes).is_empty());
    }
    if let Some(ipxe) = message.ipxe_encapsulated() {
        let _ = IpxeFeatures::parse(ipxe);
    }
    for port in [ListenPort::Dhcp, ListenPort::PxeBootServer] {
        let meta = RequestMeta {
            source: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 9), 68),
            server_addr: Ipv4Addr::new(192, 0, 2, 1),
            port,
        };
        if let Ok(pending) = classify(&meta, data) {
            let _ = pending.request();
            if let Ok(reply) = pending.respond(&BootDecision::EXIT, &ProxySettings::default()) {
                DhcpMessage::parse(&reply.bytes).expect("replies parse");
            }
        }
    }
}

/// Parses arbitrary bytes as DHCPv6; whatever parses must re-encode to exactly the same
/// bytes. Then classifies it on both ports and answers it, and every answer must parse.
pub fn dhcpv6_round_trip(data: &[u8]) {
    use std::net::{Ipv6Addr, SocketAddrV6};

    use crate::v6::class::ClientMacs;
    use crate::v6::proxy::{classify, Dhcp6Settings, RequestMeta6};
    use crate::v6::wire::{Dhcp6Message, Duid};

    let Ok(message) = Dhcp6Message::parse(data) else {
        return;
    };
    assert_eq!(message.to_bytes().as_deref(), Ok(data), "emit(parse(b)) == b");
    let settings = Dhcp6Settings::new(Duid::link_layer([2, 0, 0, 0, 0, 1]));
    for port in [ListenPort::Dhcp, ListenPort::PxeBootServer] {
        let meta = RequestMeta6 {
            source: SocketAddrV6::new("fe80::5054:ff:fe12:3456".parse().unwrap(), 546, 0, 2),
            server_addr: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            port,
            source_mac: None,
        };
        if let Ok(pending) = classify(&meta, data, &settings, &ClientMacs::default()) {
            let _ = pending.request();
            if let Ok(reply) = pending.respond(&BootDecision::EXIT, &ProxySettings::default(), &settings) {
                Dhcp6Message::parse(&reply.bytes).expect("replies parse");
            }
        }
    }
}

/// Reads arbitrary bytes as a captured IPv4 packet; a UDP datagram found in it must be
/// rebuilt into a packet that reads back the same, with a valid checksum, and its payload
/// goes through the DHCP round trip.
pub fn captured_packet(data: &[u8]) {
    use crate::capture::{checksum_is_valid, ipv4_packet, udp_header, CapturedDatagram};

    let Ok(datagram) = CapturedDatagram::parse(data) else {
        return;
    };
    assert!(datagram.payload.len() <= data.len());
    let header = udp_header(datagram.source, datagram.destination, datagram.payload);
    let rebuilt = ipv4_packet(
        *datagram.source.ip(),
        *datagram.destination.ip(),
        &header,
        datagram.payload,
    );
    assert_eq!(CapturedDatagram::parse(&rebuilt), Ok(datagram));
    assert!(checksum_is_valid(&rebuilt));
    parse_round_trip(datagram.payload);
}
