//! The DHCPv4 sockets: a UDP socket normally, or, when another program on this host holds the
//! DHCP port (a DHCP server such as ISC dhcpd, Kea or dnsmasq), a packet socket that sees
//! copies of the requests beside it (see [`netboot_runtime::packet`]).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use netboot_runtime::packet::PacketSocket;
use netboot_runtime::udp::{PktInfoSocket, Received};

/// One DHCPv4 socket of the proxy.
#[derive(Debug)]
pub(crate) enum DhcpSocket {
    /// The port bound as usual.
    Udp(PktInfoSocket),
    /// Requests captured beside the program that holds the port; replies still leave from it.
    Packet(PacketSocket),
}

impl DhcpSocket {
    /// The served address; a packet socket serves the port on every address.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddrV4> {
        match self {
            Self::Udp(socket) => socket.local_addr(),
            Self::Packet(socket) => Ok(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, socket.port())),
        }
    }

    /// See [`PktInfoSocket::recv`].
    pub(crate) async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        match self {
            Self::Udp(socket) => socket.recv(buf).await,
            Self::Packet(socket) => socket.recv(buf).await,
        }
    }

    /// See [`PktInfoSocket::send`].
    pub(crate) async fn send(
        &self,
        bytes: &[u8],
        dest: SocketAddrV4,
        from: Option<&Received>,
    ) -> io::Result<usize> {
        match self {
            Self::Udp(socket) => socket.send(bytes, dest, from).await,
            Self::Packet(socket) => socket.send(bytes, dest, from).await,
        }
    }

    /// How the `listening on` line describes it.
    pub(crate) fn mode(&self) -> &'static str {
        match self {
            Self::Udp(_) => "",
            Self::Packet(_) => ", packet socket beside the DHCP server holding the port",
        }
    }
}
