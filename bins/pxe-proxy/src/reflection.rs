//! Keeping the proxy from reflecting forged requests at other hosts.
//!
//! A DHCP reply goes where the request says: to the relay agent in `giaddr`, to the client's
//! `ciaddr`, or (port 4011) back to the sender. All three can be forged by anyone who can send
//! us a datagram, which would make the proxy a reflector. Before a request is resolved, its
//! reply's destination must be a relay the site allows, or the sender itself, and each unicast
//! destination gets at most `proxy.max_replies_per_destination` replies per second.
//! Broadcasts stay on the link the request came from and are not limited.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use netboot_config::Ipv4Prefix;
use netboot_dhcp::proxy::ListenPort;
use netboot_dhcp::wire::DhcpMessage;

/// Destinations remembered at once. A flood naming more distinct destinations than this
/// within [`IDLE`] is refused for new ones until old entries go idle.
const MAX_DESTINATIONS: usize = 65_536;
/// After this long without a reply, a destination's bucket is full again and can be forgotten.
const IDLE: Duration = Duration::from_secs(2);

/// Why a request is dropped before it is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `giaddr` names a relay agent outside `proxy.allowed_relays`.
    RelayNotAllowed,
    /// `ciaddr` is set but the request did not come from it.
    CiaddrNotSender,
    /// The destination has had its share of replies this second.
    RateLimited,
}

impl Refused {
    /// The label the drop is counted under (`netboot_dhcp_drops_total{reason=...}`).
    pub(crate) fn metric_label(self) -> &'static str {
        match self {
            Self::RelayNotAllowed => "relay_not_allowed",
            Self::CiaddrNotSender => "ciaddr_not_sender",
            Self::RateLimited => "destination_rate_limited",
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::RelayNotAllowed => "relay agent not in proxy.allowed_relays",
            Self::CiaddrNotSender => "ciaddr differs from the sender's address",
            Self::RateLimited => "too many replies to this destination",
        })
    }
}

/// The unicast destination of the reply to `message`, or `None` for a broadcast; `Err` when
/// the destination is one we must not send to.
pub(crate) fn unicast_destination(
    port: ListenPort,
    source: SocketAddrV4,
    message: &DhcpMessage,
    allowed_relays: &[Ipv4Prefix],
) -> Result<Option<Ipv4Addr>, Refused> {
    match port {
        ListenPort::PxeBootServer => Ok(Some(*source.ip()).filter(|ip| !ip.is_unspecified())),
        ListenPort::Dhcp if !message.giaddr.is_unspecified() => {
            if allowed_relays.iter().any(|relay| relay.contains(message.giaddr)) {
                Ok(Some(message.giaddr))
            } else {
                Err(Refused::RelayNotAllowed)
            }
        }
        // A client that has an address sends from it; a `ciaddr` that is not the sender's is
        // someone else's address.
        ListenPort::Dhcp if !message.ciaddr.is_unspecified() => {
            if message.ciaddr == *source.ip() {
                Ok(Some(message.ciaddr))
            } else {
                Err(Refused::CiaddrNotSender)
            }
        }
        ListenPort::Dhcp => Ok(None),
    }
}

/// Token buckets of replies per unicast destination.
#[derive(Debug)]
pub(crate) struct DestinationLimiter {
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl DestinationLimiter {
    pub(crate) fn new(per_second: u32) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one reply's token for `destination` at `now`; `false` when none is left.
    pub(crate) fn take(&self, destination: impl Into<IpAddr>, now: Instant) -> bool {
        let destination = destination.into();
        // A poisoned lock only means a panic elsewhere mid-update; the buckets stay usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_DESTINATIONS && !buckets.contains_key(&destination) {
            buckets.retain(|_, bucket| now.saturating_duration_since(bucket.last) < IDLE);
            if buckets.len() >= MAX_DESTINATIONS {
                return false;
            }
        }
        let burst = self.per_second;
        let bucket = buckets.entry(destination).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(ciaddr: [u8; 4], giaddr: [u8; 4]) -> DhcpMessage {
        let mut message = DhcpMessage::new_request(1, [2, 0, 0, 0, 0, 1]);
        message.ciaddr = ciaddr.into();
        message.giaddr = giaddr.into();
        message
    }

    #[test]
    fn destinations_follow_the_request_and_forged_ones_are_refused() {
        let any = [Ipv4Prefix::ANY];
        let site: [Ipv4Prefix; 1] = ["10.1.0.0/16".parse().unwrap()];
        let unbound = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68);
        let client = SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 68);
        let dhcp = ListenPort::Dhcp;
        assert_eq!(
            unicast_destination(dhcp, unbound, &message([0; 4], [0; 4]), &site),
            Ok(None)
        );
        let relayed = message([0; 4], [10, 1, 0, 1]);
        assert_eq!(
            unicast_destination(dhcp, client, &relayed, &site),
            Ok(Some(Ipv4Addr::new(10, 1, 0, 1)))
        );
        let forged = message([0; 4], [192, 0, 2, 1]);
        assert_eq!(
            unicast_destination(dhcp, client, &forged, &site),
            Err(Refused::RelayNotAllowed)
        );
        assert!(unicast_destination(dhcp, client, &forged, &any).is_ok());
        assert_eq!(
            unicast_destination(dhcp, client, &forged, &[]),
            Err(Refused::RelayNotAllowed)
        );
        let own = message([10, 1, 2, 3], [0; 4]);
        assert_eq!(
            unicast_destination(dhcp, client, &own, &any),
            Ok(Some(*client.ip()))
        );
        let other = message([192, 0, 2, 9], [0; 4]);
        assert_eq!(
            unicast_destination(dhcp, client, &other, &any),
            Err(Refused::CiaddrNotSender)
        );
        let pxe = ListenPort::PxeBootServer;
        assert_eq!(
            unicast_destination(pxe, client, &other, &any),
            Ok(Some(*client.ip()))
        );
        assert_eq!(unicast_destination(pxe, unbound, &other, &any), Ok(None));
    }

    #[test]
    fn each_destination_gets_its_own_bucket_which_refills() {
        let limiter = DestinationLimiter::new(3);
        let start = Instant::now();
        let victim = Ipv4Addr::new(192, 0, 2, 1);
        let taken = (0..10).filter(|_| limiter.take(victim, start)).count();
        assert_eq!(taken, 3);
        assert!(
            limiter.take(Ipv4Addr::new(192, 0, 2, 2), start),
            "another destination is not held up"
        );
        assert!(
            limiter.take(victim, start + Duration::from_millis(400)),
            "one token back after a third of a second"
        );
        assert!(!limiter.take(victim, start + Duration::from_millis(400)));
    }
}
