//! `[tftp]`: the TFTP service (`pxe-tftp`).

use std::net::SocketAddr;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::listen::SocketAddress;
use crate::Problems;

/// Settings of the TFTP service.
///
/// ```
/// let config = netboot_config::Config::from_toml_str("[tftp]\nroot = \"/srv/tftp\"\nmax_window = 16\n").unwrap();
/// assert_eq!(config.tftp.max_window, 16);
/// assert!(netboot_config::Config::from_toml_str("[tftp]\nmax_blksize = 70000\n").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TftpConfig {
    /// Directory served; a relative path is relative to the configuration file. Unset:
    /// `/srv/tftp` if it exists, else the iPXE boot programs' directory (the site's build in
    /// `<state_dir>/ipxe`, else Debian's `/usr/lib/ipxe`).
    pub root: Option<PathBuf>,
    /// Addresses the request port listens on: by default `0.0.0.0:69` and `[::]:69`. A
    /// `[::]` address listed beside `0.0.0.0` with the same port takes IPv6 only; alone it
    /// takes both (IPv4 clients then appear as `::ffff:a.b.c.d`).
    #[schemars(with = "Vec<SocketAddress>")]
    pub listen: Vec<SocketAddr>,
    /// Answer every transfer from the listening port instead of one new port per transfer
    /// (for NAT, firewalls that only open 69, and containers). A transfer is then known only by
    /// the client's address, which can be forged: nothing beyond the first packet is sent until
    /// the client acknowledges it, and an acknowledgement arriving before what it acknowledges
    /// left is ignored. That stops blind bursts of spoofed acknowledgements, not a spoofer
    /// that waits before acknowledging, so until a client has acknowledged data its window is
    /// held to 8 KiB (a client asking for a wider one waits one timeout per transfer). Prefer
    /// the default mode where the network allows it.
    pub single_port: bool,
    /// Largest `blksize` granted (8..=65464). Lower it to 1468 when clients sit behind links
    /// that drop IP fragments.
    pub max_blksize: u16,
    /// Grant each client at most the `blksize` whose DATA packets cross the path to it
    /// unfragmented: the path MTU (IPv4: the kernel's route and path-MTU cache; IPv6: the MTU
    /// of the interface the request came in on) minus IP, UDP and TFTP headers, so 1468 on
    /// Ethernet. Off by default: large blocks are fast on a clean LAN, but one lost fragment
    /// loses its whole block.
    pub fit_blksize_to_mtu: bool,
    /// Largest RFC 7440 `windowsize` granted.
    pub max_window: u16,
    /// Largest window in payload bytes: with large blocks fewer of them make a window, so a
    /// window fits a client's socket receive buffer (Linux's default is about 208 KiB). At the
    /// default, 1468-byte blocks still get 64 per window, 8192-byte blocks 12, 65464-byte
    /// blocks one (lock-step, which is fastest for them).
    pub max_window_bytes: u32,
    /// First retransmission timeout in milliseconds, unless the client asks for one (`timeout`
    /// option, which is then kept for every retransmission). It doubles after each silent
    /// timeout, up to eight times this value.
    pub timeout_ms: u64,
    /// Largest RFC 2349 `timeout` option, in seconds (1..=255), a client may choose. A larger
    /// one is declined (left out of the OACK, as RFC 2349 allows; the client keeps its own
    /// default) and `timeout_ms` applies: otherwise one request asking for 255 s would hold a
    /// transfer slot for half an hour of retransmissions.
    pub max_client_timeout_s: u64,
    /// Retransmissions of one packet before a transfer is abandoned (with the defaults a
    /// silent client is given up after 31 s). Before the client has acknowledged any data, at
    /// most 2 are made (given up after 7 s), so requests nobody answers, such as spoofed ones,
    /// free their transfer slot quickly.
    pub retries: u32,
    /// Transfers served at once; requests beyond it are refused with a "server busy" ERROR,
    /// which PXE firmware answers by retrying.
    pub max_transfers: usize,
    /// Transfers one client address may run at once (at least 1). Requests beyond it are
    /// dropped unanswered (the address may be forged; an answer would be reflected at it), so
    /// a flood of requests from one address cannot take the slots of `max_transfers` from
    /// everyone else. Firmware runs one or two transfers at a time; a few clients behind one
    /// NAT address share this limit.
    pub max_transfers_per_client: usize,
    /// Look names up case-insensitively when the exact name does not exist (Windows clients
    /// ask for `\Boot\BCD` when the file is `boot/bcd`).
    pub case_insensitive: bool,
    /// Files up to this many bytes are kept in memory and shared by all transfers.
    pub cache_max_file_bytes: u64,
    /// Total bytes the in-memory cache may hold.
    pub cache_total_bytes: u64,
    /// Accept write requests (uploads). Off by default; needs `upload_dir`.
    pub allow_upload: bool,
    /// The existing directory uploads are written into; a relative path is relative to the
    /// configuration file. Uploads may go into its existing subdirectories, never above it.
    pub upload_dir: Option<PathBuf>,
    /// Largest upload accepted, in bytes: a larger announced `tsize`, or more data, ends the
    /// transfer with "Disk full or allocation exceeded" and leaves no file.
    pub max_upload_bytes: u64,
    /// Replace an existing file with an upload of the same name. Off: such uploads are refused
    /// with "File already exists".
    pub upload_overwrite: bool,
}

