//! When a datagram reached the host: the kernel's receive timestamp (`SO_TIMESTAMPNS`), for the
//! single-port listener.
//!
//! A single-port transfer checks that each ACK arrived after the packet it acknowledges was
//! sent ([`netboot_tftp::ReadTransfer::with_proof_of_receipt`]). Stamping a datagram when the
//! listener gets round to reading it would be too late whenever the listener lags behind its
//! queue (a busy host): a blind ACK that was queued before the packet left would then look as
//! if it came after. The kernel stamps it on arrival instead (from a moment after the listener
//! starts: Linux switches stamping on host-wide in deferred work, and stamps at the receive
//! until then).
//!
//! The stamp is wall-clock time; it is turned into an [`Instant`] by its age, read against the
//! wall clock right after the receive. A wall-clock step between arrival and receive shifts
//! that one stamp by the step: backwards, the datagram looks as if it arrived at the receive
//! (harmless); forwards, earlier than it did, so one ACK may be ignored as blind, which costs the
//! client one timeout. NTP slews rather than steps a running clock, so this is rare.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, RawFd};
use std::time::{Duration, Instant, SystemTime};

use netboot_runtime::udp::Destination;
use nix::sys::socket::{self, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage};

/// Turns on kernel receive timestamps for [`recv_stamped`].
pub(crate) fn enable_arrival_stamps(socket: &impl AsFd) -> io::Result<()> {
    socket::setsockopt(socket, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
}

/// Receives one datagram without blocking: its length, sender, destination (when destination
/// info is on) and arrival (when stamps are on; else the instant of this receive).
pub(crate) fn recv_stamped(
    fd: RawFd,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<Destination>, Instant)> {
    let mut control = nix::cmsg_space!(nix::libc::timespec, nix::libc::in_pktinfo, nix::libc::in6_pktinfo);
    let mut iov = [IoSliceMut::new(buf)];
    let message =
        socket::recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut control), MsgFlags::MSG_DONTWAIT)
            .map_err(io::Error::from)?;
    let (wall, now) = (SystemTime::now(), Instant::now());
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
    let mut arrival = now;
    for cmsg in message.cmsgs().map_err(io::Error::from)? {
        match cmsg {
            ControlMessageOwned::ScmTimestampns(stamp) => {
                let stamp = u64::try_from(stamp.tv_sec())
                    .ok()
                    .zip(u32::try_from(stamp.tv_nsec()).ok())
                    .map(|(secs, nanos)| SystemTime::UNIX_EPOCH + Duration::new(secs, nanos));
                // A stamp in the future (the clock stepped back) counts as arriving now.
                let age = stamp
                    .and_then(|stamp| wall.duration_since(stamp).ok())
                    .unwrap_or_default();
                arrival = now.checked_sub(age).unwrap_or(now);
            }
            ControlMessageOwned::Ipv4PacketInfo(info) => {
                destination = Some(Destination {
                    addr: IpAddr::V4(Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr))),
                    ifindex: u32::try_from(info.ipi_ifindex).unwrap_or(0),
                });
            }
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                destination = Some(Destination {
                    addr: IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)),
                    ifindex: info.ipi6_ifindex,
                });
            }
            _ => {}
        }
    }
    Ok((message.bytes, source, destination, arrival))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_queued_datagram_is_stamped_with_its_arrival_not_its_receive() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_arrival_stamps(&socket).unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // The kernel turns stamping on for the host a moment after the first socket asks (a
        // deferred switch); until then it stamps at the receive. Bounded retries wait for it.
        let stamped_on_arrival = (0..50).any(|_| {
            sender.send_to(b"ack", socket.local_addr().unwrap()).unwrap();
            // Received well after it arrived, as a busy listener would.
            std::thread::sleep(Duration::from_millis(20));
            let receiving = Instant::now();
            let mut buf = [0u8; 16];
            let (len, from, _, arrival) = recv_stamped(socket.as_raw_fd(), &mut buf).unwrap();
            assert_eq!(&buf[..len], b"ack");
            assert_eq!(from, sender.local_addr().unwrap());
            arrival < receiving
        });
        assert!(stamped_on_arrival, "stamped at the receive, never at the arrival");
    }
}
