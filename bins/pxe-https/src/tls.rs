//! TLS set-up: PEM files from the configuration (a certificate from an existing CA), or a
//! certificate issued by the site CA ([`crate::site_ca`]), which is made on first start and
//! renews the certificate when it nears its end or misses one of the host's names.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use anyhow::{bail, Context as _, Result};
use netboot_config::Config;
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::site_ca::{self, KeyKind, SiteCa};

/// File names of the certificate and key the site CA issues this server.
pub const GENERATED_CERT: &str = "pxe-https.crt";
/// See [`GENERATED_CERT`].
pub const GENERATED_KEY: &str = "pxe-https.key";

/// The key type of the certificate the site CA issues the main (rustls) listener.
pub const SERVER_KEY_KIND: KeyKind = KeyKind::EcdsaP256;

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

/// A certificate and key read from disk (configured, or issued by the site CA), with facts
/// for the log.
#[derive(Debug, Clone)]
pub struct LoadedCertificate {
    /// The chain and the signing key.
    pub key: Arc<CertifiedKey>,
    /// SHA-256 of the leaf certificate, colon-separated hex (what iPXE's `trust` setting
    /// and `openssl x509 -fingerprint -sha256` show).
    pub fingerprint: String,
    /// SHA-256 of every certificate of the chain, leaf first.
    pub chain_fingerprints: Vec<String>,
    /// Where the certificate was read from.
    pub cert_path: PathBuf,
    /// Why it was issued during this load (`None`: it was current, or configured).
    pub issued: Option<String>,
    /// The site CA, when it issued the certificate.
    pub site_ca: Option<SiteCaFacts>,
}

