//! How a transfer's datagrams reach its client: its own socket, or the shared request socket.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use netboot_runtime::udp::{Destination, SourceInfo};
use netboot_tftp::{write_error, ErrorCode};
use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::transfer_socket::TransferSocket;

/// Datagrams up to this size are forwarded inline: every ACK, nearly every ERROR, and the DATA
/// of uploads at RFC 1350's block size.
const INLINE_DATAGRAM: usize = 516;

/// A datagram handed from the single-port dispatcher to its transfer, with the instant the
/// dispatcher received it: the transfer may process it later, and the proof of receipt
/// ([`netboot_tftp::ReadTransfer::with_proof_of_receipt`]) compares arrival with sending.
pub(crate) struct Inbound {
    received: Instant,
    bytes: InboundBytes,
}

/// The bytes of an [`Inbound`]. Small ones (the ACKs of downloads) are copied inline, so
/// forwarding them allocates nothing; only upload DATA larger than 512 bytes gets a buffer of
/// its own.
#[allow(
    clippy::large_enum_variant,
    reason = "inline on purpose: boxing the common case would allocate for every ACK"
)]
enum InboundBytes {
    /// Up to [`INLINE_DATAGRAM`] bytes.
    Inline {
        len: usize,
        bytes: [u8; INLINE_DATAGRAM],
    },
    /// Anything longer.
    Boxed(Box<[u8]>),
}

impl Inbound {
    /// A copy of `datagram`, received at `received`.
    pub(crate) fn copy_of(datagram: &[u8], received: Instant) -> Self {
        Self {
            received,
            bytes: InboundBytes::copy_of(datagram),
        }
    }
}

impl InboundBytes {
    fn copy_of(datagram: &[u8]) -> Self {
        if datagram.len() <= INLINE_DATAGRAM {
            let mut bytes = [0; INLINE_DATAGRAM];
            bytes[..datagram.len()].copy_from_slice(datagram);
            Self::Inline {
                len: datagram.len(),
                bytes,
            }
        } else {
            Self::Boxed(datagram.into())
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..*len],
            Self::Boxed(bytes) => bytes,
        }
    }
}

/// How a transfer talks to its client.
pub(crate) enum Link {
    /// Its own socket (default mode), bound to the address the request was sent to.
    Own(TransferSocket),
    /// The shared listening socket, with datagrams routed in by the dispatcher.
    Shared {
        /// The listening socket.
        socket: Arc<UdpSocket>,
        /// Datagrams the dispatcher routed to this transfer.
        inbox: mpsc::Receiver<Inbound>,
        /// The client; the dispatcher routes by its address, so every datagram is from it.
        peer: SocketAddr,
        /// The address the request was sent to, when the socket listens on a wildcard
        /// address: replies must leave from it, or the client drops them.
        source: Option<Destination>,
    },
}

impl Link {
    pub(crate) async fn send(&self, datagram: &[u8], peer: SocketAddr) -> io::Result<()> {
        self.send_message(datagram, peer, None).await
    }

    /// Next datagram for this transfer and who sent it.
    pub(crate) async fn recv(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_timed(buf).await.map(|(len, from, _)| (len, from))
    }

    /// Next datagram for this transfer, who sent it, and when it was received.
    async fn recv_timed(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Instant)> {
        match self {
            Self::Own(socket) => {
                let (len, from) = socket.recv(buf).await?;
                Ok((len, from, Instant::now()))
            }
            Self::Shared { inbox, peer, .. } => match inbox.recv().await {
                Some(inbound) => {
                    let bytes = inbound.bytes.as_bytes();
                    let len = bytes.len().min(buf.len());
                    buf[..len].copy_from_slice(&bytes[..len]);
                    Ok((len, *peer, inbound.received))
                }
                None => Err(io::Error::other("dispatcher stopped")),
            },
        }
    }

    /// Whether the client is known by its address alone (single-port mode): datagrams from a
    /// forged address reach the transfer, so the client has to prove it receives.
    pub(crate) fn needs_proof_of_receipt(&self) -> bool {
        !self.is_own()
    }

