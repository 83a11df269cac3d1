//! Listeners: HTTPS (rustls) and optional plain HTTP, each connection served by hyper with
//! HTTP/1.1 keep-alive or HTTP/2, and a graceful shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use netboot_config::{Config, Problems, ResolverFallback};
use netboot_ipxe::{entry_script, Fallback, RenderOptions, Url};
use netboot_service::{Bound, Context, LocalAddr, Reload, Section, Service, Shutdown};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::app::{self, AppState, Peer};
use crate::compat_tls::CompatListener;
use crate::connection::{ConnectionLimits, ConnectionPermit, InFlight, TimedIo, Timeouts};
use crate::files::Roots;
use crate::handoff::HandoffState;
use crate::peerdist::PeerDist;
use crate::required::RequiredOnceService;
use crate::tls::{self, Tls};

/// Most bytes hyper buffers per HTTP/1 connection (request head, queued body chunks), and
/// per HTTP/2 stream for sending: a client that stops reading holds no more than this plus a
/// file chunk, until the write timeout closes its connection.
const MAX_CONNECTION_BUFFER: usize = 64 * 1024;

/// Concurrent HTTP/2 streams per connection (boot clients open one or two).
const MAX_HTTP2_STREAMS: u32 = 32;

/// The HTTPS boot-script and boot-file service.
#[derive(Debug)]
pub struct Https;

/// Command-line flags of `pxe-https`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// HTTPS address, overrides `https.listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Plain HTTP address, overrides `https.http_listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub http_listen: Option<SocketAddr>,
    /// Disables the plain HTTP listener.
    #[arg(long, conflicts_with = "http_listen")]
    pub no_http: bool,
    /// Boot-file root, overrides `https.root`.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// PEM certificate, overrides `https.cert` (needs `--key`).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key, overrides `https.key` (needs `--cert`).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
}

impl Service for Https {
    const NAME: &'static str = "pxe-https";
    const ABOUT: &'static str = "HTTPS boot-script and boot-file service";
    const SECTIONS: &'static [Section] = &[Section::Https, Section::Resolver, Section::Admin];
    type Args = Args;
    type Bound = Server;

    fn apply_args(args: &Args, config: &mut Config) {
        let https = &mut config.https;
        https.listen = args.listen.unwrap_or(https.listen);
        https.http_listen = if args.no_http {
            None
        } else {
            args.http_listen.or(https.http_listen)
        };
        if let Some(root) = &args.root {
            https.root.clone_from(root);
        }
        if args.cert.is_some() {
            (https.cert, https.key) = (args.cert.clone(), args.key.clone());
        }
    }

    fn check(config: &Config, problems: &mut Problems) {
        crate::checks::check(config, problems);
    }

    async fn bind(config: Arc<Config>, context: Context) -> Result<Server> {
        Server::bind(config, context).await
    }
}

/// A bound, not yet serving, `pxe-https`.
#[derive(Debug)]
pub struct Server {
    https: TcpListener,
    http: Option<TcpListener>,
    tls: Tls,
    /// Reloads the certificate from the files `[https]` names.
    certificates: Arc<CertificateReload>,
    router: Router,
    /// The routes of the plain-HTTP listener: the same without the admin interface, whose
    /// credentials must never cross the network in clear text.
    plain_router: Router,
    /// The separate `[admin] listen` listener, when configured.
    admin: Option<(TcpListener, netboot_admin::AdminState)>,
    /// The OpenSSL compatibility TLS listener (`https.compat_tls_listen`), when configured.
    compat: Option<CompatListener>,
    timeouts: Timeouts,
    /// Counts the connections of the HTTPS, HTTP and compatibility listeners.
    limits: Arc<ConnectionLimits>,
    /// Counts the admin listener's own, so a flood of boot clients does not lock out the
    /// administrators (and the other way round).
    admin_limits: Arc<ConnectionLimits>,
}

