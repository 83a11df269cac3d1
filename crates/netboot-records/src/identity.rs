//! Which machine is behind an IP address, for requests that do not say (boot-file downloads).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use netboot_core::{MacAddr, SmbiosUuid};

/// A bounded map from client address to the machine that last identified itself from it.
///
/// iPXE fetches boot files with plain URLs; the HTTPS service learns the MAC from the decision
/// request and looks it up here when a file is served, so image downloads land on the right
/// machine's timeline. When full, the whole map is cleared (cheap, and entries are refreshed
/// by every decision request).
#[derive(Debug)]
pub struct IdentityCache {
    entries: Mutex<HashMap<IpAddr, (MacAddr, Option<SmbiosUuid>)>>,
    capacity: usize,
}

impl IdentityCache {
    /// A cache holding at most `capacity` addresses.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Remembers that `ip` is `mac` (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn remember(&self, ip: IpAddr, mac: MacAddr, uuid: Option<SmbiosUuid>) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&ip) {
            entries.clear();
        }
        entries.insert(ip.to_canonical(), (mac, uuid));
    }

    /// The machine last seen at `ip`.
    #[must_use]
    pub fn lookup(&self, ip: IpAddr) -> Option<(MacAddr, Option<SmbiosUuid>)> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&ip.to_canonical())
            .copied()
    }
}

impl Default for IdentityCache {
    fn default() -> Self {
        Self::new(65_536)
    }
}