impl Default for TftpConfig {
    fn default() -> Self {
        Self {
            root: None,
            listen: vec![
                SocketAddr::from(([0, 0, 0, 0], 69)),
                SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 69)),
            ],
            single_port: false,
            max_blksize: 65464,
            fit_blksize_to_mtu: false,
            max_window: 64,
            max_window_bytes: 96 * 1024,
            timeout_ms: 1000,
            max_client_timeout_s: 5,
            retries: 5,
            max_transfers: 1024,
            max_transfers_per_client: 8,
            case_insensitive: false,
            cache_max_file_bytes: 16 << 20,
            cache_total_bytes: 48 << 20,
            allow_upload: false,
            upload_dir: None,
            max_upload_bytes: 1 << 30,
            upload_overwrite: false,
        }
    }
}

impl TftpConfig {
    /// Served root when `root` is not set and `/srv/tftp` exists.
    pub const DEFAULT_ROOT: &'static str = "/srv/tftp";

    pub(crate) fn validate(&self, problems: &mut Problems) {
        if !(8..=65464).contains(&self.max_blksize) {
            problems.push(
                "tftp.max_blksize",
                format!("{} is outside 8..=65464", self.max_blksize),
            );
        }
        if self.max_window == 0 {
            problems.push("tftp.max_window", "must be at least 1");
        }
        if self.max_window_bytes < 512 {
            problems.push(
                "tftp.max_window_bytes",
                format!("{} is below one 512-byte block", self.max_window_bytes),
            );
        }
        if !(10..=255_000).contains(&self.timeout_ms) {
            problems.push(
                "tftp.timeout_ms",
                format!("{} is outside 10..=255000", self.timeout_ms),
            );
        }
        if !(1..=100).contains(&self.retries) {
            problems.push("tftp.retries", format!("{} is outside 1..=100", self.retries));
        }
        if !(1..=255).contains(&self.max_client_timeout_s) {
            problems.push(
                "tftp.max_client_timeout_s",
                format!("{} is outside 1..=255", self.max_client_timeout_s),
            );
        }
        if self.max_transfers == 0 {
            problems.push("tftp.max_transfers", "must be at least 1");
        }
        if self.max_transfers_per_client == 0 {
            problems.push("tftp.max_transfers_per_client", "must be at least 1");
        }
        if self.listen.is_empty() {
            problems.push("tftp.listen", "needs at least one address");
        }
        if self.cache_max_file_bytes > self.cache_total_bytes {
            problems.push(
                "tftp.cache_max_file_bytes",
                "is larger than tftp.cache_total_bytes",
            );
        }
        self.validate_uploads(problems);
    }