impl Server {
    /// Loads TLS material, binds the listeners and prepares the routes.
    pub async fn bind(config: Arc<Config>, context: Context) -> Result<Self> {
        let resolver = context.resolver(&config)?;
        let telemetry = context.telemetry;
        let https_config = &config.https;
        let tls = tls::load_or_generate(&config)?;
        tls.loaded.log("serving");
        // After the main certificate: the compat listener may reuse the generated one.
        let compat = CompatListener::bind(&config).await?;
        let ipxe_dir = config.ipxe_dir();
        crate::ipxe_build::log_start(&ipxe_dir, &tls.loaded);
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
        let token_key = load_token_key(&config);
        let auth = crate::auth::AuthGate::from_config(&config, token_key.clone(), &files_base).map(Arc::new);
        if let Some(gate) = &auth {
            match config.auth.backend {
                netboot_config::AuthBackend::Local => {
                    tracing::info!(users = %gate.users_file().display(), "boot console logins are on, local accounts")
                }
                netboot_config::AuthBackend::Ldap => tracing::info!(
                    directory = %config.auth.ldap.url,
                    "boot console logins are on, checked against the directory"
                ),
            }
        }
        let approvals =
            crate::auth_approval::Approvals::from_config(&config, &files_base, telemetry.recorder.clone())
                .map(Arc::new);
        if approvals.is_some() {
            tracing::info!("boot consoles are approved by an operator, not logged in");
        }
        let handoff = HandoffState::new(
            token_key,
            Duration::from_secs(https_config.boot_token_secs.into()),
            Url::join(&files_base, crate::handoff::HANDOFF_PATH),
            Url::join(&files_base, app::ENTRY_PATH),
            private_dir,
        );
        let peerdist = PeerDist::start(&config, &roots)?;
        let required = config.resolver.required_once.then(|| {
            let runs = netboot_records::RequiredRuns::from_config(&config);
            tracing::info!(runs = %runs.location(), "a Required Windows PE entry boots by itself once");
            Arc::new(RequiredOnceService::new(
                Arc::clone(&resolver),
                runs,
                telemetry.recorder.clone(),
            ))
        });
        let admin_runs = required.as_ref().map(|r| r.runs().clone());
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
            required,
            telemetry: telemetry.clone(),
            auth,
            approvals: approvals.clone(),
        };
        let https =
            listen(https_config.listen).with_context(|| format!("binding https {}", https_config.listen))?;
        let http = match https_config.http_listen {
            Some(addr) => Some(listen(addr).with_context(|| format!("binding http {addr}"))?),
            None => None,
        };
        let plain_router = app::router(Arc::new(state));
        let mut router = plain_router.clone();
        let mut admin = None;
        if config.admin.enabled {
            let admin_state = netboot_admin::AdminState::open(
                &config,
                telemetry.recorder.clone(),
                telemetry.metrics.clone(),
            )
            .await
            .context("[admin]")?
            .with_required_runs(admin_runs)
            .with_approvals(approvals.map(|a| a as netboot_admin::SharedApprovalDesk));
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
            certificates: Arc::new(CertificateReload {
                slot: Arc::clone(&tls.certificate),
                fingerprint: std::sync::Mutex::new(tls.loaded.fingerprint.clone()),
            }),
            tls,
            router,
            plain_router,
            admin,
            compat,
            timeouts: Timeouts::from_config(https_config),
            limits: ConnectionLimits::from_config(https_config),
            admin_limits: ConnectionLimits::from_config(https_config),
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

    /// The SHA-256 fingerprint of the certificate loaded at start.
    pub fn fingerprint(&self) -> &str {
        &self.tls.loaded.fingerprint
    }
}

impl Bound for Server {
    fn local_addrs(&self) -> Vec<LocalAddr> {
        let mut addrs = vec![LocalAddr::new(self.https_addr(), "https")];
        addrs.extend(self.http_addr().map(|addr| LocalAddr::new(addr, "http")));
        addrs.extend(
            self.compat_addr()
                .map(|addr| LocalAddr::new(addr, "compat-tls, OpenSSL")),
        );
        addrs.extend(
            self.admin
                .as_ref()
                .and_then(|(listener, _)| listener.local_addr().ok())
                .map(|addr| LocalAddr::new(addr, "admin")),
        );
        addrs
    }

    fn reloaders(&self) -> Vec<Arc<dyn Reload>> {
        let mut reloaders = vec![Arc::clone(&self.certificates) as Arc<dyn Reload>];
        reloaders.extend(self.compat.as_ref().map(CompatListener::reloader));
        reloaders
    }

