//! `pxe-https`: serves iPXE boot scripts and boot files over HTTPS (and plain HTTP).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use netboot_config::Config;

/// HTTPS boot-script and boot-file service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file (TOML); the embedded defaults are used without one.
    #[arg(long, env = "NETBOOT_CONFIG")]
    config: Option<PathBuf>,
    /// HTTPS address, overrides `https.listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Plain HTTP address, overrides `https.http_listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    http_listen: Option<SocketAddr>,
    /// Disables the plain HTTP listener.
    #[arg(long, conflicts_with = "http_listen")]
    no_http: bool,
    /// Boot-file root, overrides `https.root`.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// PEM certificate, overrides `https.cert` (needs `--key`).
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key, overrides `https.key` (needs `--cert`).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<pxe_https::site_ca_command::Command>,
}

fn load(args: Args) -> anyhow::Result<Config> {
    let mut config = Config::load(args.config.as_deref())?;
    let https = &mut config.https;
    https.listen = args.listen.unwrap_or(https.listen);
    https.http_listen = if args.no_http {
        None
    } else {
        args.http_listen.or(https.http_listen)
    };
    https.root = args.root.unwrap_or_else(|| https.root.clone());
    if args.cert.is_some() {
        (https.cert, https.key) = (args.cert, args.key);
    }
    config.validate()?;
    Ok(config)
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    let command = args.command.take();
    let result = load(args).and_then(|config| {
        if let Some(command) = &command {
            return command.run(&config);
        }
        let _log_guard = netboot_runtime::init_logging(&config.log);
        let resolver = netboot_runtime::build_resolver(&config)?;
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        runtime.block_on(pxe_https::run(
            Arc::new(config),
            resolver,
            netboot_runtime::shutdown_signal(),
        ))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
