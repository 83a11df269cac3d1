//! IPv6 UDP sockets for DHCPv6-style servers: learn the interface and local address each
//! datagram arrived on (IPV6_RECVPKTINFO), join multicast groups per interface, and answer
//! through that interface, which replies to link-local addresses need.

use std::io;
use std::io::IoSlice;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{self, ControlMessage, MsgFlags, SockaddrIn6};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;

use crate::udp::{apply_options, enable_destination_info, recv_with_destination, UdpOptions};

/// A datagram's metadata as the kernel reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received6 {
    /// Bytes written to the buffer.
    pub len: usize,
    /// Sender; a link-local sender carries the receiving interface as its scope id, so the
    /// address can be answered as it is.
    pub source: SocketAddrV6,
    /// The address the datagram was sent to (a multicast group for Solicits).
    pub destination: Option<Ipv6Addr>,
    /// Index of the receiving interface (0 if unknown).
    pub ifindex: u32,
}

/// A non-blocking IPv6-only UDP socket with IPV6_RECVPKTINFO on, driven by tokio.
#[derive(Debug)]
pub struct Pkt6Socket {
    socket: tokio::net::UdpSocket,
}

impl Pkt6Socket {
    /// Binds `addr` (IPv6 only, so an IPv4 socket can share the port) with `options`;
    /// `broadcast` is ignored. Must be called inside a tokio runtime.
    pub fn bind(addr: SocketAddrV6, options: &UdpOptions) -> io::Result<Self> {
        let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_only_v6(true)?;
        apply_options(&socket, options)?;
        enable_destination_info(&socket, true)?;
        socket.bind(&SocketAddr::V6(addr).into())?;
        let socket = tokio::net::UdpSocket::from_std(socket.into())?;
        Ok(Self { socket })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddrV6> {
        match self.socket.local_addr()? {
            SocketAddr::V6(addr) => Ok(addr),
            SocketAddr::V4(addr) => Err(io::Error::other(format!("unexpected IPv4 address {addr}"))),
        }
    }

    /// Joins multicast `group` on interface `ifindex`.
    pub fn join_multicast(&self, group: &Ipv6Addr, ifindex: u32) -> io::Result<()> {
        self.socket.join_multicast_v6(group, ifindex)
    }

    /// Receives one datagram into `buf` (a longer datagram is truncated to `buf`).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received6> {
        let fd = self.socket.as_raw_fd();
        let (len, source, destination) = self
            .socket
            .async_io(Interest::READABLE, || recv_with_destination(fd, buf))
            .await?;
        let SocketAddr::V6(mut source) = source else {
            return Err(io::Error::other("IPv4 datagram on an IPv6-only socket"));
        };
        let ifindex = destination.map_or(0, |d| d.ifindex);
        if source.scope_id() == 0 && is_link_local(source.ip()) {
            source.set_scope_id(ifindex);
        }
        let destination = destination.and_then(|d| match d.addr {
            IpAddr::V6(addr) => Some(addr),
            IpAddr::V4(_) => None,
        });
        Ok(Received6 {
            len,
            source,
            destination,
            ifindex,
        })
    }

    /// Sends `bytes` to `dest` through interface `ifindex` (0: by the routing table) from
    /// `source` (unspecified: the kernel picks one on that interface).
    pub async fn send(
        &self,
        bytes: &[u8],
        dest: SocketAddrV6,
        source: Ipv6Addr,
        ifindex: u32,
    ) -> io::Result<usize> {
        let fd = self.socket.as_raw_fd();
        let info = nix::libc::in6_pktinfo {
            ipi6_addr: nix::libc::in6_addr {
                s6_addr: source.octets(),
            },
            ipi6_ifindex: ifindex,
        };
        let dest = SockaddrIn6::from(dest);
        self.socket
            .async_io(Interest::WRITABLE, || {
                let iov = [IoSlice::new(bytes)];
                let control = [ControlMessage::Ipv6PacketInfo(&info)];
                socket::sendmsg(fd, &iov, &control, MsgFlags::empty(), Some(&dest)).map_err(io::Error::from)
            })
            .await
    }
}

/// How an IPv6 wildcard listener treats IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DualStack {
    /// IPv6 only, so an IPv4 socket can take the same port.
    Ipv6Only,
    /// IPv4 too (as `::ffff:a.b.c.d`), whatever `net.ipv6.bindv6only` says.
    Both,
}

/// A non-blocking UDP socket bound to `addr`; an IPv6 address is bound as `stack` says.
pub fn bind_udp(addr: SocketAddr, stack: DualStack) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(stack == DualStack::Ipv6Only)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A non-blocking TCP listener on `addr` (address reuse on, as `std` and tokio do); an IPv6
/// address is bound as `stack` says.
pub fn bind_tcp(addr: SocketAddr, stack: DualStack) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(stack == DualStack::Ipv6Only)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Whether a socket error says the host has no IPv6 at all (booted with `ipv6.disable=1`):
/// callers then serve IPv4 alone instead of failing.
pub fn is_ipv6_unavailable(error: &io::Error) -> bool {
    error.raw_os_error() == Some(nix::libc::EAFNOSUPPORT)
}

