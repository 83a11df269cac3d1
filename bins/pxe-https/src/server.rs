//! Listeners: HTTPS (rustls) and optional plain HTTP, each connection served by hyper with
//! HTTP/1.1 keep-alive or HTTP/2, and a graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use netboot_config::{Config, ResolverFallback};
use netboot_core::BootResolver;
use netboot_ipxe::{entry_script, Fallback, RenderOptions, Url};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::app::{self, AppState, Peer};
use crate::compat_tls::CompatListener;
use crate::files::Roots;
use crate::handoff::HandoffState;
use crate::peerdist::PeerDist;
use crate::tls::{self, Tls};

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish after shutdown was requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound, not yet serving, `pxe-https`.
#[derive(Debug)]
pub struct Server {
    https: TcpListener,
    http: Option<TcpListener>,
    tls: Tls,
    router: Router,
    /// The routes of the plain-HTTP listener: the same without the admin interface, whose
    /// credentials must never cross the network in clear text.
    plain_router: Router,
    /// The separate `[admin] listen` listener, when configured.
    admin: Option<(TcpListener, netboot_admin::AdminState)>,
    /// Flushes this process's boot records at shutdown.
    records: netboot_records::TelemetryGuard,
    /// The OpenSSL compatibility TLS listener (`https.compat_tls_listen`), when configured.
    compat: Option<CompatListener>,
}

impl Server {
    /// Loads TLS material, binds the listeners and prepares the routes.
    pub async fn bind(config: Arc<Config>, resolver: Arc<dyn BootResolver>) -> Result<Self> {
        let https_config = &config.https;
        let tls = tls::load_or_generate(&config)?;
        // After the main certificate: the compat listener may reuse the generated one.
        let compat = CompatListener::bind(&config).await?;
        let ipxe_dir = config.ipxe_dir();
        crate::ipxe_build::log_start(&ipxe_dir, &tls);
        // A disabled `ipxe_dir` is an empty path, which `Roots` skips.
        let roots = [
            config.resolve_path(&https_config.root),
            ipxe_dir.path().map(Path::to_path_buf).unwrap_or_default(),
        ];
        let (roots, skipped) = Roots::new(&roots);
        for dir in skipped {
            tracing::warn!(dir = %dir.display(), "file root does not exist, not serving it");
        }
        let files_base = match &https_config.public_url {
            Some(url) => Url::absolute(url).context("https.public_url")?,
            None => Url::path("/"),
        };
        let decide = Url::join(&files_base, app::DECIDE_PATH);
        let fallback = match https_config.on_resolver_error {
            ResolverFallback::Exit => Fallback::Exit,
            ResolverFallback::Retry => Fallback::Retry {
                delay_secs: https_config.retry_delay_secs,
                entry: Url::join(&files_base, app::ENTRY_PATH),
            },
        };
        let private_dir = config.resolve_path(&https_config.private_dir);
        if let Ok(private) = private_dir.canonicalize() {
            if roots.dirs().iter().any(|root| private.starts_with(root)) {
                anyhow::bail!(
                    "https.private_dir {} is inside a served file root, where anyone could download its secrets",
                    private_dir.display()
                );
            }
        }
        let handoff = HandoffState::new(
            load_token_key(&config),
            Duration::from_secs(https_config.boot_token_secs.into()),
            Url::join(&files_base, crate::handoff::HANDOFF_PATH),
            Url::join(&files_base, app::ENTRY_PATH),
            private_dir,
        );
        let peerdist = PeerDist::start(&config, &roots)?;
        let state = AppState {
            resolver,
            deadline: Duration::from_millis(config.resolver.deadline_ms),
            render: RenderOptions {
                files_base,
                wimboot: https_config.wimboot.clone(),
                countdown_secs: https_config.countdown_secs,
                menu_timeout_secs: https_config.menu_timeout_secs,
            },
            fallback,
            entry: entry_script(&decide).render().into(),
            roots,
            handoff,
            dp: crate::dp_gate::DpGate::from_config(&config)?,
            peerdist,
        };
        let https = TcpListener::bind(https_config.listen)
            .await
            .with_context(|| format!("binding https {}", https_config.listen))?;
        let http = match https_config.http_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding http {addr}"))?,
            ),
            None => None,
        };
        let records = netboot_records::start(&config);
        let plain_router = app::router(Arc::new(state));
        let mut router = plain_router.clone();
        let mut admin = None;
        if config.admin.enabled {
            let telemetry = netboot_records::telemetry();
            let admin_state = netboot_admin::AdminState::open(
                &config,
                telemetry.recorder.clone(),
                telemetry.metrics.clone(),
            )
            .await
            .context("[admin]")?;
            router = netboot_admin::router(admin_state.clone()).merge(router);
            if let Some(addr) = config.admin.listen {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding admin.listen {addr}"))?;
                admin = Some((listener, admin_state));
            }
        }
        Ok(Self {
            https,
            http,
            tls,
            router,
            plain_router,
            admin,
            records,
            compat,
        })
    }

    /// The bound HTTPS address (useful with port 0).
    pub fn https_addr(&self) -> SocketAddr {
        self.https.local_addr().expect("a bound listener has an address")
    }

    /// The bound plain HTTP address, when enabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    /// The bound address of the OpenSSL compatibility TLS listener, when configured.
    pub fn compat_addr(&self) -> Option<SocketAddr> {
        self.compat.as_ref().map(CompatListener::local_addr)
    }

    /// The certificate's SHA-256 fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.tls.fingerprint
    }

    /// Serves until `shutdown` resolves, then lets open requests finish (bounded).
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let https_addr = self.https_addr();
        tracing::info!(
            fingerprint = %self.tls.fingerprint, cert = %self.tls.cert_path.display(),
            "TLS certificate SHA-256 {}", self.tls.fingerprint
        );
        if let Some(ca) = &self.tls.site_ca {
            tracing::info!(
                ca = %ca.cert_path.display(), fingerprint = %ca.fingerprint,
                "certificate issued by the site CA {} (SHA-256 {}); iPXE builds trust it with --trust {}",
                ca.cert_path.display(), ca.fingerprint, ca.cert_path.display()
            );
        }
        tracing::info!("listening on {https_addr} (https)");
        if let Some(addr) = self.http_addr() {
            tracing::info!("listening on {addr} (http)");
        }
        let stop_admin = Arc::new(tokio::sync::Notify::new());
        let admin = self.admin.map(|(listener, state)| {
            let stop = stop_admin.clone();
            tokio::spawn(netboot_admin::serve(listener, state, async move {
                stop.notified().await
            }))
        });
        let acceptor = TlsAcceptor::from(self.tls.server_config.clone());
        let graceful = GracefulShutdown::new();
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .keep_alive(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30));
        let builder = Arc::new(builder);
        let stop_compat = Arc::new(tokio::sync::Notify::new());
        let compat = self.compat.map(|listener| {
            let stop = stop_compat.clone();
            let serving = listener.serve(self.router.clone(), builder.clone(), async move {
                stop.notified().await
            });
            tokio::spawn(serving)
        });
        tokio::pin!(shutdown);
        loop {
            let (stream, peer, tls) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.https.accept() => match accepted {
                    Ok((stream, peer)) => (stream, peer, Some(acceptor.clone())),
                    Err(e) => { accept_failed(&e).await; continue; }
                },
                accepted = accept_optional(self.http.as_ref()) => match accepted {
                    Ok((stream, peer)) => (stream, peer, None),
                    Err(e) => { accept_failed(&e).await; continue; }
                },
            };
            let _ = stream.set_nodelay(true);
            let router = if tls.is_some() {
                self.router.clone()
            } else {
                self.plain_router.clone()
            };
            tokio::spawn(serve_connection(
                stream,
                peer,
                tls,
                router,
                builder.clone(),
                graceful.watcher(),
            ));
        }
        tracing::info!(open = graceful.count(), "shutting down");
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}, closing them");
        }
        if let Some(compat) = compat {
            stop_compat.notify_one();
            let _ = compat.await;
        }
        if let Some(admin) = admin {
            stop_admin.notify_one();
            let _ = admin.await;
        }
        self.records.finish().await;
        Ok(())
    }
}

