//! The `[https]` example in the README is a valid configuration.

#[test]
fn readme_https_example_parses() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("```toml\n[https]\n")
        .expect("README has an [https] example")
        + 8;
    let end = start + readme[start..].find("```").unwrap();
    let config = netboot_config::Config::from_toml_str(&readme[start..end]).unwrap();
    assert_eq!(config.https.countdown_secs, 5);
}

#[test]
fn readme_peerdist_example_parses() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("```toml\n[peerdist]\n")
        .expect("README has a [peerdist] example")
        + 8;
    let end = start + readme[start..].find("```").unwrap();
    let config = netboot_config::Config::from_toml_str(&readme[start..end]).unwrap();
    assert_eq!(config.peerdist, netboot_config::PeerDistConfig::default());
}

#[test]
fn readme_auth_example_is_the_defaults() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("```toml\n[auth]\n")
        .expect("README has an [auth] example")
        + 8;
    let end = start + readme[start..].find("```").unwrap();
    let config = netboot_config::Config::from_toml_str(&readme[start..end]).unwrap();
    assert_eq!(config.auth, netboot_config::AuthConfig::default());
}

#[test]
fn readme_approval_example_parses() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("```toml\n[auth]\nenabled = true\nmethod = \"approval\"")
        .expect("README has an approval example")
        + 8;
    let end = start + readme[start..].find("```").unwrap();
    let config = netboot_config::Config::from_toml_str(&readme[start..end]).unwrap();
    assert_eq!(config.auth.method, netboot_config::AuthMethod::Approval);
    assert_eq!(config.auth.approval_minutes, 15);
    assert_eq!(config.auth.approval_poll_secs, 5);
}

#[test]
fn readme_ldap_examples_parse() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for marker in ["```toml\n# OpenLDAP", "```toml\n# Active Directory"] {
        let start = readme.find(marker).expect("README has the LDAP examples") + 8;
        let end = start + readme[start..].find("```").unwrap();
        let config = netboot_config::Config::from_toml_str(&readme[start..end]).unwrap();
        assert_eq!(config.auth.backend, netboot_config::AuthBackend::Ldap);
    }
}
