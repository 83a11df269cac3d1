//! `[https]`: the iPXE script and boot-file service (`pxe-https`).

use std::net::{Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::listen::{de_listen, ser_listen, ListenOrOff, SocketAddress};

use crate::Problems;

/// Settings of the HTTPS boot-script and boot-file service.
///
/// The defaults let real firmware boot with no configuration file: HTTPS on port 443 with a
/// certificate issued on first start by the site CA (also made then, in the state
/// directory), plain HTTP on port 80 for UEFI HTTP Boot and iPXE builds without TLS, boot files
/// from `/srv/netboot` and iPXE's own binaries from the site's build in `<state_dir>/ipxe`, or
/// from `/usr/lib/ipxe` (Debian's `ipxe` package) when there is none.
///
/// ```toml
/// [https]
/// listen = "0.0.0.0:443"
/// http_listen = "off"
/// root = "/srv/netboot"
/// cert = "/etc/netboot/tls.crt"
/// key = "/etc/netboot/tls.key"
/// countdown_secs = 5
/// on_resolver_error = "retry"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HttpsConfig {
    /// HTTPS address and port. `[::]` (the default) listens for IPv4 and IPv6 connections.
    #[schemars(with = "SocketAddress")]
    pub listen: SocketAddr,
    /// Plain HTTP address and port, or `"off"`. Needed by UEFI HTTP Boot (which is handed an
    /// `http://` URL for the iPXE binary) and by iPXE builds without HTTPS support.
    #[serde(serialize_with = "ser_listen", deserialize_with = "de_listen")]
    #[schemars(with = "ListenOrOff")]
    pub http_listen: Option<SocketAddr>,
    /// The boot-file root (wimboot, BCD, boot.sdi, boot.wim, kernels), relative to the
    /// configuration file's directory when not absolute. Files are served at `/<path>`;
    /// relative paths in boot decisions resolve against it.
    pub root: PathBuf,
    /// A second, read-only root searched when a file is not under `root`, for the iPXE boot
    /// programs, so `/ipxe.efi` and `/undionly.kpxe` work without copying. Unset: the site's
    /// own build in `<state_dir>/ipxe` when it is there (its `ipxe-build.toml` marks it), else
    /// Debian's `/usr/lib/ipxe`. Relative paths are taken from the configuration file's
    /// directory. An empty string disables it.
    pub ipxe_dir: Option<PathBuf>,
    /// PEM certificate chain, for a certificate from an existing (enterprise) CA. With `key`;
    /// when both are absent the site CA issues one.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert` (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Where `pxe-https` keeps what it makes and keeps: the site CA (`site-ca.crt`,
    /// `site-ca.key`), the certificates it issued this server (`pxe-https.crt`,
    /// `pxe-https.key`), the site's iPXE build (`ipxe/`), the boot token key
    /// (`boot-token.key`), the PeerDist server passphrase (`peerdist.secret`) and computed
    /// Content Information (`peerdist/`), and the Required runs while `[records]` is off
    /// (`required-runs.sqlite`, mode 0600). Relative paths are taken from the configuration
    /// file's directory.
    pub state_dir: PathBuf,
    /// Extra DNS names or IP addresses for the issued certificate (the host name,
    /// `localhost`, every address of the host's interfaces and a specific `listen` address
    /// are always in it).
    pub cert_names: Vec<String>,
    /// Absolute base URL (`https://pxe.example:443/`) used in scripts instead of paths
    /// relative to the script's own URL. Rarely needed.
    pub public_url: Option<String>,
    /// wimboot's path under the roots, or an absolute URL.
    pub wimboot: String,
    /// Seconds a single Required action waits for a key press before booting (0 = at once).
    pub countdown_secs: u32,
    /// Menu timeout when the resolver gives none (0 = wait for a choice).
    pub menu_timeout_secs: u32,
    /// What a client does when the resolver fails or is too slow.
    pub on_resolver_error: ResolverFallback,
    /// Seconds before a retry when `on_resolver_error = "retry"`.
    pub retry_delay_secs: u32,
    /// Address of the OpenSSL compatibility TLS listener, or `"off"` (the default). It serves
    /// the same routes for firmware whose TLS offers only RSA or DHE-RSA key exchange, such as
    /// OVMF/EDK2 HTTPS Boot of 2022, which the main (rustls) listener cannot talk to. Needs
    /// `pxe-https` built with the `openssl-compat` feature.
    #[serde(serialize_with = "ser_listen", deserialize_with = "de_listen")]
    #[schemars(with = "ListenOrOff")]
    pub compat_tls_listen: Option<SocketAddr>,
    /// PEM certificate chain of the compatibility listener. It must hold an RSA key. With
    /// `compat_tls_key`; when both are absent the main listener's certificate is used.
    pub compat_tls_cert: Option<PathBuf>,
    /// PEM private key (RSA) of the compatibility listener.
    pub compat_tls_key: Option<PathBuf>,
    /// Directory of files that carry secrets (a ConfigMgr media variables file): boot actions
    /// name them with `secret = true`, and they are only ever served to the machine a
    /// decision was made for, over HTTPS, at a per-boot URL. Never inside `root` or
    /// `ipxe_dir`. Relative paths are taken from the configuration file's directory.
    pub private_dir: PathBuf,
    /// Seconds a per-boot URL (secret files, task sequence variables) stays valid after the
    /// decision that issued it.
    pub boot_token_secs: u32,
    /// Seconds a TLS handshake may take before the connection is closed.
    pub handshake_timeout_secs: u32,
    /// Seconds a new connection (after its TLS handshake) may stay silent, and an HTTP/1
    /// request's headers may take to arrive, before the connection is closed.
    pub header_timeout_secs: u32,
    /// Seconds a connection may go without receiving or sending anything while no request
    /// is being answered (an idle keep-alive connection) before it is closed.
    pub idle_timeout_secs: u32,
    /// Seconds a client may take none of the data sent to it (a stalled download) before the
    /// connection is closed.
    pub write_timeout_secs: u32,
    /// Open connections at most, over the HTTPS, HTTP and compatibility TLS listeners; beyond
    /// it a new connection is closed at once. The admin listener has its own count with the
    /// same limits. Lowered, with a warning, when the open-files limit cannot hold a socket
    /// and a served file for each.
    pub max_connections: u32,
    /// Open connections at most from one client address; beyond it a new connection from
    /// that address is closed at once.
    pub max_connections_per_client: u32,
}

