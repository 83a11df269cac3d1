//! ConfigMgr (SCCM / MECM) deployment resolver.
//!
//! For a booting machine, finds every task-sequence deployment made available to it (or to
//! the Unknown Computer object of its architecture) and answers a menu whose entries are
//! marked Required or Available, each booting the deployment's Windows PE image through
//! wimboot.
//!
//! The crate has three layers:
//!
//! - [`identity`]: request → ConfigMgr keys (upper-case MAC, canonical SMBIOS GUID, CPU type),
//!   dropping placeholder, dummy and configured duplicate identifiers;
//! - [`sql`] + [`source`]: thin SQL over the documented views, run by one of two backends
//!   behind [`SiteDatabase`]: SQL Server through tiberius ([`TdsSite`]) or a SQLite fixture
//!   with the same names ([`SqliteSite`]);
//! - [`rules`]: a pure function from rows to the [`netboot_core::BootDecision`]. Every
//!   eligibility rule lives there and is unit-tested with rows.
//!
//! [`ConfigMgrResolver`] ties them together and implements
//! [`netboot_core::BootResolver`]. Wrap it in a cache: every boot asks several times.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use netboot_configmgr::*;
//! let db = SqliteSite::open("testdata/configmgr/demo.sqlite", Some("testdata/configmgr/migrations".as_ref())).await?;
//! let settings = ResolverSettings {
//!     policy: Policy { unknown_computers: true, ..Policy::default() },
//!     duplicates: DuplicateIdentifiers::default(),
//!     excluded_macs: Default::default(),
//!     bios_assume_x64: true,
//!     images: ImageStore { dir: "/srv/netboot/configmgr".into(), url_prefix: "configmgr".into(), fetch_missing: false },
//!     local_offset: None,
//! };
//! let resolver = ConfigMgrResolver::new(Arc::new(db), settings);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod fixture;
pub mod flags;
pub mod identity;
mod resolver;
pub mod rows;
pub mod rules;
pub mod source;
pub mod sql;
mod sqlite;
mod tds;

pub use identity::{DuplicateIdentifiers, Firmware, ImageArch, Platform};
pub use resolver::{ConfigMgrResolver, ImageStore, ResolverSettings};
pub use rules::{BootImageFiles, Handoff, MenuOrder, NothingDeployed, Policy};
pub use source::{LookupKeys, SiteDatabase, SourceError};
pub use sqlite::{LazySqliteSite, SqliteSite};
pub use tds::{TdsOptions, TdsSite};
