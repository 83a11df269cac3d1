//! The signals an operator or supervisor sends, as one stream.

use tokio::signal::unix::{signal, Signal as Stream, SignalKind};

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// SIGHUP: reload the configuration.
    Reload,
    /// SIGTERM or SIGINT (named): stop.
    Stop(&'static str),
}

/// The handlers, installed before binding so a signal during start-up is not lost (the
/// default action would kill the process without flushing anything).
#[derive(Debug)]
pub(crate) struct Signals {
    hangup: Stream,
    terminate: Stream,
    interrupt: Stream,
}

impl Signals {
    pub(crate) fn install() -> std::io::Result<Self> {
        Ok(Self {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal.
    pub(crate) async fn next(&mut self) -> Request {
        tokio::select! {
            Some(()) = self.hangup.recv() => Request::Reload,
            Some(()) = self.terminate.recv() => Request::Stop("SIGTERM"),
            Some(()) = self.interrupt.recv() => Request::Stop("SIGINT"),
            // Signal streams do not end; were they to, no signal would ever come again.
            else => std::future::pending().await,
        }
    }
}
