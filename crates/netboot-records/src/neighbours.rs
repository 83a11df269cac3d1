//! The kernel's neighbour tables: which MAC is behind an on-link address. IPv4 from
//! `/proc/net/arp`; IPv6 from a netlink dump (RTM_GETNEIGH), since the kernel publishes IPv6
//! neighbours nowhere else. The dump is a few hand-parsed, length-checked structures; a
//! netlink crate would bring its own async runtime for one request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use netboot_core::MacAddr;

/// Looks `ip` up in the neighbour table. Only complete entries of on-link neighbours are
/// there; relayed clients are not (their events are matched in the database).
#[must_use]
pub fn lookup(ip: IpAddr) -> Option<MacAddr> {
    match ip.to_canonical() {
        IpAddr::V4(ip) if ip.is_loopback() => None,
        IpAddr::V4(ip) => find(&std::fs::read_to_string("/proc/net/arp").ok()?, ip),
        IpAddr::V6(ip) if ip.is_loopback() || ip.is_unspecified() => None,
        IpAddr::V6(ip) => find_v6(&dump_v6().ok()?, ip),
    }
}

/// Parses the table text (`IP address  HW type  Flags  HW address  Mask  Device`).
fn find(table: &str, ip: Ipv4Addr) -> Option<MacAddr> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (address, flags, mac) = (fields.first()?, fields.get(2)?, fields.get(3)?);
        // 0x2 = ATF_COM: the entry is complete (the MAC is known).
        let complete = u32::from_str_radix(flags.trim_start_matches("0x"), 16).is_ok_and(|f| f & 0x2 != 0);
        (address.parse::<Ipv4Addr>().ok()? == ip && complete)
            .then(|| mac.parse().ok())
            .flatten()
    })
}

/// Netlink constants (linux/netlink.h, linux/rtnetlink.h, linux/neighbour.h).
mod nl {
    pub(super) const HEADER_LEN: usize = 16;
    pub(super) const NDMSG_LEN: usize = 12;
    pub(super) const NLMSG_ERROR: u16 = 2;
    pub(super) const NLMSG_DONE: u16 = 3;
    pub(super) const RTM_NEWNEIGH: u16 = 28;
    pub(super) const RTM_GETNEIGH: u16 = 30;
    pub(super) const NLM_F_REQUEST: u16 = 0x1;
    pub(super) const NLM_F_DUMP: u16 = 0x300;
    pub(super) const AF_INET6: u8 = 10;
    pub(super) const NDA_DST: u16 = 1;
    pub(super) const NDA_LLADDR: u16 = 2;
    /// Entry states without a usable link-layer address.
    pub(super) const NUD_INCOMPLETE: u16 = 0x01;
    pub(super) const NUD_FAILED: u16 = 0x20;
}

/// At most this many reads per dump, so a misbehaving socket cannot keep the caller.
const MAX_READS: usize = 64;