    /// Serves until `shutdown` says to stop accepting, then lets open requests (downloads
    /// included) finish until it says to stop now, when the connections still open are
    /// closed.
    async fn serve(self, shutdown: Shutdown) -> Result<()> {
        let connections = Connections::new(self.timeouts, self.limits);
        let admin = self.admin.map(|(listener, state)| {
            let connections = Connections {
                limits: self.admin_limits,
                ..connections.clone()
            };
            tokio::spawn(serve_admin(
                listener,
                netboot_admin::router(state),
                connections,
                shutdown.clone(),
            ))
        });
        let acceptor = TlsAcceptor::from(self.tls.server_config.clone());
        let graceful = GracefulShutdown::new();
        let compat = self.compat.map(|listener| {
            tokio::spawn(listener.serve(self.router.clone(), connections.clone(), shutdown.clone()))
        });
        let stop_accepting = shutdown.stop_accepting();
        tokio::pin!(stop_accepting);
        loop {
            let (stream, peer, tls) = tokio::select! {
                () = &mut stop_accepting => break,
                accepted = self.https.accept() => match accepted {
                    Ok((stream, peer)) => (stream, canonical(peer), Some(acceptor.clone())),
                    Err(e) => { accept_failed(&e).await; continue; }
                },
                accepted = accept_optional(self.http.as_ref()) => match accepted {
                    Ok((stream, peer)) => (stream, canonical(peer), None),
                    Err(e) => { accept_failed(&e).await; continue; }
                },
            };
            let listener = if tls.is_some() { "https" } else { "http" };
            // Refused: dropping the stream closes it at once.
            let Some(permit) = connections.limits.admit(peer, listener) else {
                continue;
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
                connections.clone(),
                graceful.watcher(),
                permit,
            ));
        }
        drop((self.https, self.http));
        drain(graceful, &shutdown, "https").await;
        if let Some(compat) = compat {
            let _ = compat.await;
        }
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        Ok(())
    }
}

/// What serving a connection takes, the same on every listener: the HTTP builder, the
/// timeouts and the connection limits.
#[derive(Debug, Clone)]
pub struct Connections {
    builder: Arc<Builder<TokioExecutor>>,
    /// The timeouts of `[https]`.
    pub timeouts: Timeouts,
    /// The limits this listener's connections count against.
    pub limits: Arc<ConnectionLimits>,
}

impl Connections {
    fn new(timeouts: Timeouts, limits: Arc<ConnectionLimits>) -> Self {
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .keep_alive(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(timeouts.header)
            .max_buf_size(MAX_CONNECTION_BUFFER);
        builder
            .http2()
            .timer(hyper_util::rt::TokioTimer::new())
            .max_concurrent_streams(MAX_HTTP2_STREAMS)
            .max_send_buf_size(MAX_CONNECTION_BUFFER);
        Self {
            builder: Arc::new(builder),
            timeouts,
            limits,
        }
    }

    /// Serves HTTP/1.1 or HTTP/2 on `io` (after TLS, when there is TLS) with `router`, until
    /// the client or an error ends the connection or `watcher`'s shutdown closes it.
    pub async fn serve_http<I>(
        self,
        io: I,
        peer: SocketAddr,
        over_tls: bool,
        router: Router,
        in_flight: InFlight,
        watcher: Watcher,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let service =
            hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                let answering = in_flight.start();
                let extensions = request.extensions_mut();
                extensions.insert(Peer(peer));
                extensions.insert(app::OverTls(over_tls));
                extensions.insert(axum::extract::ConnectInfo(peer));
                let response = router.clone().oneshot(request);
                async move {
                    let response = response.await;
                    drop(answering);
                    response
                }
            });
        let served = watcher
            .watch(self.builder.serve_connection(TokioIo::new(io), service))
            .await;
        if let Err(e) = served {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// Serves the admin interface on its own plain-HTTP listener (`[admin] listen`), with the
/// same timeouts and limits as the other listeners.
async fn serve_admin(listener: TcpListener, router: Router, connections: Connections, shutdown: Shutdown) {
    let graceful = GracefulShutdown::new();
    let stop_accepting = shutdown.stop_accepting();
    tokio::pin!(stop_accepting);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop_accepting => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => { accept_failed(&e).await; continue; }
            },
        };
        let Some(permit) = connections.limits.admit(peer, "admin") else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(
            stream,
            peer,
            None,
            router.clone(),
            connections.clone(),
            graceful.watcher(),
            permit,
        ));
    }
    drop(listener);
    drain(graceful, &shutdown, "admin").await;
}

