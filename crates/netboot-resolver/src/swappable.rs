//! A resolver whose implementation can be replaced while requests are in flight, so a
//! configuration reload (SIGHUP) changes rules without restarting the services that hold it.

use std::sync::{Arc, RwLock};

use netboot_core::{BootRequest, BootResolver, ResolveFuture};

/// Delegates to the resolver installed last. A lookup already running finishes on the
/// resolver it started with; the next one uses the new one.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use netboot_core::{BootDecision, BootRequest, BootResolver, BootStage, ClientArch, StaticResolver, StaticRules};
/// let rules = |unmatched| StaticRules { unmatched, ..StaticRules::default() };
/// let first = StaticResolver::new(rules(netboot_core::Unmatched::Ignore)).unwrap();
/// let swappable = netboot_resolver::Swappable::new(Arc::new(first));
/// let request = BootRequest::new("52:54:00:12:34:56".parse().unwrap(), ClientArch::EfiX64, BootStage::Ipxe);
/// assert_eq!(swappable.resolve(&request).await.unwrap(), BootDecision::Ignore);
/// swappable.replace(Arc::new(StaticResolver::new(rules(netboot_core::Unmatched::Exit)).unwrap()));
/// assert_eq!(swappable.resolve(&request).await.unwrap(), BootDecision::EXIT);
/// # }
/// ```
#[derive(Debug)]
pub struct Swappable {
    current: RwLock<Arc<dyn BootResolver>>,
}

impl Swappable {
    /// Starts with `resolver`.
    #[must_use]
    pub fn new(resolver: Arc<dyn BootResolver>) -> Self {
        Self {
            current: RwLock::new(resolver),
        }
    }

    /// Installs `resolver` for every lookup from now on.
    pub fn replace(&self, resolver: Arc<dyn BootResolver>) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = resolver;
    }

    /// The resolver lookups use now.
    #[must_use]
    pub fn current(&self) -> Arc<dyn BootResolver> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl BootResolver for Swappable {
    fn resolve<'a>(&'a self, request: &'a BootRequest) -> ResolveFuture<'a> {
        let resolver = self.current();
        Box::pin(async move { resolver.resolve(request).await })
    }

    fn name(&self) -> &'static str {
        self.current().name()
    }
}
