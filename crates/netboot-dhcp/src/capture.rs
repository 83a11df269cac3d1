//! IPv4 + UDP framing for a proxy that cannot bind the DHCP port because another program on
//! the host holds it (ISC dhcpd, Kea, dnsmasq): requests are captured whole from a packet
//! socket ([`CapturedDatagram::parse`]) and replies go out through a raw socket with a UDP
//! header written here ([`udp_header`]), so they still leave from port 67.
//!
//! Offsets and rules from RFC 791 (IPv4 header) and RFC 768 (UDP header and checksum).

use std::net::{Ipv4Addr, SocketAddrV4};

/// IPv4 header: version (high nibble) and header length in 32-bit words (low nibble).
const IP_VERSION_IHL: usize = 0;
/// IPv4 header: total length of the packet.
const IP_TOTAL_LENGTH: usize = 2;
/// IPv4 header: flags (3 bits) and fragment offset (13 bits).
const IP_FLAGS_FRAGMENT: usize = 6;
/// IPv4 header: the protocol of the payload.
const IP_PROTOCOL: usize = 9;
/// IPv4 header: source address.
const IP_SOURCE: usize = 12;
/// IPv4 header: destination address.
const IP_DESTINATION: usize = 16;
/// The IPv4 header without options.
const IP_MIN_HEADER: usize = 20;
/// "More fragments" and the fragment offset: set on every fragment.
const IP_FRAGMENT_MASK: u16 = 0x3fff;
/// The IANA protocol number of UDP.
pub const PROTOCOL_UDP: u8 = 17;

/// UDP header: source port.
const UDP_SOURCE_PORT: usize = 0;
/// UDP header: destination port.
const UDP_DESTINATION_PORT: usize = 2;
/// UDP header: length of header and payload.
const UDP_LENGTH: usize = 4;
/// UDP header: checksum (0: none, allowed over IPv4).
const UDP_CHECKSUM: usize = 6;
/// The UDP header's size.
pub const UDP_HEADER: usize = 8;

/// Why a captured packet is not a UDP datagram this module hands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    /// Shorter than its headers say, or than an IPv4 header.
    #[error("truncated packet")]
    Truncated,
    /// Not IPv4, or a header length below 20 bytes.
    #[error("not an IPv4 header")]
    NotIpv4,
    /// A fragment: DHCP messages fit one frame, and reassembly is the kernel's job.
    #[error("IP fragment")]
    Fragment,
    /// Not UDP.
    #[error("not UDP (protocol {0})")]
    NotUdp(u8),
}

/// A UDP datagram as captured, borrowing the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapturedDatagram<'a> {
    /// Sender address and port.
    pub source: SocketAddrV4,
    /// Destination address (often 255.255.255.255) and port.
    pub destination: SocketAddrV4,
    /// The UDP payload.
    pub payload: &'a [u8],
}

impl<'a> CapturedDatagram<'a> {
    /// Reads the IPv4 and UDP headers of `packet` (starting at the IP header, as a cooked
    /// packet socket delivers it). Link-layer padding after the IP packet is ignored.
    pub fn parse(packet: &'a [u8]) -> Result<Self, CaptureError> {
        let first = *packet.get(IP_VERSION_IHL).ok_or(CaptureError::Truncated)?;
        let header_len = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || header_len < IP_MIN_HEADER {
            return Err(CaptureError::NotIpv4);
        }
        if packet.len() < header_len {
            return Err(CaptureError::Truncated);
        }
        let total = usize::from(be16(packet, IP_TOTAL_LENGTH));
        if total < header_len || total > packet.len() {
            return Err(CaptureError::Truncated);
        }
        if be16(packet, IP_FLAGS_FRAGMENT) & IP_FRAGMENT_MASK != 0 {
            return Err(CaptureError::Fragment);
        }
        if packet[IP_PROTOCOL] != PROTOCOL_UDP {
            return Err(CaptureError::NotUdp(packet[IP_PROTOCOL]));
        }
        let udp = &packet[header_len..total];
        if udp.len() < UDP_HEADER {
            return Err(CaptureError::Truncated);
        }
        let udp_len = usize::from(be16(udp, UDP_LENGTH));
        if udp_len < UDP_HEADER || udp_len > udp.len() {
            return Err(CaptureError::Truncated);
        }
        Ok(Self {
            source: SocketAddrV4::new(ipv4(packet, IP_SOURCE), be16(udp, UDP_SOURCE_PORT)),
            destination: SocketAddrV4::new(ipv4(packet, IP_DESTINATION), be16(udp, UDP_DESTINATION_PORT)),
            payload: &udp[UDP_HEADER..udp_len],
        })
    }
}

