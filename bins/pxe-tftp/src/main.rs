//! `pxe-tftp`: TFTP service for network boot programs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

/// Serves boot programs over TFTP (RFC 1350 with blksize, tsize, timeout and windowsize).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Directory to serve [default: /srv/tftp if it exists, else /usr/lib/ipxe (Debian's ipxe package)]
    #[arg(long)]
    root: Option<PathBuf>,
    /// Address of the request port [default: 0.0.0.0:69]; port 0 picks a free one
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Run every transfer on the request port (for NAT, strict firewalls and containers)
    #[arg(long)]
    single_port: bool,
    /// TOML configuration; pxe-tftp reads [tftp] and [log]
    #[arg(long)]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = netboot_config::Config::load(args.config.as_deref())?;
    if let Some(root) = args.root {
        config.tftp.root = Some(root);
    }
    if let Some(listen) = args.listen {
        config.tftp.listen = vec![listen];
    }
    config.tftp.single_port |= args.single_port;
    let _log_guard = netboot_runtime::init_logging(&config.log);
    pxe_tftp::run(Arc::new(config), netboot_runtime::shutdown_signal()).await
}
