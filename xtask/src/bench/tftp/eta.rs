//! The remaining-time estimate printed before and during a run.

use std::time::{Duration, Instant};

use super::matrix::{unmeasurable, Grants};
use super::report::Combo;
use super::Args;

/// Remaining-time estimate: the transfers still planned, each at the MB/s seen so far for
/// that server and combination (else for that combination on any server, else a
/// conservative prior), plus the storm.
pub(super) struct Eta {
    pub(super) started: Instant,
    /// (server index, combination, bytes) still to move.
    left: Vec<(usize, Combo, u64)>,
    /// Bytes and seconds seen per server and combination.
    seen: Vec<(usize, Combo, u64, Duration)>,
    storms_left: usize,
    storm_each: Duration,
}

impl Eta {
    pub(super) fn new(args: &Args, combos: &[Combo], grants: &Grants) -> Self {
        let mut left = Vec::new();
        for &mib in &args.sizes {
            for (c, combo) in combos.iter().enumerate() {
                for (server, grant) in grants.iter().enumerate() {
                    if unmeasurable(&grant[c], *combo).is_none() {
                        let rounds = args.rounds_for(mib);
                        left.extend(std::iter::repeat_n((server, *combo, mib << 20), rounds));
                    }
                }
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

    /// One transfer of `server` took `took`.
    pub(super) fn done(&mut self, server: usize, combo: Combo, bytes: u64, took: Duration) {
        self.skip(server, combo, bytes);
        match self
            .seen
            .iter_mut()
            .find(|(s, c, _, _)| *s == server && *c == combo)
        {
            Some(seen) => {
                seen.2 += bytes;
                seen.3 += took;
            }
            None => self.seen.push((server, combo, bytes, took)),
        }
    }

    /// One planned transfer will not run.
    pub(super) fn skip(&mut self, server: usize, combo: Combo, bytes: u64) {
        if let Some(i) = self
            .left
            .iter()
            .position(|&(s, c, b)| s == server && c == combo && b == bytes)
        {
            self.left.swap_remove(i);
        }
    }

    /// No further transfer of `server` with `combo` will run.
    pub(super) fn drop_all(&mut self, server: usize, combo: Combo) {
        self.left.retain(|&(s, c, _)| !(s == server && c == combo));
    }

    pub(super) fn storm_done(&mut self, took: Duration) -> Duration {
        self.storms_left = self.storms_left.saturating_sub(1);
        self.storm_each = took.max(self.storm_each / 2);
        self.remaining()
    }

    pub(super) fn remaining(&self) -> Duration {
        let rate = |seen: &[&(usize, Combo, u64, Duration)]| {
            let bytes: u64 = seen.iter().map(|s| s.2).sum();
            let took: Duration = seen.iter().map(|s| s.3).sum();
            (!seen.is_empty()).then(|| bytes as f64 / took.as_secs_f64().max(1e-3))
        };
        let transfers: f64 = self
            .left
            .iter()
            .map(|&(server, combo, bytes)| {
                let own: Vec<_> = self
                    .seen
                    .iter()
                    .filter(|s| s.0 == server && s.1 == combo)
                    .collect();
                let any: Vec<_> = self.seen.iter().filter(|s| s.1 == combo).collect();
                let rate = rate(&own)
                    .or_else(|| rate(&any))
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