/// The UDP header for `payload` from `source` to `destination`, with its checksum when the
/// source address is known (an unspecified one leaves the choice to the kernel, and the
/// checksum at 0, which RFC 768 allows over IPv4).
#[must_use]
pub fn udp_header(source: SocketAddrV4, destination: SocketAddrV4, payload: &[u8]) -> [u8; UDP_HEADER] {
    // Callers send DHCP messages, far below 64 KiB; a longer payload gets a length the
    // receiver rejects rather than a silently wrapped one.
    let length = u16::try_from(UDP_HEADER + payload.len()).unwrap_or(u16::MAX);
    let mut header = [0u8; UDP_HEADER];
    header[UDP_SOURCE_PORT..UDP_SOURCE_PORT + 2].copy_from_slice(&source.port().to_be_bytes());
    header[UDP_DESTINATION_PORT..UDP_DESTINATION_PORT + 2].copy_from_slice(&destination.port().to_be_bytes());
    header[UDP_LENGTH..UDP_LENGTH + 2].copy_from_slice(&length.to_be_bytes());
    if !source.ip().is_unspecified() {
        let checksum = udp_checksum(*source.ip(), *destination.ip(), &header, payload);
        header[UDP_CHECKSUM..UDP_CHECKSUM + 2].copy_from_slice(&checksum.to_be_bytes());
    }
    header
}

/// RFC 768: the ones' complement sum over the pseudo-header, the header (checksum field 0)
/// and the payload; a computed 0 is sent as 0xffff.
fn udp_checksum(source: Ipv4Addr, destination: Ipv4Addr, header: &[u8; UDP_HEADER], payload: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let high = u64::from(pair[0]) << 8;
            sum += high | pair.get(1).copied().map_or(0, u64::from);
        }
    };
    add(&source.octets());
    add(&destination.octets());
    add(&[0, PROTOCOL_UDP]);
    add(&header[UDP_LENGTH..UDP_LENGTH + 2]);
    add(&header[..UDP_CHECKSUM]);
    add(payload);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    match !(sum as u16) {
        0 => 0xffff,
        checksum => checksum,
    }
}

fn be16(bytes: &[u8], offset: usize) -> u16 {
    u16::from_be_bytes([bytes[offset], bytes[offset + 1]])
}

fn ipv4(bytes: &[u8], offset: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        bytes[offset],
        bytes[offset + 1],
        bytes[offset + 2],
        bytes[offset + 3],
    )
}

/// An IPv4 packet carrying `header` and `payload` (no options), as a peer would send it: for
/// tests and fuzzing.
#[must_use]
pub fn ipv4_packet(
    source: Ipv4Addr,
    destination: Ipv4Addr,
    header: &[u8; UDP_HEADER],
    payload: &[u8],
) -> Vec<u8> {
    let total = u16::try_from(IP_MIN_HEADER + UDP_HEADER + payload.len()).unwrap_or(u16::MAX);
    let mut packet = vec![0u8; IP_MIN_HEADER];
    packet[IP_VERSION_IHL] = 0x45;
    packet[IP_TOTAL_LENGTH..IP_TOTAL_LENGTH + 2].copy_from_slice(&total.to_be_bytes());
    packet[8] = 64; // time to live
    packet[IP_PROTOCOL] = PROTOCOL_UDP;
    packet[IP_SOURCE..IP_SOURCE + 4].copy_from_slice(&source.octets());
    packet[IP_DESTINATION..IP_DESTINATION + 4].copy_from_slice(&destination.octets());
    packet.extend_from_slice(header);
    packet.extend_from_slice(payload);
    packet
}

