//! The site CA: one certificate authority per site, made on first start in the state
//! directory, which issues the HTTPS certificate of every server of the site. The site's iPXE
//! is built trusting this CA (`TRUST=`), so one build works with every server, split hosts
//! and renewed certificates alike.
//!
//! Pure functions over files and a clock passed in: nothing here reads the configuration or
//! the system time, so the binaries' start-up and the `site-ca` commands share it and tests
//! can travel in time.
//!
//! Key types (measured with iPXE 2.0.0 in the lab, see the README): the CA and the server
//! certificates use ECDSA P-256 with SHA-256, which iPXE verifies and rustls serves with
//! `TLS_ECDHE_ECDSA_WITH_AES_*_GCM_*`. RSA keys ([`KeyKind::Rsa2048`]) are issued for the
//! OpenSSL compatibility listener, whose firmware clients only speak RSA key exchange.

use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

/// The CA certificate (PEM), safe to copy anywhere: it is what iPXE builds trust.
pub const CA_CERT: &str = "site-ca.crt";
/// The CA private key (PEM, mode 0600). Whoever holds it can impersonate every server.
pub const CA_KEY: &str = "site-ca.key";

/// How long a new CA is valid. Long, because every iPXE build trusts exactly this
/// certificate: replacing it means rebuilding and redeploying iPXE.
pub const CA_VALIDITY: Duration = Duration::from_secs(20 * 365 * 86_400);
/// How long an issued server certificate is valid.
pub const SERVER_VALIDITY: Duration = Duration::from_secs(2 * 365 * 86_400);
/// A server certificate with less than this left is renewed (from the same CA).
pub const RENEW_BEFORE: Duration = Duration::from_secs(90 * 86_400);
/// New certificates start this far in the past, so clients whose clock is a little behind
/// (iPXE reads the machine's RTC, often local time) accept them at once.
const BACKDATE: Duration = Duration::from_secs(86_400);

/// Key algorithms the site CA creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA over P-256 with SHA-256: the default for the CA and server certificates.
    EcdsaP256,
    /// RSA, 2048 bits, for clients that cannot use ECDSA (the compatibility listener).
    Rsa2048,
}

impl KeyKind {
    fn generate(self) -> Result<KeyPair> {
        match self {
            Self::EcdsaP256 => {
                KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("generating an ECDSA P-256 key")
            }
            // ring (rcgen's backend here) signs with RSA keys but cannot make them, so the
            // `rsa` crate generates the key; it does nothing else with it. Its Marvin timing
            // advisory (RUSTSEC-2023-0071) is about its own decryption and signing, which are
            // never used: the key goes to rustls (ring) or OpenSSL, which make every signature.
            Self::Rsa2048 => {
                use rsa::pkcs8::EncodePrivateKey as _;
                let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                    .context("generating an RSA key")?;
                let pem = private
                    .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                    .context("encoding the RSA key")?;
                KeyPair::from_pem(&pem).context("loading the generated RSA key")
            }
        }
    }
}

/// A loaded site CA.
pub struct SiteCa {
    /// Where it lives.
    dir: PathBuf,
    cert_pem: String,
    cert_der: Vec<u8>,
    /// The CA as an issuer: its own parameters re-signed, which carries its name and key
    /// identifier into the certificates it issues.
    issuer: rcgen::Certificate,
    key: KeyPair,
    not_after: SystemTime,
}

impl std::fmt::Debug for SiteCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteCa")
            .field("dir", &self.dir)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate followed by the CA certificate (the chain a server sends).
    pub chain_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").finish_non_exhaustive()
    }
}

impl SiteCa {
    /// Loads the CA from `dir`, creating it when there is none. Returns whether it was
    /// created.
    pub fn load_or_create(dir: &Path, site_name: &str, now: SystemTime) -> Result<(Self, bool)> {
        if let Some(ca) = Self::load(dir)? {
            return Ok((ca, false));
        }
        match Self::create(dir, site_name, now) {
            Ok(ca) => Ok((ca, true)),
            // Another process made it first: use theirs.
            Err(e) => match Self::load(dir)? {
                Some(ca) => Ok((ca, false)),
                None => Err(e),
            },
        }
    }

