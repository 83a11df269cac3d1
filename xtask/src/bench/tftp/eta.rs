//! The remaining-time estimate printed before and during a run.

use std::time::{Duration, Instant};

use super::matrix::{unmeasurable, Grants};
use super::report::Combo;
use super::Args;

/// Remaining-time estimate: planned bytes per combination at the MB/s seen so far for that
/// combination (a conservative prior until then), plus the storm.
pub(super) struct Eta {
    pub(super) started: Instant,
    /// (combination, bytes) still to move.
    left: Vec<(Combo, u64)>,
    /// Bytes and seconds seen per combination.
    seen: Vec<(Combo, u64, Duration)>,
    storms_left: usize,
    storm_each: Duration,
}

impl Eta {
    pub(super) fn new(args: &Args, combos: &[Combo], grants: &Grants) -> Self {
        let mut left = Vec::new();
        for &mib in &args.sizes {
            for (c, combo) in combos.iter().enumerate() {
                let servers = grants
                    .iter()
                    .filter(|g| unmeasurable(&g[c], *combo).is_none())
                    .count();
                let transfers = servers * args.rounds_for(mib);
                left.extend(std::iter::repeat_n((*combo, mib << 20), transfers));
            }
        }
        let storm_bytes = args.storm_clients as u64 * (args.storm_mib << 20);
        Self {
            started: Instant::now(),
            left,
            seen: Vec::new(),
            storms_left: if args.storm_clients > 0 { grants.len() } else { 0 },
            // A prior of 60 MB/s for the whole storm.
            storm_each: Duration::from_secs(5 + storm_bytes / 60_000_000),
        }
    }

    pub(super) fn done(&mut self, combo: Combo, bytes: u64, took: Duration) {
        if let Some(i) = self.left.iter().position(|&(c, b)| c == combo && b == bytes) {
            self.left.swap_remove(i);
        }
        match self.seen.iter_mut().find(|(c, _, _)| *c == combo) {
            Some(seen) => {
                seen.1 += bytes;
                seen.2 += took;
            }
            None => self.seen.push((combo, bytes, took)),
        }
    }

    pub(super) fn skip(&mut self, combo: Combo, bytes: u64) {
        if let Some(i) = self.left.iter().position(|&(c, b)| c == combo && b == bytes) {
            self.left.swap_remove(i);
        }
    }

    pub(super) fn storm_done(&mut self, took: Duration) -> Duration {
        self.storms_left = self.storms_left.saturating_sub(1);
        self.storm_each = took.max(self.storm_each / 2);
        self.remaining()
    }

    pub(super) fn remaining(&self) -> Duration {
        let transfers: f64 = self
            .left
            .iter()
            .map(|&(combo, bytes)| {
                let rate = self
                    .seen
                    .iter()
                    .find(|(c, _, _)| *c == combo)
                    .map(|(_, b, t)| *b as f64 / t.as_secs_f64().max(1e-3))
                    .unwrap_or_else(|| prior_rate(combo));
                // Plus the per-transfer overhead (CPU sampling, forked servers exiting).
                bytes as f64 / rate + 0.15
            })
            .sum();
        Duration::from_secs_f64(transfers) + self.storm_each * self.storms_left as u32
    }
}

/// Bytes per second assumed for a combination before any was measured (conservative, for
/// two busy cores).
fn prior_rate(combo: Combo) -> f64 {
    let lock_step = match combo.blksize {
        0..=600 => 15e6,
        601..=1500 => 40e6,
        1501..=9000 => 120e6,
        _ => 250e6,
    };
    if combo.window > 1 {
        lock_step * 2.0
    } else {
        lock_step
    }
}

pub(super) fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}