impl LoadedCertificate {
    /// Logs which certificate is in use, and the site CA that issued it.
    pub fn log(&self, what: &str) {
        tracing::info!(
            fingerprint = %self.fingerprint, cert = %self.cert_path.display(), issued = self.issued.is_some(),
            "{what} TLS certificate SHA-256 {}", self.fingerprint
        );
        if let Some(ca) = &self.site_ca {
            tracing::info!(
                ca = %ca.cert_path.display(), fingerprint = %ca.fingerprint,
                "certificate issued by the site CA {} (SHA-256 {}); iPXE builds trust it with --trust {}",
                ca.cert_path.display(), ca.fingerprint, ca.cert_path.display()
            );
        }
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

/// What the start-up log says about the site CA.
#[derive(Debug, Clone)]
pub struct SiteCaFacts {
    /// Its certificate.
    pub cert_path: PathBuf,
    /// Its SHA-256 fingerprint.
    pub fingerprint: String,
    /// Whether it was created during this load.
    pub created: bool,
}

/// Loads the configured certificate, or the one the site CA issued (creating the CA and
/// issuing or renewing the certificate as needed), into a slot a reload can refill.
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

/// Reads the certificate and key `[https]` names, or the pair the site CA issued this server
/// (issuing or renewing it when needed), and checks that they belong together.
pub fn load(config: &Config) -> Result<LoadedCertificate> {
    let https = &config.https;
    let (cert_path, key_path, issued, site_ca) = match (&https.cert, &https.key) {
        (Some(cert), Some(key)) => (config.resolve_path(cert), config.resolve_path(key), None, None),
        (None, None) => {
            let site = ensure_site_certificate(config, GENERATED_CERT, GENERATED_KEY, SERVER_KEY_KIND)?;
            (site.cert, site.key, site.issued, Some(site.ca))
        }
        _ => bail!("https.cert and https.key must be given together"),
    };
    let key = certified_key(&cert_path, &key_path)?;
    let chain_fingerprints: Vec<String> = key.cert.iter().map(|c| site_ca::fingerprint(c)).collect();
    Ok(LoadedCertificate {
        fingerprint: chain_fingerprints[0].clone(),
        chain_fingerprints,
        key: Arc::new(key),
        cert_path,
        issued,
        site_ca,
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

/// A certificate of the site CA in the state directory.
pub struct SiteCertificate {
    /// The chain (PEM).
    pub cert: PathBuf,
    /// Its key (PEM, 0600).
    pub key: PathBuf,
    /// Why it was issued now, if it was.
    pub issued: Option<String>,
    /// The CA.
    pub ca: SiteCaFacts,
}

/// Makes sure `<state_dir>/<cert_name>` holds a current certificate of the site CA (made
/// when missing) for this host's names, with a `kind` key; issues one when there is none or
/// the present one is due for renewal.
pub fn ensure_site_certificate(
    config: &Config,
    cert_name: &str,
    key_name: &str,
    kind: KeyKind,
) -> Result<SiteCertificate> {
    let dir = config.state_dir();
    let now = SystemTime::now();
    let (ca, created) = SiteCa::load_or_create(&dir, &site_name(), now)
        .with_context(|| format!("the site CA in {}", dir.display()))?;
    if created {
        tracing::info!(
            ca = %ca.cert_path().display(), fingerprint = %ca.fingerprint(),
            "created the site CA; build the site's iPXE trusting it (see README: our own iPXE)"
        );
    }
    let (cert, key) = (dir.join(cert_name), dir.join(key_name));
    let names = certificate_names(config);
    let reason = if key.is_file() {
        match std::fs::read_to_string(&cert) {
            Ok(pem) => ca.renewal_reason(&pem, &names, now),
            Err(_) => Some("there was none".to_owned()),
        }
    } else {
        Some("there was none".to_owned())
    };
    if let Some(reason) = &reason {
        let issued = ca.issue(&names, kind, now)?;
        site_ca::write_issued(&issued, &cert, &key)?;
        tracing::info!(cert = %cert.display(), names = ?names, "issued a server certificate from the site CA: {reason}");
    }
    Ok(SiteCertificate {
        cert,
        key,
        issued: reason,
        ca: SiteCaFacts {
            cert_path: ca.cert_path(),
            fingerprint: ca.fingerprint(),
            created,
        },
    })
}

/// The site's name in a new CA's subject: the host name that made it.
pub(crate) fn site_name() -> String {
    host_name().unwrap_or_else(|| "netboot".to_owned())
}

fn host_name() -> Option<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let host = host.trim();
    (!host.is_empty()).then(|| host.to_owned())
}

/// rustls with the ring provider: TLS 1.3, and TLS 1.2 with ECDHE + AES-GCM / ChaCha20.
/// iPXE 2.0 negotiates `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256` over P-256 with the site
/// CA's certificate (`ECDHE_RSA` with an RSA one), measured in the lab.
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
    site_ca::fingerprint(cert)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading certificate {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificate {}", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("reading key {}", path.display()))?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Err(pem::Error::NoItemsFound) => bail!("{} holds no PEM private key", path.display()),
        parsed => parsed.with_context(|| format!("parsing key {}", path.display())),
    }
}

/// Names for the issued certificate: configured names, the host name, `localhost`, every
/// address of the host's interfaces (iPXE is handed `https://<address>/`, and checks the
/// address against the certificate), the proxy's `server_address`, the listen address when it
/// is a specific one, and the host of `public_url`.
pub fn certificate_names(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = config.https.cert_names.clone();
    names.extend(host_name());
    names.push("localhost".to_owned());
    let mut addresses: Vec<IpAddr> = vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    addresses.extend(interface_addresses());
    addresses.extend(config.proxy.server_address.map(IpAddr::from));
    let listen = config.https.listen.ip();
    if !listen.is_unspecified() {
        addresses.push(listen);
    }
    names.extend(addresses.iter().map(IpAddr::to_string));
    if let Some(host) = config.https.public_url.as_deref().and_then(url_host) {
        names.push(host);
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.to_ascii_lowercase()));
    names
}

/// IPv4 and non-link-local IPv6 addresses of the host's interfaces.
fn interface_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut found: Vec<IpAddr> = addrs
        .filter_map(|a| a.address)
        .filter_map(|address| {
            if let Some(v4) = address.as_sockaddr_in() {
                Some(IpAddr::from(v4.ip()))
            } else {
                address.as_sockaddr_in6().map(|v6| IpAddr::from(v6.ip()))
            }
        })
        // Link-local IPv6 addresses need a zone in a URL; nobody reaches a server that way.
        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The host part of an `http(s)://host[:port]/...` URL (IPv6 literals without brackets).
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn pem_files_are_read_and_a_swapped_pair_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = dir.path().join("server.crt");
        let key = dir.path().join("server.key");
        std::fs::write(&cert, issued.cert.pem()).unwrap();
        std::fs::write(&key, issued.key_pair.serialize_pem()).unwrap();
        assert_eq!(read_certs(&cert).unwrap(), vec![issued.cert.der().clone()]);
        assert_eq!(
            read_key(&key).unwrap().secret_der(),
            issued.key_pair.serialize_der()
        );
        // The certificate given as the key and the other way round.
        let error = read_key(&cert).unwrap_err().to_string();
        assert!(error.ends_with("server.crt holds no PEM private key"), "{error}");
        let error = read_certs(&key).unwrap_err().to_string();
        assert!(error.ends_with("server.key holds no PEM certificate"), "{error}");
    }

