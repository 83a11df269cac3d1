//! [`WebhookResolver`]: asks an HTTP(S) service.
//!
//! # Protocol
//!
//! For every lookup the resolver sends
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! Accept: application/json
//! Authorization: Bearer <token>        (when configured)
//!
//! {"mac":"52:54:00:12:34:56","uuid":"4c4c4544-...","arch":"x64-uefi","stage":"ipxe",
//!  "user_class":"iPXE","remote":"192.0.2.10","hardware":{"manufacturer":"QEMU",...}}
//! ```
//!
//! (the [`BootRequest`] in its serde form: `arch` is the name of [`netboot_core::ClientArch`],
//! `stage` is `pxe-firmware`, `uefi-http` or `ipxe`; absent facts are `null`) and expects
//! `200 OK` with a [`BootDecision`]:
//!
//! ```json
//! {"decision":"exit","message":"nothing deployed"}
//! {"decision":"ignore"}
//! {"decision":"boot","title":"Deployments","timeout_secs":10,"entries":[
//!   {"id":"PS120002","title":"Windows 11","deployment":"required",
//!    "target":{"kind":"wimboot","boot_wim":"winpe/x64/boot.wim"}}]}
//! ```
//!
//! Any other status, a body over 1 MiB or JSON that does not match is an error. Connection
//! failures, timeouts, `429` and `5xx` are retried (`retries` times, with a growing pause);
//! other `4xx` are not. The service must be idempotent: every boot asks several times.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use netboot_core::{BootDecision, BootRequest, BootResolver, ResolveError, ResolveFuture};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// Largest answer accepted.
const MAX_BODY: usize = 1 << 20;
/// Debian's bundle of trusted CAs, used for `https://` when no `ca_file` is given.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Webhook settings.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookOptions {
    /// `http://` or `https://` URL to POST to.
    pub url: String,
    /// Limit for one attempt (connect, send, read the answer).
    pub timeout: Duration,
    /// Further attempts after a retryable failure.
    pub retries: u32,
    /// Pause before the first retry; doubles each time.
    pub retry_backoff: Duration,
    /// Sent as `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    /// PEM file of CAs trusted for `https://` (default: the system bundle).
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for WebhookOptions {
    // The token is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookOptions")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Why the webhook could not be used or did not answer usefully.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The URL is not an absolute `http://` or `https://` URL.
    #[error("webhook url {url:?}: {reason}")]
    Url {
        /// The URL as configured.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The CA file could not be loaded.
    #[error("loading CA certificates from {path}: {detail}")]
    Trust {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// TCP or TLS connection failed.
    #[error("connecting to {authority}: {source}")]
    Connect {
        /// `host:port`.
        authority: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// HTTP exchange failed.
    #[error("HTTP exchange: {0}")]
    Http(#[source] hyper::Error),
    /// No answer within the attempt's time limit.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The service answered with an unexpected status.
    #[error("status {0}")]
    Status(StatusCode),
    /// The body was too large or could not be read.
    #[error("reading the answer: {0}")]
    Body(String),
    /// The body is not a decision.
    #[error("answer is not a boot decision: {0}")]
    Decode(#[source] serde_json::Error),
}

impl WebhookError {
    fn retryable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Http(_) | Self::Timeout(_) | Self::Body(_) => true,
            Self::Status(s) => s.is_server_error() || *s == StatusCode::TOO_MANY_REQUESTS,
            Self::Url { .. } | Self::Trust { .. } | Self::Decode(_) => false,
        }
    }
}

#[derive(Debug, Clone)]
struct Endpoint {
    host: String,
    port: u16,
    authority: String,
    path: String,
}

/// Decides by asking an HTTP(S) service (see the module documentation for the schema).
#[derive(Clone)]
pub struct WebhookResolver {
    endpoint: Endpoint,
    tls: Option<TlsConnector>,
    options: WebhookOptions,
}

impl std::fmt::Debug for WebhookResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookResolver")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl WebhookResolver {
    /// Checks the URL and loads the trust store; does not connect.
    pub fn new(options: WebhookOptions) -> Result<Self, WebhookError> {
        let url_error = |reason| WebhookError::Url {
            url: options.url.clone(),
            reason,
        };
        let uri: Uri = options.url.parse().map_err(|_| url_error("not a valid URL"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(url_error("scheme must be http or https")),
        };
        let host = uri.host().ok_or_else(|| url_error("no host"))?.to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.to_string())
            .ok_or_else(|| url_error("no host"))?;
        if authority.contains('@') {
            return Err(url_error(
                "credentials in the URL are not supported; use bearer_token",
            ));
        }
        let path = uri.path_and_query().map_or("/".to_string(), |p| p.to_string());
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let tls = if https {
            Some(connector(options.ca_file.as_ref())?)
        } else {
            None
        };
        Ok(Self {
            endpoint: Endpoint {
                host,
                port,
                authority,
                path,
            },
            tls,
            options,
        })
    }

    async fn attempt(&self, body: Bytes) -> Result<BootDecision, WebhookError> {
        let connect_error = |source| WebhookError::Connect {
            authority: self.endpoint.authority.clone(),
            source,
        };
        let tcp = TcpStream::connect((self.endpoint.host.as_str(), self.endpoint.port))
            .await
            .map_err(connect_error)?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => self.exchange(tcp, body).await,
            Some(tls) => {
                let name =
                    ServerName::try_from(self.endpoint.host.clone()).map_err(|_| WebhookError::Url {
                        url: self.options.url.clone(),
                        reason: "host is not a valid TLS name",
                    })?;
                let stream = tls.connect(name, tcp).await.map_err(connect_error)?;
                self.exchange(stream, body).await
            }
        }
    }

    async fn exchange<S>(&self, stream: S, body: Bytes) -> Result<BootDecision, WebhookError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(WebhookError::Http)?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut request = Request::post(self.endpoint.path.as_str())
            .header(HOST, self.endpoint.authority.as_str())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("netboot-resolver/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(token) = &self.options.bearer_token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Full::new(body)).map_err(|_| WebhookError::Url {
            url: self.options.url.clone(),
            reason: "cannot build a request for it",
        })?;
        let result = async {
            let response = sender.send_request(request).await.map_err(WebhookError::Http)?;
            if response.status() != StatusCode::OK {
                return Err(WebhookError::Status(response.status()));
            }
            let bytes = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| WebhookError::Body(e.to_string()))?
                .to_bytes();
            serde_json::from_slice(&bytes).map_err(WebhookError::Decode)
        }
        .await;
        driver.abort();
        result
    }

    async fn ask(&self, request: &BootRequest) -> Result<BootDecision, ResolveError> {
        let body = Bytes::from(
            serde_json::to_vec(request).map_err(|e| ResolveError::InvalidAnswer {
                backend: "webhook",
                detail: format!("request not serialisable: {e}"),
            })?,
        );
        let mut pause = self.options.retry_backoff;
        let mut attempt = 0;
        loop {
            let outcome = tokio::time::timeout(self.options.timeout, self.attempt(body.clone()))
                .await
                .unwrap_or(Err(WebhookError::Timeout(self.options.timeout)));
            let error = match outcome {
                Ok(decision) => return Ok(decision),
                Err(e) => e,
            };
            if attempt < self.options.retries && error.retryable() {
                attempt += 1;
                tracing::debug!(url = %self.options.url, %error, attempt, "webhook failed, retrying");
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
                continue;
            }
            tracing::warn!(url = %self.options.url, %error, "webhook lookup failed");
            return Err(match error {
                WebhookError::Decode(e) => ResolveError::InvalidAnswer {
                    backend: "webhook",
                    detail: e.to_string(),
                },
                other => ResolveError::Unavailable {
                    backend: "webhook",
                    source: Box::new(other),
                },
            });
        }
    }
}

