//! The login lab ([`super::scenario::LabKind::Auth`]): every action needs a login at the boot
//! console, checked against a directory: a private OpenLDAP `slapd` on the HTTPS host, over
//! LDAPS with a certificate from the lab CA, and a required group. The clients' keys are
//! typed into their serial consoles as a technician would type them.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use netboot_testkit::slapd;

use super::client::ClientSpec;
use super::lab::Host;
use super::process::Spawned;

/// The directory's suffix.
const BASE: &str = "dc=lab,dc=example";
/// The group whose members may boot machines.
const GROUP: &str = "netboot-technicians";
/// The LDAPS port on the HTTPS host.
const LDAPS_PORT: u16 = 636;
/// A member of the group, and the password.
const USER: &str = "technician";
const PASSWORD: &str = "e2e correct horse battery";
/// That user with a wrong password.
const WRONG_PASSWORD: &str = "e2e wrong horse battery";
/// A user of the directory outside the group, with a right password.
const OUTSIDER: &str = "outsider";
const OUTSIDER_PASSWORD: &str = "e2e outsider's own password";
/// Attempts a console gets before the server sends it to the next boot device.
pub(crate) const MAX_ATTEMPTS: usize = 2;

/// What the console shows when the server gives up on a console after its last attempt.
pub(crate) const GAVE_UP: &str = "too many attempts, trying the next boot device";
/// What every login form is preceded by on the console; keys are typed after it appears (the
/// form is drawn at once, and nothing else reads keys in between).
const FORM: &str = "needs a login to boot";

/// Ctrl-A (to the start of the field), Ctrl-K (delete to its end).
const CLEAR_FIELD: &str = "\x01\x0b";

/// One attempt typed at the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Login {
    /// The account that may boot, with its password.
    Good,
    /// That account with a wrong password.
    WrongPassword,
    /// A user of the directory who is not in the group that may boot machines.
    NotAllowed,
}

impl Login {
    fn keys(self) -> String {
        let (user, password) = match self {
            Self::Good => (USER, PASSWORD),
            Self::WrongPassword => (USER, WRONG_PASSWORD),
            Self::NotAllowed => (OUTSIDER, OUTSIDER_PASSWORD),
        };
        // The form keeps the user name of a refused attempt: Ctrl-A Ctrl-K empties the field
        // first. Enter in the user name field moves to the password; Enter there submits.
        format!("{CLEAR_FIELD}{user}\r{CLEAR_FIELD}{password}\r")
    }
}

/// `client` typing `attempts` at the successive login forms.
pub(crate) fn typing_login(client: ClientSpec, attempts: &[Login]) -> ClientSpec {
    attempts
        .iter()
        .enumerate()
        .fold(client, |client, (index, login)| {
            client.typing(FORM, index + 1, &login.keys())
        })
}

/// The `[auth]` tables of the lab: every action needs a login, checked against the lab's
/// directory on `https` (see [`start_directory`]) with the lab CA in `dir`.
pub(crate) fn config_toml(dir: &Path, https: std::net::Ipv4Addr) -> String {
    format!(
        "[auth]\nenabled = true\nbackend = \"ldap\"\nrequire = \"all\"\nmax_attempts = {MAX_ATTEMPTS}\n\n\
         [auth.ldap]\nurl = \"ldaps://{https}:{LDAPS_PORT}\"\nca_file = \"{}\"\n\
         user_dn_template = \"uid={{user}},ou=people,{BASE}\"\n\
         required_group = \"cn={GROUP},ou=groups,{BASE}\"\n",
        super::lab_ca::dir(dir).join("ca.pem").display()
    )
}

/// Starts the lab's directory on the HTTPS host: the users above, LDAPS with a server
/// certificate of the lab CA (made here, under `dir`) for the host's address. Returns the
/// running `slapd` once it has written its pid file (after it opened its listener).
pub(crate) fn start_directory(dir: &Path, https: &Host) -> Result<Spawned> {
    let Some((slapd_program, slapadd)) = slapd::binaries() else {
        bail!("slapd is not installed (Debian package slapd)");
    };
    let ca = super::lab_ca::make(dir, https.ip)?;
    let ldap_dir = dir.join("ldap");
    std::fs::create_dir_all(&ldap_dir)?;
    std::fs::copy(super::lab_ca::dir(dir).join("ca.pem"), ldap_dir.join("ca.pem"))?;
    std::fs::copy(&ca.server_cert, ldap_dir.join("server.pem"))?;
    std::fs::copy(&ca.server_key, ldap_dir.join("server.key"))?;
    let person_dn = |uid: &str| format!("uid={uid},ou=people,{BASE}");
    let ldif = format!(
        "{}{}{}{}",
        slapd::skeleton(BASE),
        slapd::person(BASE, USER, PASSWORD),
        slapd::person(BASE, OUTSIDER, OUTSIDER_PASSWORD),
        slapd::group(BASE, GROUP, &[&person_dn(USER)]),
    );
    let directory =
        slapd::Directory::prepare(&slapadd, &ldap_dir, BASE, &ldif).map_err(anyhow::Error::msg)?;
    let args = directory.command_args(&[format!("ldaps://{}:{LDAPS_PORT}/", https.ip)]);
    let mut process = Spawned::start(
        "slapd",
        &https.netns,
        &dir.join("slapd.log"),
        &slapd_program.display().to_string(),
        &args,
    )?;
    wait_for_pid_file(&mut process, &ldap_dir.join("slapd.pid"))?;
    Ok(process)
}

fn wait_for_pid_file(process: &mut Spawned, pid_file: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pid_file.exists() {
        if !process.is_running() {
            bail!("slapd exited; see {}", process.log().display());
        }
        if Instant::now() >= deadline {
            bail!("slapd did not start within 20 s; see {}", process.log().display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
