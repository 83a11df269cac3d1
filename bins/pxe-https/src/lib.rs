//! `pxe-https`: the iPXE boot-script service and boot-file server.
//!
//! * `GET /boot.ipxe`: the static entry script; it calls back with the machine's identity.
//! * `GET|POST /boot.ipxe/decide`: asks the [`netboot_core::BootResolver`] (with the
//!   `[resolver] deadline_ms` deadline) and answers `exit`, a countdown, a menu or the
//!   configured fallback.
//! * `GET|HEAD /<path>`: boot files from `https.root`, then `https.ipxe_dir`, with ranges,
//!   validators and streaming; BranchCache Content Information for clients that ask with
//!   PeerDist headers ([`peerdist`]).
//! * `GET /boot.ipxe/handoff/<token>/<name>`: per-boot Windows PE hand-off files
//!   ([`handoff`]).
//! * `POST /boot.ipxe/login`: the boot console's login form, when `[auth]` is on ([`auth`]).
//! * `GET /healthz`.
//!
//! A Required Windows PE entry boots by itself once: [`required`] explains how the complete
//! download of that entry's boot image is told apart from any other download of the same
//! file, and records it so later decisions offer the entry as Available.
//!
//! Everything is served on the HTTPS listener and, when enabled, on the plain HTTP one and on
//! the OpenSSL compatibility TLS listener ([`compat_tls`], feature `openssl-compat`).

pub mod app;
pub mod auth;
pub mod auth_approval;
pub mod auth_ldap;
pub mod auth_users;
mod checks;
pub mod commands;
pub mod compat_tls;
pub mod connection;
pub mod dp_gate;
pub mod files;
pub mod handoff;
pub mod ipxe_build;
pub mod peerdist;
pub mod required;
pub mod server;
pub mod site_ca;
pub mod site_ca_command;
pub mod tls;

pub use server::{Args, Https, Server};
