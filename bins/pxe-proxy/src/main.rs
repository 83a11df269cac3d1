//! `pxe-proxy`: proxyDHCP service for network boot.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

fn main() -> ExitCode {
    match run(pxe_proxy::Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: pxe_proxy::Args) -> anyhow::Result<()> {
    // Loads `--config` (or the embedded defaults) and applies the port overrides.
    let config = args.load_config()?;
    if args.check_config {
        println!("configuration is valid");
        return Ok(());
    }
    let _log_guard = netboot_runtime::init_logging(&config.log);
    let resolver = netboot_runtime::build_resolver(&config)?;
    // One thread: a reply costs microseconds and one thread avoids cross-thread wake-ups;
    // slow resolver lookups are awaited in their own tasks, never blocking the loop.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(pxe_proxy::run(
        Arc::new(config),
        resolver,
        netboot_runtime::shutdown_signal(),
    ))
}
