//! A deterministic simulated datagram link in virtual time: seeded loss, duplication and
//! jitter (which reorders), with no sockets and no sleeps. A test pumps it by hand: it sends
//! with [`Link::send`], then takes whichever comes first of [`Link::next_arrival`] and its
//! own timers.
//!
//! ```
//! use netboot_testkit::link::{origin, Impairments, Link};
//!
//! let mut link = Link::new(7, Impairments::CLEAN);
//! let now = origin();
//! link.send(now, "server", b"hello".to_vec());
//! let (at, to, datagram) = link.pop().unwrap();
//! assert!(at > now);
//! assert_eq!((to, datagram.as_slice()), ("server", &b"hello"[..]));
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// An arbitrary origin for virtual time: only differences from it matter. Code under test that
/// never reads the clock still needs one real `Instant`, since `std` offers no other way to
/// make one.
pub fn origin() -> Instant {
    Instant::now()
}

/// xorshift64*: deterministic, dependency-free randomness, the same sequence for the same seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (forced odd, since zero would stay zero).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// True with a probability of `percent` in 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

/// What the link does to each datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Impairments {
    /// Percentage of datagrams dropped.
    pub loss: u64,
    /// Percentage of (surviving) datagrams delivered twice.
    pub duplicate: u64,
    /// Extra delay of up to this many milliseconds, which reorders datagrams.
    pub jitter_ms: u64,
}

impl Impairments {
    /// Nothing lost, duplicated or reordered.
    pub const CLEAN: Self = Self {
        loss: 0,
        duplicate: 0,
        jitter_ms: 0,
    };
}

/// The fixed part of every datagram's flight time.
const BASE_DELAY: Duration = Duration::from_micros(200);

/// One datagram in flight, ordered by arrival time, then by send order.
type InFlight<D> = Reverse<(Instant, u64, D, Vec<u8>)>;

/// Datagrams in flight towards destinations of type `D` (usually a two-variant enum).
#[derive(Debug)]
pub struct Link<D: Ord> {
    rng: Rng,
    impairments: Impairments,
    queue: BinaryHeap<InFlight<D>>,
    sequence: u64,
}

impl<D: Ord + Clone> Link<D> {
    /// An empty link whose randomness starts from `seed`.
    pub fn new(seed: u64, impairments: Impairments) -> Self {
        Self {
            rng: Rng::new(seed),
            impairments,
            queue: BinaryHeap::new(),
            sequence: 0,
        }
    }

    /// The link's randomness, for a simulated peer that needs some from the same seed.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Puts `datagram` on the link at `now`: dropped, or delivered once or twice after the
    /// base delay plus jitter.
    pub fn send(&mut self, now: Instant, dest: D, datagram: Vec<u8>) {
        if self.rng.chance(self.impairments.loss) {
            return;
        }
        let copies = if self.rng.chance(self.impairments.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter = self.rng.next_u64() % (self.impairments.jitter_ms * 1000 + 1);
            self.sequence += 1;
            self.queue.push(Reverse((
                now + BASE_DELAY + Duration::from_micros(jitter),
                self.sequence,
                dest.clone(),
                datagram.clone(),
            )));
        }
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, ..))| *at)
    }

    /// The next datagram to arrive: its arrival time, destination and bytes.
    pub fn pop(&mut self) -> Option<(Instant, D, Vec<u8>)> {
        self.queue
            .pop()
            .map(|Reverse((at, _, dest, datagram))| (at, dest, datagram))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        let first: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        assert_eq!(first, (0..8).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(first[0], first[1]);
    }

    #[test]
    fn a_clean_link_delivers_everything_once_in_order() {
        let mut link = Link::new(3, Impairments::CLEAN);
        let now = origin();
        for i in 0..10u8 {
            link.send(now, 0u8, vec![i]);
        }
        let delivered: Vec<u8> = std::iter::from_fn(|| link.pop()).map(|(_, _, d)| d[0]).collect();
        assert_eq!(delivered, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn an_impaired_link_loses_duplicates_and_reorders() {
        let impairments = Impairments {
            loss: 20,
            duplicate: 20,
            jitter_ms: 5,
        };
        let mut link = Link::new(9, impairments);
        let now = origin();
        for i in 0..200u8 {
            link.send(now, 0u8, vec![i]);
        }
        let delivered: Vec<u8> = std::iter::from_fn(|| link.pop()).map(|(_, _, d)| d[0]).collect();
        let mut unique = delivered.clone();
        unique.sort_unstable();
        unique.dedup();
        assert!(unique.len() < 200, "nothing was lost");
        assert!(unique.len() < delivered.len(), "nothing was duplicated");
        assert!(delivered.windows(2).any(|w| w[0] > w[1]), "nothing was reordered");
    }
}
