//! Listener addresses that can also be switched off: `"ADDRESS:PORT"` or `"off"`.

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer, Serializer};

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