    #[test]
    fn the_site_ca_issues_the_certificate_once_and_it_is_reused() {
        let state = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.https.state_dir = state.path().join("netboot");
        config.https.cert_names = vec!["pxe.example.test".into(), "10.0.0.5".into()];

        let first = load(&config).unwrap();
        assert_eq!(first.issued.as_deref(), Some("there was none"));
        let ca = first.site_ca.clone().unwrap();
        assert!(ca.created);
        assert_eq!(first.cert_path, state.path().join("netboot").join(GENERATED_CERT));
        assert_eq!(first.chain_fingerprints.len(), 2, "leaf and site CA");
        assert_eq!(first.chain_fingerprints[1], ca.fingerprint);
        let key_mode = std::fs::metadata(state.path().join("netboot").join(GENERATED_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);

        let second = load(&config).unwrap();
        assert_eq!(second.issued, None);
        assert_eq!(second.fingerprint, first.fingerprint);
        assert!(!second.site_ca.unwrap().created);

        // A new name (a new address, say) gets a new certificate from the same CA.
        config.https.cert_names.push("10.0.0.6".into());
        let third = load(&config).unwrap();
        assert!(third.issued.unwrap().contains("10.0.0.6"));
        assert_ne!(third.fingerprint, first.fingerprint);
        assert_eq!(third.site_ca.unwrap().fingerprint, ca.fingerprint);
    }

    #[test]
    fn a_self_signed_certificate_from_an_older_version_is_replaced() {
        let state = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.https.state_dir = state.path().to_path_buf();
        let old = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(state.path().join(GENERATED_CERT), old.cert.pem()).unwrap();
        std::fs::write(state.path().join(GENERATED_KEY), old.key_pair.serialize_pem()).unwrap();
        let tls = load(&config).unwrap();
        assert!(tls.issued.unwrap().contains("not issued by the site CA"));
    }

    #[test]
    fn names_cover_the_host_addresses_and_configured_ones() {
        let mut config = Config::default();
        config.https.cert_names = vec!["pxe.example.test".into(), "PXE.example.test".into()];
        config.https.public_url = Some("https://boot.example.test:8443/x".into());
        config.proxy.server_address = Some(std::net::Ipv4Addr::new(192, 0, 2, 7));
        let names = certificate_names(&config);
        for wanted in [
            "pxe.example.test",
            "localhost",
            "127.0.0.1",
            "::1",
            "192.0.2.7",
            "boot.example.test",
        ] {
            assert!(
                names.iter().any(|n| n == wanted),
                "{wanted} missing from {names:?}"
            );
        }
        assert_eq!(
            names
                .iter()
                .filter(|n| n.eq_ignore_ascii_case("pxe.example.test"))
                .count(),
            1
        );
        assert!(!names.iter().any(|n| n.starts_with("fe80")), "{names:?}");
        assert_eq!(url_host("https://[fd00::1]:443/"), Some("fd00::1".into()));
        assert_eq!(url_host("http://user@h/"), Some("h".into()));
        assert_eq!(url_host("nonsense"), None);
    }

    #[test]
    fn a_cert_without_a_key_is_refused() {
        let mut config = Config::default();
        config.https.cert = Some("/nonexistent.pem".into());
        assert!(load(&config).is_err());
    }
}
