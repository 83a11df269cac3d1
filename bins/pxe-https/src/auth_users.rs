//! Local boot-console accounts (`[auth] backend = "local"`): the users file and the
//! `auth-user` command that writes it.
//!
//! One account a line, `name:<argon2id PHC string>`; blank lines and lines starting with `#`
//! are kept as they are. The file is read again at every login, so accounts added with
//! `pxe-https auth-user add NAME` count at once, without a restart.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context as _;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;

/// The shortest password `auth-user add` accepts: the login is reachable from any machine
/// that boots on the network.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password verified; longer input is refused before any hashing.
pub const MAX_PASSWORD_BYTES: usize = 256;
pub use netboot_auth::users::{UserName, UsersFile, UsersFileError, UsersLine, MAX_NAME_LEN};

/// Hashes a password with Argon2id (the crate's recommended parameters) and a random salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).context("drawing a salt")?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("encoding the salt: {e}"))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
    Ok(hash.to_string())
}

/// A hash of a random password, verified against for names that have no account, so a
/// refusal takes as long whether or not the name exists.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut password = [0u8; 24];
        let _ = getrandom::getrandom(&mut password);
        let password: String = password.iter().map(|b| format!("{b:02x}")).collect();
        // Only fails on invalid parameters, which the defaults are not.
        hash_password(&password).unwrap_or_default()
    })
}

/// Whether `password` is `name`'s. Costs one Argon2 hash whether or not `name` exists;
/// Argon2's own comparison is constant-time. Blocking: call from a blocking thread.
pub fn verify(users: &UsersFile, name: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let (hash, known) = match users.hash_of(name) {
        Some(hash) => (hash, true),
        None => (dummy_hash(), false),
    };
    let matches = PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    });
    matches && known
}

/// Reads the users file; a missing file has no accounts.
pub fn load(path: &Path) -> anyhow::Result<UsersFile> {
    match std::fs::read_to_string(path) {
        Ok(text) => UsersFile::parse(&text).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UsersFile::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Sets `name`'s password in the file at `path`: written to a temporary file with mode 0600
/// next to it and renamed over it, so a reader never sees half a file. Returns whether the
/// account existed.
pub fn set_password(path: &Path, name: UserName, password: &str) -> anyhow::Result<bool> {
    check_new_password(password)?;
    let mut users = load(path)?;
    let replaced = users.set(name, hash_password(password)?);
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut temp = tempfile_in(&dir)?;
    temp.1
        .write_all(users.render().as_bytes())
        .and_then(|()| temp.1.sync_all())
        .with_context(|| format!("writing {}", temp.0.display()))?;
    std::fs::rename(&temp.0, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(replaced)
}

/// A new file with mode 0600 and a name no one else uses, in `dir`.
fn tempfile_in(dir: &Path) -> anyhow::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut suffix = [0u8; 6];
    getrandom::getrandom(&mut suffix).context("drawing a file name")?;
    let name: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!(".boot-users.{name}.tmp"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    Ok((path, file))
}

/// Refuses passwords shorter than [`MIN_PASSWORD_CHARS`] or longer than a login accepts.
pub fn check_new_password(password: &str) -> anyhow::Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        anyhow::bail!("the password must be at least {MIN_PASSWORD_CHARS} characters");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        anyhow::bail!("the password must be at most {MAX_PASSWORD_BYTES} bytes");
    }
    Ok(())
}

/// Reads the new password from standard input: twice, without echo, on a terminal; one line
/// otherwise (for scripts).
pub fn read_new_password() -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.read_line(&mut line).context("reading the password")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = prompt_hidden("Password: ")?;
    let second = prompt_hidden("Again: ")?;
    if first != second {
        anyhow::bail!("the passwords differ");
    }
    Ok(first)
}

fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    let saved = tcgetattr(&stdin).context("reading the terminal mode")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).context("turning off echo")?;
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    let _ = tcsetattr(&stdin, OptionalActions::Now, &saved);
    eprintln!();
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// `auth-user` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AuthUserCommand {
    /// Adds a boot-console account to `auth.users_file`, or sets a new password for it.
    ///
    /// The password is read from standard input: twice without echo on a terminal, else one
    /// line. At least 12 characters.
    Add {
        /// The user name (A-Z a-z 0-9 . _ @ -, at most 64).
        name: String,
    },
}

