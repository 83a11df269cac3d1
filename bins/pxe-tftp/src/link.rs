//! How a transfer's datagrams reach its client: its own socket, or the shared request socket.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// A datagram handed from the single-port dispatcher to its transfer, copied inline so
/// forwarding an ACK allocates nothing. ACKs are 4 or 5 bytes; ERROR messages are cut to fit.
pub(crate) struct Inbound {
    pub(crate) len: usize,
    pub(crate) bytes: [u8; 516],
}

/// How a transfer talks to its client.
pub(crate) enum Link {
    /// Its own socket (default mode).
    Own(UdpSocket),
    /// The shared listening socket, with datagrams routed in by the dispatcher.
    Shared {
        socket: Arc<UdpSocket>,
        inbox: mpsc::Receiver<Inbound>,
    },
}

impl Link {
    pub(crate) async fn send(&self, datagram: &[u8], peer: SocketAddr) -> io::Result<()> {
        match self {
            Self::Own(socket) => socket.send_to(datagram, peer).await.map(drop),
            Self::Shared { socket, .. } => socket.send_to(datagram, peer).await.map(drop),
        }
    }

    /// Next datagram for this transfer and who sent it.
    pub(crate) async fn recv(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            Self::Own(socket) => socket.recv_from(buf).await,
            Self::Shared { inbox, socket } => match inbox.recv().await {
                Some(inbound) => {
                    buf[..inbound.len].copy_from_slice(&inbound.bytes[..inbound.len]);
                    Ok((inbound.len, socket.local_addr()?))
                }
                None => Err(io::Error::other("dispatcher stopped")),
            },
        }
    }

    pub(crate) fn socket(&self) -> &UdpSocket {
        match self {
            Self::Own(socket) => socket,
            Self::Shared { socket, .. } => socket,
        }
    }

    /// Sends `batch`, a run of datagrams of `segment` bytes each (the last may be shorter).
    /// With UDP GSO the kernel splits one buffer into the datagrams, so a whole window costs
    /// one system call; without it (`gso` false, or the kernel refuses) they go one by one.
    pub(crate) async fn send_batch(
        &self,
        batch: &[u8],
        segment: usize,
        peer: SocketAddr,
        gso: &mut bool,
    ) -> io::Result<()> {
        if batch.len() <= segment {
            return self.send(batch, peer).await;
        }
        if *gso {
            match send_gso(self.socket(), batch, segment, peer).await {
                Ok(()) => return Ok(()),
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(
                            libc_codes::EIO
                                | libc_codes::EINVAL
                                | libc_codes::ENOPROTOOPT
                                | libc_codes::EOPNOTSUPP
                        )
                    ) =>
                {
                    tracing::debug!("UDP GSO unavailable ({e}); sending datagrams one by one");
                    *gso = false;
                }
                Err(e) => return Err(e),
            }
        }
        for datagram in batch.chunks(segment) {
            self.send(datagram, peer).await?;
        }
        Ok(())
    }

    pub(crate) fn is_own(&self) -> bool {
        matches!(self, Self::Own(_))
    }
}

/// Error numbers that mean "this kernel or device cannot do UDP GSO".
mod libc_codes {
    pub(super) const EIO: i32 = nix::errno::Errno::EIO as i32;
    pub(super) const EINVAL: i32 = nix::errno::Errno::EINVAL as i32;
    pub(super) const ENOPROTOOPT: i32 = nix::errno::Errno::ENOPROTOOPT as i32;
    pub(super) const EOPNOTSUPP: i32 = nix::errno::Errno::EOPNOTSUPP as i32;
}

/// Largest UDP payload one GSO send may carry, and the kernel's segment limit.
pub(crate) const GSO_MAX_BYTES: usize = 65_000;
pub(crate) const GSO_MAX_SEGMENTS: usize = 64;

async fn send_gso(socket: &UdpSocket, batch: &[u8], segment: usize, peer: SocketAddr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let segment = u16::try_from(segment).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let address = nix::sys::socket::SockaddrStorage::from(peer);
    socket
        .async_io(tokio::io::Interest::WRITABLE, || {
            let iov = [io::IoSlice::new(batch)];
            let control = [nix::sys::socket::ControlMessage::UdpGsoSegments(&segment)];
            nix::sys::socket::sendmsg(
                socket.as_raw_fd(),
                &iov,
                &control,
                nix::sys::socket::MsgFlags::empty(),
                Some(&address),
            )
            .map_err(io::Error::from)
        })
        .await
        .map(drop)
}
