//! `pxe-https --check-config`: each kind of mistake exits 2 naming its key, before anything
//! is bound.

use netboot_testkit::ops::{assert_config_error, assert_config_ok};

const BINARY: &str = env!("CARGO_BIN_EXE_pxe-https");

#[test]
fn check_config_exits_2_naming_the_key_of_each_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("scripts")).unwrap();
    std::fs::write(root.join("scripts/good.ipxe"), "#!ipxe\necho hello\n").unwrap();
    std::fs::write(root.join("scripts/bad.ipxe"), "echo not a script\n").unwrap();
    std::fs::write(dir.path().join("empty.token"), "").unwrap();
    std::fs::write(dir.path().join("short.password"), "hunter2\n").unwrap();
    std::fs::write(dir.path().join("bad-users"), "alice:not-a-hash\n").unwrap();
    let base = "[https]\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"off\"\nroot = \"root\"\nipxe_dir = \"\"\n";
    let chain = |url: &str| {
        format!(
            "{base}[resolver.static]\nunmatched = \"exit\"\n[[resolver.static.actions]]\nid = \"a\"\n\
             title = \"A\"\ntarget = {{ kind = \"chain\", url = \"{url}\" }}\n"
        )
    };
    let ldap = "[auth]\nenabled = true\nbackend = \"ldap\"\n[auth.ldap]\nupn_suffix = \"example.org\"\n";
    let unset = format!("NETBOOT_TEST_UNSET_{}", std::process::id());
    // A generated certificate (no cert/key) and a script that is there: valid.
    assert_config_ok(BINARY, dir.path(), &chain("scripts/good.ipxe"), &[]);
    let cases = [
        // An unknown key.
        (format!("{base}listne = \"127.0.0.1:0\"\n"), "listne"),
        // A log filter that does not parse.
        (
            format!("{base}[log]\nlevel = \"debug,hyper=chatty\"\n"),
            "log.level",
        ),
        // A certificate file that is not there.
        (
            format!("{base}cert = \"missing.crt\"\nkey = \"missing.key\"\n"),
            "https.cert",
        ),
        // An environment variable the configuration names but the environment lacks.
        (
            format!(
                "{base}[resolver]\nkind = \"configmgr\"\n[resolver.configmgr]\n\
                 connection_string_env = \"{unset}\"\n"
            ),
            "resolver.configmgr.connection_string_env",
        ),
        // A token file with nothing in it.
        (
            format!("{base}[admin]\nenabled = true\ntoken_file = \"empty.token\"\n"),
            "admin.token_file",
        ),
        // A token file that is not there.
        (
            format!("{base}[admin]\nenabled = true\ntoken_file = \"missing.token\"\n"),
            "admin.token_file",
        ),
        // An admin password too short to withstand guessing, inline or in its file.
        (
            format!("{base}[admin]\nenabled = true\nusername = \"ops\"\npassword = \"hunter2\"\n"),
            "admin.password",
        ),
        (
            format!(
                "{base}[admin]\nenabled = true\nusername = \"ops\"\npassword_file = \"short.password\"\n"
            ),
            "admin.password_file",
        ),
        // The plain-HTTP admin listener on a network address without consent.
        (
            format!("{base}[admin]\nenabled = true\ntoken = \"0123456789abcdef\"\nlisten = \"0.0.0.0:0\"\n"),
            "admin.allow_plain_http",
        ),
        // Timeouts and connection limits out of range.
        (
            format!("{base}idle_timeout_secs = 0\n"),
            "https.idle_timeout_secs",
        ),
        (
            format!("{base}max_connections = 8\nmax_connections_per_client = 9\n"),
            "https.max_connections_per_client",
        ),
        // A script a static action chains to that is not there, or is not an iPXE script.
        (
            chain("scripts/missing.ipxe"),
            "resolver.static.actions[0].target.url",
        ),
        (chain("scripts/bad.ipxe"), "resolver.static.actions[0].target.url"),
        // Boot-console logins: a value out of range, and a users file with a line that is not
        // an account.
        (format!("{base}[auth]\ntoken_minutes = 0\n"), "auth.token_minutes"),
        (
            format!("{base}[auth]\nenabled = true\nusers_file = \"bad-users\"\n"),
            "auth.users_file",
        ),
        // A directory: plain LDAP, a CA file that is not PEM, a password file that is not
        // there.
        (
            format!("{base}{ldap}url = \"ldap://127.0.0.1\"\n"),
            "auth.ldap.url",
        ),
        (
            format!("{base}{ldap}url = \"ldaps://127.0.0.1\"\nca_file = \"bad-users\"\n"),
            "auth.ldap.ca_file",
        ),
        (
            format!(
                "{base}{ldap}url = \"ldaps://127.0.0.1\"\nbind_dn = \"cn=svc,dc=x\"\n\
                 bind_password_file = \"missing.password\"\n"
            ),
            "auth.ldap.bind_password_file",
        ),
    ];
    for (toml, key) in cases {
        assert_config_error(BINARY, dir.path(), &toml, &[], key);
    }
}
