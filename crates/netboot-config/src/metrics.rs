//! `[metrics]`: the Prometheus listener every binary can open.

use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::listen::{de_listen, ser_listen, ListenOrOff};

/// A plain-HTTP listener serving `/metrics` (Prometheus text) and `/healthz` from any
/// binary, so a split deployment is measured as well as the all-in-one server. It is off by
/// default and has no authentication: bind it to loopback or a management network.
///
/// `/healthz` answers `200 ok` while serving and `503 draining` once the process is
/// stopping, so a load balancer stops sending clients to it.
///
/// ```
/// let config = netboot_config::Config::from_toml_str("[metrics]\nlisten = \"127.0.0.1:9181\"\n").unwrap();
/// assert_eq!(config.metrics.listen.unwrap().port(), 9181);
/// assert_eq!(netboot_config::Config::default().metrics.listen, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `ADDRESS:PORT` of the metrics listener, or `"off"` (the default). Changing it needs a
    /// restart.
    #[serde(serialize_with = "ser_listen", deserialize_with = "de_listen")]
    #[schemars(with = "ListenOrOff")]
    pub listen: Option<SocketAddr>,
}
