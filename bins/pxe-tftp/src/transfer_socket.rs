//! A transfer's own UDP socket, driven with readiness managed here rather than by
//! `tokio::net::UdpSocket`, to spend as few system calls and wake-ups per block as possible:
//!
//! - it is registered for readability only: every send frees socket buffer space a moment
//!   later, and with writability registered that edge would wake the worker once per block
//!   for nothing;
//! - datagrams are received with `recvmmsg` into a few slots; when the kernel hands over fewer
//!   than there are slots, the queue was empty at that instant, so the readiness is cleared
//!   without the `recvfrom` that would only return `EAGAIN`. A datagram arriving after that
//!   instant raises a new edge, so none is ever left unnoticed.

use std::cell::RefCell;
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{MultiHeaders, SockaddrStorage};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Datagrams fetched by one `recvmmsg`: the caller's buffer plus this many spare slots.
const SPARE_SLOTS: usize = 3;
/// Size of a spare slot. Read transfers only ever receive ACKs and ERRORs, which fit; callers
/// with larger buffers (uploads) receive one datagram per call instead.
pub(crate) const SPARE_LEN: usize = 1024;

thread_local! {
    /// `recvmmsg` headers, one set per worker thread: they hold raw pointers, so they cannot
    /// live in a transfer (which must be `Send`), and they are only borrowed inside one
    /// synchronous call.
    static HEADERS: RefCell<MultiHeaders<SockaddrStorage>> =
        RefCell::new(MultiHeaders::preallocate(1 + SPARE_SLOTS, None));
}

#[derive(Clone, Copy)]
struct Spare {
    len: usize,
    from: SocketAddr,
    bytes: [u8; SPARE_LEN],
}

/// A transfer's own socket (one per transfer, as RFC 1350's transfer IDs ask).
pub(crate) struct TransferSocket {
    fd: AsyncFd<UdpSocket>,
    /// Datagrams received ahead of the caller's asking, allocated once per transfer.
    spare: Box<[Spare; SPARE_SLOTS]>,
    /// `spare[next..queued]` are waiting to be returned.
    next: usize,
    queued: usize,
}

impl TransferSocket {
    /// Binds `addr` (port 0 picks one). Must be called on the runtime that will drive it.
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            fd: register(socket, Interest::READABLE)?,
            spare: Box::new(
                [Spare {
                    len: 0,
                    from: SocketAddr::from(([0, 0, 0, 0], 0)),
                    bytes: [0; SPARE_LEN],
                }; SPARE_SLOTS],
            ),
            next: 0,
            queued: 0,
        })
    }

    /// The bound address.
    #[cfg(test)]
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get_ref().local_addr()
    }

    /// Sends with `send` (a non-blocking system call on the socket), waiting for buffer space
    /// in the rare case the kernel has none.
    pub(crate) async fn send_with(
        &self,
        mut send: impl FnMut(&UdpSocket) -> io::Result<()>,
    ) -> io::Result<()> {
        loop {
            match send(self.fd.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait_writable().await?,
                result => return result,
            }
        }
    }

    /// Waits until the socket can send again. Writability is not registered (see the module
    /// comment), so a duplicate of the descriptor is registered for it just for this wait.
    async fn wait_writable(&self) -> io::Result<()> {
        let duplicate = register(self.fd.get_ref().try_clone()?, Interest::WRITABLE)?;
        let _ready = duplicate.writable().await?;
        Ok(())
    }

    /// Receives the next datagram into `buf` (truncated to it) and says who sent it.
    pub(crate) async fn recv(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        if self.next < self.queued {
            let spare = &self.spare[self.next];
            self.next += 1;
            let len = spare.len.min(buf.len());
            buf[..len].copy_from_slice(&spare.bytes[..len]);
            return Ok((len, spare.from));
        }
        loop {
            let mut ready = self.fd.readable().await?;
            // Spare slots only when the caller's datagrams are small enough to fit them.
            let spares = if buf.len() <= SPARE_LEN { SPARE_SLOTS } else { 0 };
            match receive_many(self.fd.get_ref(), buf, &mut self.spare[..spares]) {
                Ok((first, received)) => {
                    if received < 1 + spares {
                        // The kernel ran out of datagrams before slots: the queue is empty.
                        ready.clear_ready();
                    }
                    self.next = 0;
                    self.queued = received - 1;
                    return Ok(first);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready.clear_ready(),
                Err(e) => return Err(e),
            }
        }
    }
}