/// What a client does when no boot decision could be made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ResolverFallback {
    /// Explain on the console and exit to the next boot device.
    #[default]
    Exit,
    /// Explain, wait `retry_delay_secs` and ask again.
    Retry,
}

impl Default for HttpsConfig {
    fn default() -> Self {
        Self {
            // `[::]` takes IPv4 and IPv6 connections alike (the socket is made dual-stack).
            listen: SocketAddr::from((Ipv6Addr::UNSPECIFIED, 443)),
            http_listen: Some(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 80))),
            root: PathBuf::from("/srv/netboot"),
            ipxe_dir: None,
            cert: None,
            key: None,
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            cert_names: Vec::new(),
            public_url: None,
            wimboot: "wimboot".into(),
            countdown_secs: 5,
            menu_timeout_secs: 30,
            on_resolver_error: ResolverFallback::Exit,
            retry_delay_secs: 10,
            compat_tls_listen: None,
            compat_tls_cert: None,
            compat_tls_key: None,
            private_dir: PathBuf::from("/etc/netboot/private"),
            boot_token_secs: 3600,
            handshake_timeout_secs: 10,
            header_timeout_secs: 30,
            idle_timeout_secs: 120,
            write_timeout_secs: 60,
            max_connections: 4096,
            max_connections_per_client: 64,
        }
    }
}

/// The default state directory.
pub(crate) const DEFAULT_STATE_DIR: &str = "/var/lib/netboot";

