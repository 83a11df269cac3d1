//! A small reader for classic pcap files (not pcapng) holding Ethernet/IPv4/UDP and
//! Ethernet/IPv6/UDP frames, enough to pull the DHCP, DHCPv6 and TFTP packets out of the
//! firmware captures in `testdata/pcap/` (IPv4) and `testdata/pcap/ipv6/`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::path::PathBuf;

/// The `*.pcap` files of `testdata/pcap/`, sorted by name. Panics when there are none, since
/// every capture test would then pass without looking at anything.
pub fn captures() -> Vec<PathBuf> {
    captures_in("pcap")
}

/// The `*.pcap` files of a directory below `testdata/` (e.g. `pcap/ipv6`), sorted by name;
/// panics when there are none.
pub fn captures_in(subdir: &str) -> Vec<PathBuf> {
    let dir = crate::testdata().join(subdir);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no captures in {}", dir.display());
    paths
}

/// One UDP datagram found in a capture.
#[derive(Debug, Clone)]
pub struct UdpDatagram {
    /// Index of the frame in the capture (0-based).
    pub frame: usize,
    /// Sender.
    pub src: SocketAddrV4,
    /// Receiver.
    pub dst: SocketAddrV4,
    /// UDP payload.
    pub payload: Vec<u8>,
}

const LINKTYPE_ETHERNET: u32 = 1;

/// One IPv6 UDP datagram found in a capture.
#[derive(Debug, Clone)]
pub struct Udp6Datagram {
    /// Index of the frame in the capture (0-based).
    pub frame: usize,
    /// Sender (scope id 0).
    pub src: SocketAddrV6,
    /// Receiver (scope id 0).
    pub dst: SocketAddrV6,
    /// UDP payload.
    pub payload: Vec<u8>,
}

/// Every IPv4/UDP datagram of an Ethernet capture; other frames are skipped. Panics with a
/// message on a file that is not a classic pcap, since that is a broken fixture.
pub fn udp_datagrams(file: &[u8]) -> Vec<UdpDatagram> {
    ethernet_frames(file)
        .into_iter()
        .filter_map(|(frame, bytes)| parse_ethernet(frame, bytes))
        .collect()
}

/// Every IPv6/UDP datagram of an Ethernet capture (unfragmented, after any hop-by-hop,
/// routing or destination options headers); other frames are skipped.
pub fn udp6_datagrams(file: &[u8]) -> Vec<Udp6Datagram> {
    ethernet_frames(file)
        .into_iter()
        .filter_map(|(frame, bytes)| parse_ethernet6(frame, bytes))
        .collect()
}

/// The frames of a classic pcap with Ethernet link type, with their indices.
fn ethernet_frames(file: &[u8]) -> Vec<(usize, &[u8])> {
    assert!(file.len() >= 24, "pcap shorter than its global header");
    let magic = u32::from_le_bytes(file[0..4].try_into().unwrap());
    let little = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        other => panic!("not a classic pcap file (magic {other:#x})"),
    };
    let read_u32 = |b: &[u8]| {
        let b: [u8; 4] = b.try_into().unwrap();
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    assert_eq!(
        read_u32(&file[20..24]),
        LINKTYPE_ETHERNET,
        "only Ethernet captures are supported"
    );
    let mut frames = Vec::new();
    let mut offset = 24;
    while offset + 16 <= file.len() {
        let captured = read_u32(&file[offset + 8..offset + 12]) as usize;
        let start = offset + 16;
        let end = start
            .checked_add(captured)
            .filter(|&e| e <= file.len())
            .expect("record runs past end of file");
        frames.push((frames.len(), &file[start..end]));
        offset = end;
    }
    frames
}

/// The ethertype and the bytes after the Ethernet (and 802.1Q) header.
fn ethernet_payload(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let ethertype = u16::from_be_bytes(bytes.get(12..14)?.try_into().ok()?);
    if ethertype == 0x8100 {
        let inner = u16::from_be_bytes(bytes.get(16..18)?.try_into().ok()?);
        return Some((inner, bytes.get(18..)?));
    }
    Some((ethertype, bytes.get(14..)?))
}

/// Source port, destination port and payload of a UDP header plus data.
fn parse_udp(udp: &[u8]) -> Option<(u16, u16, Vec<u8>)> {
    let src_port = u16::from_be_bytes(udp.get(0..2)?.try_into().ok()?);
    let dst_port = u16::from_be_bytes(udp.get(2..4)?.try_into().ok()?);
    let udp_len = usize::from(u16::from_be_bytes(udp.get(4..6)?.try_into().ok()?));
    Some((src_port, dst_port, udp.get(8..udp_len)?.to_vec()))
}