/// One `recvmmsg`: the first datagram into `buf`, further ones into `spare`. Returns the first
/// one's length and sender, and how many datagrams were received in all (at least one).
fn receive_many(
    socket: &UdpSocket,
    buf: &mut [u8],
    spare: &mut [Spare],
) -> io::Result<((usize, SocketAddr), usize)> {
    HEADERS.with(|headers| {
        let mut headers = headers.borrow_mut();
        let mut lengths = [(0usize, None::<SocketAddr>); 1 + SPARE_SLOTS];
        let used = 1 + spare.len().min(SPARE_SLOTS);
        let received = {
            let mut slices: [[IoSliceMut<'_>; 1]; 1 + SPARE_SLOTS] =
                std::array::from_fn(|_| [IoSliceMut::new(&mut [])]);
            slices[0] = [IoSliceMut::new(&mut *buf)];
            for (slice, slot) in slices[1..].iter_mut().zip(spare.iter_mut()) {
                *slice = [IoSliceMut::new(&mut slot.bytes)];
            }
            let results = nix::sys::socket::recvmmsg(
                socket.as_raw_fd(),
                &mut headers,
                slices[..used].iter_mut(),
                nix::sys::socket::MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map_err(io::Error::from)?;
            let mut received = 0;
            for (slot, message) in lengths.iter_mut().zip(results) {
                *slot = (message.bytes, message.address.as_ref().and_then(to_socket_addr));
                received += 1;
            }
            received
        };
        for (slot, &(len, from)) in spare.iter_mut().zip(&lengths[1..received.max(1)]) {
            slot.len = len;
            slot.from = from.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        }
        if received == 0 {
            return Err(io::Error::from(io::ErrorKind::WouldBlock));
        }
        let (len, from) = lengths[0];
        let from = from.ok_or_else(|| io::Error::other("datagram without a source address"))?;
        Ok(((len, from), received))
    })
}

/// Registers `socket` with the runtime for `interest` only.
// `with_interest` is deprecated because an `AsyncFd` over an arbitrary `AsRawFd` may outlive
// or swap its descriptor; a `UdpSocket` owns its descriptor and is never swapped here, which
// is exactly what the unsafe replacement asks its callers to promise.
#[allow(deprecated)]
fn register(socket: UdpSocket, interest: Interest) -> io::Result<AsyncFd<UdpSocket>> {
    AsyncFd::with_interest(socket, interest)
}

fn to_socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    address.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn receives_every_datagram_of_a_burst_in_order() {
        let mut socket = TransferSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = socket.local_addr().unwrap();
        let mut buf = [0u8; SPARE_LEN];
        // Bursts longer, equal to and shorter than the slots, then one more after a pause: a
        // lost edge would hang the last receive.
        for burst in [7u8, 4, 2, 1] {
            for i in 0..burst {
                peer.send_to(&[burst, i], target).unwrap();
            }
            for i in 0..burst {
                let (len, from) = socket.recv(&mut buf).await.unwrap();
                assert_eq!(&buf[..len], &[burst, i]);
                assert_eq!(from, peer.local_addr().unwrap());
            }
        }
        // A big buffer takes one datagram per call, whole.
        let big = vec![9u8; 4000];
        peer.send_to(&big, target).unwrap();
        peer.send_to(&big[..10], target).unwrap();
        let mut large = vec![0u8; 8000];
        assert_eq!(socket.recv(&mut large).await.unwrap().0, 4000);
        assert_eq!(socket.recv(&mut large).await.unwrap().0, 10);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sends_to_its_peer() {
        let socket = TransferSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = peer.local_addr().unwrap();
        socket
            .send_with(|s| s.send_to(b"data", to).map(drop))
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        let (len, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"data");
        assert_eq!(from, socket.local_addr().unwrap());
    }
}