impl HttpsConfig {
    pub(crate) fn validate(&self, problems: &mut Problems) {
        if self.cert.is_some() != self.key.is_some() {
            problems.push("https.cert", "cert and key must be given together");
        }
        if self.compat_tls_cert.is_some() != self.compat_tls_key.is_some() {
            problems.push(
                "https.compat_tls_cert",
                "compat_tls_cert and compat_tls_key must be given together",
            );
        }
        if let Some(compat) = self.compat_tls_listen {
            let clashes = compat == self.listen || self.http_listen == Some(compat);
            if clashes && compat.port() != 0 {
                problems.push(
                    "https.compat_tls_listen",
                    "must differ from https.listen and https.http_listen",
                );
            }
        }
        if self.http_listen == Some(self.listen) && self.listen.port() != 0 {
            problems.push("https.http_listen", "must differ from https.listen");
        }
        if self.countdown_secs > 3600 {
            problems.push(
                "https.countdown_secs",
                format!("{} is outside 0..=3600", self.countdown_secs),
            );
        }
        if self.menu_timeout_secs > 86_400 {
            problems.push(
                "https.menu_timeout_secs",
                format!("{} is outside 0..=86400", self.menu_timeout_secs),
            );
        }
        if !(1..=3600).contains(&self.retry_delay_secs) {
            problems.push(
                "https.retry_delay_secs",
                format!("{} is outside 1..=3600", self.retry_delay_secs),
            );
        }
        if let Some(url) = &self.public_url {
            let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
            if !scheme_ok
                || url
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "${}".contains(c))
            {
                problems.push(
                    "https.public_url",
                    "must be an http:// or https:// URL without spaces, `$`, `{` or `}`",
                );
            }
        }
        if !(60..=86_400).contains(&self.boot_token_secs) {
            problems.push(
                "https.boot_token_secs",
                format!("{} is outside 60..=86400", self.boot_token_secs),
            );
        }
        for (key, value, max) in [
            ("https.handshake_timeout_secs", self.handshake_timeout_secs, 300),
            ("https.header_timeout_secs", self.header_timeout_secs, 3600),
            ("https.idle_timeout_secs", self.idle_timeout_secs, 86_400),
            ("https.write_timeout_secs", self.write_timeout_secs, 3600),
        ] {
            if !(1..=max).contains(&value) {
                problems.push(key, format!("{value} is outside 1..={max}"));
            }
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            problems.push(
                "https.max_connections",
                format!("{} is outside 1..=1000000", self.max_connections),
            );
        }
        if self.max_connections_per_client == 0 || self.max_connections_per_client > self.max_connections {
            problems.push(
                "https.max_connections_per_client",
                format!(
                    "{} is outside 1..=https.max_connections ({})",
                    self.max_connections_per_client, self.max_connections
                ),
            );
        }
        // Unset, ipxe_dir is the site's build below the state directory or Debian's directory.
        let ipxe_dirs = match &self.ipxe_dir {
            Some(dir) if dir.as_os_str().is_empty() => Vec::new(),
            Some(dir) => vec![dir.clone()],
            None => vec![
                self.state_dir.join(crate::SITE_IPXE_SUBDIR),
                PathBuf::from(crate::DEBIAN_IPXE_DIR),
            ],
        };
        if self.private_dir.as_os_str().is_empty() {
            problems.push("https.private_dir", "must not be empty");
        } else if self.private_dir.starts_with(&self.root)
            || ipxe_dirs.iter().any(|dir| self.private_dir.starts_with(dir))
        {
            problems.push(
                "https.private_dir",
                "must not be inside https.root or https.ipxe_dir, which anyone can download from",
            );
        }
        if self.wimboot.is_empty() || self.wimboot.chars().any(|c| c.is_control()) {
            problems.push("https.wimboot", "must be a path or URL");
        }
        for (index, name) in self.cert_names.iter().enumerate() {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:*".contains(c))
            {
                problems.push(
                    format!("https.cert_names[{index}]"),
                    format!("{name:?} is not a DNS name or IP address"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn defaults_serve_real_firmware_without_a_file() {
        let https = Config::load(None).unwrap().https;
        assert_eq!(https.listen.to_string(), "[::]:443");
        assert_eq!(https.http_listen.unwrap().to_string(), "[::]:80");
    }

    #[test]
    fn http_listener_can_be_disabled() {
        let config =
            Config::from_toml_str("[https]\nhttp_listen = \"off\"\nlisten = \"127.0.0.1:8443\"\n").unwrap();
        assert_eq!(config.https.http_listen, None);
        let text = toml::to_string(&config.https).unwrap();
        assert!(text.contains("http_listen = \"off\""), "{text}");
    }

    #[test]
    fn compat_listener_is_off_by_default_and_checked() {
        assert_eq!(Config::default().https.compat_tls_listen, None);
        let config = Config::from_toml_str(
            "[https]\ncompat_tls_listen = \"0.0.0.0:8443\"\ncompat_tls_cert = \"rsa.crt\"\ncompat_tls_key = \"rsa.key\"\n",
        )
        .unwrap();
        assert_eq!(
            config.https.compat_tls_listen.unwrap().to_string(),
            "0.0.0.0:8443"
        );
        let err = Config::from_toml_str(
            "[https]\nlisten = \"0.0.0.0:8443\"\ncompat_tls_listen = \"0.0.0.0:8443\"\ncompat_tls_cert = \"a\"\n",
        )
        .unwrap_err()
        .to_string();
        for key in ["https.compat_tls_listen", "https.compat_tls_cert"] {
            assert!(err.contains(key), "{key} missing from {err}");
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = Config::from_toml_str(
            "[https]\ncert = \"a.pem\"\nretry_delay_secs = 0\npublic_url = \"ftp://x\"\n",
        )
        .unwrap_err()
        .to_string();
        for key in ["https.cert", "https.retry_delay_secs", "https.public_url"] {
            assert!(err.contains(key), "{key} missing from {err}");
        }
        let err = Config::from_toml_str(
            "[https]\nhandshake_timeout_secs = 0\nheader_timeout_secs = 0\nidle_timeout_secs = 0\n\
             write_timeout_secs = 100000\nmax_connections = 0\nmax_connections_per_client = 0\n",
        )
        .unwrap_err()
        .to_string();
        for key in [
            "https.handshake_timeout_secs",
            "https.header_timeout_secs",
            "https.idle_timeout_secs",
            "https.write_timeout_secs",
            "https.max_connections",
            "https.max_connections_per_client",
        ] {
            assert!(err.contains(key), "{key} missing from {err}");
        }
        let err = Config::from_toml_str("[https]\nmax_connections = 10\nmax_connections_per_client = 11\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("https.max_connections_per_client"), "{err}");
        let err = Config::from_toml_str("[https]\nhttp_listen = \"nope\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("http_listen"), "{err}");
    }
}
