//! Listener addresses that can also be switched off: `"ADDRESS:PORT"` or `"off"`.

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer, Serializer};

/// The schema of a `SocketAddr` field, which schemars describes as any string:
/// `"ADDRESS:PORT"` (`"[::1]:443"` for IPv6).
pub(crate) struct SocketAddress;
netboot_core::string_schema!(SocketAddress, "SocketAddress", "socket-address");

/// The schema of a field read by [`de_listen`]: `"ADDRESS:PORT"` or `"off"`.
pub(crate) struct ListenOrOff;
netboot_core::string_schema!(ListenOrOff, "ListenOrOff", "socket-address-or-off");

pub(crate) fn ser_listen<S: Serializer>(
    listen: &Option<SocketAddr>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match listen {
        Some(addr) => serializer.collect_str(addr),
        None => serializer.serialize_str("off"),
    }
}

pub(crate) fn de_listen<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.is_empty() || text == "off" {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{text:?} is not ADDRESS:PORT or \"off\"")))
}
