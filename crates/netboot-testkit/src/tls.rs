//! A TLS server identity for tests that stand in for a remote HTTPS service: a self-signed
//! certificate for `localhost` whose PEM the client under test is given as its CA file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A rustls acceptor with a fresh self-signed `localhost` certificate, and the path of that
/// certificate written as `<dir>/<name>.pem` for the client to trust.
///
/// # Panics
/// When the certificate cannot be made or written (a broken test environment).
pub fn localhost_acceptor(dir: &Path, name: &str) -> (tokio_rustls::TlsAcceptor, PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate");
    let ca = dir.join(format!("{name}.pem"));
    std::fs::write(&ca, cert.cert.pem()).expect("writing the CA file");
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).expect("a key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("a usable certificate");
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca)
}
