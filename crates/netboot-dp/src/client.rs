//! One download from a distribution point: one TLS connection, HTTP/1.1, basic or NTLM
//! authentication, the body streamed into a file.
//!
//! A connection of our own instead of a pooled client (reqwest): NTLM authenticates a
//! connection, so the NEGOTIATE/CHALLENGE/AUTHENTICATE exchange and the download must run on
//! the same one, which a pool does not promise.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, HOST, USER_AGENT, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use crate::ntlm;

/// How the DP wants to be authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// No credentials (anonymous DP access).
    None,
    /// `Authorization: Basic`.
    Basic {
        /// User, as the DP expects it (`CORP\user` or `user@corp`).
        user: String,
        /// Password.
        password: String,
    },
    /// NTLMv2.
    Ntlm(ntlm::Credentials),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
            Self::Ntlm(credentials) => write!(f, "Ntlm({credentials:?})"),
        }
    }
}

/// Why a download failed. Messages never hold credentials.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not `https://host[:port]/path`.
    #[error("distribution point URL {0:?} is not https://host[:port]/path")]
    Url(String),
    /// The CA file could not be used.
    #[error("distribution point CA {path}: {detail}")]
    Trust {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// TCP, TLS or HTTP failed.
    #[error("connecting to {host}: {detail}")]
    Connect {
        /// The DP.
        host: String,
        /// What failed.
        detail: String,
    },
    /// The DP refused the credentials.
    #[error("the distribution point refused the credentials (401)")]
    Unauthorized,
    /// Another status.
    #[error("the distribution point answered {0}")]
    Status(StatusCode),
    /// NTLM went wrong.
    #[error("{0}")]
    Ntlm(#[from] ntlm::NtlmError),
    /// The body ended before its announced length, or ran past a limit.
    #[error("{0}")]
    Body(String),
    /// Writing the file.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Took longer than allowed.
    #[error("the distribution point did not answer within {0:?}")]
    Timeout(Duration),
}

/// Where and how to fetch.
#[derive(Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
    tls: TlsConnector,
    auth: Auth,
    /// Per network step (connect, handshake, a response header, a body chunk).
    pub step_timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// A parsed `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query.
    pub path: String,
}

impl HttpsUrl {
    /// Parses `https://host[:port]/path`. Plain `http://` is refused: credentials and boot
    /// images cross the network only over TLS.
    pub fn parse(url: &str) -> Result<Self, FetchError> {
        let refuse = || FetchError::Url(url.to_owned());
        let rest = url.strip_prefix("https://").ok_or_else(refuse)?;
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') || path.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(refuse());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
                (host, port.parse().map_err(|_| refuse())?)
            }
            _ => (authority, 443),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Self {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

impl Endpoint {
    /// A DP at `host:port`, trusting the CAs in `ca_file` (PEM; the system bundle when
    /// `None`).
    pub fn new(host: &str, port: u16, ca_file: Option<&Path>, auth: Auth) -> Result<Self, FetchError> {
        Ok(Self {
            host: host.to_owned(),
            port,
            tls: connector(ca_file)?,
            auth,
            step_timeout: Duration::from_secs(30),
        })
    }

    /// Downloads `path` into `file` (created or truncated), counting bytes in `progress`;
    /// returns the length and SHA-256. Fails when the body is shorter or longer than its
    /// `Content-Length`, or longer than `max_bytes`. `make_room` is called with the announced
    /// length (0 when unknown) before the body is written.
    pub async fn fetch(
        &self,
        path: &str,
        file: &Path,
        max_bytes: u64,
        progress: &Progress,
        make_room: impl FnOnce(u64),
    ) -> Result<(u64, [u8; 32]), FetchError> {
        let mut sender = self.connect().await?;
        let mut response = self.send(&mut sender, path, self.first_authorization()).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            if let Auth::Ntlm(credentials) = &self.auth {
                let challenge = ntlm_challenge(&response).ok_or(FetchError::Unauthorized)?;
                // The 401's body must be read before the connection carries the next request.
                self.drain(response.into_body()).await?;
                let challenge = ntlm::Challenge::parse(&challenge)?;
                let message = ntlm::authenticate_message(
                    &challenge,
                    credentials,
                    "NETBOOT",
                    windows_filetime(),
                    random_challenge(),
                )?;
                let header = format!("NTLM {}", STANDARD.encode(message));
                response = self.send(&mut sender, path, Some(header)).await?;
            }
        }
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => return Err(FetchError::Unauthorized),
            status => return Err(FetchError::Status(status)),
        }
        let announced = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if announced.is_some_and(|length| length > max_bytes) {
            return Err(FetchError::Body(format!(
                "the boot image is {} bytes, more than the cache holds ({max_bytes})",
                announced.unwrap_or_default()
            )));
        }
        progress.total.store(announced.unwrap_or(0), Ordering::Relaxed);
        make_room(announced.unwrap_or(0));
        self.save(response.into_body(), file, announced, max_bytes, progress)
            .await
    }

    fn first_authorization(&self) -> Option<String> {
        match &self.auth {
            Auth::None => None,
            Auth::Basic { user, password } => {
                Some(format!("Basic {}", STANDARD.encode(format!("{user}:{password}"))))
            }
            Auth::Ntlm(_) => Some(format!("NTLM {}", STANDARD.encode(ntlm::negotiate_message()))),
        }
    }