fn parse_ethernet6(frame: usize, bytes: &[u8]) -> Option<Udp6Datagram> {
    let (ethertype, ip) = ethernet_payload(bytes)?;
    if ethertype != 0x86dd || ip.first()? >> 4 != 6 {
        return None;
    }
    let payload_len = usize::from(u16::from_be_bytes(ip.get(4..6)?.try_into().ok()?));
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(ip.get(8..24)?).ok()?);
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(ip.get(24..40)?).ok()?);
    let mut next = *ip.get(6)?;
    let mut rest = ip.get(40..40 + payload_len)?;
    // Hop-by-hop (0), routing (43) and destination options (60) headers: skip them.
    while matches!(next, 0 | 43 | 60) {
        let len = (usize::from(*rest.get(1)?) + 1) * 8;
        next = *rest.first()?;
        rest = rest.get(len..)?;
    }
    if next != 17 {
        return None;
    }
    let (src_port, dst_port, payload) = parse_udp(rest)?;
    Some(Udp6Datagram {
        frame,
        src: SocketAddrV6::new(src, src_port, 0, 0),
        dst: SocketAddrV6::new(dst, dst_port, 0, 0),
        payload,
    })
}

fn parse_ethernet(frame: usize, bytes: &[u8]) -> Option<UdpDatagram> {
    let (ethertype, ip) = ethernet_payload(bytes)?;
    if ethertype != 0x0800 {
        return None;
    }
    let header_len = usize::from(ip.first()? & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes(ip.get(2..4)?.try_into().ok()?));
    let fragment = u16::from_be_bytes(ip.get(6..8)?.try_into().ok()?);
    if *ip.get(9)? != 17 || fragment & 0x3fff != 0 || ip.first()? >> 4 != 4 {
        return None;
    }
    let src_ip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst_ip = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let (src_port, dst_port, payload) = parse_udp(ip.get(header_len..total_len)?)?;
    Some(UdpDatagram {
        frame,
        src: SocketAddrV4::new(src_ip, src_port),
        dst: SocketAddrV4::new(dst_ip, dst_port),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian classic pcap with one Ethernet frame carrying `payload` over UDP.
    fn capture(payload: &[u8]) -> Vec<u8> {
        let mut udp = Vec::new();
        udp.extend_from_slice(&68u16.to_be_bytes());
        udp.extend_from_slice(&67u16.to_be_bytes());
        udp.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1];
        let total = (ip.len() + udp.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&udp);
        let mut frame = vec![0xff; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&ip);
        let mut file = Vec::new();
        file.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        file.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
        file.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        file.extend_from_slice(&frame);
        file
    }

    #[test]
    fn reads_the_udp_payload_and_addresses() {
        let datagrams = udp_datagrams(&capture(b"hello"));
        assert_eq!(datagrams.len(), 1);
        let datagram = &datagrams[0];
        assert_eq!(datagram.frame, 0);
        assert_eq!(datagram.src, "10.0.0.2:68".parse().unwrap());
        assert_eq!(datagram.dst, "10.0.0.1:67".parse().unwrap());
        assert_eq!(datagram.payload, b"hello");
    }

    #[test]
    fn reads_ipv6_udp_after_a_hop_by_hop_header() {
        let payload = b"dhcpv6";
        let mut udp = vec![0x02, 0x22, 0x02, 0x23];
        udp.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let hop_by_hop = [17, 0, 5, 2, 0, 0, 1, 0];
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&((hop_by_hop.len() + udp.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 1]);
        ip.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
        ip.extend_from_slice(&"ff02::1:2".parse::<Ipv6Addr>().unwrap().octets());
        ip.extend_from_slice(&hop_by_hop);
        ip.extend_from_slice(&udp);
        let mut frame = vec![0x33; 12];
        frame.extend_from_slice(&[0x86, 0xdd]);
        frame.extend_from_slice(&ip);
        let mut file = capture(b"");
        file.truncate(24);
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        file.extend_from_slice(&frame);
        let datagrams = udp6_datagrams(&file);
        assert_eq!(datagrams.len(), 1);
        assert_eq!(datagrams[0].src, "[fe80::1]:546".parse().unwrap());
        assert_eq!(datagrams[0].dst, "[ff02::1:2]:547".parse().unwrap());
        assert_eq!(datagrams[0].payload, payload);
        assert!(udp_datagrams(&file).is_empty());
    }

    #[test]
    fn the_committed_captures_hold_datagrams() {
        for path in captures() {
            let file = std::fs::read(&path).unwrap();
            assert!(!udp_datagrams(&file).is_empty(), "{}", path.display());
        }
        for path in captures_in("pcap/ipv6") {
            let file = std::fs::read(&path).unwrap();
            assert!(!udp6_datagrams(&file).is_empty(), "{}", path.display());
        }
    }
}
