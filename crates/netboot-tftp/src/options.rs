//! Option negotiation: RFC 2347 (OACK), 2348 `blksize`, 2349 `tsize`/`timeout`, 7440 `windowsize`,
//! and Microsoft's `msftwindow` (variable windows, as Windows Boot Manager and WDS use them).

use std::time::Duration;

use crate::backoff::Retransmission;
use crate::wire::{Options, Request};
use crate::BlockSize;

/// Server-side limits for every transfer, set by the embedder (quinn-style: `Default` + fields).
///
/// ```
/// use netboot_tftp::{BlockSize, TftpLimits};
/// let limits = TftpLimits { max_blksize: BlockSize::try_from(1468u16).unwrap(), ..TftpLimits::default() };
/// assert_eq!(limits.max_window, 64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TftpLimits {
    /// Largest `blksize` granted; bigger requests are lowered to it.
    pub max_blksize: BlockSize,
    /// Largest `windowsize` granted; bigger requests are lowered to it.
    pub max_window: u16,
    /// Largest window in payload bytes (blocks × `blksize`); wider windows are narrowed to fit,
    /// never below one block. A window the client's socket buffer cannot hold loses its tail
    /// every time, and only timeouts repair that, so huge blocks get fewer of them per window.
    pub max_window_bytes: u32,
    /// Retransmission timeout when the client does not ask for one.
    pub default_timeout: Duration,
    /// Retransmissions of the same packet before the transfer is abandoned.
    pub retries: u32,
    /// Retransmissions before the client has acknowledged any data (of the OACK, ACK 0 or the
    /// first window), at most [`Self::retries`]. A real client answers the first packet
    /// within a round trip; a request that was spoofed, or whose client went away, is never
    /// answered, and every retransmission to it only holds a transfer slot longer and sends
    /// more bytes to an address that did not ask for them.
    pub retries_before_first_ack: u32,
    /// Largest RFC 2349 `timeout` a client may choose. A larger one is left out of the OACK
    /// and the server's own timeout applies, as RFC 2349 allows: the OACK may only echo the
    /// client's value exactly, so declining the option is the one way to use another. Without
    /// a cap one request asking for 255 s holds its transfer for half an hour of retries.
    pub max_client_timeout: Duration,
}

impl Default for TftpLimits {
    fn default() -> Self {
        Self {
            max_blksize: BlockSize::try_from(BlockSize::MAX).expect("MAX is in range"),
            max_window: 64,
            max_window_bytes: 96 * 1024,
            default_timeout: Duration::from_secs(1),
            retries: 5,
            retries_before_first_ack: 2,
            max_client_timeout: Duration::from_secs(5),
        }
    }
}

impl TftpLimits {
    /// The widest window granted for blocks of `blksize` bytes: [`Self::max_window`], narrowed
    /// so the window's payload stays within [`Self::max_window_bytes`], and at least one block.
    ///
    /// ```
    /// use netboot_tftp::{BlockSize, TftpLimits};
    /// let limits = TftpLimits::default();
    /// assert_eq!(limits.window_cap(BlockSize::try_from(1468u16).unwrap()), 64);
    /// assert_eq!(limits.window_cap(BlockSize::try_from(8192u16).unwrap()), 12);
    /// assert_eq!(limits.window_cap(BlockSize::try_from(65464u16).unwrap()), 1);
    /// ```
    #[must_use]
    pub fn window_cap(&self, blksize: BlockSize) -> u16 {
        let by_bytes = self.max_window_bytes / u32::from(blksize.get());
        let by_bytes = u16::try_from(by_bytes).unwrap_or(u16::MAX);
        self.max_window.min(by_bytes).max(1)
    }

    /// These limits with [`Self::max_blksize`] lowered so a DATA packet fits one IP packet
    /// of `mtu` bytes (IPv6 headers when `ipv6`): no block of the transfer is fragmented.
    /// An MTU too small for even an 8-byte block leaves the limits as they are.
    ///
    /// ```
    /// use netboot_tftp::TftpLimits;
    /// let limits = TftpLimits::default();
    /// assert_eq!(limits.fitting_mtu(1500, false).max_blksize.get(), 1468);
    /// assert_eq!(limits.fitting_mtu(1500, true).max_blksize.get(), 1448);
    /// assert_eq!(limits.fitting_mtu(65536, false).max_blksize.get(), 65464);
    /// ```
    #[must_use]
    pub fn fitting_mtu(&self, mtu: u32, ipv6: bool) -> Self {
        let ip_header = if ipv6 { 40 } else { 20 };
        let headers = ip_header + 8 + crate::wire::DATA_HEADER_LEN as u32;
        let fitting = mtu
            .checked_sub(headers)
            .and_then(|payload| u16::try_from(payload.min(u32::from(BlockSize::MAX))).ok())
            .and_then(|payload| BlockSize::try_from(payload).ok());
        match fitting {
            Some(fitting) if fitting < self.max_blksize => Self {
                max_blksize: fitting,
                ..*self
            },
            _ => *self,
        }
    }
}

