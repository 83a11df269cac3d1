//! The one decision interface between protocol servers and deployment sources.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use crate::{BootDecision, BootRequest};

/// The future a resolver returns; boxed so resolvers can be chosen at run time.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = Result<BootDecision, ResolveError>> + Send + 'a>>;

/// Why a resolver could not decide. Servers turn this into their configured fallback.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The answer did not arrive before the caller's deadline.
    #[error("resolver did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The backing system (database, webhook) could not be reached or failed.
    #[error("{backend} unavailable: {source}")]
    Unavailable {
        /// Which backend, e.g. `configmgr-sql` or `webhook`.
        backend: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend answered something this resolver cannot use.
    #[error("{backend} gave an invalid answer: {detail}")]
    InvalidAnswer {
        /// Which backend.
        backend: &'static str,
        /// What was wrong with it.
        detail: String,
    },
}

impl ResolveError {
    /// What a client may be told: the kind of failure, never its detail. The detail of an
    /// unreachable backend names hosts, ports and sometimes accounts; it belongs in the log.
    #[must_use]
    pub fn client_summary(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "the boot server did not decide in time",
            Self::Unavailable { .. } => "the boot server cannot reach its deployment source",
            Self::InvalidAnswer { .. } => "the boot server got an unusable answer from its deployment source",
        }
    }
}

/// Decides what a machine boots. Implemented by the static, ConfigMgr and webhook resolvers.
///
/// Called for every protocol step of a boot, so it must be idempotent and should be cheap
/// (wrap slow sources in a cache). Callers enforce their own deadline.
///
/// ```
/// use netboot_core::*;
/// #[derive(Debug)]
/// struct AlwaysExit;
/// impl BootResolver for AlwaysExit {
///     fn resolve<'a>(&'a self, _req: &'a BootRequest) -> ResolveFuture<'a> {
///         Box::pin(async { Ok(BootDecision::EXIT) })
///     }
///     fn name(&self) -> &'static str { "always-exit" }
/// }
/// ```
pub trait BootResolver: Send + Sync + Debug + 'static {
    /// Decides for one request.
    fn resolve<'a>(&'a self, request: &'a BootRequest) -> ResolveFuture<'a>;

    /// Short name for logs and records (`static`, `configmgr`, `webhook`).
    fn name(&self) -> &'static str;
}

impl<R: BootResolver + ?Sized> BootResolver for std::sync::Arc<R> {
    fn resolve<'a>(&'a self, request: &'a BootRequest) -> ResolveFuture<'a> {
        (**self).resolve(request)
    }
    fn name(&self) -> &'static str {
        (**self).name()
    }
}