/// The raw RTM_NEWNEIGH messages of an IPv6 neighbour dump, concatenated.
fn dump_v6() -> std::io::Result<Vec<u8>> {
    use nix::sys::socket::{
        bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
        SockProtocol, SockType,
    };
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    setsockopt(
        &fd,
        sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::from(nix::libc::timeval {
            tv_sec: 0,
            tv_usec: i64::try_from(Duration::from_millis(200).as_micros()).unwrap_or(200_000),
        }),
    )?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
    let mut request = Vec::with_capacity(nl::HEADER_LEN + nl::NDMSG_LEN);
    request.extend_from_slice(&((nl::HEADER_LEN + nl::NDMSG_LEN) as u32).to_ne_bytes());
    request.extend_from_slice(&nl::RTM_GETNEIGH.to_ne_bytes());
    request.extend_from_slice(&(nl::NLM_F_REQUEST | nl::NLM_F_DUMP).to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    request.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    request.push(nl::AF_INET6);
    request.extend_from_slice(&[0; nl::NDMSG_LEN - 1]);
    send(fd.as_raw_fd(), &request, MsgFlags::empty())?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    for _ in 0..MAX_READS {
        let len = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        let (messages, done) = split_messages(&buf[..len]);
        out.extend_from_slice(&messages);
        if done || len == 0 {
            break;
        }
    }
    Ok(out)
}

/// Keeps the RTM_NEWNEIGH messages of one read; says whether the dump ended (DONE or ERROR).
fn split_messages(mut bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    while bytes.len() >= nl::HEADER_LEN {
        let len = u32::from_ne_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes(bytes[4..6].try_into().expect("2 bytes"));
        if len < nl::HEADER_LEN || len > bytes.len() {
            return (kept, true);
        }
        match kind {
            nl::NLMSG_DONE | nl::NLMSG_ERROR => return (kept, true),
            nl::RTM_NEWNEIGH => kept.extend_from_slice(&bytes[..len]),
            _ => {}
        }
        bytes = &bytes[align4(len).min(bytes.len())..];
    }
    (kept, false)
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Finds `ip` among RTM_NEWNEIGH messages with a usable Ethernet address.
fn find_v6(mut messages: &[u8], ip: Ipv6Addr) -> Option<MacAddr> {
    while messages.len() >= nl::HEADER_LEN + nl::NDMSG_LEN {
        let len = u32::from_ne_bytes(messages[0..4].try_into().ok()?) as usize;
        if len < nl::HEADER_LEN + nl::NDMSG_LEN || len > messages.len() {
            return None;
        }
        let body = &messages[nl::HEADER_LEN..len];
        let state = u16::from_ne_bytes(body[8..10].try_into().ok()?);
        let usable = state & (nl::NUD_INCOMPLETE | nl::NUD_FAILED) == 0;
        let (mut dst, mut lladdr) = (None, None);
        let mut attributes = &body[nl::NDMSG_LEN..];
        while attributes.len() >= 4 {
            let attr_len = usize::from(u16::from_ne_bytes(attributes[0..2].try_into().ok()?));
            let attr_type = u16::from_ne_bytes(attributes[2..4].try_into().ok()?);
            if attr_len < 4 || attr_len > attributes.len() {
                break;
            }
            let value = &attributes[4..attr_len];
            match (attr_type, value.len()) {
                (nl::NDA_DST, 16) => dst = Some(Ipv6Addr::from(<[u8; 16]>::try_from(value).ok()?)),
                (nl::NDA_LLADDR, 6) => lladdr = Some(MacAddr(value.try_into().ok()?)),
                _ => {}
            }
            attributes = &attributes[align4(attr_len).min(attributes.len())..];
        }
        if usable && dst == Some(ip) {
            if let Some(mac) = lladdr {
                return Some(mac);
            }
        }
        messages = &messages[align4(len).min(messages.len())..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_entries_only() {
        let table = "IP address       HW type     Flags       HW address            Mask     Device\n\
                     10.0.0.5         0x1         0x2         52:54:00:12:34:56     *        eth0\n\
                     10.0.0.6         0x1         0x0         00:00:00:00:00:00     *        eth0\n";
        assert_eq!(
            find(table, "10.0.0.5".parse().unwrap()),
            Some("52:54:00:12:34:56".parse().unwrap())
        );
        assert_eq!(find(table, "10.0.0.6".parse().unwrap()), None);
        assert_eq!(find(table, "10.0.0.7".parse().unwrap()), None);
        assert_eq!(lookup("127.0.0.1".parse().unwrap()), None);
        assert_eq!(lookup("::1".parse().unwrap()), None);
    }

    /// One RTM_NEWNEIGH message as the kernel sends it.
    fn neighbour(ip: &str, mac: Option<[u8; 6]>, state: u16) -> Vec<u8> {
        let mut body = vec![nl::AF_INET6, 0, 0, 0, 2, 0, 0, 0];
        body.extend_from_slice(&state.to_ne_bytes());
        body.extend_from_slice(&[0, 1]);
        let mut attribute = |kind: u16, value: &[u8]| {
            body.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
            body.extend_from_slice(&kind.to_ne_bytes());
            body.extend_from_slice(value);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        };
        attribute(nl::NDA_DST, &ip.parse::<Ipv6Addr>().unwrap().octets());
        if let Some(mac) = mac {
            attribute(nl::NDA_LLADDR, &mac);
        }
        let mut message = ((nl::HEADER_LEN + body.len()) as u32).to_ne_bytes().to_vec();
        message.extend_from_slice(&nl::RTM_NEWNEIGH.to_ne_bytes());
        message.extend_from_slice(&[0; 10]);
        message.extend_from_slice(&body);
        message
    }

    #[test]
    fn ipv6_neighbours_with_a_known_link_layer_address_only() {
        let mac = [0x52, 0x54, 0, 0xe2, 0x60, 0];
        let mut dump = neighbour("fd77::1bb", Some(mac), 0x02);
        dump.extend(neighbour("fd77::1bc", None, nl::NUD_INCOMPLETE));
        dump.extend(neighbour("fd77::1bd", Some(mac), nl::NUD_FAILED));
        let (kept, done) = split_messages(&dump);
        assert!(!done);
        assert_eq!(kept, dump);
        assert_eq!(find_v6(&kept, "fd77::1bb".parse().unwrap()), Some(MacAddr(mac)));
        assert_eq!(find_v6(&kept, "fd77::1bc".parse().unwrap()), None);
        assert_eq!(find_v6(&kept, "fd77::1bd".parse().unwrap()), None);
        assert_eq!(find_v6(&kept, "fd77::9".parse().unwrap()), None);
        // Truncated or garbage input ends the search without a panic.
        for len in 0..dump.len() {
            let _ = find_v6(&dump[..len], "fd77::1bb".parse().unwrap());
            let _ = split_messages(&dump[..len]);
        }
        let mut done_message = vec![0u8; nl::HEADER_LEN];
        done_message[0..4].copy_from_slice(&(nl::HEADER_LEN as u32).to_ne_bytes());
        done_message[4..6].copy_from_slice(&nl::NLMSG_DONE.to_ne_bytes());
        assert!(split_messages(&done_message).1);
    }

    #[test]
    fn the_kernels_table_can_be_read() {
        // Whatever is in this host's table, asking must not fail or hang.
        assert!(dump_v6().is_ok() || std::net::UdpSocket::bind("[::1]:0").is_err());
    }
}
