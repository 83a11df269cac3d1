//! UDP sockets for DHCP-style servers: learn which interface and local address each
//! datagram arrived on (IP_PKTINFO) and answer from that same interface and address,
//! including limited broadcasts, which plain `send_to` cannot aim at one interface.

use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;

use nix::sys::socket::{self, sockopt, ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn};
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

/// A non-blocking IPv4 UDP socket with IP_PKTINFO on, driven by tokio.
#[derive(Debug)]
pub struct PktInfoSocket {
    socket: tokio::net::UdpSocket,
}

impl PktInfoSocket {
    /// Binds `addr` with `options`. Must be called inside a tokio runtime.
    pub fn bind(addr: SocketAddrV4, options: &UdpOptions) -> io::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_nonblocking(true)?;
        if options.reuse_address {
            socket.set_reuse_address(true)?;
        }
        if options.broadcast {
            socket.set_broadcast(true)?;
        }
        if let Some(size) = options.receive_buffer {
            if socket::setsockopt(&socket, sockopt::RcvBufForce, &size).is_err() {
                socket.set_recv_buffer_size(size)?;
            }
        }
        if let Some(device) = &options.device {
            socket.bind_device(Some(device.as_bytes()))?;
        }
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
            local_addr = Some(Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr)));
            ifindex = u32::try_from(info.ipi_ifindex).unwrap_or(0);
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
    let info = from.map(|received| nix::libc::in_pktinfo {
        ipi_ifindex: i32::try_from(received.ifindex).unwrap_or(0),
        ipi_spec_dst: nix::libc::in_addr {
            s_addr: u32::from(received.local_addr.unwrap_or(Ipv4Addr::UNSPECIFIED)).to_be(),
        },
        ipi_addr: nix::libc::in_addr { s_addr: 0 },
    });
    let control: Vec<ControlMessage<'_>> = info
        .as_ref()
        .map(ControlMessage::Ipv4PacketInfo)
        .into_iter()
        .collect();
    socket::sendmsg(fd, &iov, &control, MsgFlags::empty(), Some(&dest)).map_err(io::Error::from)
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
}
