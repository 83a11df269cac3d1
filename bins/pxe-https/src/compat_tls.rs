//! The compatibility TLS listener: the same routes over OpenSSL, for firmware whose TLS client
//! offers only key exchanges rustls does not implement.
//!
//! OVMF/EDK2 HTTPS Boot as shipped around 2022 (Debian's `ovmf` 2022.11) offers TLS 1.2 with
//! RSA key transport and DHE-RSA only; a rustls listener cannot complete a handshake with it.
//! This listener accepts those, but only with AES-GCM (no CBC, no RC4, no 3DES), plus ECDHE-RSA
//! GCM and TLS 1.3 for every other client. It is off unless `https.compat_tls_listen` is set,
//! and compiled only with the `openssl-compat` cargo feature.

use netboot_config::Config;

/// The TLS 1.2 suites offered, strongest key exchange first: ECDHE-RSA and DHE-RSA with
/// AES-GCM, then RSA key transport with AES-GCM (what OVMF 2022.11 negotiates).
pub const TLS12_CIPHERS: &str = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:\
DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-GCM-SHA384";

/// TLS 1.3 suites (all AEAD).
pub const TLS13_CIPHERSUITES: &str =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

/// The name of the cargo feature that compiles this listener in.
pub const FEATURE: &str = "openssl-compat";

/// Whether this build can serve `https.compat_tls_listen`.
pub const fn available() -> bool {
    cfg!(feature = "openssl-compat")
}

/// Refuses a configuration that asks for the compatibility listener in a build without it.
pub fn check_available(config: &Config) -> anyhow::Result<()> {
    if config.https.compat_tls_listen.is_some() && !available() {
        anyhow::bail!(
            "https.compat_tls_listen is set, but this pxe-https was built without the \
             `{FEATURE}` cargo feature (build with `--features {FEATURE}`, needs libssl-dev \
             and pkg-config), or set it to \"off\""
        );
    }
    Ok(())
}

#[cfg(feature = "openssl-compat")]
pub use imp::{acceptor, certificate_paths, CompatAcceptor, CompatListener};

#[cfg(not(feature = "openssl-compat"))]
pub use disabled::CompatListener;

/// Without the feature there is never a compatibility listener: the type has no values, and
/// binding one that is configured is refused with the feature's name.
#[cfg(not(feature = "openssl-compat"))]
mod disabled {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use axum::Router;
    use netboot_config::Config;
    use netboot_service::{Reload, Shutdown};

    use crate::server::Connections;

    /// The compatibility listener of a build without `openssl-compat`: never bound.
    #[derive(Debug)]
    pub enum CompatListener {}

    impl CompatListener {
        /// `None` when `https.compat_tls_listen` is off, otherwise an error naming the feature.
        pub async fn bind(config: &Config) -> anyhow::Result<Option<Self>> {
            super::check_available(config)?;
            Ok(None)
        }

        /// Never called: there is no value to call it on.
        pub fn local_addr(&self) -> SocketAddr {
            match *self {}
        }

        /// Never called: there is no value to call it on.
        pub fn reloader(&self) -> Arc<dyn Reload> {
            match *self {}
        }

        /// Never called: there is no value to call it on.
        pub async fn serve(self, _router: Router, _connections: Connections, _shutdown: Shutdown) {
            match self {}
        }
    }
}

#[cfg(feature = "openssl-compat")]
mod imp {
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::pin::Pin;
    use std::sync::{Arc, RwLock};
    use std::time::Duration;

    use anyhow::{bail, Context as _, Result};
    use axum::Router;
    use hyper_util::server::graceful::GracefulShutdown;
    use netboot_config::Config;
    use netboot_service::{Reload, Shutdown};
    use openssl::pkey::PKey;
    use openssl::ssl::{Ssl, SslAcceptor, SslMethod, SslVersion};
    use openssl::x509::X509;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_openssl::SslStream;

    use super::{TLS12_CIPHERS, TLS13_CIPHERSUITES};
    use crate::connection::{InFlight, TimedIo};
    use crate::server::Connections;
    use crate::site_ca::KeyKind;

