//! The chainload loop guard: which machines were recently handed a boot program (NBP).
//!
//! A site that chainloads its own iPXE build into machines whose NIC ROM is already iPXE must
//! recognise the chainloaded iPXE when it asks again, or the machine loads the NBP forever.
//! The vendor class usually tells them apart (ROMs send the full `PXEClient:Arch:...` form,
//! a chainloaded `undionly.kpxe` plain `PXEClient`), but not always: UEFI builds send the full
//! form either way. So the responder also remembers, per MAC, when it last handed out an NBP
//! and hands the script URL to an iPXE client of that MAC within a short window.
//!
//! The guard holds no clock: callers pass the current time in.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use netboot_core::MacAddr;
//! use netboot_dhcp::chainload::ChainloadGuard;
//!
//! let mut guard = ChainloadGuard::new(Duration::from_secs(120), 1024);
//! let mac: MacAddr = "52:54:00:00:00:01".parse().unwrap();
//! let start = Instant::now();
//! assert!(!guard.handed_recently(mac, start));
//! guard.remember(mac, start);
//! assert!(guard.handed_recently(mac, start + Duration::from_secs(30)));
//! assert!(!guard.handed_recently(mac, start + Duration::from_secs(121)));
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use netboot_core::MacAddr;

/// How long after handing out an NBP the same machine's iPXE counts as the chainloaded one:
/// long enough for a slow TFTP transfer and iPXE's start under emulation, short enough that a
/// later reboot chainloads again.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(120);

/// Machines remembered at most; beyond that the oldest entry is forgotten first. A forgotten
/// machine at worst loads the NBP once more (its vendor class still stops BIOS loops).
pub const DEFAULT_CAPACITY: usize = 65_536;

/// Per-MAC memory of recently handed NBPs, bounded in size and age.
#[derive(Debug, Clone)]
pub struct ChainloadGuard {
    window: Duration,
    capacity: usize,
    handed: HashMap<MacAddr, Instant>,
}

impl Default for ChainloadGuard {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW, DEFAULT_CAPACITY)
    }
}

impl ChainloadGuard {
    /// A guard remembering up to `capacity` machines (at least one) for `window` each.
    pub fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity: capacity.max(1),
            handed: HashMap::new(),
        }
    }

    /// Whether `mac` was handed an NBP less than the window before `now`.
    pub fn handed_recently(&self, mac: MacAddr, now: Instant) -> bool {
        self.handed
            .get(&mac)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.window)
    }

    /// Notes that `mac` was handed an NBP at `now`.
    pub fn remember(&mut self, mac: MacAddr, now: Instant) {
        if self.handed.len() >= self.capacity && !self.handed.contains_key(&mac) {
            let window = self.window;
            self.handed
                .retain(|_, at| now.saturating_duration_since(*at) < window);
            if self.handed.len() >= self.capacity {
                if let Some(oldest) = self.handed.iter().min_by_key(|(_, at)| **at).map(|(m, _)| *m) {
                    self.handed.remove(&oldest);
                }
            }
        }
        self.handed.insert(mac, now);
    }

    /// Machines currently remembered (expired ones included until space is needed).
    pub fn len(&self) -> usize {
        self.handed.len()
    }

    /// Whether no machine is remembered.
    pub fn is_empty(&self) -> bool {
        self.handed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An arbitrary origin; the code under test never reads the clock itself.
    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    fn mac(last: u8) -> MacAddr {
        MacAddr([0x52, 0x54, 0, 0, 0, last])
    }

    #[test]
    fn remembers_within_the_window_only() {
        let mut guard = ChainloadGuard::new(Duration::from_secs(10), 8);
        let t0 = origin();
        guard.remember(mac(1), t0);
        assert!(guard.handed_recently(mac(1), t0));
        assert!(guard.handed_recently(mac(1), t0 + Duration::from_secs(9)));
        assert!(!guard.handed_recently(mac(1), t0 + Duration::from_secs(10)));
        assert!(!guard.handed_recently(mac(2), t0));
        // A clock that went backwards counts as "just now", never as a panic.
        assert!(guard.handed_recently(mac(1), t0.checked_sub(Duration::from_secs(1)).unwrap_or(t0)));
    }

    #[test]
    fn stays_bounded_forgetting_expired_then_oldest() {
        let mut guard = ChainloadGuard::new(Duration::from_secs(10), 3);
        let t0 = origin();
        for n in 0..3 {
            guard.remember(mac(n), t0 + Duration::from_secs(u64::from(n)));
        }
        guard.remember(mac(10), t0 + Duration::from_secs(5));
        assert_eq!(guard.len(), 3);
        assert!(
            !guard.handed_recently(mac(0), t0 + Duration::from_secs(5)),
            "oldest forgotten"
        );
        assert!(guard.handed_recently(mac(1), t0 + Duration::from_secs(5)));
        // Later, everything but the newest has expired and is dropped first.
        guard.remember(mac(11), t0 + Duration::from_secs(14));
        assert!(guard.len() <= 3);
        assert!(guard.handed_recently(mac(10), t0 + Duration::from_secs(14)));
        assert!(guard.handed_recently(mac(11), t0 + Duration::from_secs(14)));
        for n in 0..1000u16 {
            guard.remember(MacAddr([2, 0, 0, 0, (n >> 8) as u8, n as u8]), t0);
        }
        assert_eq!(guard.len(), 3);
    }

    #[test]
    fn remembering_again_refreshes() {
        let mut guard = ChainloadGuard::new(Duration::from_secs(10), 1);
        let t0 = origin();
        guard.remember(mac(1), t0);
        guard.remember(mac(1), t0 + Duration::from_secs(8));
        assert!(guard.handed_recently(mac(1), t0 + Duration::from_secs(15)));
    }
}