    /// Loads the CA from `dir`; `None` when neither file exists.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
        match (cert_path.exists(), key_path.exists()) {
            (false, false) => return Ok(None),
            (true, true) => {}
            (true, false) => bail!(
                "{} exists without its key {}: restore the key, or move the certificate away to make a new CA \
                 (then rebuild iPXE)",
                cert_path.display(),
                key_path.display()
            ),
            (false, true) => bail!(
                "{} exists without its certificate {}",
                key_path.display(),
                cert_path.display()
            ),
        }
        let cert_pem = std::fs::read_to_string(&cert_path)
            .with_context(|| format!("reading {}", cert_path.display()))?;
        // Refused, like every secret of the state directory, when others can read it.
        let key_pem = String::from_utf8(netboot_runtime::private_file::read(&key_path)?)
            .with_context(|| format!("{} is not PEM text", key_path.display()))?;
        let key = KeyPair::from_pem(&key_pem).with_context(|| format!("parsing {}", key_path.display()))?;
        let params = CertificateParams::from_ca_cert_pem(&cert_pem)
            .with_context(|| format!("parsing {}", cert_path.display()))?;
        let cert_der = first_der(&cert_pem).with_context(|| format!("parsing {}", cert_path.display()))?;
        let facts = CertFacts::parse(&cert_der)?;
        if facts.public_key != key.public_key_der() {
            bail!("{} is not the key of {}", key_path.display(), cert_path.display());
        }
        let issuer = params
            .self_signed(&key)
            .with_context(|| format!("using {} as an issuer", cert_path.display()))?;
        Ok(Some(Self {
            dir: dir.to_path_buf(),
            cert_pem,
            cert_der,
            issuer,
            key,
            not_after: facts.not_after,
        }))
    }

    /// Makes a new CA in `dir` (created); fails when one exists.
    pub fn create(dir: &Path, site_name: &str, now: SystemTime) -> Result<Self> {
        // The key first, created only if absent: of two processes starting at once, both
        // go on with the key that won.
        let key_pem =
            netboot_runtime::private_file::read_or_create(&dir.join(CA_KEY), "site CA key", || {
                Ok(KeyKind::EcdsaP256.generate()?.serialize_pem().into_bytes())
            })?;
        let key = KeyPair::from_pem(&String::from_utf8_lossy(&key_pem)).context("loading the site CA key")?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("netboot site CA {site_name}"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "netboot site CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(random_serial()?.into());
        set_validity(&mut params, now, CA_VALIDITY)?;
        let cert = params.self_signed(&key).context("signing the CA certificate")?;
        // Never replaces a certificate: the first one written stays the site CA.
        write_new(&dir.join(CA_CERT), cert.pem().as_bytes(), 0o644)?;
        Self::load(dir)?.context("the CA just written is missing")
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Where the CA certificate is.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }

    /// SHA-256 of the CA certificate, `aa:bb:...` (what `ipxe-build.toml`'s `trust_sha256`
    /// and `openssl x509 -fingerprint -sha256` show).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// When the CA stops being valid.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Issues a server certificate for `names` (DNS names and IP addresses), valid for
    /// [`SERVER_VALIDITY`] from `now`, with a new key of `kind`.
    pub fn issue(&self, names: &[String], kind: KeyKind, now: SystemTime) -> Result<Issued> {
        if names.is_empty() {
            bail!("a server certificate needs at least one name");
        }
        let key = kind.generate()?;
        let mut params = CertificateParams::new(names.to_vec()).context("certificate names")?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?.into());
        set_validity(&mut params, now, SERVER_VALIDITY)?;
        // Never past the CA's own end: clients would refuse the chain then anyway.
        let ca_end = OffsetDateTime::from(self.not_after);
        if params.not_after > ca_end {
            params.not_after = ca_end;
        }
        let cert = params
            .signed_by(&key, &self.issuer, &self.key)
            .context("signing the server certificate")?;
        Ok(Issued {
            chain_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }

    /// Why the server certificate `chain_pem` must be replaced, or `None` when it is fine:
    /// not issued by this CA, missing one of `names`, or expiring within [`RENEW_BEFORE`].
    pub fn renewal_reason(&self, chain_pem: &str, names: &[String], now: SystemTime) -> Option<String> {
        let der = match first_der(chain_pem) {
            Ok(der) => der,
            Err(e) => return Some(format!("it cannot be read ({e:#})")),
        };
        let facts = match CertFacts::parse(&der) {
            Ok(facts) => facts,
            Err(e) => return Some(format!("it cannot be parsed ({e:#})")),
        };
        if !self.signed(&der) {
            return Some("it was not issued by the site CA".into());
        }
        if let Some(missing) = names.iter().find(|n| !facts.covers(n)) {
            return Some(format!("it does not name {missing}"));
        }
        match facts.not_after.duration_since(now) {
            Ok(left) if left > RENEW_BEFORE => None,
            Ok(left) => Some(format!("it expires in {} days", left.as_secs() / 86_400)),
            Err(_) => Some("it has expired".into()),
        }
    }

    /// Whether `der` carries a valid signature of this CA.
    fn signed(&self, der: &[u8]) -> bool {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            return false;
        };
        let Ok((_, ca)) = x509_parser::parse_x509_certificate(&self.cert_der) else {
            return false;
        };
        cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok()
    }
}

