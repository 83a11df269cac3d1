//! [`RequiredOnce`]: a Required deployment boots by itself once, then waits to be picked.
//!
//! The layer sits in front of any resolver, outside its cache:
//!
//! ```text
//! protocol server → RequiredOnce → Cached → ConfigMgr / webhook / static
//!                        │
//!                        └── RunLedger (records database or its own file)
//! ```
//!
//! The cache keeps what the site database says (a deployment is Required); the layer applies
//! what happened since (this machine ran it) on every request. A run recorded a moment ago
//! therefore changes the very next decision, on every host that shares the ledger, however
//! long the cache keeps its entry. The ledger is asked only when a decision holds an entry
//! the rule applies to ([`netboot_core::BootAction::runs_once`]), so menus without one cost
//! nothing extra.
//!
//! When the ledger cannot be read in time, every such entry is offered as Available: a
//! machine that should have been installed waits at the menu for someone to pick the entry,
//! rather than a machine that was installed being wiped again. After such a failure the
//! ledger is left alone for [`LEDGER_RETRY_AFTER`], so an outage does not slow every boot
//! by the timeout.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use netboot_core::{
    offer_as_available, BootAction, BootDecision, BootRequest, BootResolver, ResolveError, ResolveFuture,
    RunLedger,
};

/// How long the ledger may take before its entries are offered as Available anyway.
pub const DEFAULT_LEDGER_TIMEOUT: Duration = Duration::from_millis(1000);
/// After the ledger failed or was too slow, how long decisions do not wait for it: during an
/// outage every boot would otherwise pay the timeout.
pub const LEDGER_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Why an entry the resolver marked Required is offered as Available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Demotion {
    /// The machine ran it.
    Ran {
        /// The deployment (action) id.
        deployment: String,
        /// When its boot image was downloaded.
        at: SystemTime,
    },
    /// The run records could not be read, so whether it ran is unknown.
    LedgerUnavailable {
        /// The deployment (action) id.
        deployment: String,
        /// Why the ledger did not answer.
        error: String,
    },
}

impl Demotion {
    /// The deployment (action) id.
    pub fn deployment(&self) -> &str {
        match self {
            Self::Ran { deployment, .. } | Self::LedgerUnavailable { deployment, .. } => deployment,
        }
    }
}

/// A decision with the entries the layer changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    /// What the machine boots.
    pub decision: BootDecision,
    /// Entries offered as Available instead of Required, and why.
    pub demotions: Vec<Demotion>,
}

/// Offers each Required deployment a machine already ran as Available (see the module
/// documentation).
///
/// ```
/// # async fn demo(ledger: std::sync::Arc<dyn netboot_core::RunLedger>) {
/// use netboot_core::*;
/// use netboot_resolver::RequiredOnce;
/// let rules = StaticResolver::new(StaticRules::default()).unwrap();
/// let layer = RequiredOnce::new(rules, ledger);
/// let request = BootRequest::new("52:54:00:12:34:56".parse().unwrap(), ClientArch::EfiX64, BootStage::Ipxe);
/// let explained = layer.resolve_explained(&request).await.unwrap();
/// assert!(explained.demotions.is_empty());
/// # }
/// ```
pub struct RequiredOnce<R> {
    inner: R,
    ledger: Arc<dyn RunLedger>,
    ledger_timeout: Duration,
    /// Set after a ledger failure: until then the ledger is not asked.
    ledger_down_until: Mutex<Option<Instant>>,
}

impl<R: fmt::Debug> fmt::Debug for RequiredOnce<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequiredOnce")
            .field("inner", &self.inner)
            .field("ledger", &self.ledger)
            .field("ledger_timeout", &self.ledger_timeout)
            .finish()
    }
}

impl<R: BootResolver> RequiredOnce<R> {
    /// Wraps `inner`, reading runs from `ledger`.
    pub fn new(inner: R, ledger: Arc<dyn RunLedger>) -> Self {
        Self {
            inner,
            ledger,
            ledger_timeout: DEFAULT_LEDGER_TIMEOUT,
            ledger_down_until: Mutex::new(None),
        }
    }

    /// Sets how long the ledger may take (default [`DEFAULT_LEDGER_TIMEOUT`]).
    #[must_use]
    pub fn with_ledger_timeout(mut self, timeout: Duration) -> Self {
        self.ledger_timeout = timeout;
        self
    }

    /// The wrapped resolver.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Decides, and says which entries were offered as Available and why.
    pub async fn resolve_explained(&self, request: &BootRequest) -> Result<Explained, ResolveError> {
        let mut decision = self.inner.resolve(request).await?;
        let applies =
            matches!(&decision, BootDecision::Boot(menu) if menu.entries.iter().any(BootAction::runs_once));
        if !applies {
            return Ok(Explained {
                decision,
                demotions: Vec::new(),
            });
        }
        let down_until = *self.ledger_down_until.lock().expect("ledger state lock");
        if down_until.is_some_and(|until| Instant::now() < until) {
            let error = "unavailable at the last attempt; asking again shortly".to_string();
            let demotions = self.unknown_runs(&mut decision, request, error);
            return Ok(Explained { decision, demotions });
        }
        let lookup = tokio::time::timeout(
            self.ledger_timeout,
            self.ledger.runs_of(request.mac, request.uuid),
        );
        let answer = lookup.await;
        *self.ledger_down_until.lock().expect("ledger state lock") =
            (!matches!(answer, Ok(Ok(_)))).then(|| Instant::now() + LEDGER_RETRY_AFTER);
        let demotions = match answer {
            Ok(Ok(runs)) => {
                let mut demotions = Vec::new();
                offer_as_available(&mut decision, |action| {
                    let Some(run) = runs.iter().find(|run| run.deployment == action.id) else {
                        return false;
                    };
                    demotions.push(Demotion::Ran {
                        deployment: run.deployment.clone(),
                        at: run.at,
                    });
                    true
                });
                demotions
            }
            Ok(Err(error)) => self.unknown_runs(&mut decision, request, error.to_string()),
            Err(_) => {
                let error = format!("no answer within {:?}", self.ledger_timeout);
                self.unknown_runs(&mut decision, request, error)
            }
        };
        Ok(Explained { decision, demotions })
    }

    fn unknown_runs(
        &self,
        decision: &mut BootDecision,
        request: &BootRequest,
        error: String,
    ) -> Vec<Demotion> {
        tracing::warn!(
            mac = %request.mac, %error,
            "Required-run records unavailable: Required deployments are offered as Available"
        );
        offer_as_available(decision, |_| true)
            .into_iter()
            .map(|deployment| Demotion::LedgerUnavailable {
                deployment,
                error: error.clone(),
            })
            .collect()
    }
}

impl<R: BootResolver> BootResolver for RequiredOnce<R> {
    fn resolve<'a>(&'a self, request: &'a BootRequest) -> ResolveFuture<'a> {
        Box::pin(async move { Ok(self.resolve_explained(request).await?.decision) })
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

#[cfg(test)]
#[path = "required_once_tests.rs"]
mod tests;
