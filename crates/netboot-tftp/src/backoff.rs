//! Retransmission intervals.
//!
//! With its own default timeout the server doubles the interval after each silent timeout,
//! as RFC 1123 §4.2.3.2 asks of TFTP and tftpd-hpa does: a fixed interval keeps answering a
//! client whose own timer restarts on every packet it receives (atftp does this), so neither
//! side's timer ever fires and the transfer stalls until the retry limit.
//!
//! A timeout the client asked for (RFC 2349 `timeout`) is kept for every retransmission
//! instead: the client sized its own patience to it, and atftp gives up after a few of its own
//! timeouts, so a server backing off to 8× its agreed two seconds leaves it waiting 14 s after
//! two losses in a row and it aborts a transfer the server would have completed.

use std::time::Duration;

/// Doublings at most: with the default 1 s and 5 retries a silent peer is given up after
/// 1 + 2 + 4 + 8 + 8 + 8 = 31 s.
const MAX_DOUBLINGS: u32 = 3;

/// The retransmission timer agreed for one transfer.
///
/// ```
/// use std::time::Duration;
/// use netboot_tftp::Retransmission;
/// let ours = Retransmission::ServerDefault(Duration::from_secs(1));
/// assert_eq!(ours.interval(0), Duration::from_secs(1));
/// assert_eq!(ours.interval(2), Duration::from_secs(4));
/// assert_eq!(ours.interval(40), Duration::from_secs(8));
/// let asked = Retransmission::ClientChosen(Duration::from_secs(2));
/// assert_eq!(asked.interval(2), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retransmission {
    /// The server's configured timeout, doubled after each silent timeout, up to eight times.
    ServerDefault(Duration),
    /// The client's `timeout` option, used unchanged for every retransmission.
    ClientChosen(Duration),
}

impl Retransmission {
    /// The first interval, before any retransmission.
    #[must_use]
    pub fn base(self) -> Duration {
        match self {
            Self::ServerDefault(base) | Self::ClientChosen(base) => base,
        }
    }

    /// How long to wait after `retries` silent timeouts in a row.
    #[must_use]
    pub fn interval(self, retries: u32) -> Duration {
        match self {
            Self::ServerDefault(base) => base.saturating_mul(1 << retries.min(MAX_DOUBLINGS)),
            Self::ClientChosen(base) => base,
        }
    }
}
