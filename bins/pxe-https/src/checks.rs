//! What `pxe-https` checks before binding (at start, for `--check-config` and on a reload):
//! the certificates and keys it will load, the admin credential files, the compatibility
//! listener's availability in this build, the iPXE scripts static rules chain to, and the
//! boot-console users file or directory settings.

use std::io::Read as _;
use std::path::PathBuf;

use netboot_config::{AuthBackend, Config, Problems, ResolverKind};
use netboot_core::BootTarget;
use netboot_service::check_file_exists;

pub(crate) fn check(config: &Config, problems: &mut Problems) {
    certificate(config, problems);
    compat_listener(config, problems);
    admin_credentials(config, problems);
    chained_scripts(config, problems);
    auth_users(config, problems);
    auth_ldap(config, problems);
}

/// With `[auth]` on, the users file, when it exists, holds only accounts, comments and blank
/// lines: a bad line would otherwise refuse every login. A missing file has no accounts yet
/// (`auth-user add` creates it).
fn auth_users(config: &Config, problems: &mut Problems) {
    if !config.auth.enabled || config.auth.backend != AuthBackend::Local {
        return;
    }
    let path = config.resolve_path(&config.auth.users_file);
    if let Err(e) = crate::auth_users::load(&path) {
        problems.push("auth.users_file", format!("{e:#}"));
    }
}

/// With `[auth] backend = "ldap"`: the CA file holds certificates rustls takes, and the
/// service account's password file is readable and not empty (without reading the password
/// into any message). The URL and the way users are found were checked with the rest of the
/// configuration.
fn auth_ldap(config: &Config, problems: &mut Problems) {
    if !config.auth.enabled || config.auth.backend != AuthBackend::Ldap {
        return;
    }
    let ldap = &config.auth.ldap;
    if let Some(ca_file) = &ldap.ca_file {
        let path = config.resolve_path(ca_file);
        let mut roots = rustls::RootCertStore::empty();
        match crate::auth_ldap::load_ca_file(&path, &mut roots) {
            Ok(0) => problems.push(
                "auth.ldap.ca_file",
                format!("{}: no PEM certificate in it", path.display()),
            ),
            Ok(_) => {}
            Err(e) => problems.push("auth.ldap.ca_file", e.to_string()),
        }
    }
    if let Some(file) = &ldap.bind_password_file {
        let path = config.resolve_path(file);
        match std::fs::read_to_string(&path) {
            Ok(text) if text.lines().next().unwrap_or_default().is_empty() => problems.push(
                "auth.ldap.bind_password_file",
                format!("{}: the first line is empty", path.display()),
            ),
            Ok(_) => {}
            Err(e) => problems.push("auth.ldap.bind_password_file", format!("{}: {e}", path.display())),
        }
    }
}

/// A configured certificate and key exist, parse and belong together.
fn certificate(config: &Config, problems: &mut Problems) {
    let https = &config.https;
    let (Some(cert), Some(key)) = (&https.cert, &https.key) else {
        return;
    };
    let (cert, key) = (config.resolve_path(cert), config.resolve_path(key));
    let cert_found = check_file_exists("https.cert", &cert, problems);
    if check_file_exists("https.key", &key, problems) && cert_found {
        if let Err(e) = crate::tls::certified_key(&cert, &key) {
            problems.push("https.cert", format!("{e:#}"));
        }
    }
}

/// The compatibility listener is compiled in when configured, and its own certificate loads.
fn compat_listener(config: &Config, problems: &mut Problems) {
    if config.https.compat_tls_listen.is_none() {
        return;
    }
    match crate::compat_tls::check_available(config) {
        Ok(()) => compat_certificate(config, problems),
        Err(e) => problems.push("https.compat_tls_listen", e.to_string()),
    }
}

#[cfg(feature = "openssl-compat")]
fn compat_certificate(config: &Config, problems: &mut Problems) {
    if let (Some(_), Some(_)) = (&config.https.compat_tls_cert, &config.https.compat_tls_key) {
        // Both configured: their paths, nothing issued.
        let (cert, key) = match crate::compat_tls::certificate_paths(config) {
            Ok(paths) => paths,
            Err(e) => return problems.push("https.compat_tls_cert", format!("{e:#}")),
        };
        let cert_found = check_file_exists("https.compat_tls_cert", &cert, problems);
        if check_file_exists("https.compat_tls_key", &key, problems) && cert_found {
            if let Err(e) = crate::compat_tls::acceptor(&cert, &key) {
                problems.push("https.compat_tls_cert", format!("{e:#}"));
            }
        }
    }
}

#[cfg(not(feature = "openssl-compat"))]
fn compat_certificate(_config: &Config, _problems: &mut Problems) {}

/// The admin interface's token and password files are readable and not empty, and the
/// password is long enough.
fn admin_credentials(config: &Config, problems: &mut Problems) {
    if !config.admin.enabled {
        return;
    }
    match netboot_admin::Credentials::from_config(config) {
        Ok(_) => {}
        Err(netboot_admin::CredentialsError::Read { key, path, source }) => {
            problems.push(key, format!("{}: {source}", path.display()));
        }
        Err(netboot_admin::CredentialsError::Empty(key)) => problems.push(key, "the file is empty"),
        Err(netboot_admin::CredentialsError::TooShort(key)) => problems.push(
            key,
            format!(
                "the password in the file must be at least {} characters",
                netboot_config::MIN_PASSWORD_CHARS
            ),
        ),
        Err(other) => problems.push("admin.enabled", other.to_string()),
    }
}

/// Static actions that chain to a file under the roots: the file exists, and an `.ipxe`
/// script starts with `#!ipxe` (iPXE refuses it otherwise).
fn chained_scripts(config: &Config, problems: &mut Problems) {
    if config.resolver.kind != ResolverKind::Static {
        return;
    }
    let https = &config.https;
    let mut roots = vec![config.resolve_path(&https.root)];
    if let Some(ipxe_dir) = config.ipxe_dir().path() {
        roots.push(ipxe_dir.to_path_buf());
    }
    for (index, action) in config.resolver.static_rules.actions.iter().enumerate() {
        let BootTarget::Chain { url } = &action.target else {
            continue;
        };
        if url.contains("://") || url.starts_with('$') {
            continue;
        }
        let key = format!("resolver.static.actions[{index}].target.url");
        let relative = url.trim_start_matches('/');
        let Some(found) = roots
            .iter()
            .map(|root| root.join(relative))
            .find(|path| path.is_file())
        else {
            let searched: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
            problems.push(key, format!("{url} is not under {}", searched.join(" or ")));
            continue;
        };
        if relative.ends_with(".ipxe") && !starts_with_ipxe_magic(&found) {
            problems.push(key, format!("{} does not start with #!ipxe", found.display()));
        }
    }
}

fn starts_with_ipxe_magic(path: &PathBuf) -> bool {
    let mut head = [0u8; 6];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut head))
        .is_ok_and(|()| &head == b"#!ipxe")
}