/// The transfer mode of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bytes as they are.
    Octet,
    /// Text with CR LF line ends and CR NUL for a bare CR (RFC 1350 appendix, RFC 764).
    Netascii,
}

impl Mode {
    /// Parses the mode string (case-insensitive); `mail` and anything else is `None`.
    #[must_use]
    pub fn parse(mode: &[u8]) -> Option<Self> {
        if mode.eq_ignore_ascii_case(b"octet") {
            Some(Self::Octet)
        } else if mode.eq_ignore_ascii_case(b"netascii") {
            Some(Self::Netascii)
        } else {
            None
        }
    }
}

/// What was agreed for one transfer, and the OACK that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Data bytes per block.
    pub blksize: BlockSize,
    /// Blocks sent before waiting for an ACK (1 is RFC 1350 lock-step).
    pub windowsize: u16,
    /// Retransmission timeout: the client's `timeout` option, or the server's default.
    pub timeout: Retransmission,
    /// Microsoft's variable window was agreed (`msftwindow`): each ACK's extra byte sets the
    /// size of the next window, up to [`TftpLimits::max_window`].
    pub variable_window: bool,
    /// `(name, value)` pairs for the OACK, names spelt as the client spelt them, in its order.
    /// Empty when nothing was accepted, in which case the transfer starts with DATA 1 (RFC 2347).
    pub oack: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The options this server understands; `tsize` last.
const KNOWN: [&str; 5] = ["blksize", "windowsize", "timeout", "msftwindow", "tsize"];

/// The `msftwindow` value Windows Boot Manager sends (31416, the digits of pi); any other value is
/// not the extension as Wireshark's `packet-tftp.c` decodes it, so it is ignored.
const MSFTWINDOW_REQUEST: &[u8] = b"31416";

/// The `msftwindow` value a server supporting variable windows answers (27182, the digits of e).
const MSFTWINDOW_REPLY: &[u8] = b"27182";

fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 10 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Decides the options of a read request for a file of `size` bytes (`None` when unknown).
/// Unknown options and invalid values are ignored, as RFC 2347 asks; accepted ones are echoed.
///
/// ```
/// use netboot_tftp::{negotiate, Packet, TftpLimits};
/// let wire = b"\x00\x01f\x00octet\x00BlkSize\x0070000\x00tsize\x000\x00windowsize\x0016\x00";
/// let Packet::Rrq(request) = Packet::parse(wire).unwrap() else { unreachable!() };
/// let agreed = negotiate(&request, Some(1234), &TftpLimits::default());
/// assert_eq!(agreed.blksize.get(), 65464);
/// // One 64 KiB block already fills `max_window_bytes`: lock-step.
/// assert_eq!(agreed.windowsize, 1);
/// assert_eq!(agreed.oack[0], (b"BlkSize".to_vec(), b"65464".to_vec()));
/// assert_eq!(agreed.oack[1], (b"tsize".to_vec(), b"1234".to_vec()));
/// ```
#[must_use]
pub fn negotiate(request: &Request<'_>, size: Option<u64>, limits: &TftpLimits) -> Negotiated {
    negotiate_options(&request.options, size, limits)
}

