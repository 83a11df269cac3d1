//! Serving a UDP port that another program on the host has bound: requests are captured from
//! a packet socket (AF_PACKET, filtered in the kernel to IPv4 UDP for that port) and replies
//! are sent through a raw IPv4 socket with their UDP header written by us, so they still
//! leave from that port. This is how a proxyDHCP runs on a host whose DHCP server (ISC dhcpd,
//! Kea, dnsmasq) already holds port 67. Both sockets need CAP_NET_RAW.
//!
//! The other program still gets every request: a packet socket sees copies.

use std::io;
use std::io::IoSlice;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;

use netboot_dhcp::capture::{udp_header, CapturedDatagram, PROTOCOL_UDP};
use nix::sys::socket::{self, ControlMessage, LinkAddr, MsgFlags, SockaddrIn};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;

use crate::udp::{apply_options, Received, UdpOptions};

/// Bytes of each packet the kernel keeps for us: a jumbo frame's IP packet. DHCP requests
/// fit one standard frame.
const CAPTURE_SNAPLEN: u32 = 9216;

/// A captured-and-raw pair of sockets serving one UDP port on one interface or all.
#[derive(Debug)]
pub struct PacketSocket {
    /// tokio's UDP socket type serves only as the readiness handle of these two: every
    /// operation on them is our own system call through `async_io`.
    capture: tokio::net::UdpSocket,
    send: tokio::net::UdpSocket,
    port: u16,
}

impl PacketSocket {
    /// Captures IPv4 UDP datagrams for `port` arriving on `device` (every interface when
    /// `None`), and prepares to send from that port. Must be called inside a tokio runtime.
    pub fn bind(port: u16, device: Option<&str>, receive_buffer: Option<usize>) -> io::Result<Self> {
        let ifindex = match device {
            Some(name) => Some(nix::net::if_::if_nametoindex(name).map_err(io::Error::from)?),
            None => None,
        };
        let capture = Socket::new(
            Domain::PACKET,
            Type::DGRAM,
            Some(Protocol::from(i32::from((libc::ETH_P_IP as u16).to_be()))),
        )?;
        capture.attach_filter(&udp_port_filter(port, ifindex))?;
        apply_options(
            &capture,
            &UdpOptions {
                receive_buffer,
                ..UdpOptions::default()
            },
        )?;
        let send = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP))?;
        // Raw UDP sockets are handed a copy of every UDP datagram the host receives; this one
        // only sends.
        send.attach_filter(&[bpf(BPF_RET_K, 0, 0, 0)])?;
        send.set_broadcast(true)?;
        apply_options(
            &send,
            &UdpOptions {
                device: device.map(str::to_string),
                ..UdpOptions::default()
            },
        )?;
        Ok(Self {
            capture: readiness_handle(capture)?,
            send: readiness_handle(send)?,
            port,
        })
    }

    /// The port served.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Receives the next datagram for the port: its payload into `buf` (truncated to it),
    /// its sender, the address it was sent to when that is one of ours (else the receiving
    /// interface's first IPv4 address), and the receiving interface. Packets that are not
    /// whole UDP datagrams are skipped.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        loop {
            // The whole IP packet lands in `buf` and its payload is moved to the front: a
            // DHCP request fits one Ethernet frame, well within the receive loop's buffer.
            let fd = self.capture.as_raw_fd();
            let captured = self
                .capture
                .async_io(Interest::READABLE, || recv_packet(fd, buf))
                .await?;
            let Some((len, ifindex)) = captured else {
                continue;
            };
            let Ok(datagram) = CapturedDatagram::parse(&buf[..len]) else {
                continue;
            };
            let (source, to) = (datagram.source, *datagram.destination.ip());
            let payload_len = datagram.payload.len();
            let payload_start = datagram.payload.as_ptr() as usize - buf.as_ptr() as usize;
            buf.copy_within(payload_start..payload_start + payload_len, 0);
            let local_addr = if to.is_broadcast() || to.is_multicast() || to.is_unspecified() {
                interface_ipv4(ifindex)
            } else {
                Some(to)
            };
            return Ok(Received {
                len: payload_len,
                source,
                local_addr,
                ifindex,
            });
        }
    }

    /// Sends `bytes` to `dest` from the served port. With `from`, the datagram leaves through
    /// interface `from.ifindex` from address `from.local_addr`, as
    /// [`crate::udp::PktInfoSocket::send`] does.
    pub async fn send(&self, bytes: &[u8], dest: SocketAddrV4, from: Option<&Received>) -> io::Result<usize> {
        let source_ip = from
            .and_then(|received| received.local_addr)
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let header = udp_header(SocketAddrV4::new(source_ip, self.port), dest, bytes);
        let info = from.map(|received| nix::libc::in_pktinfo {
            ipi_ifindex: i32::try_from(received.ifindex).unwrap_or(0),
            ipi_spec_dst: nix::libc::in_addr {
                s_addr: u32::from(source_ip).to_be(),
            },
            ipi_addr: nix::libc::in_addr { s_addr: 0 },
        });
        let control: Vec<ControlMessage<'_>> = info
            .as_ref()
            .map(ControlMessage::Ipv4PacketInfo)
            .into_iter()
            .collect();
        let iov = [IoSlice::new(&header), IoSlice::new(bytes)];
        // The kernel writes the IPv4 header (an IPPROTO_UDP raw socket without IP_HDRINCL).
        let to = SockaddrIn::from(SocketAddrV4::new(*dest.ip(), 0));
        let fd = self.send.as_raw_fd();
        let sent = self
            .send
            .async_io(Interest::WRITABLE, || {
                socket::sendmsg(fd, &iov, &control, MsgFlags::empty(), Some(&to)).map_err(io::Error::from)
            })
            .await?;
        Ok(sent.saturating_sub(header.len()))
    }
}

