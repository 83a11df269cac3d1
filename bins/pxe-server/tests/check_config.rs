//! `pxe-server --check-config`: each kind of mistake in any of the three services' sections
//! exits 2 naming its key, before anything is bound.

use netboot_testkit::ops::{assert_config_error, assert_config_ok};

const BINARY: &str = env!("CARGO_BIN_EXE_pxe-server");

#[test]
fn check_config_exits_2_naming_the_key_of_each_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let ipxe = dir.path().join("ipxe");
    std::fs::create_dir_all(&ipxe).unwrap();
    for program in ["undionly.kpxe", "snponly.efi"] {
        std::fs::write(ipxe.join(program), b"boot program").unwrap();
    }
    let base =
        "[tftp]\nroot = \"ipxe\"\n[https]\nipxe_dir = \"ipxe\"\nroot = \"ipxe\"\nstate_dir = \"state\"\n";
    let unset = format!("NETBOOT_TEST_UNSET_{}", std::process::id());
    assert_config_ok(BINARY, dir.path(), base, &[]);
    let cases = [
        (format!("{base}[proxy]\nboot_file = \"x\"\n"), "boot_file"),
        (
            format!("{base}[log]\nlevel = \"info,,pxe_server=nope\"\n"),
            "log.level",
        ),
        (
            format!("{base}cert = \"missing.crt\"\nkey = \"missing.key\"\n"),
            "https.cert",
        ),
        (
            format!(
                "{base}[resolver]\nkind = \"webhook\"\n[resolver.webhook]\nurl = \"http://cmdb/pxe\"\n\
                 bearer_token_env = \"{unset}\"\n"
            ),
            "resolver.webhook.bearer_token_env",
        ),
        // The boot programs the proxy hands out must be in the TFTP root.
        (
            format!("{base}[proxy.boot_files]\nbios = \"ipxe.pxe\"\n"),
            "tftp.root",
        ),
    ];
    for (toml, key) in cases {
        assert_config_error(BINARY, dir.path(), &toml, &[], key);
    }
}

/// The quick start exports the site CA before the site's iPXE exists: operator commands run
/// on a valid configuration even when serving would still lack its boot programs.
#[test]
fn site_ca_export_runs_before_the_boot_programs_exist() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("netboot.toml");
    std::fs::write(
        &config,
        "[tftp]\nroot = \"no-ipxe-yet\"\n[https]\nroot = \".\"\nipxe_dir = \"\"\nstate_dir = \"state\"\n",
    )
    .unwrap();
    let out = dir.path().join("site-ca.pem");
    let run = |args: &[&str]| {
        std::process::Command::new(BINARY)
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let export = run(&["site-ca", "export", "--out", out.to_str().unwrap()]);
    assert!(export.status.success(), "{export:?}");
    let pem = std::fs::read_to_string(&out).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    // Serving still refuses, naming what is missing.
    let check = run(&["--check-config"]);
    assert_eq!(check.status.code(), Some(2), "{check:?}");
    assert!(
        String::from_utf8_lossy(&check.stderr).contains("tftp.root"),
        "{check:?}"
    );
}
