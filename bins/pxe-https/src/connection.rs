//! What every client connection of `pxe-https` is held to, whichever listener accepted it:
//! how many may be open (in all and per client address) and how long one may stay silent or
//! stall. Without these, sockets that send nothing, or never read what they asked for, pile
//! up until the process runs out of file descriptors or memory and every client is refused.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use netboot_config::HttpsConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How often at most a refused connection is logged at `warn` (the rest go to `debug`), so a
/// flood of connections cannot flood the log too.
const REFUSAL_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Open files kept free for everything but connections: the records database, logs,
/// certificates, PeerDist.
const RESERVED_OPEN_FILES: u64 = 256;

/// The timeouts of `[https]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A TLS handshake must be done within this.
    pub handshake: Duration,
    /// A new connection must start sending within this, and an HTTP/1 request's headers must
    /// be complete within this.
    pub header: Duration,
    /// A connection on which nothing is received or sent, and no request is being answered,
    /// is closed after this.
    pub idle: Duration,
    /// A connection whose peer takes none of the data written to it for this long is closed.
    pub write: Duration,
}

impl Timeouts {
    /// The timeouts `config` sets.
    pub fn from_config(config: &HttpsConfig) -> Self {
        Self {
            handshake: Duration::from_secs(config.handshake_timeout_secs.into()),
            header: Duration::from_secs(config.header_timeout_secs.into()),
            idle: Duration::from_secs(config.idle_timeout_secs.into()),
            write: Duration::from_secs(config.write_timeout_secs.into()),
        }
    }
}

/// Counts the open connections of one or more listeners and refuses those beyond the limits.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_total: usize,
    max_per_client: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
    last_warning: Option<Instant>,
}

impl ConnectionLimits {
    /// At most `max_total` open connections, of which at most `max_per_client` from one
    /// client address.
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_client,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// The limits `[https]` sets, lowered to what the process's open-files limit allows.
    pub fn from_config(config: &HttpsConfig) -> Arc<Self> {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        let max_total = fit_to_open_files(config.max_connections, soft);
        if max_total < config.max_connections as usize {
            tracing::warn!(
                configured = config.max_connections,
                open_files = soft,
                "https.max_connections lowered to {max_total}: each connection may hold a socket \
                 and a served file within the open-files limit; raise the limit (systemd's \
                 LimitNOFILE) to allow more"
            );
        }
        Self::new(
            max_total,
            (config.max_connections_per_client as usize).min(max_total),
        )
    }

    /// Admits a connection from `peer`, or refuses it (logged) when a limit is reached. The
    /// connection counts until the permit is dropped.
    pub fn admit(self: &Arc<Self>, peer: SocketAddr, listener: &str) -> Option<ConnectionPermit> {
        let client = peer.ip().to_canonical();
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let from_client = counts.per_client.get(&client).copied().unwrap_or(0);
        let refusal = if counts.total >= self.max_total {
            Some("the connection limit (https.max_connections) is reached")
        } else if from_client >= self.max_per_client {
            Some("this client's connection limit (https.max_connections_per_client) is reached")
        } else {
            None
        };
        if let Some(reason) = refusal {
            let now = Instant::now();
            let warn = counts
                .last_warning
                .is_none_or(|at| now.duration_since(at) >= REFUSAL_WARNING_INTERVAL);
            if warn {
                counts.last_warning = Some(now);
                tracing::warn!(%peer, open = counts.total, from_client, "{listener}: connection refused: {reason} (further refusals are logged at debug for a minute)");
            } else {
                tracing::debug!(%peer, open = counts.total, from_client, "{listener}: connection refused: {reason}");
            }
            return None;
        }
        counts.total += 1;
        *counts.per_client.entry(client).or_default() += 1;
        Some(ConnectionPermit {
            limits: Arc::clone(self),
            client,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).total
    }
}

/// The connections that fit in `open_files` (the soft limit; `None` is unlimited): each may
/// hold its socket and a file being served, beside [`RESERVED_OPEN_FILES`].
fn fit_to_open_files(configured: u32, open_files: Option<u64>) -> usize {
    let configured = configured as usize;
    match open_files {
        Some(limit) => {
            let fitting = limit.saturating_sub(RESERVED_OPEN_FILES) / 2;
            configured.min(usize::try_from(fitting).unwrap_or(usize::MAX).max(16))
        }
        None => configured,
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    client: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.limits.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.per_client.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.per_client.remove(&self.client);
            }
        }
    }
}