/// What the renewal check reads from a certificate.
struct CertFacts {
    not_after: SystemTime,
    dns_names: Vec<String>,
    addresses: Vec<IpAddr>,
    public_key: Vec<u8>,
}

impl CertFacts {
    fn parse(der: &[u8]) -> Result<Self> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der).context("not an X.509 certificate")?;
        let not_after = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0));
        let mut dns_names = Vec::new();
        let mut addresses = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => dns_names.push(dns.to_ascii_lowercase()),
                    GeneralName::IPAddress(bytes) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                            addresses.push(IpAddr::from(v4));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                            addresses.push(IpAddr::from(v6));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Self {
            not_after,
            dns_names,
            addresses,
            public_key: cert.public_key().raw.to_vec(),
        })
    }

    fn covers(&self, name: &str) -> bool {
        match name.parse::<IpAddr>() {
            Ok(ip) => self.addresses.contains(&ip),
            Err(_) => self.dns_names.contains(&name.to_ascii_lowercase()),
        }
    }
}

/// The SHA-256 fingerprint of a DER certificate, as `aa:bb:...`.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The first certificate of a PEM text, DER.
fn first_der(pem: &str) -> Result<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .context("no PEM certificate")?
        .map(|der| der.to_vec())
        .context("a PEM certificate that does not decode")
}

fn set_validity(params: &mut CertificateParams, now: SystemTime, validity: Duration) -> Result<()> {
    let start = now.checked_sub(BACKDATE).context("clock before 1970")?;
    params.not_before = OffsetDateTime::from(start);
    params.not_after = OffsetDateTime::from(now + validity);
    Ok(())
}

/// A positive 16-byte serial number from the OS's random source.
fn random_serial() -> Result<Vec<u8>> {
    let mut serial = vec![0u8; 16];
    getrandom::getrandom(&mut serial).context("reading random bytes")?;
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    Ok(serial)
}