    /// The upload keys only make sense together: `allow_upload` needs `upload_dir`, and a
    /// stray `upload_dir` would suggest uploads work when they are off.
    fn validate_uploads(&self, problems: &mut Problems) {
        match (&self.upload_dir, self.allow_upload) {
            (None, true) => problems.push("tftp.upload_dir", "must be set when tftp.allow_upload is true"),
            (Some(dir), true) if dir.as_os_str().is_empty() => problems.push("tftp.upload_dir", "is empty"),
            (Some(_), false) => problems.push("tftp.upload_dir", "is set but tftp.allow_upload is false"),
            _ => {}
        }
        if self.max_upload_bytes == 0 {
            problems.push("tftp.max_upload_bytes", "must be at least 1");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn bad_values_are_named_by_key() {
        let err =
            Config::from_toml_str("[tftp]\nmax_blksize = 4\nmax_window = 0\nretries = 0\nlisten = []\nmax_transfers_per_client = 0\nmax_client_timeout_s = 256\n")
                .unwrap_err()
                .to_string();
        for key in [
            "tftp.max_blksize",
            "tftp.max_window",
            "tftp.retries",
            "tftp.listen",
            "tftp.max_transfers_per_client",
            "tftp.max_client_timeout_s",
        ] {
            assert!(err.contains(key), "{key} missing from {err}");
        }
    }

    #[test]
    fn client_limits_default_low_and_accept_their_range() {
        let defaults = super::TftpConfig::default();
        assert_eq!(defaults.max_transfers_per_client, 8);
        assert_eq!(defaults.max_client_timeout_s, 5);
        let config =
            Config::from_toml_str("[tftp]\nmax_transfers_per_client = 1\nmax_client_timeout_s = 255\n")
                .unwrap();
        assert_eq!(config.tftp.max_transfers_per_client, 1);
        assert_eq!(config.tftp.max_client_timeout_s, 255);
        let err = Config::from_toml_str("[tftp]\nmax_client_timeout_s = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tftp.max_client_timeout_s"), "{err}");
    }

    #[test]
    fn defaults_listen_on_69_without_uploads() {
        let config = Config::load(None).unwrap();
        assert_eq!(config.tftp.listen[0].port(), 69);
        assert!(!config.tftp.allow_upload);
        assert!(!config.tftp_root().as_os_str().is_empty());
    }

    #[test]
    fn uploads_need_a_directory_and_resolve_against_the_file() {
        let err = Config::from_toml_str("[tftp]\nallow_upload = true\nmax_upload_bytes = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tftp.upload_dir"), "{err}");
        assert!(err.contains("tftp.max_upload_bytes"), "{err}");
        let err = Config::from_toml_str("[tftp]\nupload_dir = \"/srv/up\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tftp.upload_dir"), "{err}");

        let dir = std::env::temp_dir().join(format!("netboot-config-upload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("netboot.toml");
        std::fs::write(
            &file,
            "[tftp]\nallow_upload = true\nupload_dir = \"uploads\"\nupload_overwrite = true\n",
        )
        .unwrap();
        let config = Config::load(Some(&file));
        std::fs::remove_dir_all(&dir).unwrap();
        let config = config.unwrap();
        assert!(config.tftp.upload_overwrite);
        assert_eq!(config.tftp.max_upload_bytes, 1 << 30);
        let upload_dir = config.tftp.upload_dir.as_deref().unwrap();
        assert_eq!(config.resolve_path(upload_dir), dir.join("uploads"));
    }

    #[test]
    fn readme_tftp_example_parses_and_matches_the_defaults() {
        let example = crate::readme::example_starting_with("[tftp]\n");
        let config = Config::from_toml_str(&example.file).unwrap();
        assert_eq!(config.tftp, super::TftpConfig::default());
    }
}