/// Requests of one connection whose answer is being prepared. While there is one, a silent
/// connection is waiting for the server, not the other way round, and is not idle.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Counts a request until the returned guard is dropped (also when the request's future
    /// is dropped unfinished).
    pub fn start(&self) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(Arc::clone(&self.0))
    }

    fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }
}

/// See [`InFlight::start`].
#[derive(Debug)]
pub struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A socket with read and write timeouts, below TLS and HTTP.
///
/// * A read that waits longer than the idle timeout fails with `TimedOut`, unless data moved
///   in either direction or a request was being answered meanwhile; the first read's limit
///   is the header timeout instead, so a connection that never sends anything is closed
///   then (HTTP/1-or-2 detection and TLS have no such limit of their own after accepting).
/// * A write (or flush) that makes no progress for the write timeout fails with `TimedOut`,
///   so a client that stops reading a download does not keep its buffers forever.
#[derive(Debug)]
pub struct TimedIo<S> {
    inner: S,
    idle: Duration,
    write_timeout: Duration,
    in_flight: InFlight,
    /// When a pending read fails unless something happens first.
    read_deadline: Instant,
    read_timer: Pin<Box<Sleep>>,
    /// Running while a write waits for the peer.
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl<S> TimedIo<S> {
    /// Wraps a freshly accepted `inner`.
    pub fn new(inner: S, timeouts: Timeouts, in_flight: InFlight) -> Self {
        let read_deadline = Instant::now() + timeouts.header;
        Self {
            inner,
            idle: timeouts.idle,
            write_timeout: timeouts.write,
            in_flight,
            read_deadline,
            read_timer: Box::pin(tokio::time::sleep_until(read_deadline)),
            write_timer: None,
        }
    }

    fn progressed(&mut self) {
        self.read_deadline = Instant::now() + self.idle;
    }

    /// After the inner read returned `Pending`: `Pending` while the deadline has not passed
    /// (the timer wakes the task), else the timeout error.
    fn poll_read_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            if self.read_timer.deadline() != self.read_deadline {
                let deadline = self.read_deadline;
                self.read_timer.as_mut().reset(deadline);
            }
            match self.read_timer.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if self.in_flight.any() => self.progressed(),
                Poll::Ready(()) if Instant::now() >= self.read_deadline => {
                    return Poll::Ready(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent nothing within the idle or header timeout",
                    ));
                }
                Poll::Ready(()) => {}
            }
        }
    }

    /// After the inner write or flush returned `Pending`: starts or polls the write timer.
    fn poll_write_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let write_timeout = self.write_timeout;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(write_timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took no data within the write timeout",
            )),
        }
    }

    /// Maps the inner write result: progress restarts the timers, `Pending` runs the write
    /// timer.
    fn after_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
        moved: impl FnOnce(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        match result {
            Poll::Ready(Ok(value)) => {
                self.write_timer = None;
                if moved(&value) {
                    self.progressed();
                }
                Poll::Ready(Ok(value))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => self.poll_write_deadline(cx).map(Err),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedIo<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.progressed();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => this.poll_read_deadline(cx).map(Err),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedIo<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(cx, result, |written| *written > 0)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, result, |written| *written > 0)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.after_write(cx, result, |()| false)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.after_write(cx, result, |()| false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_per_client_and_in_all() {
        let limits = ConnectionLimits::new(3, 2);
        let a: SocketAddr = "127.0.0.2:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.3:1000".parse().unwrap();
        let first = limits.admit(a, "test").unwrap();
        let _second = limits.admit(a, "test").unwrap();
        assert!(limits.admit(a, "test").is_none(), "third from one client");
        let _third = limits.admit(b, "test").unwrap();
        assert!(limits.admit(b, "test").is_none(), "beyond the total");
        drop(first);
        assert_eq!(limits.open(), 2);
        assert!(limits.admit(b, "test").is_some());
    }

    #[test]
    fn connection_limits_fit_the_open_files_limit() {
        assert_eq!(fit_to_open_files(4096, Some(1024)), 384);
        assert_eq!(fit_to_open_files(4096, Some(1_048_576)), 4096);
        assert_eq!(fit_to_open_files(4096, None), 4096);
        assert_eq!(fit_to_open_files(4096, Some(10)), 16);
    }

    #[test]
    fn mapped_ipv4_counts_as_the_same_client() {
        let limits = ConnectionLimits::new(10, 1);
        let _v4 = limits.admit("10.0.0.1:1".parse().unwrap(), "test").unwrap();
        assert!(limits
            .admit("[::ffff:10.0.0.1]:2".parse().unwrap(), "test")
            .is_none());
    }
}
