//! Retransmission intervals that grow while the peer stays silent.
//!
//! A fixed interval keeps answering a client whose own timer restarts on every packet it
//! receives (atftp does this), so neither side's timer ever fires and the transfer stalls
//! until the retry limit. Doubling the interval after each silent timeout, as RFC 1123
//! §4.2.3.2 asks of TFTP and tftpd-hpa does, lets the client's timer win.

use std::time::Duration;

/// Doublings at most: with the default 1 s and 5 retries a silent peer is given up after
/// 1 + 2 + 4 + 8 + 8 + 8 = 31 s.
const MAX_DOUBLINGS: u32 = 3;

/// The interval to wait after `retries` silent timeouts in a row, starting from `base`.
///
/// ```
/// use std::time::Duration;
/// use netboot_tftp::retransmit_interval;
/// let base = Duration::from_millis(500);
/// assert_eq!(retransmit_interval(base, 0), base);
/// assert_eq!(retransmit_interval(base, 2), base * 4);
/// assert_eq!(retransmit_interval(base, 40), base * 8);
/// ```
#[must_use]
pub fn retransmit_interval(base: Duration, retries: u32) -> Duration {
    base.saturating_mul(1 << retries.min(MAX_DOUBLINGS))
}