/// Whether the UDP checksum of a captured `packet` (IPv4, no options) is right or absent.
#[must_use]
pub fn checksum_is_valid(packet: &[u8]) -> bool {
    let Ok(datagram) = CapturedDatagram::parse(packet) else {
        return false;
    };
    let header_len = usize::from(packet[IP_VERSION_IHL] & 0x0f) * 4;
    let sent = be16(packet, header_len + UDP_CHECKSUM);
    if sent == 0 {
        return true;
    }
    let mut header = [0u8; UDP_HEADER];
    header.copy_from_slice(&packet[header_len..header_len + UDP_HEADER]);
    header[UDP_CHECKSUM] = 0;
    header[UDP_CHECKSUM + 1] = 0;
    udp_checksum(
        *datagram.source.ip(),
        *datagram.destination.ip(),
        &header,
        datagram.payload,
    ) == sent
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_checksum_matches_a_known_datagram() {
        // RFC 1071's method, checked against the kernel: a DHCP DISCOVER-sized payload of
        // zeros from 0.0.0.0:68 has no checksum; from a real address it has one that
        // verifies.
        let payload = [0u8; 300];
        let from = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 5), 67);
        let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, 68);
        let header = udp_header(from, to, &payload);
        assert_ne!(header[UDP_CHECKSUM..], [0, 0]);
        assert!(checksum_is_valid(&ipv4_packet(
            *from.ip(),
            *to.ip(),
            &header,
            &payload
        )));
        let unset = udp_header(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67), to, &payload);
        assert_eq!(unset[UDP_CHECKSUM..], [0, 0]);
    }

    #[test]
    fn fragments_other_protocols_and_short_packets_are_refused() {
        let header = udp_header(
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 68),
            SocketAddrV4::new(Ipv4Addr::BROADCAST, 67),
            b"x",
        );
        let good = ipv4_packet(Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::BROADCAST, &header, b"x");
        let mut fragment = good.clone();
        fragment[IP_FLAGS_FRAGMENT] = 0x20; // more fragments
        assert_eq!(CapturedDatagram::parse(&fragment), Err(CaptureError::Fragment));
        let mut tcp = good.clone();
        tcp[IP_PROTOCOL] = 6;
        assert_eq!(CapturedDatagram::parse(&tcp), Err(CaptureError::NotUdp(6)));
        assert_eq!(
            CapturedDatagram::parse(&good[..good.len() - 1]),
            Err(CaptureError::Truncated)
        );
        let mut v6 = good.clone();
        v6[0] = 0x65;
        assert_eq!(CapturedDatagram::parse(&v6), Err(CaptureError::NotIpv4));
        assert_eq!(CapturedDatagram::parse(&[]), Err(CaptureError::Truncated));
        // Ethernet pads short frames: bytes after the IP packet are not payload.
        let mut padded = good.clone();
        padded.extend_from_slice(&[0; 12]);
        assert_eq!(CapturedDatagram::parse(&padded).unwrap().payload, b"x");
    }

    proptest! {
        #[test]
        fn built_datagrams_parse_back(
            source in any::<u32>(),
            destination in any::<u32>(),
            sport in any::<u16>(),
            dport in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..1500),
        ) {
            let from = SocketAddrV4::new(Ipv4Addr::from(source), sport);
            let to = SocketAddrV4::new(Ipv4Addr::from(destination), dport);
            let header = udp_header(from, to, &payload);
            let packet = ipv4_packet(*from.ip(), *to.ip(), &header, &payload);
            let parsed = CapturedDatagram::parse(&packet).unwrap();
            prop_assert_eq!(parsed.source, from);
            prop_assert_eq!(parsed.destination, to);
            prop_assert_eq!(parsed.payload, &payload[..]);
            prop_assert!(checksum_is_valid(&packet));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(datagram) = CapturedDatagram::parse(&bytes) {
                prop_assert!(datagram.payload.len() <= bytes.len());
            }
        }
    }
}