    /// Next datagram from the transfer's client and when it was received, skipping datagrams
    /// from anyone else, which get RFC 1350's ERROR 5 (the transfer goes on). `Ok(None)`: a
    /// receive error on the
    /// transfer's own socket, such as an ICMP error from an earlier send; the retransmission
    /// timer recovers from it. `Err`: the single-port dispatcher stopped.
    pub(crate) async fn recv_from_client(
        &mut self,
        buf: &mut [u8],
        client: SocketAddr,
    ) -> io::Result<Option<(usize, Instant)>> {
        loop {
            match self.recv_timed(buf).await {
                Ok((len, from, received)) if from == client || !self.is_own() => {
                    return Ok(Some((len, received)))
                }
                Ok((_, stranger, _)) => {
                    let mut packet = [0u8; 64];
                    let len = write_error(&mut packet, ErrorCode::UnknownTransferId, "Unknown transfer ID");
                    let _ = self.send(&packet[..len], stranger).await;
                }
                Err(e) if self.is_own() => {
                    tracing::debug!(peer = %client, "recv: {e}");
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
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
            let size = u16::try_from(segment).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            match self.send_message(batch, peer, Some(size)).await {
                Ok(()) => return Ok(()),
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(
                            libc_codes::EIO
                                | libc_codes::EINVAL
                                | libc_codes::ENOPROTOOPT
                                | libc_codes::EOPNOTSUPP
                                | libc_codes::EMSGSIZE
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

    /// One `sendmsg`, with a GSO segment size and the source address as control messages
    /// when they apply.
    async fn send_message(&self, bytes: &[u8], peer: SocketAddr, gso: Option<u16>) -> io::Result<()> {
        match self {
            // Plain datagrams need no control messages: `sendto` is the cheaper call.
            Self::Own(socket) if gso.is_none() => {
                socket.send_with(|s| s.send_to(bytes, peer).map(drop)).await
            }
            Self::Own(socket) => {
                socket
                    .send_with(|s| send_with_controls(s.as_raw_fd(), bytes, peer, gso, None))
                    .await
            }
            Self::Shared { socket, source, .. } => {
                let source = source.as_ref().map(SourceInfo::new);
                socket
                    .async_io(tokio::io::Interest::WRITABLE, || {
                        send_with_controls(socket.as_raw_fd(), bytes, peer, gso, source.as_ref())
                    })
                    .await
            }
        }
    }
}

fn send_with_controls(
    fd: i32,
    bytes: &[u8],
    peer: SocketAddr,
    gso: Option<u16>,
    source: Option<&SourceInfo>,
) -> io::Result<()> {
    let address = SockaddrStorage::from(peer);
    let iov = [io::IoSlice::new(bytes)];
    let gso_control = gso.as_ref().map(ControlMessage::UdpGsoSegments);
    let source_control = source.map(SourceInfo::control_message);
    let controls: ([ControlMessage<'_>; 2], usize) = match (gso_control, source_control) {
        (Some(a), Some(b)) => ([a, b], 2),
        (Some(a), None) | (None, Some(a)) => ([a, a], 1),
        (None, None) => {
            return nix::sys::socket::sendto(fd, bytes, &address, MsgFlags::MSG_NOSIGNAL)
                .map(drop)
                .map_err(io::Error::from)
        }
    };
    nix::sys::socket::sendmsg(
        fd,
        &iov,
        &controls.0[..controls.1],
        MsgFlags::MSG_NOSIGNAL,
        Some(&address),
    )
    .map(drop)
    .map_err(io::Error::from)
}

/// Error numbers that mean "this kernel or device cannot do UDP GSO".
mod libc_codes {
    pub(super) const EIO: i32 = nix::errno::Errno::EIO as i32;
    pub(super) const EINVAL: i32 = nix::errno::Errno::EINVAL as i32;
    pub(super) const ENOPROTOOPT: i32 = nix::errno::Errno::ENOPROTOOPT as i32;
    pub(super) const EOPNOTSUPP: i32 = nix::errno::Errno::EOPNOTSUPP as i32;
    /// Segments larger than the path MTU: only IP fragmentation of single datagrams gets
    /// those blocks out.
    pub(super) const EMSGSIZE: i32 = nix::errno::Errno::EMSGSIZE as i32;
}

/// Largest UDP payload one GSO send may carry, and the kernel's segment limit.
pub(crate) const GSO_MAX_BYTES: usize = 65_000;
pub(crate) const GSO_MAX_SEGMENTS: usize = 64;
