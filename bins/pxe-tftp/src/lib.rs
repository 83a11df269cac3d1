//! `pxe-tftp`: serves the boot programs of a directory over TFTP.
//!
//! The protocol lives in `netboot-tftp` (sans-IO); this crate owns sockets, files and time, so
//! an all-in-one binary can run it next to the other services:
//!
//! ```no_run
//! # async fn example(config: netboot_config::Config) -> anyhow::Result<()> {
//! let server = pxe_tftp::TftpServer::bind(&config.tftp, &config.tftp_root()).await?;
//! println!("tftp on {:?}", server.local_addrs()?);
//! server.serve(std::future::pending()).await
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;

mod files;
mod link;
mod read;
mod server;
mod transfer_socket;
mod upload;
mod workers;

pub use files::{FileSource, RootDir};
pub use server::{limits_from_config, TftpServer};

/// Says at start which iPXE the TFTP root holds when it is the iPXE directory (the site's build
/// or, as a fallback, Debian's package).
pub fn log_ipxe_source(config: &netboot_config::Config, root: &std::path::Path) {
    let ipxe_dir = config.ipxe_dir();
    if ipxe_dir.path() != Some(root) {
        return;
    }
    match ipxe_dir.start_message() {
        Some((true, message)) => tracing::warn!("{message}"),
        Some((false, message)) => tracing::info!("{message}"),
        None => {}
    }
}

/// Binds `[tftp]` and serves until `shutdown` resolves.
pub async fn run(
    config: Arc<netboot_config::Config>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let root = config.tftp_root();
    log_ipxe_source(&config, &root);
    // A relative upload_dir, like the root, is relative to the configuration file.
    let mut tftp = config.tftp.clone();
    tftp.upload_dir = tftp.upload_dir.map(|dir| config.resolve_path(&dir));
    let server = TftpServer::bind(&tftp, &root).await?;
    // Boot records and metrics of this process ([records]); flushed after the last transfer.
    let records = netboot_records::start(&config);
    let result = server.serve(shutdown).await;
    records.finish().await;
    result
}
