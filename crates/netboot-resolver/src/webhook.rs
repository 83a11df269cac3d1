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
//! Any other status (redirects are not followed), a body over 1 MiB or JSON that does not
//! match is an error. Connection failures, timeouts, `429` and `5xx` are retried (`retries`
//! times, with a growing pause); other `4xx` are not. The service must be idempotent: every
//! boot asks several times.
//!
//! # Connections and proxies
//!
//! The connection to the service is kept open and reused by the next lookups. Proxies named
//! in the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`) are ignored unless
//! [`WebhookOptions::proxy_from_environment`] is set: the decision service is normally on the
//! site's own network, each lookup runs against the boot's deadline, and a proxy meant for
//! package downloads would otherwise carry every boot's question (and, over `http://`, the
//! bearer token) without the configuration saying so.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use netboot_core::{BootDecision, BootRequest, BootResolver, ResolveError, ResolveFuture};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

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
    /// Go through the proxy named by `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`, except for the
    /// hosts in `NO_PROXY`. Off: the service is asked directly whatever the environment says.
    pub proxy_from_environment: bool,
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
            .field("proxy_from_environment", &self.proxy_from_environment)
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
    /// The bearer token holds characters an HTTP header cannot carry. The token itself is not
    /// part of the error: it is a secret.
    #[error("the bearer token is not a valid HTTP header value")]
    BearerToken,
    /// The CA file could not be loaded.
    #[error("loading CA certificates from {path}: {detail}")]
    Trust {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// The HTTP client could not be set up.
    #[error("setting up the HTTP client: {0}")]
    Client(String),
    /// TCP or TLS connection (to the service or the proxy) failed.
    #[error("connecting to {authority}: {detail}")]
    Connect {
        /// `host:port` of the service.
        authority: String,
        /// The cause, with its causes.
        detail: String,
    },
    /// HTTP exchange failed.
    #[error("HTTP exchange: {0}")]
    Http(String),
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
            Self::Url { .. } | Self::BearerToken | Self::Trust { .. } | Self::Client(_) | Self::Decode(_) => {
                false
            }
        }
    }
}

/// A reqwest error and its causes on one line, without the URL (the log line names it once).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Decides by asking an HTTP(S) service (see the module documentation for the schema).
///
/// One [`reqwest::Client`] per resolver: its pool keeps the connection (and the TLS session)
/// to the service open between lookups, so the several questions of one boot, and the boots
/// that follow, skip the TCP and TLS handshakes.
#[derive(Clone)]
pub struct WebhookResolver {
    client: reqwest::Client,
    url: Url,
    authority: String,
    authorization: Option<HeaderValue>,
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
        let url = Url::parse(&options.url).map_err(|_| url_error("not a valid URL"))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(url_error("scheme must be http or https")),
        };
        let host = url.host_str().ok_or_else(|| url_error("no host"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(url_error(
                "credentials in the URL are not supported; use bearer_token",
            ));
        }
        let authority = match url.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let authorization = match &options.bearer_token {
            Some(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| WebhookError::BearerToken)?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let tls = match tls_client_config(options.ca_file.as_deref()) {
            Ok(config) => config,
            Err((path, detail)) if https => return Err(WebhookError::Trust { path, detail }),
            // A plain http:// service needs no CAs; TLS could only come up towards an
            // https:// proxy, which then is not trusted.
            Err(_) => {
                client_config(RootCertStore::empty()).map_err(|e| WebhookError::Client(e.to_string()))?
            }
        };
        let mut builder = reqwest::Client::builder()
            // The ring-backed config above: with aws-lc-rs in the build too (tiberius), rustls
            // has no process default to build one from, and the CA file stays the only trust.
            .use_preconfigured_tls(tls)
            // A redirect is an answer that is not 200, as it always was: following one would
            // replay the POST (and the token) somewhere the configuration does not name.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("netboot-resolver/", env!("CARGO_PKG_VERSION")));
        if !options.proxy_from_environment {
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| WebhookError::Client(describe(e)))?;
        Ok(Self {
            client,
            url,
            authority,
            authorization,
            options,
        })
    }

    async fn attempt(&self, body: Vec<u8>) -> Result<BootDecision, WebhookError> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .body(body);
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let mut response = request.send().await.map_err(|e| {
            if e.is_connect() {
                WebhookError::Connect {
                    authority: self.authority.clone(),
                    detail: describe(e),
                }
            } else {
                WebhookError::Http(describe(e))
            }
        })?;
        if response.status() != StatusCode::OK {
            return Err(WebhookError::Status(response.status()));
        }
        if let Some(announced) = response.content_length().filter(|&n| n > MAX_BODY as u64) {
            return Err(WebhookError::Body(format!(
                "{announced} bytes announced, more than {MAX_BODY}"
            )));
        }
        // Chunk by chunk, so an endless or oversized answer stops at the limit instead of
        // being held in memory first.
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| WebhookError::Body(describe(e)))?
        {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(WebhookError::Body(format!("more than {MAX_BODY} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&bytes).map_err(WebhookError::Decode)
    }

    async fn ask(&self, request: &BootRequest) -> Result<BootDecision, ResolveError> {
        let body = serde_json::to_vec(request).map_err(|e| ResolveError::InvalidAnswer {
            backend: "webhook",
            detail: format!("request not serialisable: {e}"),
        })?;
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
    tls_client_config(ca_file.map(PathBuf::as_path))
        .map(drop)
        .map_err(|(path, detail)| WebhookError::Trust { path, detail })
}

/// A rustls (ring) client configuration trusting only the CAs in `ca_file` (PEM), or Debian's
/// system bundle when `None`. On failure: the file and what is wrong with it.
pub fn tls_client_config(ca_file: Option<&Path>) -> Result<ClientConfig, (PathBuf, String)> {
    let path = ca_file.map_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE), Path::to_path_buf);
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
    client_config(roots).map_err(|e| trust_error(e.to_string()))
}

/// Named explicitly rather than taken from the process default: the build links aws-lc-rs as
/// well (through tiberius), and with two providers rustls would not pick one.
fn client_config(roots: RootCertStore) -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl BootResolver for WebhookResolver {
    fn resolve<'a>(&'a self, request: &'a BootRequest) -> ResolveFuture<'a> {
        Box::pin(self.ask(request))
    }

    fn name(&self) -> &'static str {
        "webhook"
    }
}
