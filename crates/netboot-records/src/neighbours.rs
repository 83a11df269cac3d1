//! The kernel's neighbour (ARP) table: which MAC is behind an on-link IPv4 address.

use std::net::{IpAddr, Ipv4Addr};

use netboot_core::MacAddr;

/// Looks `ip` up in `/proc/net/arp`. Only complete entries of on-link IPv4 neighbours are
/// there; relayed clients and IPv6 are not (their events are matched in the database).
#[must_use]
pub fn lookup(ip: IpAddr) -> Option<MacAddr> {
    let IpAddr::V4(ip) = ip else { return None };
    if ip.is_loopback() {
        return None;
    }
    let table = std::fs::read_to_string("/proc/net/arp").ok()?;
    find(&table, ip)
}

/// Parses the table text (`IP address  HW type  Flags  HW address  Mask  Device`).
fn find(table: &str, ip: Ipv4Addr) -> Option<MacAddr> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (address, flags, mac) = (fields.first()?, fields.get(2)?, fields.get(3)?);
        // 0x2 = ATF_COM: the entry is complete (the MAC is known).
        let complete = u32::from_str_radix(flags.trim_start_matches("0x"), 16).is_ok_and(|f| f & 0x2 != 0);
        (address.parse::<Ipv4Addr>().ok()? == ip && complete)
            .then(|| mac.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_entries_only() {
        let table = "IP address       HW type     Flags       HW address            Mask     Device\n\
                     10.0.0.5         0x1         0x2         52:54:00:12:34:56     *        eth0\n\
                     10.0.0.6         0x1         0x0         00:00:00:00:00:00     *        eth0\n";
        assert_eq!(
            find(table, "10.0.0.5".parse().unwrap()),
            Some("52:54:00:12:34:56".parse().unwrap())
        );
        assert_eq!(find(table, "10.0.0.6".parse().unwrap()), None);
        assert_eq!(find(table, "10.0.0.7".parse().unwrap()), None);
        assert_eq!(lookup("127.0.0.1".parse().unwrap()), None);
    }
}