/// Runs an `auth-user` command against the users file `config` names.
pub fn run(command: &AuthUserCommand, config: &netboot_config::Config) -> anyhow::Result<()> {
    match command {
        AuthUserCommand::Add { name } => {
            let name = UserName::new(name).with_context(|| {
                format!("{name:?} is not a user name (1 to {MAX_NAME_LEN} of A-Z a-z 0-9 . _ @ -)")
            })?;
            let path = config.resolve_path(&config.auth.users_file);
            let password = read_new_password()?;
            let replaced = set_password(&path, name.clone(), &password)?;
            let what = if replaced { "new password for" } else { "added" };
            println!("{what} {name} in {}", path.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn quick_hash(password: &str) -> String {
        hash_password(password).unwrap()
    }

    #[test]
    fn accounts_verify_and_unknown_names_do_not() {
        let mut users = UsersFile::default();
        users.set(
            UserName::new("alice").unwrap(),
            quick_hash("correct horse battery"),
        );
        assert!(verify(&users, "alice", "correct horse battery"));
        assert!(!verify(&users, "alice", "correct horse batterY"));
        assert!(!verify(&users, "bob", "correct horse battery"));
        assert!(!verify(&users, "alice", &"x".repeat(MAX_PASSWORD_BYTES + 1)));
    }

    #[test]
    fn the_file_keeps_comments_and_replaces_an_account_in_place() {
        let hash = quick_hash("first password!");
        let text = format!("# boot users\n\nalice:{hash}\nbob:{hash}\n");
        let mut users = UsersFile::parse(&text).unwrap();
        assert_eq!(users.render(), text);
        assert!(users.set(UserName::new("alice").unwrap(), "$argon2id$new".into()));
        assert!(!users.set(UserName::new("carol").unwrap(), "$argon2id$c".into()));
        let lines: Vec<_> = users.lines.iter().map(UsersLine::render).collect();
        assert_eq!(lines[2], "alice:$argon2id$new");
        assert_eq!(lines[4], "carol:$argon2id$c");
    }

    #[test]
    fn bad_lines_are_named() {
        assert_eq!(
            UsersFile::parse("# x\nalice\n"),
            Err(UsersFileError::BadName { line: 2 })
        );
        assert_eq!(
            UsersFile::parse("al ice:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA\n"),
            Err(UsersFileError::BadName { line: 1 })
        );
        assert!(matches!(
            UsersFile::parse("alice:plaintext\n"),
            Err(UsersFileError::BadHash { line: 1, .. })
        ));
        let bcrypt_like = "alice:$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo\n";
        assert!(matches!(
            UsersFile::parse(bcrypt_like),
            Err(UsersFileError::BadHash { .. })
        ));
    }

    #[test]
    fn set_password_writes_a_private_file_atomically_and_refuses_short_passwords() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let alice = UserName::new("alice").unwrap();
        assert!(set_password(&path, alice.clone(), "short").is_err());
        assert!(!path.exists());
        assert!(!set_password(&path, alice.clone(), "a long enough password").unwrap());
        assert!(set_password(&path, alice, "another long password").unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let users = load(&path).unwrap();
        assert!(verify(&users, "alice", "another long password"));
        assert!(!verify(&users, "alice", "a long enough password"));
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    proptest! {
        #[test]
        fn account_lines_round_trip(
            name in "[A-Za-z0-9._@-]{1,64}",
            salt in proptest::array::uniform16(any::<u8>()),
            hash in proptest::array::uniform32(any::<u8>()),
            cost in 1u32..10,
        ) {
            let salt = SaltString::encode_b64(&salt).unwrap();
            let hash = argon2::password_hash::Output::new(&hash).unwrap();
            let line = UsersLine::Account {
                name: UserName::new(&name).unwrap(),
                hash: format!("$argon2id$v=19$m=19456,t={cost},p=1${}${hash}", salt.as_str()),
            };
            prop_assert_eq!(UsersLine::parse(&line.render(), 1).unwrap(), line);
        }

        #[test]
        fn any_line_parses_or_fails_without_panicking(text in "\\PC{0,200}") {
            if let Ok(line) = UsersLine::parse(&text, 1) {
                prop_assert_eq!(UsersLine::parse(&line.render(), 1).unwrap(), line);
            }
        }
    }
}
