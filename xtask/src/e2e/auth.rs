//! The login lab ([`super::scenario::LabKind::Auth`]): every action needs a login at the boot
//! console, with local accounts made by `pxe-https auth-user add`, and the clients' keys typed
//! into their serial consoles as a technician would type them.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::client::ClientSpec;

/// The account that may boot machines, and its password.
const USER: &str = "technician";
const PASSWORD: &str = "e2e correct horse battery";
/// An account that exists but whose password the refused client gets wrong.
const WRONG_PASSWORD: &str = "e2e wrong horse battery";
/// A name with no account.
const STRANGER: &str = "stranger";
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
    /// A user who may not boot machines.
    NotAllowed,
}

impl Login {
    fn keys(self) -> String {
        let (user, password) = match self {
            Self::Good => (USER, PASSWORD),
            Self::WrongPassword => (USER, WRONG_PASSWORD),
            Self::NotAllowed => (STRANGER, PASSWORD),
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

/// The `[auth]` table of the lab: every action needs a login; accounts in `dir`.
pub(crate) fn config_toml(dir: &Path) -> String {
    format!(
        "[auth]\nenabled = true\nrequire = \"all\"\nusers_file = \"{}\"\nmax_attempts = {MAX_ATTEMPTS}\n",
        dir.join("boot-users").display()
    )
}

/// Makes the lab's account with the real command, as an administrator would.
pub(crate) fn add_users(pxe_https: &Path, config: &Path) -> Result<()> {
    let mut child = Command::new(pxe_https)
        .arg("--config")
        .arg(config)
        .args(["auth-user", "add", USER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", pxe_https.display()))?;
    writeln!(child.stdin.take().context("stdin")?, "{PASSWORD}")?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "pxe-https auth-user add failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
