//! UDP sockets for DHCP-style servers: learn which interface and local address each
//! datagram arrived on (IP_PKTINFO) and answer from that same interface and address,
//! including limited broadcasts, which plain `send_to` cannot aim at one interface.

use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::sys::socket::{
    self, sockopt, ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrStorage,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;

/// How to set up a [`PktInfoSocket`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UdpOptions {
    /// Allow sending to broadcast addresses (SO_BROADCAST).
    pub broadcast: bool,
    /// Only receive from and send through this interface (SO_BINDTODEVICE; needs
    /// CAP_NET_RAW).
    pub device: Option<String>,
    /// Share the port with other sockets that also set it (SO_REUSEADDR), e.g. one socket
    /// per interface, or a DHCP server in the same network namespace.
    pub reuse_address: bool,
    /// Receive buffer in bytes, to absorb bursts (a room of machines powering on at once)
    /// while the process is not scheduled. Set with SO_RCVBUFFORCE when privileged, else
    /// SO_RCVBUF, which the kernel caps at `net.core.rmem_max`.
    pub receive_buffer: Option<usize>,
}

/// A datagram's metadata as the kernel reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes written to the buffer.
    pub len: usize,
    /// Sender.
    pub source: SocketAddrV4,
    /// The local address the datagram was for: the receiving interface's address, also for
    /// broadcasts (`ipi_spec_dst`). `None` if the kernel gave no packet info.
    pub local_addr: Option<Ipv4Addr>,
    /// Index of the receiving interface (0 if unknown).
    pub ifindex: u32,
}

/// The local address a datagram was sent to, as IP_PKTINFO / IPV6_PKTINFO report it: what a
/// socket bound to a wildcard address must answer from on a multi-homed host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    /// The local address (an IPv4 datagram on an IPv6 socket reports its IPv4 address).
    pub addr: IpAddr,
    /// Index of the receiving interface (0 if unknown).
    pub ifindex: u32,
}

/// Turns on destination reporting for [`recv_with_destination`]: IP_PKTINFO, and on IPv6
/// sockets also IPV6_RECVPKTINFO (IPv4 datagrams reach dual-stack sockets too).
pub fn enable_destination_info(socket: &impl AsFd, ipv6: bool) -> io::Result<()> {
    socket::setsockopt(socket, sockopt::Ipv4PacketInfo, &true).map_err(io::Error::from)?;
    if ipv6 {
        socket::setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true).map_err(io::Error::from)?;
    }
    Ok(())
}

/// Receives one datagram (IPv4 or IPv6) into `buf` without blocking: its length, sender, and
/// destination when [`enable_destination_info`] is on.
pub fn recv_with_destination(
    fd: RawFd,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<Destination>)> {
    let mut control = nix::cmsg_space!(nix::libc::in_pktinfo, nix::libc::in6_pktinfo);
    let mut iov = [IoSliceMut::new(buf)];
    let message =
        socket::recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut control), MsgFlags::MSG_DONTWAIT)
            .map_err(io::Error::from)?;
    let source = message
        .address
        .as_ref()
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::V4((*v4).into()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into())))
        })
        .ok_or_else(|| io::Error::other("datagram without a source address"))?;
    let mut destination = None;
    for cmsg in message.cmsgs().map_err(io::Error::from)? {
        match cmsg {
            ControlMessageOwned::Ipv4PacketInfo(info) => destination = Some(v4_destination(&info)),
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                destination = Some(Destination {
                    addr: IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)),
                    ifindex: info.ipi6_ifindex,
                });
            }
            _ => {}
        }
    }
    Ok((message.bytes, source, destination))
}

fn v4_destination(info: &nix::libc::in_pktinfo) -> Destination {
    Destination {
        addr: IpAddr::V4(Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr))),
        ifindex: u32::try_from(info.ipi_ifindex).unwrap_or(0),
    }
}

/// The source address of a reply, as a `sendmsg` control message (IP_PKTINFO or IPV6_PKTINFO).
/// An IPv4 source also works on an IPv6 socket sending to an IPv4-mapped address.
#[derive(Debug, Clone, Copy)]
pub enum SourceInfo {
    /// IP_PKTINFO.
    V4(nix::libc::in_pktinfo),
    /// IPV6_PKTINFO.
    V6(nix::libc::in6_pktinfo),
}

impl SourceInfo {
    /// Replies leave from `destination.addr` through `destination.ifindex` (when known).
    pub fn new(destination: &Destination) -> Self {
        match destination.addr {
            IpAddr::V4(addr) => Self::V4(v4_pktinfo(destination.ifindex, addr)),
            IpAddr::V6(addr) => Self::V6(nix::libc::in6_pktinfo {
                ipi6_addr: nix::libc::in6_addr {
                    s6_addr: addr.octets(),
                },
                ipi6_ifindex: destination.ifindex,
            }),
        }
    }

    /// The control message to pass to `sendmsg`.
    pub fn control_message(&self) -> ControlMessage<'_> {
        match self {
            Self::V4(info) => ControlMessage::Ipv4PacketInfo(info),
            Self::V6(info) => ControlMessage::Ipv6PacketInfo(info),
        }
    }
}

