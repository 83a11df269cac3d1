//! Shared vocabulary of the netboot suite.
//!
//! Every protocol server (proxyDHCP, TFTP, HTTPS) describes the machine that asked with a
//! [`BootRequest`] and asks one [`BootResolver`] what it should boot. The answer is a
//! [`BootDecision`]. The servers never learn whether a static file, the ConfigMgr site
//! database or a webhook answered; the resolvers never learn which protocol asked.
//!
//! A Required Windows PE entry boots by itself once: [`RunLedger`] and
//! [`offer_as_available`] are the shared vocabulary of that rule (see the `required` module
//! and `netboot_resolver::RequiredOnce`).
//!
//! This crate does no I/O and has no async runtime dependency: the resolver trait returns a
//! boxed `Send` future so binaries can pick an implementation from configuration at run time
//! (`Arc<dyn BootResolver>`).
//!
//! ```
//! use netboot_core::{BootRequest, BootStage, ClientArch, MacAddr};
//! let mac: MacAddr = "52:54:00:12:34:56".parse().unwrap();
//! let req = BootRequest::new(mac, ClientArch::EfiX64, BootStage::Ipxe);
//! assert_eq!(req.mac.to_string(), "52:54:00:12:34:56");
//! ```

#![deny(missing_docs)]

/// Implements `schemars::JsonSchema` for a type written as a string whose `Deserialize` the
/// derive cannot see through (hand-written, `try_from`, `deserialize_with`):
/// `string_schema!(Type, "SchemaName", "format")`, the format naming what the string holds
/// (optional). The calling crate depends on `schemars`.
#[cfg(feature = "schemars")]
#[macro_export]
macro_rules! string_schema {
    ($ty:ty, $name:literal $(, $format:literal)?) => {
        impl schemars::JsonSchema for $ty {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string" $(, "format": $format)? })
            }
        }
    };
}

/// Implements `utoipa::ToSchema` for a type written as a string (its `Serialize` is
/// hand-written): `openapi_string!(Type, "format", "example")`, like [`string_schema!`] for
/// the OpenAPI document of the admin API. The calling crate depends on `utoipa`.
#[cfg(feature = "openapi")]
#[macro_export]
macro_rules! openapi_string {
    ($ty:ty, $format:literal, $example:literal) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::Custom($format.into())))
                    .examples([$example])
                    .into()
            }
        }
        impl utoipa::ToSchema for $ty {}
    };
}

mod arch;
mod decision;
pub mod handoff;
mod ids;
mod request;
mod required;
mod resolver;
mod static_resolver;

pub use arch::ClientArch;
pub use decision::{BootAction, BootDecision, BootMenu, BootTarget, Deployment, WimbootFile};
pub use ids::{MacAddr, ParseIdError, SmbiosUuid};
pub use request::{BootRequest, BootStage, HardwareInfo};
pub use required::{offer_as_available, LedgerError, LedgerFuture, RecordedRun, RunLedger};
pub use resolver::{BootResolver, ResolveError, ResolveFuture};
pub use static_resolver::{
    ActionSpec, MachineRule, StaticResolver, StaticRules, StaticRulesError, Unmatched,
};
