//! TLS set-up: PEM files from the configuration, or a self-signed certificate generated on
//! first start and kept for later starts.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{bail, Context as _, Result};
use netboot_config::Config;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest as _, Sha256};

/// File names of the generated certificate and key.
pub const GENERATED_CERT: &str = "pxe-https.crt";
/// See [`GENERATED_CERT`].
pub const GENERATED_KEY: &str = "pxe-https.key";

/// The TLS configuration the listener uses, and facts for the start-up log.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The rustls server configuration; its certificate comes from `certificate`.
    pub server_config: Arc<rustls::ServerConfig>,
    /// The certificate handshakes use, which a reload replaces.
    pub certificate: Arc<CertificateSlot>,
    /// What was loaded at start.
    pub loaded: LoadedCertificate,
}

/// A certificate and key read from disk (or generated), with facts for the log.
#[derive(Debug, Clone)]
pub struct LoadedCertificate {
    /// The chain and the signing key.
    pub key: Arc<CertifiedKey>,
    /// SHA-256 of the leaf certificate, colon-separated hex (what iPXE's `trust` setting
    /// and `openssl x509 -fingerprint -sha256` show).
    pub fingerprint: String,
    /// Where the certificate was read from.
    pub cert_path: PathBuf,
    /// Whether it was generated during this start.
    pub generated: bool,
}

impl LoadedCertificate {
    /// Logs which certificate is in use.
    pub fn log(&self, what: &str) {
        tracing::info!(
            fingerprint = %self.fingerprint, cert = %self.cert_path.display(), generated = self.generated,
            "{what} TLS certificate SHA-256 {}", self.fingerprint
        );
    }
}

/// The certificate every new handshake gets; [`CertificateSlot::replace`] swaps it without
/// touching connections already established.
#[derive(Debug)]
pub struct CertificateSlot(RwLock<Arc<CertifiedKey>>);

impl CertificateSlot {
    /// Serves `key` from now on.
    pub fn replace(&self, key: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = key;
    }

    fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl ResolvesServerCert for CertificateSlot {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Loads the configured certificate, or the generated one, generating it when missing.
pub fn load_or_generate(config: &Config) -> Result<Tls> {
    let loaded = load(config)?;
    let certificate = Arc::new(CertificateSlot(RwLock::new(Arc::clone(&loaded.key))));
    let server_config = server_config(Arc::clone(&certificate) as Arc<dyn ResolvesServerCert>)?;
    Ok(Tls {
        server_config,
        certificate,
        loaded,
    })
}

/// Reads the certificate and key `[https]` names (or the generated pair, generating it when
/// missing) and checks that they belong together.
pub fn load(config: &Config) -> Result<LoadedCertificate> {
    let https = &config.https;
    let (cert_path, key_path, generated) = match (&https.cert, &https.key) {
        (Some(cert), Some(key)) => (config.resolve_path(cert), config.resolve_path(key), false),
        (None, None) => {
            let dir = config.base_dir.clone().unwrap_or_else(|| https.state_dir.clone());
            let cert = dir.join(GENERATED_CERT);
            let key = dir.join(GENERATED_KEY);
            let generated = !(cert.exists() && key.exists());
            if generated {
                generate(&dir, &cert, &key, &certificate_names(config))?;
            }
            (cert, key, generated)
        }
        _ => bail!("https.cert and https.key must be given together"),
    };
    let key = certified_key(&cert_path, &key_path)?;
    Ok(LoadedCertificate {
        fingerprint: fingerprint(&key.cert[0]),
        key: Arc::new(key),
        cert_path,
        generated,
    })
}

/// The chain of `cert_path` with the key of `key_path`, refused when they do not belong
/// together.
pub fn certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey> {
    let certs = read_certs(cert_path)?;
    let key = read_key(key_path)?;
    CertifiedKey::from_der(certs, key, &rustls::crypto::ring::default_provider()).with_context(|| {
        format!(
            "{} and {} do not form a usable pair",
            cert_path.display(),
            key_path.display()
        )
    })
}

/// rustls with the ring provider: TLS 1.3, and TLS 1.2 with ECDHE + AES-GCM / ChaCha20
/// (iPXE uses `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256` / `..._AES_256_GCM_SHA384` over X25519).
pub fn server_config(certificates: Arc<dyn ResolvesServerCert>) -> Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("selecting TLS versions")?
        .with_no_client_auth()
        .with_cert_resolver(certificates);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The SHA-256 fingerprint of a DER certificate, as `aa:bb:...`.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading certificate {}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificate {}", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("reading key {}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .with_context(|| format!("parsing key {}", path.display()))?
        .with_context(|| format!("{} holds no PEM private key", path.display()))
}

/// Names for the generated certificate: configured names, the host name, `localhost`,
/// loopback addresses and the listen address when it is a specific one.
fn certificate_names(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = config.https.cert_names.clone();
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_owned());
        }
    }
    names.extend(["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()]);
    let ip: IpAddr = config.https.listen.ip();
    if !ip.is_unspecified() {
        names.push(ip.to_string());
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// Writes a new RSA-2048 self-signed certificate (RSA because iPXE only accepts RSA server
/// certificates) and its key (mode 0600).
fn generate(dir: &Path, cert_path: &Path, key_path: &Path, names: &[String]) -> Result<()> {
    use rsa::pkcs8::EncodePrivateKey as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let private =
        rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).context("generating an RSA key")?;
    let key_pem = private
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .context("encoding the RSA key")?;
    let key_pair = rcgen::KeyPair::from_pem(&key_pem).context("loading the generated key")?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).context("certificate names")?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().map_or("pxe-https", String::as_str),
    );
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "netboot pxe-https (self-signed)");
    let cert = params.self_signed(&key_pair).context("signing the certificate")?;

    let mut key_file = open_private(key_path)?;
    key_file
        .write_all(key_pem.as_bytes())
        .with_context(|| format!("writing {}", key_path.display()))?;
    std::fs::write(cert_path, cert.pem()).with_context(|| format!("writing {}", cert_path.display()))?;
    tracing::info!(cert = %cert_path.display(), names = ?names, "generated a self-signed certificate");
    Ok(())
}

fn open_private(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn without_a_config_file_the_certificate_goes_to_the_state_dir_and_is_reused() {
        let state = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.https.state_dir = state.path().join("netboot");
        config.https.cert_names = vec!["pxe.example.test".into(), "10.0.0.5".into()];

        let first = load(&config).unwrap();
        assert!(first.generated);
        assert_eq!(first.cert_path, state.path().join("netboot").join(GENERATED_CERT));
        let key_mode = std::fs::metadata(state.path().join("netboot").join(GENERATED_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);

        let second = load(&config).unwrap();
        assert!(!second.generated);
        assert_eq!(second.fingerprint, first.fingerprint);
    }

    #[test]
    fn a_cert_without_a_key_is_refused() {
        let mut config = Config::default();
        config.https.cert = Some("/nonexistent.pem".into());
        assert!(load_or_generate(&config).is_err());
    }
}
