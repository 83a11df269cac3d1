//! `pxe-server`: the three network boot services in one process, for small sites and the
//! quick start. One configuration file (the same one `pxe-proxy`, `pxe-tftp` and `pxe-https`
//! read), one resolver shared by the proxy and the script service, one shutdown.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! let config = Arc::new(netboot_config::Config::load(None)?);
//! let resolver = netboot_runtime::build_resolver(&config)?;
//! let server = pxe_server::PxeServer::bind(config, resolver).await?;
//! println!("{:?}", server.local_addrs());
//! server.serve(std::future::pending()).await
//! # }
//! ```

use std::future::Future;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;

use anyhow::Context;
use netboot_config::Config;
use netboot_core::BootResolver;
use tokio::sync::watch;

mod boot_programs;

pub use boot_programs::{check_boot_programs, MissingBootProgram};

/// The addresses the services are bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddrs {
    /// proxyDHCP sockets: the DHCP port first, then the PXE boot-server port.
    pub proxy: Vec<SocketAddrV4>,
    /// TFTP request sockets.
    pub tftp: Vec<SocketAddr>,
    /// The HTTPS listener.
    pub https: SocketAddr,
    /// The plain HTTP listener, when enabled.
    pub http: Option<SocketAddr>,
}

/// All three services, bound and ready to serve.
pub struct PxeServer {
    proxy: pxe_proxy::BoundProxy,
    tftp: pxe_tftp::TftpServer,
    https: pxe_https::Server,
    resolver: Arc<dyn BootResolver>,
}

impl PxeServer {
    /// Binds every socket first, so a busy port fails the start instead of leaving a
    /// half-running server.
    pub async fn bind(config: Arc<Config>, resolver: Arc<dyn BootResolver>) -> anyhow::Result<Self> {
        let proxy = pxe_proxy::bind(Arc::clone(&config)).context("proxyDHCP")?;
        let tftp_root = config.tftp_root();
        let tftp = pxe_tftp::TftpServer::bind(&config.tftp, &tftp_root)
            .await
            .context("TFTP")?;
        let https = pxe_https::Server::bind(Arc::clone(&config), Arc::clone(&resolver))
            .await
            .context("HTTPS")?;
        Ok(Self {
            proxy,
            tftp,
            https,
            resolver,
        })
    }

    /// Where each service listens.
    pub fn local_addrs(&self) -> anyhow::Result<LocalAddrs> {
        Ok(LocalAddrs {
            proxy: self
                .proxy
                .local_addrs()
                .into_iter()
                .map(|(_, addr)| addr)
                .collect(),
            tftp: self.tftp.local_addrs()?,
            https: self.https.https_addr(),
            http: self.https.http_addr(),
        })
    }

    /// Serves until `shutdown` completes. When one service fails the others are stopped and
    /// the first error is returned.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let mut services = tokio::task::JoinSet::new();
        services.spawn({
            let done = until_stopped(stopped.clone());
            let resolver = Arc::clone(&self.resolver);
            async move { ("proxyDHCP", self.proxy.serve(resolver, done).await) }
        });
        services.spawn({
            let done = until_stopped(stopped.clone());
            async move { ("TFTP", self.tftp.serve(done).await) }
        });
        services.spawn({
            let done = until_stopped(stopped.clone());
            async move { ("HTTPS", self.https.serve(done).await) }
        });
        let mut first_error = None;
        tokio::select! {
            () = shutdown => tracing::info!("shutting down"),
            // A service that ends on its own takes the others down with it: a half-working
            // boot server is worse than one a supervisor restarts.
            Some(ended) = services.join_next() => {
                first_error = Some(service_ended(ended).unwrap_or_else(|| anyhow::anyhow!("a service stopped unexpectedly")));
            }
        }
        let _ = stop.send(true);
        while let Some(ended) = services.join_next().await {
            if let Some(error) = service_ended(ended) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Turns a finished service task into its error, if it failed (finishing before shutdown is
/// logged either way).
fn service_ended(
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

/// Binds all three services and serves until `shutdown`: what `main` calls.
pub async fn run(
    config: Arc<Config>,
    resolver: Arc<dyn BootResolver>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    PxeServer::bind(config, resolver).await?.serve(shutdown).await
}
