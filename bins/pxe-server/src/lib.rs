//! `pxe-server`: the three network boot services in one process, for small sites and the
//! quick start. One configuration file (the same one `pxe-proxy`, `pxe-tftp` and `pxe-https`
//! read), one resolver shared by the proxy and the script service, one shutdown.
//!
//! [`PxeServer`] binds the same [`Bound`] services the separate binaries run, so the three
//! read every key exactly as they do alone.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use netboot_service::{Bound as _, Context, Service as _, Shutdown, Telemetry};
//! let config = Arc::new(netboot_config::Config::load(None)?);
//! let context = Context::new(Telemetry::disabled());
//! let server = pxe_server::PxeServer::bind(config, context).await?;
//! println!("{:?}", server.local_addrs());
//! let (_stop, shutdown) = Shutdown::new();
//! server.serve(shutdown).await
//! # }
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use netboot_config::{Config, Problems};
use netboot_service::{Bound, Context, LocalAddr, Reload, Section, Service, Shutdown};

mod boot_programs;

pub use boot_programs::{check_boot_programs, MissingBootProgram};

/// All three services in one process.
#[derive(Debug)]
pub struct PxeServer;

/// Command-line flags of `pxe-server`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Boot programs (undionly.kpxe, snponly.efi) for TFTP and HTTP [default: the site's build in <state_dir>/ipxe, else Debian's /usr/lib/ipxe]
    #[arg(long, value_name = "DIR")]
    pub ipxe_dir: Option<PathBuf>,
    /// Answer every PXE client, also machines no [[resolver.static.machines]] rule names
    /// (their iPXE script exits to the next boot device); the same as writing
    /// `unmatched = "exit"` under [resolver.static]. Without it, and without rules, a first
    /// start answers no one.
    #[arg(long)]
    pub answer_all: bool,
}

impl Service for PxeServer {
    const NAME: &'static str = "pxe-server";
    const ABOUT: &'static str = "Network boot server for small sites: answers PXE and UEFI HTTP Boot \
        clients next to the site's DHCP server, serves iPXE over TFTP and HTTP, and hands each \
        machine its boot script. Without a configuration file it runs on the embedded defaults.";
    const SECTIONS: &'static [Section] = &[
        Section::Proxy,
        Section::Tftp,
        Section::Https,
        Section::Resolver,
        Section::Admin,
    ];
    type Args = Args;
    type Bound = BoundServer;

    fn apply_args(args: &Args, config: &mut Config) {
        if let Some(dir) = &args.ipxe_dir {
            config.tftp.root = Some(dir.clone());
            config.https.ipxe_dir = Some(dir.clone());
        }
        if args.answer_all {
            config.resolver.static_rules.unmatched = netboot_core::Unmatched::Exit;
        }
    }

    /// What each service checks, and that the boot programs the proxy hands out are where
    /// TFTP serves them.
    fn check(config: &Config, problems: &mut Problems) {
        pxe_proxy::Proxy::check(config, problems);
        pxe_tftp::Tftp::check(config, problems);
        pxe_https::Https::check(config, problems);
        if let Err(missing) = check_boot_programs(config) {
            problems.push("tftp.root", missing.to_string());
        }
    }

    /// Binds every socket of the three services first, so a busy port fails the start
    /// instead of leaving a half-running server.
    async fn bind(config: Arc<Config>, context: Context) -> anyhow::Result<BoundServer> {
        let proxy = pxe_proxy::Proxy::bind(Arc::clone(&config), context.clone())
            .await
            .context("proxyDHCP")?;
        let tftp = pxe_tftp::Tftp::bind(Arc::clone(&config), context.clone())
            .await
            .context("TFTP")?;
        let https = pxe_https::Https::bind(config, context).await.context("HTTPS")?;
        Ok(BoundServer { proxy, tftp, https })
    }
}

/// All three services, bound and ready to serve.
#[derive(Debug)]
pub struct BoundServer {
    proxy: pxe_proxy::BoundProxy,
    tftp: pxe_tftp::TftpServer,
    https: pxe_https::Server,
}

impl Bound for BoundServer {
    fn local_addrs(&self) -> Vec<LocalAddr> {
        let mut addrs = self.proxy.local_addrs();
        addrs.extend(self.tftp.local_addrs());
        addrs.extend(self.https.local_addrs());
        addrs
    }

    fn reloaders(&self) -> Vec<Arc<dyn Reload>> {
        let mut reloaders = self.proxy.reloaders();
        reloaders.extend(self.tftp.reloaders());
        reloaders.extend(self.https.reloaders());
        reloaders
    }

    /// Serves until `shutdown`. When one service fails the others are stopped at once and
    /// the first error is returned.
    async fn serve(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let (stop_all, shutdown) = shutdown.child();
        let mut services = tokio::task::JoinSet::new();
        services.spawn({
            let shutdown = shutdown.clone();
            async move { ("proxyDHCP", self.proxy.serve(shutdown).await) }
        });
        services.spawn({
            let shutdown = shutdown.clone();
            async move { ("TFTP", self.tftp.serve(shutdown).await) }
        });
        services.spawn(async move { ("HTTPS", self.https.serve(shutdown).await) });
        let mut first_error = None;
        while let Some(ended) = services.join_next().await {
            if let Some(error) = service_failed(ended) {
                // A half-working boot server is worse than one a supervisor restarts.
                stop_all.stop();
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Turns a finished service task into its error, if it failed.
fn service_failed(
    ended: Result<(&'static str, anyhow::Result<()>), tokio::task::JoinError>,
) -> Option<anyhow::Error> {
    match ended {
        Ok((_, Ok(()))) => None,
        Ok((name, Err(error))) => {
            tracing::error!("{name} stopped: {error:#}");
            Some(error.context(name))
        }
        Err(join) => Some(anyhow::anyhow!("a service task failed: {join}")),
    }
}