/// Lets the connections `graceful` watches finish their requests (closing idle keep-alive
/// ones at once) until `shutdown` says to stop now.
pub(crate) async fn drain(graceful: GracefulShutdown, shutdown: &Shutdown, listener: &str) {
    let open = graceful.count();
    if open > 0 {
        tracing::info!(open, "{listener}: no new connections; waiting for the open ones");
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = shutdown.stop_now() => {
            tracing::warn!("{listener}: connections still open at the end of the drain time; closing them");
        }
    }
}

/// Re-reads the certificate and key `[https]` names on every reload, so a renewed
/// certificate is served to new handshakes without a restart.
#[derive(Debug)]
struct CertificateReload {
    slot: Arc<tls::CertificateSlot>,
    /// The fingerprint served now, to log only real changes.
    fingerprint: std::sync::Mutex<String>,
}

impl Reload for CertificateReload {
    fn reload(&self, config: &Arc<Config>) -> Result<()> {
        let loaded = tls::load(config).context("https certificate not reloaded")?;
        let mut served = self
            .fingerprint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *served != loaded.fingerprint {
            loaded.log("reloaded");
            served.clone_from(&loaded.fingerprint);
        }
        self.slot.replace(loaded.key);
        Ok(())
    }
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

/// A TCP listener on `addr`; an IPv6 wildcard takes IPv4 connections too, and falls back to
/// IPv4 alone on a host without IPv6.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use netboot_runtime::udp6::{bind_tcp, is_ipv6_unavailable, DualStack};
    let listener = match bind_tcp(addr, DualStack::Both) {
        Err(e) if addr.ip().is_unspecified() && addr.is_ipv6() && is_ipv6_unavailable(&e) => {
            tracing::warn!("IPv6 is not available on this host: listening on IPv4 only");
            bind_tcp(SocketAddr::from(([0, 0, 0, 0], addr.port())), DualStack::Both)?
        }
        other => other?,
    };
    TcpListener::from_std(listener)
}

/// A peer of a dual-stack listener as the address it really has: IPv4 clients arrive as
/// `::ffff:a.b.c.d` and are logged, recorded and matched as `a.b.c.d`.
fn canonical(peer: SocketAddr) -> SocketAddr {
    SocketAddr::new(peer.ip().to_canonical(), peer.port())
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

/// Serves one accepted connection: the TLS handshake when `tls` is given, then HTTP, all
/// under the connection timeouts. `_permit` holds its place in the connection count until
/// the connection ends.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    connections: Connections,
    watcher: Watcher,
    _permit: ConnectionPermit,
) {
    let in_flight = InFlight::default();
    let timeouts = connections.timeouts;
    let io = TimedIo::new(stream, timeouts, in_flight.clone());
    let Some(acceptor) = tls else {
        connections
            .serve_http(io, peer, false, router, in_flight, watcher)
            .await;
        return;
    };
    let started = std::time::Instant::now();
    let stream = match tokio::time::timeout(timeouts.handshake, acceptor.accept(io)).await {
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
            if sent_bracketed_server_name(&e) {
                explain_bracketed_server_name(peer);
            }
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    connections
        .serve_http(stream, peer, true, router, in_flight, watcher)
        .await;
}

/// Whether a handshake failed because the client sent a server name (SNI) that is neither a
/// host name nor an address, as stock iPXE 2.0 does with `[2001:db8::1]` for an
/// `https://[2001:db8::1]/` URL.
fn sent_bracketed_server_name(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                rustls::Error::PeerMisbehaved(rustls::PeerMisbehaved::ServerNameMustContainOneHostName)
            )
        })
}

/// Says once per process what to do about it (any client can send such a name, so it is not
/// logged per connection above debug).
fn explain_bracketed_server_name(peer: SocketAddr) {
    static EXPLAINED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !EXPLAINED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            %peer,
            "TLS handshake refused: the client sent an invalid server name (SNI), as iPXE 2.0 \
             does for an https://[IPv6 address]/ URL; use the iPXE build from build-ipxe.sh \
             (it sends the bare address) or name this server by a DNS name in the script URL"
        );
    }
}
