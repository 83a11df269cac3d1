//! What the start-up hands every service it binds: the telemetry handle and the process's
//! one resolver.

use std::sync::{Arc, Mutex};

use netboot_config::Config;
use netboot_core::BootResolver;
use netboot_records::Telemetry;
use netboot_resolver::{BuildError, Swappable};

/// Shared by every service of a process. Cloning is cheap; clones share the resolver, so the
/// all-in-one server's proxy and HTTPS services use one cache, and a reload reaches both.
#[derive(Debug, Clone)]
pub struct Context {
    /// Where the service counts and records.
    pub telemetry: Telemetry,
    resolver: Arc<Mutex<Option<Arc<Swappable>>>>,
    /// The resolver was handed in, not built from the configuration: reloads keep it.
    injected: bool,
}

impl Context {
    /// A context whose resolver is built from the configuration on first use.
    #[must_use]
    pub fn new(telemetry: Telemetry) -> Self {
        Self {
            telemetry,
            resolver: Arc::default(),
            injected: false,
        }
    }

    /// A context that uses `resolver` instead of building one (tests, embedding programs
    /// with a resolver of their own). Reloads then leave it alone.
    #[must_use]
    pub fn with_resolver(telemetry: Telemetry, resolver: Arc<dyn BootResolver>) -> Self {
        Self {
            telemetry,
            resolver: Arc::new(Mutex::new(Some(Arc::new(Swappable::new(resolver))))),
            injected: true,
        }
    }

    /// The process's resolver, built from `[resolver]` the first time a service asks.
    pub fn resolver(&self, config: &Config) -> Result<Arc<dyn BootResolver>, BuildError> {
        let mut slot = self.slot();
        if let Some(resolver) = slot.as_ref() {
            return Ok(Arc::clone(resolver) as Arc<dyn BootResolver>);
        }
        let resolver = Arc::new(Swappable::new(netboot_resolver::build(config)?));
        *slot = Some(Arc::clone(&resolver));
        Ok(resolver)
    }

    /// Builds the resolver of a reloaded configuration and swaps it in, when a service uses
    /// one and `[resolver]` changed. Lookups already running finish on the old one.
    pub(crate) fn reload_resolver(&self, old: &Config, new: &Config) -> Result<bool, BuildError> {
        let slot = self.slot();
        let Some(resolver) = slot.as_ref() else {
            return Ok(false);
        };
        if self.injected || old.resolver == new.resolver {
            return Ok(false);
        }
        resolver.replace(netboot_resolver::build(new)?);
        Ok(true)
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Swappable>>> {
        self.resolver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