    /// File names of the RSA certificate the site CA issues this listener.
    const COMPAT_CERT: &str = "pxe-https-compat.crt";
    /// See [`COMPAT_CERT`].
    const COMPAT_KEY: &str = "pxe-https-compat.key";

    /// The least time a TLS handshake gets here (more when `https.handshake_timeout_secs`
    /// says so): firmware under emulation is slow, but not this slow.
    const MIN_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

    /// The bound compatibility listener with its OpenSSL context.
    pub struct CompatListener {
        listener: TcpListener,
        acceptor: Arc<CompatAcceptor>,
    }

    /// The OpenSSL context new handshakes use; a reload builds a new one from the files.
    pub struct CompatAcceptor(RwLock<Arc<SslAcceptor>>);

    impl std::fmt::Debug for CompatAcceptor {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("CompatAcceptor").finish_non_exhaustive()
        }
    }

    impl CompatAcceptor {
        fn current(&self) -> Arc<SslAcceptor> {
            Arc::clone(&self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner))
        }
    }

    impl Reload for CompatAcceptor {
        /// Re-reads the compatibility listener's certificate and key.
        fn reload(&self, config: &Arc<Config>) -> Result<()> {
            let (cert, key) = certificate_paths(config).context("https.compat_tls_cert not reloaded")?;
            let acceptor = acceptor(&cert, &key).with_context(|| {
                format!(
                    "https.compat_tls_cert not reloaded: using {} and {}",
                    cert.display(),
                    key.display()
                )
            })?;
            *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(acceptor);
            Ok(())
        }
    }

    impl std::fmt::Debug for CompatListener {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("CompatListener")
                .field("listener", &self.listener)
                .finish_non_exhaustive()
        }
    }

    impl CompatListener {
        /// Loads the certificate and binds `https.compat_tls_listen`; `None` when it is off.
        pub async fn bind(config: &Config) -> Result<Option<Self>> {
            let Some(addr) = config.https.compat_tls_listen else {
                return Ok(None);
            };
            let (cert, key) = certificate_paths(config)?;
            let acceptor = acceptor(&cert, &key).with_context(|| {
                format!(
                    "https.compat_tls_listen: using {} and {}",
                    cert.display(),
                    key.display()
                )
            })?;
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding https.compat_tls_listen {addr}"))?;
            Ok(Some(Self {
                listener,
                acceptor: Arc::new(CompatAcceptor(RwLock::new(Arc::new(acceptor)))),
            }))
        }

        /// The bound address (useful with port 0).
        pub fn local_addr(&self) -> SocketAddr {
            self.listener
                .local_addr()
                .expect("a bound listener has an address")
        }

        /// What reloads its certificate.
        pub fn reloader(&self) -> Arc<dyn Reload> {
            Arc::clone(&self.acceptor) as Arc<dyn Reload>
        }

        /// Serves `router` until `shutdown` says to stop accepting, then lets open requests
        /// finish until it says to stop now.
        pub async fn serve(self, router: Router, connections: Connections, shutdown: Shutdown) {
            let graceful = GracefulShutdown::new();
            let stop_accepting = shutdown.stop_accepting();
            tokio::pin!(stop_accepting);
            loop {
                let (stream, peer) = tokio::select! {
                    () = &mut stop_accepting => break,
                    accepted = self.listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // Usually transient (out of file descriptors): pause, do not spin.
                            tracing::warn!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                // Refused: dropping the stream closes it at once.
                let Some(permit) = connections.limits.admit(peer, "compat-tls") else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let acceptor = self.acceptor.current();
                let router = router.clone();
                let connections = connections.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let _permit = permit;
                    let in_flight = InFlight::default();
                    let timeouts = connections.timeouts;
                    let io = TimedIo::new(stream, timeouts, in_flight.clone());
                    let limit = timeouts.handshake.max(MIN_HANDSHAKE_TIMEOUT);
                    let Some(stream) = handshake(&acceptor, io, peer, limit).await else {
                        return;
                    };
                    connections
                        .serve_http(stream, peer, true, router, in_flight, watcher)
                        .await;
                });
            }
            drop(self.listener);
            crate::server::drain(graceful, &shutdown, "compat-tls").await;
        }
    }

    async fn handshake(
        acceptor: &SslAcceptor,
        stream: TimedIo<TcpStream>,
        peer: SocketAddr,
        limit: Duration,
    ) -> Option<SslStream<TimedIo<TcpStream>>> {
        let ssl = match Ssl::new(acceptor.context()) {
            Ok(ssl) => ssl,
            Err(error) => {
                tracing::warn!(%peer, %error, "creating a TLS session failed");
                return None;
            }
        };
        let mut stream = match SslStream::new(ssl, stream) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%peer, %error, "creating a TLS stream failed");
                return None;
            }
        };
        match tokio::time::timeout(limit, Pin::new(&mut stream).accept()).await {
            Ok(Ok(())) => {
                let ssl = stream.ssl();
                tracing::debug!(
                    %peer,
                    version = ssl.version_str(),
                    cipher = ssl.current_cipher().map_or("?", |c| c.name()),
                    "compat TLS handshake done"
                );
                Some(stream)
            }
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "compat TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, "compat TLS handshake timed out");
                None
            }
        }
    }

    /// The certificate and key of the compatibility listener: its own when configured, else
    /// the main listener's when configured, else an RSA certificate the site CA issues for
    /// it (the main listener's own is ECDSA, which RSA-only firmware cannot use).
    pub fn certificate_paths(config: &Config) -> Result<(PathBuf, PathBuf)> {
        let https = &config.https;
        match (
            &https.compat_tls_cert,
            &https.compat_tls_key,
            &https.cert,
            &https.key,
        ) {
            (Some(cert), Some(key), _, _) | (None, None, Some(cert), Some(key)) => {
                Ok((config.resolve_path(cert), config.resolve_path(key)))
            }
            _ => {
                let site =
                    crate::tls::ensure_site_certificate(config, COMPAT_CERT, COMPAT_KEY, KeyKind::Rsa2048)?;
                Ok((site.cert, site.key))
            }
        }
    }

    /// An OpenSSL acceptor for TLS 1.2 and 1.3 limited to AEAD suites, with an RSA
    /// certificate chain from `cert` and its key from `key` (both PEM).
    pub fn acceptor(cert: &Path, key: &Path) -> Result<SslAcceptor> {
        let chain_pem =
            std::fs::read(cert).with_context(|| format!("reading certificate {}", cert.display()))?;
        let chain = X509::stack_from_pem(&chain_pem)
            .with_context(|| format!("parsing certificate {}", cert.display()))?;
        let Some((leaf, intermediates)) = chain.split_first() else {
            bail!("{} holds no PEM certificate", cert.display());
        };
        let key_pem = std::fs::read(key).with_context(|| format!("reading key {}", key.display()))?;
        let private =
            PKey::private_key_from_pem(&key_pem).with_context(|| format!("parsing key {}", key.display()))?;
        if private.rsa().is_err() {
            bail!(
                "{} is not an RSA key; RSA and DHE-RSA key exchange need an RSA certificate",
                key.display()
            );
        }
        // The Mozilla "intermediate" profile brings the ffdhe2048 group for DHE; the suites
        // and versions are then narrowed to what this listener is for.
        let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
            .context("creating the OpenSSL context")?;
        builder.set_min_proto_version(Some(SslVersion::TLS1_2))?;
        builder.set_cipher_list(TLS12_CIPHERS)?;
        builder.set_ciphersuites(TLS13_CIPHERSUITES)?;
        builder.set_private_key(&private)?;
        builder.set_certificate(leaf)?;
        for intermediate in intermediates {
            builder.add_extra_chain_cert(intermediate.clone())?;
        }
        builder
            .check_private_key()
            .context("certificate and key do not form a pair")?;
        Ok(builder.build())
    }
}
