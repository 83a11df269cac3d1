//! The tokio side of the protocol services: UDP sockets that know which interface and address
//! a datagram arrived on, resolver deadlines, and the small secret files of a state directory.
//!
//! Protocol crates stay sans-IO; this crate, `netboot-service` and the service libraries are
//! the only places that own sockets, timers and the async runtime.

#![deny(missing_docs)]

pub mod packet;
pub mod private_file;
pub mod token_key;
pub mod udp;
pub mod udp6;

use std::sync::Arc;
use std::time::Duration;

use netboot_core::{BootDecision, BootRequest, BootResolver, ResolveError};

/// Asks the resolver, giving up after `deadline` so a slow backend never holds a client.
pub async fn resolve_with_deadline(
    resolver: &Arc<dyn BootResolver>,
    request: &BootRequest,
    deadline: Duration,
) -> Result<BootDecision, ResolveError> {
    match tokio::time::timeout(deadline, resolver.resolve(request)).await {
        Ok(result) => result,
        Err(_) => Err(ResolveError::Timeout(deadline)),
    }
}