fn negotiate_options(options: &Options<'_>, size: Option<u64>, limits: &TftpLimits) -> Negotiated {
    let mut agreed = Negotiated {
        blksize: BlockSize::DEFAULT,
        windowsize: 1,
        timeout: Retransmission::ServerDefault(limits.default_timeout),
        variable_window: false,
        oack: Vec::new(),
    };
    let mut seen = [false; KNOWN.len()];
    for option in options.iter() {
        let name = option.name;
        let Some(slot) = KNOWN
            .iter()
            .position(|known| name.eq_ignore_ascii_case(known.as_bytes()))
        else {
            continue;
        };
        // Only the first spelling of an option counts.
        if std::mem::replace(&mut seen[slot], true) {
            continue;
        }
        let value = decimal(option.value);
        let reply = match KNOWN[slot] {
            "blksize" => value
                .filter(|&v| v >= u64::from(BlockSize::MIN))
                .map(|v| v.min(u64::from(limits.max_blksize.get())))
                .and_then(|v| BlockSize::try_from(v).ok())
                .map(|b| {
                    agreed.blksize = b;
                    u64::from(b.get())
                }),
            "windowsize" => value.filter(|&v| (1..=65535).contains(&v)).map(|v| {
                let w = v.min(u64::from(limits.max_window.max(1)));
                agreed.windowsize = w as u16;
                w
            }),
            // RFC 2349 lets the OACK carry only the client's own value: a timeout above the cap
            // is declined (left out), and the client keeps its default as the server does.
            "timeout" => value
                .filter(|&v| (1..=255).contains(&v))
                .filter(|&v| Duration::from_secs(v) <= limits.max_client_timeout)
                .inspect(|&t| {
                    agreed.timeout = Retransmission::ClientChosen(Duration::from_secs(t));
                }),
            // Only the exact magic is the extension; the answer is its own magic, not a number.
            "msftwindow" => {
                if option.value == MSFTWINDOW_REQUEST {
                    agreed.variable_window = true;
                    agreed.oack.push((name.to_vec(), MSFTWINDOW_REPLY.to_vec()));
                }
                None
            }
            // An empty file gets no `tsize`: curl rejects `tsize 0` in an OACK as invalid, and
            // leaving an option out is always allowed (RFC 2347).
            _ => size.filter(|&s| s > 0 && value.is_some()),
        };
        if let Some(reply) = reply {
            agreed.oack.push((name.to_vec(), reply.to_string().into_bytes()));
        }
    }
    // The block size may come after `windowsize` in the request, so the byte cap applies last.
    let cap = limits.window_cap(agreed.blksize);
    if agreed.windowsize > cap {
        agreed.windowsize = cap;
        if let Some((_, value)) = agreed
            .oack
            .iter_mut()
            .find(|(name, _)| name.eq_ignore_ascii_case(b"windowsize"))
        {
            *value = cap.to_string().into_bytes();
        }
    }
    agreed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Packet;

    fn agree(wire: &[u8], size: Option<u64>) -> Negotiated {
        let Packet::Rrq(request) = Packet::parse(wire).unwrap() else {
            panic!("not an RRQ")
        };
        negotiate(
            &request,
            size,
            &TftpLimits {
                max_window: 32,
                ..TftpLimits::default()
            },
        )
    }

    #[test]
    fn fitting_an_mtu_never_raises_the_limit_or_leaves_the_range() {
        let limits = TftpLimits {
            max_blksize: BlockSize::try_from(1024u16).unwrap(),
            ..TftpLimits::default()
        };
        assert_eq!(limits.fitting_mtu(9000, false), limits, "never raised");
        assert_eq!(limits.fitting_mtu(576, false).max_blksize.get(), 544);
        assert_eq!(limits.fitting_mtu(40, false).max_blksize.get(), 8);
        assert_eq!(limits.fitting_mtu(39, false), limits, "no block fits: unchanged");
        assert_eq!(limits.fitting_mtu(0, true), limits);
        assert_eq!(limits.fitting_mtu(u32::MAX, true), limits);
    }

    #[test]
    fn no_options_means_no_oack() {
        let agreed = agree(b"\x00\x01f\x00octet\x00", Some(10));
        assert!(agreed.oack.is_empty());
        assert_eq!(agreed.blksize, BlockSize::DEFAULT);
        assert_eq!(agreed.windowsize, 1);
    }

    #[test]
    fn invalid_and_unknown_options_are_ignored() {
        let agreed = agree(b"\x00\x01f\x00octet\x00blksize\x004\x00timeout\x00300\x00msftwindow\x0031415\x00windowsize\x000\x00", Some(1));
        assert!(agreed.oack.is_empty(), "{:?}", agreed.oack);
        assert!(!agreed.variable_window);
    }

    #[test]
    fn msftwindow_is_answered_only_for_the_magic_value() {
        let agreed = agree(
            b"\x00\x01f\x00octet\x00blksize\x001456\x00tsize\x000\x00MsftWindow\x0031416\x00",
            Some(5000),
        );
        assert!(agreed.variable_window);
        assert_eq!(
            agreed.windowsize, 1,
            "without windowsize the first window is one block"
        );
        assert_eq!(
            agreed.oack,
            [
                (b"blksize".to_vec(), b"1456".to_vec()),
                (b"tsize".to_vec(), b"5000".to_vec()),
                (b"MsftWindow".to_vec(), b"27182".to_vec()),
            ]
        );
        for other in [&b"0"[..], b"27182", b"031416", b"314160", b"", b"31416 "] {
            let mut wire = b"\x00\x01f\x00octet\x00msftwindow\x00".to_vec();
            wire.extend_from_slice(other);
            wire.push(0);
            let agreed = agree(&wire, Some(1));
            assert!(!agreed.variable_window, "{other:?}");
            assert!(agreed.oack.is_empty(), "{other:?}");
        }
        // Only the first spelling counts, as for every option.
        let agreed = agree(
            b"\x00\x01f\x00octet\x00msftwindow\x001\x00msftwindow\x0031416\x00",
            Some(1),
        );
        assert!(!agreed.variable_window);
    }

    #[test]
    fn windows_of_large_blocks_are_narrowed_to_the_byte_cap_whatever_the_option_order() {
        for wire in [
            &b"\x00\x01f\x00octet\x00windowsize\x0064\x00blksize\x008192\x00"[..],
            &b"\x00\x01f\x00octet\x00blksize\x008192\x00windowsize\x0064\x00"[..],
        ] {
            let Packet::Rrq(request) = Packet::parse(wire).unwrap() else {
                panic!("not an RRQ")
            };
            let agreed = negotiate(&request, Some(1 << 20), &TftpLimits::default());
            assert_eq!(agreed.windowsize, 12);
            let answered = agreed
                .oack
                .iter()
                .find(|(name, _)| name == b"windowsize")
                .map(|(_, value)| value.clone());
            assert_eq!(
                answered,
                Some(b"12".to_vec()),
                "the OACK carries the narrowed window"
            );
        }
    }

    #[test]
    fn window_is_capped_and_timeout_honoured() {
        let agreed = agree(
            b"\x00\x01f\x00octet\x00windowsize\x00100\x00timeout\x003\x00",
            None,
        );
        assert_eq!(agreed.windowsize, 32);
        assert_eq!(
            agreed.timeout,
            Retransmission::ClientChosen(Duration::from_secs(3))
        );
        assert_eq!(
            agreed.oack,
            [
                (b"windowsize".to_vec(), b"32".to_vec()),
                (b"timeout".to_vec(), b"3".to_vec())
            ]
        );
    }

    #[test]
    fn a_timeout_above_the_cap_is_declined_and_the_server_default_applies() {
        let limits = TftpLimits {
            max_client_timeout: Duration::from_secs(5),
            ..TftpLimits::default()
        };
        let Packet::Rrq(request) =
            Packet::parse(b"\x00\x01f\x00octet\x00timeout\x00255\x00blksize\x001024\x00").unwrap()
        else {
            panic!("not an RRQ")
        };
        let agreed = negotiate(&request, Some(10), &limits);
        assert_eq!(
            agreed.timeout,
            Retransmission::ServerDefault(limits.default_timeout)
        );
        // The other options are still agreed; the declined one is simply absent.
        assert_eq!(agreed.oack, [(b"blksize".to_vec(), b"1024".to_vec())]);
        // The cap itself is still granted, and echoed exactly.
        let Packet::Rrq(request) = Packet::parse(b"\x00\x01f\x00octet\x00timeout\x005\x00").unwrap() else {
            panic!("not an RRQ")
        };
        let agreed = negotiate(&request, Some(10), &limits);
        assert_eq!(
            agreed.timeout,
            Retransmission::ClientChosen(Duration::from_secs(5))
        );
        assert_eq!(agreed.oack, [(b"timeout".to_vec(), b"5".to_vec())]);
    }

    #[test]
    fn tsize_needs_a_known_size_and_duplicates_count_once() {
        assert!(agree(b"\x00\x01f\x00octet\x00tsize\x000\x00", None)
            .oack
            .is_empty());
        // curl rejects `tsize 0`, so an empty file gets no tsize.
        assert!(agree(b"\x00\x01f\x00octet\x00tsize\x000\x00", Some(0))
            .oack
            .is_empty());
        let agreed = agree(
            b"\x00\x01f\x00octet\x00blksize\x001024\x00BLKSIZE\x00512\x00",
            None,
        );
        assert_eq!(agreed.blksize.get(), 1024);
        assert_eq!(agreed.oack.len(), 1);
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::parse(b"OCTET"), Some(Mode::Octet));
        assert_eq!(Mode::parse(b"NetAscii"), Some(Mode::Netascii));
        assert_eq!(Mode::parse(b"mail"), None);
    }
}