fn v4_pktinfo(ifindex: u32, addr: Ipv4Addr) -> nix::libc::in_pktinfo {
    nix::libc::in_pktinfo {
        ipi_ifindex: i32::try_from(ifindex).unwrap_or(0),
        ipi_spec_dst: nix::libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        ipi_addr: nix::libc::in_addr { s_addr: 0 },
    }
}

/// A non-blocking IPv4 UDP socket with IP_PKTINFO on, driven by tokio.
#[derive(Debug)]
pub struct PktInfoSocket {
    socket: tokio::net::UdpSocket,
}

impl PktInfoSocket {
    /// Binds `addr` with `options`. Must be called inside a tokio runtime.
    pub fn bind(addr: SocketAddrV4, options: &UdpOptions) -> io::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        if options.broadcast {
            socket.set_broadcast(true)?;
        }
        apply_options(&socket, options)?;
        socket::setsockopt(&socket, sockopt::Ipv4PacketInfo, &true).map_err(io::Error::from)?;
        socket.bind(&SocketAddr::V4(addr).into())?;
        let socket = tokio::net::UdpSocket::from_std(socket.into())?;
        Ok(Self { socket })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        match self.socket.local_addr()? {
            SocketAddr::V4(addr) => Ok(addr),
            SocketAddr::V6(addr) => Err(io::Error::other(format!("unexpected IPv6 address {addr}"))),
        }
    }

    /// Receives one datagram into `buf` (a longer datagram is truncated to `buf`).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        self.socket
            .async_io(Interest::READABLE, || {
                recv_with_pktinfo(self.socket.as_raw_fd(), buf)
            })
            .await
    }

    /// Receives without waiting; `WouldBlock` when nothing is queued.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        self.socket.try_io(Interest::READABLE, || {
            recv_with_pktinfo(self.socket.as_raw_fd(), buf)
        })
    }

    /// Sends `bytes` to `dest`. With `from`, the datagram leaves through interface
    /// `from.ifindex` with source address `from.local_addr` (when set), which is how a reply
    /// to 255.255.255.255 reaches the network the request came from.
    pub async fn send(&self, bytes: &[u8], dest: SocketAddrV4, from: Option<&Received>) -> io::Result<usize> {
        let fd = self.socket.as_raw_fd();
        self.socket
            .async_io(Interest::WRITABLE, || send_with_pktinfo(fd, bytes, dest, from))
            .await
    }
}

/// Non-blocking mode and the options both socket kinds share: address reuse, receive buffer,
/// interface binding.
pub(crate) fn apply_options(socket: &Socket, options: &UdpOptions) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    if options.reuse_address {
        socket.set_reuse_address(true)?;
    }
    if let Some(size) = options.receive_buffer {
        if socket::setsockopt(socket, sockopt::RcvBufForce, &size).is_err() {
            socket.set_recv_buffer_size(size)?;
        }
    }
    if let Some(device) = &options.device {
        socket.bind_device(Some(device.as_bytes()))?;
    }
    Ok(())
}

fn recv_with_pktinfo(fd: i32, buf: &mut [u8]) -> io::Result<Received> {
    let mut control = nix::cmsg_space!(nix::libc::in_pktinfo);
    let mut iov = [IoSliceMut::new(buf)];
    let message = socket::recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut control), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let source = message
        .address
        .map(|a| SocketAddrV4::new(a.ip(), a.port()))
        .ok_or_else(|| io::Error::other("datagram without a source address"))?;
    let mut local_addr = None;
    let mut ifindex = 0;
    for cmsg in message.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::Ipv4PacketInfo(info) = cmsg {
            let destination = v4_destination(&info);
            local_addr = match destination.addr {
                IpAddr::V4(addr) => Some(addr),
                IpAddr::V6(_) => None,
            };
            ifindex = destination.ifindex;
        }
    }
    Ok(Received {
        len: message.bytes,
        source,
        local_addr,
        ifindex,
    })
}

fn send_with_pktinfo(
    fd: i32,
    bytes: &[u8],
    dest: SocketAddrV4,
    from: Option<&Received>,
) -> io::Result<usize> {
    let iov = [IoSlice::new(bytes)];
    let dest = SockaddrIn::from(dest);
    let info = from.map(|received| {
        v4_pktinfo(
            received.ifindex,
            received.local_addr.unwrap_or(Ipv4Addr::UNSPECIFIED),
        )
    });
    let control: Vec<ControlMessage<'_>> = info
        .as_ref()
        .map(ControlMessage::Ipv4PacketInfo)
        .into_iter()
        .collect();
    socket::sendmsg(fd, &iov, &control, MsgFlags::empty(), Some(&dest)).map_err(io::Error::from)
}

