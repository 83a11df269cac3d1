//! How many events one machine, and one client address, may add per minute.
//!
//! What a client sends becomes rows in a shared database. A normal boot records a few dozen
//! events (a PeerDist boot one per missing-data range, some hundreds), so the budget is
//! generous; a client that requests the same file in a loop, or claims a new MAC with every
//! request, is cut off at it instead of filling the database for everyone. Refused events are
//! counted (`netboot_records_dropped_total{reason="rate_limited"}`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use netboot_core::MacAddr;

/// Budgets remembered at once; idle ones (full again) are forgotten first.
const MAX_TRACKED: usize = 65_536;
/// After this long without an event a budget is full again and can be forgotten.
const REFILL: Duration = Duration::from_secs(60);

/// Whose budget an event spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Spender {
    Machine(MacAddr),
    Address(IpAddr),
}

/// Token buckets of `per_minute` events for every machine and every client address.
#[derive(Debug)]
pub(crate) struct EventBudget {
    per_minute: f64,
    buckets: Mutex<HashMap<Spender, (f64, Instant)>>,
}

impl EventBudget {
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute: f64::from(per_minute.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Spends one event from the budget of `mac` (when known) and of `ip` (when known);
    /// `false`, spending nothing, when either is exhausted.
    pub(crate) fn spend(&self, mac: Option<MacAddr>, ip: Option<IpAddr>, now: Instant) -> bool {
        let spenders: Vec<Spender> = mac
            .map(Spender::Machine)
            .into_iter()
            .chain(ip.map(Spender::Address))
            .collect();
        // A poisoned lock only means a panic elsewhere mid-update; the buckets stay usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() + spenders.len() > MAX_TRACKED {
            buckets.retain(|_, (_, last)| now.saturating_duration_since(*last) < REFILL);
            if buckets.len() + spenders.len() > MAX_TRACKED {
                return false;
            }
        }
        let rate = self.per_minute / 60.0;
        let mut levels = Vec::with_capacity(spenders.len());
        for spender in &spenders {
            let (tokens, last) = buckets.get(spender).copied().unwrap_or((self.per_minute, now));
            let level =
                (tokens + now.saturating_duration_since(last).as_secs_f64() * rate).min(self.per_minute);
            if level < 1.0 {
                return false;
            }
            levels.push(level);
        }
        for (spender, level) in spenders.into_iter().zip(levels) {
            buckets.insert(spender, (level - 1.0, now));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_machine_and_address_has_its_own_budget_which_refills() {
        let budget = EventBudget::new(60);
        let start = Instant::now();
        let mac: MacAddr = "52:54:00:00:00:01".parse().unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let spent = (0..100)
            .filter(|_| budget.spend(Some(mac), Some(ip), start))
            .count();
        assert_eq!(spent, 60);
        // The same address claiming other MACs is still cut off by its own budget.
        let other: MacAddr = "52:54:00:00:00:02".parse().unwrap();
        assert!(!budget.spend(Some(other), Some(ip), start));
        // Other machines at other addresses are not held up, and a refused event spent
        // nothing from the other machine's budget.
        let elsewhere: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            (0..60)
                .filter(|_| budget.spend(Some(other), Some(elsewhere), start))
                .count(),
            60
        );
        // One event a second comes back.
        assert!(budget.spend(Some(mac), Some(ip), start + Duration::from_millis(1100)));
        assert!(!budget.spend(Some(mac), Some(ip), start + Duration::from_millis(1100)));
        assert!(budget.spend(None, Some("10.0.0.3".parse().unwrap()), start));
    }
}
