//! `pxe-server`: proxyDHCP, TFTP and the HTTPS boot-script service in one process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

/// Network boot server for small sites: answers PXE and UEFI HTTP Boot clients next to the
/// site's DHCP server, serves iPXE over TFTP and HTTP, and hands each machine its boot script.
/// Without a configuration file it runs on the embedded defaults.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML configuration (the same file the separate services read)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Boot programs (undionly.kpxe, snponly.efi) for TFTP and HTTP [default: Debian's /usr/lib/ipxe]
    #[arg(long)]
    ipxe_dir: Option<PathBuf>,
    /// Validate the configuration and the boot programs, then exit
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<pxe_https::site_ca_command::Command>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = netboot_config::Config::load(args.config.as_deref())?;
    if let Some(dir) = args.ipxe_dir {
        config.tftp.root = Some(dir.clone());
        config.https.ipxe_dir = Some(dir);
    }
    if let Some(command) = &args.command {
        return command.run(&config);
    }
    pxe_server::check_boot_programs(&config)?;
    if args.check_config {
        println!("configuration OK");
        return Ok(());
    }
    // Registered before binding, so a SIGTERM during start-up stops the server cleanly.
    let mut terminate = signal(SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            () = netboot_runtime::shutdown_signal() => {}
        }
    };
    let _log_guard = netboot_runtime::init_logging(&config.log);
    let resolver = netboot_runtime::build_resolver(&config)?;
    pxe_server::run(Arc::new(config), resolver, shutdown).await
}