/// Binds and serves until `shutdown`: what the binary and an all-in-one composition call.
pub async fn run(
    config: Arc<Config>,
    resolver: Arc<dyn BootResolver>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    Server::bind(config, resolver).await?.serve(shutdown).await
}

/// The site key for per-boot URLs, from `https.state_dir` (created on first start). Without
/// it the service still starts; entries that need per-boot URLs then say so on the console.
fn load_token_key(config: &Config) -> Option<netboot_token::TokenKey> {
    let dir = config.state_dir();
    match netboot_runtime::token_key::load_or_create(&dir) {
        Ok((key, path)) => {
            tracing::debug!(path = %path.display(), "boot token key");
            Some(key)
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "no boot token key: Windows PE hand-off files cannot be served");
            None
        }
    }
}

async fn accept_optional(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Accept errors are usually transient (e.g. out of file descriptors); pause instead of
/// spinning.
async fn accept_failed(error: &std::io::Error) {
    tracing::warn!(%error, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    builder: Arc<Builder<TokioExecutor>>,
    watcher: Watcher,
) {
    let over_tls = tls.is_some();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(Peer(peer));
        request.extensions_mut().insert(app::OverTls(over_tls));
        router.clone().oneshot(request)
    });
    let result = match tls {
        Some(acceptor) => {
            let started = std::time::Instant::now();
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let session = stream.get_ref().1;
                    tracing::debug!(
                        %peer,
                        version = ?session.protocol_version(),
                        suite = ?session.negotiated_cipher_suite().map(|s| s.suite()),
                        group = ?session.negotiated_key_exchange_group().map(|g| g.name()),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "TLS handshake done"
                    );
                    stream
                }
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            watcher
                .watch(builder.serve_connection(TokioIo::new(stream), service))
                .await
        }
        None => {
            watcher
                .watch(builder.serve_connection(TokioIo::new(stream), service))
                .await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
