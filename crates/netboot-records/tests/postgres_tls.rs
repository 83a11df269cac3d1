//! Records in PostgreSQL over TLS: a real server with `ssl = on` that refuses clients without
//! TLS, a certificate from a test CA, and the client checking it (`verify-full`).

mod support;

use std::path::Path;
use std::time::Duration;

use netboot_records::{Store, StoreError};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use support::pg::{PgServer, ServerTls};

const TIMEOUT: Duration = Duration::from_secs(10);
/// Trust authentication ignores it; it is there to show no error or log repeats it.
const PASSWORD: &str = "s3cret-not-shown";

/// A certificate authority made for one test run.
struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// A server certificate for `names` and its private key, both PEM.
    fn issue(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(ToString::to_string).collect();
        let params = CertificateParams::new(names).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write(&self, path: &Path) {
        std::fs::write(path, self.cert.pem()).unwrap();
    }
}

/// A TLS server whose certificate names only 127.0.0.1, issued by the returned CA.
fn start(ca: &TestCa) -> Option<PgServer> {
    let (cert_pem, key_pem) = ca.issue(&["127.0.0.1"]);
    match PgServer::start_tls(&ServerTls {
        cert_pem: &cert_pem,
        key_pem: &key_pem,
    }) {
        Ok(server) => Some(server),
        Err(reason) => {
            netboot_testkit::process::skip_or_fail(&format!("PostgreSQL test server: {reason}"));
            None
        }
    }
}

/// `url` with the password and query added: `postgres://postgres:<pw>@127.0.0.1:<port>/<db>?<query>`.
fn url_with(server: &PgServer, database: &str, host: &str, query: &str) -> String {
    let plain = server.url(database);
    let with_password = plain.replacen("postgres@127.0.0.1", &format!("postgres:{PASSWORD}@{host}"), 1);
    if query.is_empty() {
        with_password
    } else {
        format!("{with_password}?{query}")
    }
}

async fn open_error(url: &str, ca_file: Option<&Path>) -> String {
    let error = Store::open_postgres(url, ca_file, TIMEOUT)
        .await
        .expect_err("the connection must be refused");
    let text = error.to_string();
    assert!(!text.contains(PASSWORD), "the password leaked into {text:?}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_against_the_configured_ca() {
    let ca = TestCa::new("netboot test records CA");
    let Some(server) = start(&ca) else {
        return;
    };
    server.create_database("records").await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("records-ca.pem");
    ca.write(&ca_file);

    // The server refuses TCP without TLS, so every success below went over TLS.
    let refused = open_error(
        &url_with(&server, "records", "127.0.0.1", "sslmode=disable"),
        None,
    )
    .await;
    assert!(refused.contains("no encryption"), "{refused}");

    let url = url_with(&server, "records", "127.0.0.1", "sslmode=verify-full");
    let store = Store::open_postgres(&url, Some(&ca_file), TIMEOUT).await.unwrap();
    assert_eq!(store.backend_name(), "postgres");
    store.close().await;

    // With a CA file and no sslmode the server is verified all the same.
    let url = url_with(&server, "records", "127.0.0.1", "");
    let store = Store::open_postgres(&url, Some(&ca_file), TIMEOUT).await.unwrap();
    store.close().await;

    // The CA named in the URL, libpq's way, works too.
    let url = url_with(
        &server,
        "records",
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", ca_file.display()),
    );
    Store::open_postgres(&url, None, TIMEOUT)
        .await
        .unwrap()
        .close()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_host_name_is_refused_clearly() {
    let ca = TestCa::new("netboot test records CA");
    let Some(server) = start(&ca) else {
        return;
    };
    server.create_database("records").await;
    let dir = tempfile::tempdir().unwrap();
    let other_ca_file = dir.path().join("other-ca.pem");
    TestCa::new("some other CA").write(&other_ca_file);
    let ca_file = dir.path().join("records-ca.pem");
    ca.write(&ca_file);

    let url = url_with(&server, "records", "127.0.0.1", "sslmode=verify-full");
    let wrong_ca = open_error(&url, Some(&other_ca_file)).await;
    eprintln!("wrong CA: {wrong_ca}");
    assert!(wrong_ca.contains("127.0.0.1"), "names the server: {wrong_ca}");
    assert!(wrong_ca.contains("UnknownIssuer"), "says why: {wrong_ca}");

    // Unstated sslmode with a CA file means verify-full, not "encrypt but trust anyone".
    let unstated = open_error(
        &url_with(&server, "records", "127.0.0.1", ""),
        Some(&other_ca_file),
    )
    .await;
    assert!(unstated.contains("UnknownIssuer"), "{unstated}");

    // The right CA but another name than the certificate's.
    let url = url_with(&server, "records", "localhost", "sslmode=verify-full");
    let wrong_name = open_error(&url, Some(&ca_file)).await;
    eprintln!("wrong name: {wrong_name}");
    assert!(
        wrong_name.contains("not valid for name \"localhost\""),
        "says why: {wrong_name}"
    );
    // verify-ca checks the issuer. (With sqlx 0.8.6 and rustls 0.23.46 it checks the name as
    // well, stricter than libpq: sqlx waives only rustls's older `NotValidForName` error.)
    let url = url_with(&server, "records", "127.0.0.1", "sslmode=verify-ca");
    Store::open_postgres(&url, Some(&ca_file), TIMEOUT)
        .await
        .unwrap()
        .close()
        .await;
    let wrong_ca = open_error(&url, Some(&other_ca_file)).await;
    assert!(wrong_ca.contains("UnknownIssuer"), "{wrong_ca}");

    let missing = dir.path().join("missing.pem");
    let error = Store::open_postgres(&url, Some(&missing), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::File { path, .. } if path == &missing),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_ca_file_resolves_against_the_config_directory() {
    let ca = TestCa::new("netboot test records CA");
    let Some(server) = start(&ca) else {
        return;
    };
    server.create_database("records").await;
    let dir = tempfile::tempdir().unwrap();
    ca.write(&dir.path().join("records-ca.pem"));
    let config_path = dir.path().join("netboot.toml");
    let url = url_with(&server, "records", "127.0.0.1", "sslmode=verify-full");
    std::fs::write(
        &config_path,
        format!("[records]\nenabled = true\ndatabase = \"{url}\"\nca_file = \"records-ca.pem\"\n"),
    )
    .unwrap();
    let config = netboot_config::Config::load(Some(&config_path)).unwrap();
    let store = Store::open_config(&config).await.unwrap();
    assert_eq!(store.backend_name(), "postgres");
    store.close().await;
}
