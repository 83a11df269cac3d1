//! A transfer's own UDP socket, registered with the runtime for readability only.
//!
//! `tokio::net::UdpSocket` registers for writability too. Every datagram sent frees socket
//! buffer space a moment later, which raises a writable edge, so a lock-step transfer's
//! worker was woken once per block for nothing (an `epoll_wait` and a context switch per
//! block). Sends go straight to the non-blocking socket; only when the kernel has no buffer
//! space does a send register for writability, on a duplicate of the descriptor, and wait.
//!
//! Receiving keeps tokio's readiness rule: readiness is cleared only by a receive that found
//! the queue empty, so no datagram is ever left unnoticed. (Receiving with `recvmmsg` and
//! treating a short batch as "drained" saves that probing receive, but measured slower: its
//! extra attempt per call costs more than the `recvfrom` it saves, most of all in a storm.)

use std::io;
use std::net::{SocketAddr, UdpSocket};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A transfer's own socket (one per transfer, as RFC 1350's transfer IDs ask).
pub(crate) struct TransferSocket {
    fd: AsyncFd<UdpSocket>,
}

impl TransferSocket {
    /// Binds `addr` (port 0 picks one). Must be called on the runtime that will drive it.
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            fd: register(socket, Interest::READABLE)?,
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
    pub(crate) async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            let mut ready = self.fd.readable().await?;
            // `try_io` clears the readiness when the queue turns out to be empty.
            if let Ok(result) = ready.try_io(|socket| socket.get_ref().recv_from(buf)) {
                return result;
            }
        }
    }
}

/// Registers `socket` with the runtime for `interest` only.
// `with_interest` is deprecated because an `AsyncFd` over an arbitrary `AsRawFd` may outlive
// or swap its descriptor; a `UdpSocket` owns its descriptor and is never swapped here, which
// is exactly what the unsafe replacement asks its callers to promise.
#[allow(deprecated)]
fn register(socket: UdpSocket, interest: Interest) -> io::Result<AsyncFd<UdpSocket>> {
    AsyncFd::with_interest(socket, interest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn receives_every_datagram_of_a_burst_in_order() {
        let socket = TransferSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = socket.local_addr().unwrap();
        let mut buf = [0u8; 64];
        // Bursts of several sizes, each drained completely before the next is sent: a lost
        // readiness edge would hang the first receive of the next burst.
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
        // Large datagrams arrive whole.
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