/// Registers `socket` with tokio's reactor.
fn readiness_handle(socket: Socket) -> io::Result<tokio::net::UdpSocket> {
    let fd: std::os::fd::OwnedFd = socket.into();
    tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(fd))
}

const BPF_RET_K: u32 = libc::BPF_RET | libc::BPF_K;

fn bpf(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        // Classic BPF opcodes fit 16 bits.
        code: u16::try_from(code).unwrap_or(u16::MAX),
        jt,
        jf,
        k,
    }
}

/// The classic BPF program the kernel runs on each packet (offsets from the IP header, as a
/// cooked packet socket sees it): from interface `ifindex` when given, UDP, not a fragment,
/// destination `port`. Everything else is dropped before it is queued.
fn udp_port_filter(port: u16, ifindex: Option<u32>) -> Vec<libc::sock_filter> {
    use libc::{
        BPF_ABS, BPF_B, BPF_H, BPF_IND, BPF_JEQ, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_MSH, BPF_W,
    };
    // The kernel's ancillary "receiving interface" load (SKF_AD_OFF + SKF_AD_IFINDEX).
    const ANCILLARY_IFINDEX: u32 = (-0x1000i32 + 8) as u32;
    let mut program = Vec::new();
    if let Some(ifindex) = ifindex {
        program.push(bpf(BPF_LD | BPF_W | BPF_ABS, 0, 0, ANCILLARY_IFINDEX));
        program.push(bpf(BPF_JMP | BPF_JEQ | BPF_K, 0, 8, ifindex));
    }
    program.extend([
        // protocol == UDP, else drop (jump to the last instruction)
        bpf(BPF_LD | BPF_B | BPF_ABS, 0, 0, 9),
        bpf(BPF_JMP | BPF_JEQ | BPF_K, 0, 6, u32::from(PROTOCOL_UDP)),
        // flags and fragment offset: any fragment, drop
        bpf(BPF_LD | BPF_H | BPF_ABS, 0, 0, 6),
        bpf(BPF_JMP | BPF_JSET | BPF_K, 4, 0, 0x3fff),
        // X = IP header length; destination port == port, else drop
        bpf(BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0),
        bpf(BPF_LD | BPF_H | BPF_IND, 0, 0, 2),
        bpf(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, u32::from(port)),
        bpf(BPF_RET_K, 0, 0, CAPTURE_SNAPLEN),
        bpf(BPF_RET_K, 0, 0, 0),
    ]);
    program
}

/// Reads one captured packet; `None` for our own outgoing packets, which a packet socket
/// also sees.
fn recv_packet(fd: std::os::fd::RawFd, packet: &mut [u8]) -> io::Result<Option<(usize, u32)>> {
    let (len, from) = socket::recvfrom::<LinkAddr>(fd, packet).map_err(io::Error::from)?;
    let Some(from) = from else {
        return Ok(None);
    };
    if from.pkttype() == libc::PACKET_OUTGOING {
        return Ok(None);
    }
    Ok(Some((len, u32::try_from(from.ifindex()).unwrap_or(0))))
}

/// The first IPv4 address of interface `ifindex`, the one a reply to a broadcast names.
fn interface_ipv4(ifindex: u32) -> Option<Ipv4Addr> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|entry| {
        let address = entry.address?.as_sockaddr_in()?.ip();
        let index = nix::net::if_::if_nametoindex(entry.interface_name.as_str()).ok()?;
        (index == ifindex).then_some(address)
    })
}
