//! `pxe-tftp`: serves the boot programs of a directory over TFTP.
//!
//! The protocol lives in `netboot-tftp` (sans-IO); this crate owns sockets, files and time.
//! [`Tftp`] is its [`netboot_service::Service`], which `pxe-server` binds next to the other
//! services from the same configuration:
//!
//! ```no_run
//! # async fn example(config: std::sync::Arc<netboot_config::Config>) -> anyhow::Result<()> {
//! use netboot_service::{Bound as _, Context, Service as _, Shutdown, Telemetry};
//! let context = Context::new(Telemetry::disabled());
//! let server = pxe_tftp::Tftp::bind(config, context).await?;
//! println!("tftp on {:?}", server.local_addrs());
//! let (_stop, shutdown) = Shutdown::new();
//! server.serve(shutdown).await
//! # }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use netboot_config::{Config, Problems};
use netboot_service::{Context, RuntimeFlavor, Section, Service};

mod arrival;
mod files;
mod link;
mod read;
mod server;
mod transfer_socket;
mod upload;
mod workers;

pub use files::{FileSource, RootDir};
pub use server::{limits_from_config, TftpServer};

/// The TFTP service.
#[derive(Debug)]
pub struct Tftp;

/// Command-line flags of `pxe-tftp`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Directory to serve [default: /srv/tftp if it exists, else /usr/lib/ipxe (Debian's ipxe package)]
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Address of the request port [default: 0.0.0.0:69]; port 0 picks a free one
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Run every transfer on the request port (for NAT, strict firewalls and containers)
    #[arg(long)]
    pub single_port: bool,
}

impl Service for Tftp {
    const NAME: &'static str = "pxe-tftp";
    const ABOUT: &'static str =
        "Serves boot programs over TFTP (RFC 1350 with blksize, tsize, timeout and windowsize)";
    const SECTIONS: &'static [Section] = &[Section::Tftp];
    // Transfers run on worker threads of their own (see `workers`); the request loop needs one.
    const RUNTIME: RuntimeFlavor = RuntimeFlavor::CurrentThread;
    type Args = Args;
    type Bound = TftpServer;

    fn apply_args(args: &Args, config: &mut Config) {
        if let Some(root) = &args.root {
            config.tftp.root = Some(root.clone());
        }
        if let Some(listen) = args.listen {
            config.tftp.listen = vec![listen];
        }
        config.tftp.single_port |= args.single_port;
    }

    /// The served root and the upload directory must be existing directories.
    fn check(config: &Config, problems: &mut Problems) {
        netboot_service::check_dir_exists("tftp.root", &root_of(config), problems);
        if let Some(dir) = upload_dir_of(config) {
            netboot_service::check_dir_exists("tftp.upload_dir", &dir, problems);
        }
    }

    async fn bind(config: Arc<Config>, context: Context) -> anyhow::Result<TftpServer> {
        TftpServer::bind(&config, context.telemetry).await
    }
}

/// The served root: `[tftp] root` (relative to the configuration file), or the default
/// (see [`Config::tftp_root`]).
pub fn root_of(config: &Config) -> PathBuf {
    config.tftp_root()
}

/// Says at start which iPXE the TFTP root holds when it is the iPXE directory (the site's build
/// or, as a fallback, Debian's package).
pub fn log_ipxe_source(config: &Config, root: &std::path::Path) {
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

/// Where uploads go, when they are allowed (relative to the configuration file).
pub fn upload_dir_of(config: &Config) -> Option<PathBuf> {
    let tftp = &config.tftp;
    tftp.upload_dir
        .as_deref()
        .filter(|_| tftp.allow_upload)
        .map(|dir| config.resolve_path(dir))
}