/// Creates `dir` (and parents) when missing; a new directory is 0700 since it holds keys.
fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Writes `path` only if it does not exist, with `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Replaces `cert_path` and `key_path` with `issued`: each written to a temporary file
/// (the key 0600) and renamed into place, so a reader never sees half a file.
pub fn write_issued(issued: &Issued, cert_path: &Path, key_path: &Path) -> Result<()> {
    if let Some(dir) = key_path.parent() {
        create_private_dir(dir)?;
    }
    if let Some(dir) = cert_path.parent() {
        create_private_dir(dir)?;
    }
    replace(key_path, issued.key_pem.as_bytes(), 0o600)?;
    replace(cert_path, issued.chain_pem.as_bytes(), 0o644)
}

fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let name = path.file_name().context("a file path")?.to_string_lossy();
    let temp = path.with_file_name(format!(".{name}.new"));
    let _ = std::fs::remove_file(&temp);
    write_new(&temp, bytes, mode)?;
    std::fs::rename(&temp, path).with_context(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use rustls::pki_types::PrivateKeyDer;

    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn names() -> Vec<String> {
        vec!["pxe.example.test".into(), "10.0.0.5".into(), "fd00::5".into()]
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000)
    }

    #[test]
    fn the_ca_is_made_once_with_a_private_key_and_sane_validity() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (ca, created) = SiteCa::load_or_create(&state, "lab", now()).unwrap();
        assert!(created);
        let mode = |name: &str| std::fs::metadata(state.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(CA_KEY), 0o600);
        assert_eq!(mode(CA_CERT), 0o644);
        assert_eq!(
            std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let (again, created) = SiteCa::load_or_create(&state, "lab", now() + DAY).unwrap();
        assert!(!created);
        assert_eq!(again.fingerprint(), ca.fingerprint());
        assert!(
            SiteCa::create(&state, "lab", now()).is_err(),
            "never overwrites a CA"
        );

        let der = first_der(ca.cert_pem()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let (start, end) = (
            cert.validity().not_before.timestamp(),
            cert.validity().not_after.timestamp(),
        );
        let now_secs = now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
        assert_eq!(now_secs - start, 86_400, "back-dated one day");
        assert_eq!(end - now_secs, CA_VALIDITY.as_secs() as i64);
        assert!(cert.is_ca());
        assert!(cert.subject().to_string().contains("netboot site CA lab"));
    }

    #[test]
    fn issued_certificates_chain_to_the_ca_and_name_every_host() {
        let dir = tempfile::tempdir().unwrap();
        let ca = SiteCa::create(dir.path(), "lab", now()).unwrap();
        for kind in [KeyKind::EcdsaP256, KeyKind::Rsa2048] {
            let issued = ca.issue(&names(), kind, now()).unwrap();
            assert!(
                issued.chain_pem.ends_with(ca.cert_pem()),
                "the chain ends with the CA"
            );
            let der = first_der(&issued.chain_pem).unwrap();
            assert!(ca.signed(&der));
            let facts = CertFacts::parse(&der).unwrap();
            for name in names() {
                assert!(facts.covers(&name), "{name}");
            }
            assert!(!facts.covers("10.0.0.6"));
            assert_eq!(
                facts.not_after.duration_since(now()).unwrap(),
                SERVER_VALIDITY,
                "valid two years, not until 4096"
            );
            assert_eq!(ca.renewal_reason(&issued.chain_pem, &names(), now()), None);
            // rustls accepts the pair as a server identity.
            let certs: Vec<_> = CertificateDer::pem_slice_iter(issued.chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
            rustls::sign::CertifiedKey::from_der(certs, key, &rustls::crypto::ring::default_provider())
                .unwrap();
        }
    }

    #[test]
    fn renewal_is_due_near_expiry_for_new_names_and_for_other_issuers() {
        let dir = tempfile::tempdir().unwrap();
        let ca = SiteCa::create(&dir.path().join("a"), "a", now()).unwrap();
        let other = SiteCa::create(&dir.path().join("b"), "b", now()).unwrap();
        let issued = ca.issue(&names(), KeyKind::EcdsaP256, now()).unwrap();
        let later = |days: u64| now() + DAY * days as u32;
        assert_eq!(ca.renewal_reason(&issued.chain_pem, &names(), later(600)), None);
        let due = ca
            .renewal_reason(&issued.chain_pem, &names(), later(700))
            .unwrap();
        assert!(due.contains("expires in 30 days"), "{due}");
        let expired = ca
            .renewal_reason(&issued.chain_pem, &names(), later(800))
            .unwrap();
        assert!(expired.contains("expired"), "{expired}");
        let mut more = names();
        more.push("10.0.0.9".into());
        let missing = ca.renewal_reason(&issued.chain_pem, &more, now()).unwrap();
        assert!(missing.contains("10.0.0.9"), "{missing}");
        let foreign = other.renewal_reason(&issued.chain_pem, &names(), now()).unwrap();
        assert!(foreign.contains("not issued by the site CA"), "{foreign}");
        assert!(ca.renewal_reason("garbage", &names(), now()).is_some());
    }

    #[test]
    fn renewed_certificates_keep_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = SiteCa::create(dir.path(), "lab", now()).unwrap();
        let first = ca.issue(&names(), KeyKind::EcdsaP256, now()).unwrap();
        let (cert, key) = (dir.path().join("srv.crt"), dir.path().join("srv.key"));
        write_issued(&first, &cert, &key).unwrap();
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let reloaded = SiteCa::load(dir.path()).unwrap().unwrap();
        let renewed = reloaded
            .issue(&names(), KeyKind::EcdsaP256, now() + DAY * 700)
            .unwrap();
        write_issued(&renewed, &cert, &key).unwrap();
        assert_eq!(reloaded.fingerprint(), ca.fingerprint());
        assert!(ca.signed(&first_der(&std::fs::read_to_string(&cert).unwrap()).unwrap()));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".new"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_loose_ca_key_and_a_lone_half_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        SiteCa::create(dir.path(), "lab", now()).unwrap();
        let key = dir.path().join(CA_KEY);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = format!("{:#}", SiteCa::load(dir.path()).unwrap_err());
        assert!(error.contains("chmod 600"), "{error}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        SiteCa::load(dir.path()).unwrap().unwrap();

        std::fs::rename(&key, dir.path().join("elsewhere")).unwrap();
        let error = format!("{:#}", SiteCa::load(dir.path()).unwrap_err());
        assert!(error.contains("without its key"), "{error}");
        // A key that is not the certificate's is refused too.
        let other = tempfile::tempdir().unwrap();
        SiteCa::create(other.path(), "x", now()).unwrap();
        std::fs::copy(other.path().join(CA_KEY), &key).unwrap();
        let error = format!("{:#}", SiteCa::load(dir.path()).unwrap_err());
        assert!(error.contains("is not the key of"), "{error}");
    }
}