/// Whether `addr` is link-local (`fe80::/10`), which needs an interface to be reached.
pub fn is_link_local(addr: &Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// One interface with IPv6, as `getifaddrs` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Interface {
    /// Name, e.g. `eth0`.
    pub name: String,
    /// Index.
    pub index: u32,
    /// Its IPv6 addresses (link-local included), in the kernel's order.
    pub addresses: Vec<Ipv6Addr>,
    /// Its Ethernet address, when it has one.
    pub mac: Option<[u8; 6]>,
}

impl Ipv6Interface {
    /// The address to hand clients in URLs: the first that is neither link-local, loopback
    /// nor multicast, preferring one in the same /64 as `near` (a client's global address).
    pub fn routable_address(&self, near: Option<&Ipv6Addr>) -> Option<Ipv6Addr> {
        let usable = |a: &&Ipv6Addr| !is_link_local(a) && !a.is_loopback() && !a.is_multicast();
        let same_prefix = |a: &&Ipv6Addr| near.is_some_and(|n| a.segments()[..4] == n.segments()[..4]);
        let mut candidates = self.addresses.iter().filter(usable);
        self.addresses
            .iter()
            .filter(usable)
            .find(same_prefix)
            .or_else(|| candidates.next())
            .copied()
    }
}

/// The non-loopback interfaces that are up, run multicast and have at least one IPv6
/// address, sorted by index.
pub fn ipv6_interfaces() -> io::Result<Vec<Ipv6Interface>> {
    use nix::net::if_::InterfaceFlags;
    let mut interfaces: Vec<Ipv6Interface> = Vec::new();
    let mut macs: Vec<(String, [u8; 6])> = Vec::new();
    for entry in nix::ifaddrs::getifaddrs()? {
        let flags = entry.flags;
        if flags.contains(InterfaceFlags::IFF_LOOPBACK)
            || !flags.contains(InterfaceFlags::IFF_UP)
            || !flags.contains(InterfaceFlags::IFF_MULTICAST)
        {
            continue;
        }
        let Some(address) = entry.address.as_ref() else {
            continue;
        };
        if let Some(link) = address.as_link_addr() {
            if let Some(mac) = link.addr() {
                macs.push((entry.interface_name.clone(), mac));
            }
            continue;
        }
        let Some(v6) = address.as_sockaddr_in6() else {
            continue;
        };
        let Ok(index) = nix::net::if_::if_nametoindex(entry.interface_name.as_str()) else {
            continue;
        };
        match interfaces.iter_mut().find(|i| i.index == index) {
            Some(interface) => interface.addresses.push(v6.ip()),
            None => interfaces.push(Ipv6Interface {
                name: entry.interface_name.clone(),
                index,
                addresses: vec![v6.ip()],
                mac: None,
            }),
        }
    }
    for interface in &mut interfaces {
        interface.mac = macs
            .iter()
            .find(|(name, _)| *name == interface.name)
            .map(|(_, mac)| *mac);
    }
    interfaces.sort_by_key(|i| i.index);
    Ok(interfaces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_destination_and_replies_from_it() {
        if std::net::UdpSocket::bind("[::1]:0").is_err() {
            return; // no IPv6 on this host
        }
        let server = Pkt6Socket::bind(
            SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0),
            &UdpOptions::default(),
        )
        .unwrap();
        let port = server.local_addr().unwrap().port();
        let client = tokio::net::UdpSocket::bind("[::1]:0").await.unwrap();
        client.send_to(b"ping", ("::1", port)).await.unwrap();
        let mut buf = [0u8; 16];
        let received = server.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..received.len], b"ping");
        assert_eq!(received.destination, Some(Ipv6Addr::LOCALHOST));
        assert_ne!(received.ifindex, 0);
        server
            .send(b"pong", received.source, Ipv6Addr::LOCALHOST, received.ifindex)
            .await
            .unwrap();
        let (len, from) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..len], b"pong");
        assert_eq!(from.port(), port);
        // IPv6 only: an IPv4 socket can take the same port.
        assert!(std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok());
    }

    #[test]
    fn ipv6_only_and_dual_stack_listeners() {
        if std::net::UdpSocket::bind("[::1]:0").is_err() {
            return;
        }
        let v6 = bind_udp("[::]:0".parse().unwrap(), DualStack::Ipv6Only).unwrap();
        let port = v6.local_addr().unwrap().port();
        assert!(bind_udp(SocketAddr::from(([0, 0, 0, 0], port)), DualStack::Both).is_ok());
        let both = bind_tcp("[::]:0".parse().unwrap(), DualStack::Both).unwrap();
        let port = both.local_addr().unwrap().port();
        std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_, peer) = both.accept().unwrap();
        assert_eq!(peer.ip().to_canonical(), std::net::Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn routable_addresses_skip_link_local_and_prefer_the_clients_prefix() {
        let interface = Ipv6Interface {
            name: "eth0".into(),
            index: 2,
            addresses: ["fe80::1", "fd00:1::1", "2001:db8:7::1"]
                .map(|a| a.parse().unwrap())
                .to_vec(),
            mac: None,
        };
        assert_eq!(
            interface.routable_address(None),
            Some("fd00:1::1".parse().unwrap())
        );
        let client: Ipv6Addr = "2001:db8:7::1b7".parse().unwrap();
        assert_eq!(
            interface.routable_address(Some(&client)),
            Some("2001:db8:7::1".parse().unwrap())
        );
        assert!(is_link_local(&"fe80::5054:ff:fe12:3456".parse().unwrap()));
        assert!(!is_link_local(&"fd77::1".parse().unwrap()));
    }
}