/// The largest IP packet that reaches `peer` unfragmented, as this host knows it. IPv4: the
/// kernel's path MTU for the route from `local` (IP_MTU of a UDP socket connected to `peer`;
/// connecting a UDP socket sends nothing). IPv6: the MTU of interface `ifindex`, the one the
/// client's request arrived on, or when that is 0 of the interface holding `local`.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
/// use netboot_runtime::udp::path_mtu;
/// let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// assert!(path_mtu(loopback, SocketAddr::new(loopback, 69), 0).unwrap() >= 1280);
/// # if std::net::UdpSocket::bind("[::1]:0").is_ok() {
/// let loopback = IpAddr::V6(Ipv6Addr::LOCALHOST);
/// assert!(path_mtu(loopback, SocketAddr::new(loopback, 69), 0).unwrap() >= 1280);
/// # }
/// ```
pub fn path_mtu(local: IpAddr, peer: SocketAddr, ifindex: u32) -> io::Result<u32> {
    match peer.ip().to_canonical() {
        IpAddr::V4(peer_v4) => {
            let local = match local.to_canonical() {
                IpAddr::V4(local) => local,
                IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            let probe = std::net::UdpSocket::bind((local, 0))?;
            probe.connect((peer_v4, peer.port()))?;
            let mtu = socket::getsockopt(&probe, sockopt::IpMtu)?;
            u32::try_from(mtu).map_err(|_| io::Error::other(format!("IP_MTU reported {mtu}")))
        }
        IpAddr::V6(_) => {
            let name = if ifindex == 0 {
                interface_holding(local)?
            } else {
                nix::net::if_::if_indextoname(ifindex)?
                    .to_string_lossy()
                    .into_owned()
            };
            let path = format!("/sys/class/net/{name}/mtu");
            std::fs::read_to_string(&path)?
                .trim()
                .parse()
                .map_err(|e| io::Error::other(format!("{path}: {e}")))
        }
    }
}

/// The name of the interface that has address `local`.
fn interface_holding(local: IpAddr) -> io::Result<String> {
    let holds = |address: &SockaddrStorage| match local {
        IpAddr::V6(local) => address.as_sockaddr_in6().is_some_and(|a| a.ip() == local),
        IpAddr::V4(local) => address.as_sockaddr_in().is_some_and(|a| a.ip() == local),
    };
    nix::ifaddrs::getifaddrs()?
        .find(|interface| interface.address.as_ref().is_some_and(holds))
        .map(|interface| interface.interface_name)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no interface has {local}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_local_address_and_replies_from_it() {
        let server = PktInfoSocket::bind(
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            &UdpOptions::default(),
        )
        .unwrap();
        let port = server.local_addr().unwrap().port();
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(b"ping", ("127.0.0.3", port)).await.unwrap();

        let mut buf = [0u8; 64];
        let received = server.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..received.len], b"ping");
        assert_eq!(received.local_addr, Some(Ipv4Addr::new(127, 0, 0, 3)));
        assert_eq!(SocketAddr::V4(received.source), client.local_addr().unwrap());
        assert_ne!(received.ifindex, 0);

        server
            .send(b"pong", received.source, Some(&received))
            .await
            .unwrap();
        let (len, from) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..len], b"pong");
        // The reply comes from the address the request was sent to, not from 127.0.0.1.
        assert_eq!(from, SocketAddr::from(([127, 0, 0, 3], port)));
    }

    #[tokio::test]
    async fn destination_of_ipv4_ipv6_and_mapped_datagrams_and_replies_from_it() {
        for (listen, to, client_addr) in [
            ("0.0.0.0:0", "127.0.0.2", "127.0.0.1:0"),
            ("[::]:0", "::1", "[::1]:0"),
            ("[::]:0", "127.0.0.2", "127.0.0.1:0"),
        ] {
            let server = tokio::net::UdpSocket::bind(listen).await.unwrap();
            let local = server.local_addr().unwrap();
            enable_destination_info(&server, local.is_ipv6()).unwrap();
            let client = tokio::net::UdpSocket::bind(client_addr).await.unwrap();
            let to: IpAddr = to.parse().unwrap();
            client.send_to(b"ping", (to, local.port())).await.unwrap();
            let mut buf = [0u8; 16];
            let (len, source, destination) = server
                .async_io(Interest::READABLE, || {
                    recv_with_destination(server.as_raw_fd(), &mut buf)
                })
                .await
                .unwrap();
            assert_eq!(&buf[..len], b"ping");
            assert_eq!(source.port(), client.local_addr().unwrap().port());
            let destination = destination.expect("packet info");
            assert_eq!(destination.addr, to, "listening on {listen}");

            // The reply names its source address explicitly.
            let mut reply_from = destination;
            if let (IpAddr::V4(v4), true) = (to, local.is_ipv6()) {
                reply_from.addr = IpAddr::V6(v4.to_ipv6_mapped());
            }
            let info = SourceInfo::new(&reply_from);
            let dest = SockaddrStorage::from(source);
            socket::sendmsg(
                server.as_raw_fd(),
                &[IoSlice::new(b"pong")],
                &[info.control_message()],
                MsgFlags::empty(),
                Some(&dest),
            )
            .unwrap();
            let (len, from) = client.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..len], b"pong");
            assert_eq!(from, SocketAddr::new(to, local.port()), "listening on {listen}");
        }
    }
}