    async fn connect(&self) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, FetchError> {
        let connect_error = |detail: String| FetchError::Connect {
            host: self.host.clone(),
            detail,
        };
        let tcp = self
            .step(TcpStream::connect((self.host.as_str(), self.port)))
            .await?
            .map_err(|e| connect_error(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(self.host.clone())
            .map_err(|_| connect_error("not a TLS server name".into()))?;
        let stream = self
            .step(self.tls.connect(name, tcp))
            .await?
            .map_err(|e| connect_error(e.to_string()))?;
        let (sender, connection) = self
            .step(hyper::client::conn::http1::handshake(TokioIo::new(stream)))
            .await?
            .map_err(|e| connect_error(e.to_string()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    async fn send(
        &self,
        sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
        path: &str,
        authorization: Option<String>,
    ) -> Result<Response<hyper::body::Incoming>, FetchError> {
        let authority = if self.port == 443 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut request = Request::get(path)
            .header(HOST, authority)
            .header(USER_AGENT, concat!("netboot-dp/", env!("CARGO_PKG_VERSION")));
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        let request = request
            .body(Empty::new())
            .map_err(|_| FetchError::Url(path.to_owned()))?;
        self.step(sender.send_request(request))
            .await?
            .map_err(|e| FetchError::Connect {
                host: self.host.clone(),
                detail: e.to_string(),
            })
    }

    async fn drain(&self, mut body: hyper::body::Incoming) -> Result<(), FetchError> {
        let mut seen = 0usize;
        while let Some(frame) = self.step(body.frame()).await? {
            let frame = frame.map_err(|e| FetchError::Body(e.to_string()))?;
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > 64 * 1024 {
                return Err(FetchError::Body("the 401 answer is too long".into()));
            }
        }
        Ok(())
    }

    async fn save(
        &self,
        mut body: hyper::body::Incoming,
        file: &Path,
        announced: Option<u64>,
        max_bytes: u64,
        progress: &Progress,
    ) -> Result<(u64, [u8; 32]), FetchError> {
        let io_error = |source| FetchError::Io {
            path: file.to_owned(),
            source,
        };
        let mut out = tokio::fs::File::create(file).await.map_err(io_error)?;
        let mut hash = Sha256::new();
        let mut length = 0u64;
        while let Some(frame) = self.step(body.frame()).await? {
            let frame = frame.map_err(|e| FetchError::Body(format!("the download broke off: {e}")))?;
            let Some(data) = frame.data_ref() else { continue };
            length += data.len() as u64;
            if length > max_bytes || announced.is_some_and(|a| length > a) {
                return Err(FetchError::Body(
                    "the boot image is longer than announced or allowed".into(),
                ));
            }
            hash.update(data);
            out.write_all(data).await.map_err(io_error)?;
            progress.done.store(length, Ordering::Relaxed);
        }
        out.sync_all().await.map_err(io_error)?;
        if let Some(announced) = announced {
            if length != announced {
                return Err(FetchError::Body(format!(
                    "the download ended after {length} of {announced} bytes"
                )));
            }
        }
        Ok((length, hash.finalize().into()))
    }

    async fn step<T>(&self, future: impl std::future::Future<Output = T>) -> Result<T, FetchError> {
        tokio::time::timeout(self.step_timeout, future)
            .await
            .map_err(|_| FetchError::Timeout(self.step_timeout))
    }
}

/// Bytes done and announced, shared with whoever shows progress.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes written so far.
    pub done: AtomicU64,
    /// `Content-Length`, or 0 when unknown.
    pub total: AtomicU64,
}

impl Progress {
    /// A fresh counter.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

/// The CHALLENGE_MESSAGE of a `WWW-Authenticate: NTLM <base64>` header.
fn ntlm_challenge<B>(response: &Response<B>) -> Option<Vec<u8>> {
    response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("NTLM "))
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
}

fn windows_filetime() -> u64 {
    // 100 ns intervals between 1601-01-01 and 1970-01-01.
    const EPOCH_DIFFERENCE: u64 = 116_444_736_000_000_000;
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    EPOCH_DIFFERENCE + u64::try_from(since_unix.as_nanos() / 100).unwrap_or(0)
}

fn random_challenge() -> [u8; 8] {
    let mut bytes = [0u8; 8];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .expect("the OS random source works");
    bytes
}

fn connector(ca_file: Option<&Path>) -> Result<TlsConnector, FetchError> {
    netboot_resolver::tls_client_config(ca_file)
        .map(|config| TlsConnector::from(Arc::new(config)))
        .map_err(|(path, detail)| FetchError::Trust { path, detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_are_taken() {
        let url =
            HttpsUrl::parse("https://dp01.corp:8443/SMS_DP_SMSPKG$/PS100004/boot.PS100004.wim").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("dp01.corp", 8443));
        assert_eq!(url.path, "/SMS_DP_SMSPKG$/PS100004/boot.PS100004.wim");
        assert_eq!(HttpsUrl::parse("https://dp01").unwrap().port, 443);
        assert_eq!(HttpsUrl::parse("https://[::1]:9443/x").unwrap().host, "::1");
        for bad in [
            "http://dp01/x",
            "https://",
            "https://user:pw@dp01/x",
            "https://dp01/a b",
            "https://dp:x/",
        ] {
            assert!(HttpsUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_never_print() {
        let basic = Auth::Basic {
            user: "CORP\\pxe".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{basic:?}").contains("hunter2"));
        let ntlm = Auth::Ntlm(ntlm::Credentials {
            user: "pxe".into(),
            domain: "CORP".into(),
            password: "hunter2".into(),
        });
        assert!(!format!("{ntlm:?}").contains("hunter2"));
    }
}
