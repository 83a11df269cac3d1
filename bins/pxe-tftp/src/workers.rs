//! Transfer worker threads: one single-threaded tokio runtime per CPU.
//!
//! Each transfer runs entirely on one worker, so its socket's readiness events are handled by
//! the thread that sends and receives on it (no cross-thread wake-ups per datagram, which on a
//! small machine cost more than the datagrams), while several workers still use every core
//! when a classroom boots at once.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// Running workers; dropping this stops them and aborts their transfers.
#[derive(Debug)]
pub(crate) struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
    _stop: Vec<oneshot::Sender<()>>,
}

impl Workers {
    /// Starts `count` workers (at least one).
    pub(crate) fn start(count: usize) -> std::io::Result<Self> {
        let mut handles = Vec::new();
        let mut stop = Vec::new();
        for index in 0..count.max(1) {
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name(format!("tftp-worker-{index}"))
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            let _ = handle_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = handle_tx.send(Ok(runtime.handle().clone()));
                    // Runs the transfers spawned onto this worker until the server stops.
                    runtime.block_on(async {
                        let _ = stop_rx.await;
                    });
                })?;
            handles.push(handle_rx.recv().map_err(std::io::Error::other)??);
            stop.push(stop_tx);
        }
        Ok(Self {
            handles,
            next: AtomicUsize::new(0),
            _stop: stop,
        })
    }

    /// Runs `transfer` on the next worker, round robin.
    pub(crate) fn spawn<F>(&self, tasks: &mut JoinSet<()>, transfer: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        tasks.spawn_on(transfer, &self.handles[index]);
    }
}