/// Checks that `ca_file` (or the system bundle) holds PEM certificates rustls accepts, as
/// [`WebhookResolver::new`] will need them.
pub fn check_trust(ca_file: Option<&PathBuf>) -> Result<(), WebhookError> {
    connector(ca_file).map(drop)
}

fn connector(ca_file: Option<&PathBuf>) -> Result<TlsConnector, WebhookError> {
    tls_connector(ca_file.map(PathBuf::as_path))
        .map_err(|(path, detail)| WebhookError::Trust { path, detail })
}

/// A rustls (ring) client trusting only the CAs in `ca_file` (PEM), or Debian's system bundle
/// when `None`. On failure: the file and what is wrong with it.
pub fn tls_connector(ca_file: Option<&std::path::Path>) -> Result<TlsConnector, (PathBuf, String)> {
    let path = ca_file.map_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE), std::path::Path::to_path_buf);
    let trust_error = |detail: String| (path.clone(), detail);
    let pem = std::fs::read(&path).map_err(|e| trust_error(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| trust_error(e.to_string()))?;
        roots.add(cert).map_err(|e| trust_error(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(trust_error("no certificates in the file".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| trust_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

impl BootResolver for WebhookResolver {
    fn resolve<'a>(&'a self, request: &'a BootRequest) -> ResolveFuture<'a> {
        Box::pin(self.ask(request))
    }

    fn name(&self) -> &'static str {
        "webhook"
    }
}
