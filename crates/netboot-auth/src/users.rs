//! The local accounts file: one account a line, `name:<argon2id PHC string>`; blank lines and
//! lines starting with `#` are kept as they are. Parsing and writing only; hashing and
//! verifying live with the service that checks logins.

use std::fmt;

use argon2::password_hash::PasswordHash;

/// Longest user name.
pub const MAX_NAME_LEN: usize = 64;

/// A user name: 1 to [`MAX_NAME_LEN`] of `A-Z a-z 0-9 . _ @ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

impl UserName {
    /// The name, or `None` when it is empty, too long or has other characters.
    pub fn new(name: &str) -> Option<Self> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
        valid.then(|| Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A line of the users file that is not an account, a comment or blank.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsersFileError {
    /// No `:` or an invalid name before it.
    #[error("line {line}: expected name:$argon2id$... with a name of A-Z a-z 0-9 . _ @ -")]
    BadName {
        /// Line number, from 1.
        line: usize,
    },
    /// The part after the name is not an Argon2id hash.
    #[error("line {line}: the hash of {name} is not an argon2id PHC string")]
    BadHash {
        /// Line number, from 1.
        line: usize,
        /// The account.
        name: String,
    },
}

/// One line of the users file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsersLine {
    /// `name:hash`.
    Account {
        /// The user.
        name: UserName,
        /// The Argon2id PHC string.
        hash: String,
    },
    /// A comment or blank line, kept as it is.
    Other(String),
}

impl UsersLine {
    /// Reads one line (without its newline); `number` counts from 1 for errors.
    pub fn parse(text: &str, number: usize) -> Result<Self, UsersFileError> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            // A carriage return ending the line (a file edited on Windows, or a lone one at the
            // end) is dropped, as `str::lines` drops it before a newline: the file is written
            // back with plain newlines and reads the same.
            return Ok(Self::Other(text.trim_end_matches('\r').to_owned()));
        }
        let (name, hash) = trimmed
            .split_once(':')
            .ok_or(UsersFileError::BadName { line: number })?;
        let name = UserName::new(name).ok_or(UsersFileError::BadName { line: number })?;
        let parsed = PasswordHash::new(hash).map_err(|_| UsersFileError::BadHash {
            line: number,
            name: name.to_string(),
        })?;
        if parsed.algorithm.as_str() != "argon2id" {
            return Err(UsersFileError::BadHash {
                line: number,
                name: name.to_string(),
            });
        }
        Ok(Self::Account {
            name,
            hash: hash.to_owned(),
        })
    }

    /// The line as written to the file (without its newline).
    pub fn render(&self) -> String {
        match self {
            Self::Account { name, hash } => format!("{name}:{hash}"),
            Self::Other(text) => text.clone(),
        }
    }
}

/// The parsed users file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsersFile {
    /// Every line in order.
    pub lines: Vec<UsersLine>,
}

impl UsersFile {
    /// Parses the whole file; any bad line fails it, so a typo never locks out silently.
    pub fn parse(text: &str) -> Result<Self, UsersFileError> {
        let lines = text
            .lines()
            .enumerate()
            .map(|(i, line)| UsersLine::parse(line, i + 1))
            .collect::<Result<_, _>>()?;
        Ok(Self { lines })
    }

    /// The file text.
    pub fn render(&self) -> String {
        self.lines.iter().map(|l| l.render() + "\n").collect()
    }

    /// The stored hash of `name`.
    pub fn hash_of(&self, name: &str) -> Option<&str> {
        self.lines.iter().find_map(|line| match line {
            UsersLine::Account { name: n, hash } if n.as_str() == name => Some(hash.as_str()),
            _ => None,
        })
    }

    /// Sets `name`'s hash, replacing its line or appending one. Returns whether it replaced.
    pub fn set(&mut self, name: UserName, hash: String) -> bool {
        for line in &mut self.lines {
            if let UsersLine::Account { name: n, hash: h } = line {
                if *n == name {
                    *h = hash;
                    return true;
                }
            }
        }
        self.lines.push(UsersLine::Account { name, hash });
        false
    }
}
