//! A syntax check for rendered scripts: every line must be something iPXE understands.
//!
//! This is a reader of the subset of the iPXE script language the builder emits, used by
//! tests and the fuzz target to prove that no input makes the builder produce anything else.

use std::collections::HashSet;

use crate::url::is_setting_name;

/// The iPXE commands the builder can emit (and a few common hand-written ones).
pub const KNOWN_COMMANDS: &[&str] = &[
    "boot", "chain", "choose", "clear", "echo", "exit", "goto", "imgargs", "imgexec", "imgfetch", "imgfree",
    "initrd", "isset", "iseq", "item", "kernel", "login", "menu", "param", "params", "prompt", "set",
    "sleep",
];

/// Why a script failed the check. Line numbers start at 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The first line is not `#!ipxe`.
    #[error("script does not start with #!ipxe")]
    MissingHeader,
    /// The script does not end with a newline, so its last line may be cut off.
    #[error("script does not end with a newline")]
    Unterminated,
    /// A line holds a control character (other than the line's `\n`).
    #[error("line {line}: control character {found:?}")]
    ControlCharacter {
        /// Line number.
        line: usize,
        /// The character.
        found: char,
    },
    /// A line ends with `\`, which would join it with the next one.
    #[error("line {line}: trailing backslash joins lines")]
    LineContinuation {
        /// Line number.
        line: usize,
    },
    /// A command name outside [`KNOWN_COMMANDS`].
    #[error("line {line}: unknown command {name:?}")]
    UnknownCommand {
        /// Line number.
        line: usize,
        /// The word in command position.
        name: String,
    },
    /// `||`, `&&` or `;` without a command on one side.
    #[error("line {line}: dangling command separator")]
    DanglingSeparator {
        /// Line number.
        line: usize,
    },
    /// A `${` without a closing `}` or with an invalid setting name inside.
    #[error("line {line}: malformed setting expansion")]
    BadExpansion {
        /// Line number.
        line: usize,
    },
    /// A label line with an invalid name.
    #[error("line {line}: invalid label")]
    BadLabel {
        /// Line number.
        line: usize,
    },
    /// `goto` names a label the script does not define.
    #[error("line {line}: goto to undefined label {label:?}")]
    UndefinedLabel {
        /// Line number.
        line: usize,
        /// The missing label.
        label: String,
    },
}

/// One line of a checked script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckedLine {
    /// An empty line.
    Blank,
    /// `# ...` (including the `#!ipxe` header).
    Comment(String),
    /// `:name`.
    Label(String),
    /// Commands and the separators between them: `[["chain", "x"], ["||"], ["goto", "failed"]]`.
    Commands(Vec<Vec<String>>),
}

/// Checks `script` and returns its lines.
///
/// ```
/// let lines = netboot_ipxe::check_script("#!ipxe\necho hi\n:end\nexit 1\n").unwrap();
/// assert_eq!(lines.len(), 4);
/// assert!(netboot_ipxe::check_script("#!ipxe\nrm -rf /\n").is_err());
/// ```
pub fn check_script(script: &str) -> Result<Vec<CheckedLine>, CheckError> {
    let Some(body) = script.strip_prefix("#!ipxe\n") else {
        return Err(CheckError::MissingHeader);
    };
    if !body.is_empty() && !body.ends_with('\n') {
        return Err(CheckError::Unterminated);
    }
    let mut lines = vec![CheckedLine::Comment("!ipxe".into())];
    let mut labels = HashSet::new();
    let mut gotos = Vec::new();
    for (index, text) in body.lines().enumerate() {
        let line = index + 2;
        if let Some(found) = text.chars().find(|c| c.is_control()) {
            return Err(CheckError::ControlCharacter { line, found });
        }
        if text.ends_with('\\') {
            return Err(CheckError::LineContinuation { line });
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        let checked = match words.first() {
            None => CheckedLine::Blank,
            Some(first) if first.starts_with('#') => {
                CheckedLine::Comment(text.trim_start()[1..].trim_start().to_owned())
            }
            Some(first) if text.starts_with(':') => {
                let name = &first[1..];
                if words.len() != 1 || !is_label(name) {
                    return Err(CheckError::BadLabel { line });
                }
                labels.insert(name.to_owned());
                CheckedLine::Label(name.to_owned())
            }
            Some(_) => CheckedLine::Commands(check_commands(line, &words, &mut gotos)?),
        };
        lines.push(checked);
    }
    for (line, label) in gotos {
        if !labels.contains(&label) {
            return Err(CheckError::UndefinedLabel { line, label });
        }
    }
    Ok(lines)
}

/// Splits a command line at separators and checks every command and expansion.
fn check_commands(
    line: usize,
    words: &[&str],
    gotos: &mut Vec<(usize, String)>,
) -> Result<Vec<Vec<String>>, CheckError> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for word in words {
        if word.starts_with('#') {
            break;
        }
        if matches!(*word, "||" | "&&" | ";") {
            // `cmd ||` (ignore failure) is allowed at the end; anything else needs commands.
            if current.is_empty() {
                return Err(CheckError::DanglingSeparator { line });
            }
            groups.push(std::mem::take(&mut current));
            groups.push(vec![(*word).to_owned()]);
            continue;
        }
        check_expansions(line, word)?;
        current.push((*word).to_owned());
    }
    if current.is_empty() && groups.last().is_some_and(|g| g[0] != "||") {
        return Err(CheckError::DanglingSeparator { line });
    }
    if !current.is_empty() {
        groups.push(current);
    }
    for group in &groups {
        let name = group[0].as_str();
        if matches!(name, "||" | "&&" | ";") {
            continue;
        }
        if !KNOWN_COMMANDS.contains(&name) {
            return Err(CheckError::UnknownCommand {
                line,
                name: name.to_owned(),
            });
        }
        if name == "goto" {
            match group.get(1) {
                Some(target) if !target.contains("${") => gotos.push((line, target.clone())),
                Some(_) => {}
                None => {
                    return Err(CheckError::UndefinedLabel {
                        line,
                        label: String::new(),
                    })
                }
            }
        }
    }
    Ok(groups)
}

/// Every `${` must be followed by a valid `name[:type]` and `}`; no stray `}` or `{`.
fn check_expansions(line: usize, word: &str) -> Result<(), CheckError> {
    let mut rest = word;
    while let Some(start) = rest.find(['$', '{', '}']) {
        let after = &rest[start..];
        let Some(inner) = after.strip_prefix("${") else {
            return Err(CheckError::BadExpansion { line });
        };
        let Some(end) = inner.find('}') else {
            return Err(CheckError::BadExpansion { line });
        };
        let reference = &inner[..end];
        let (name, kind) = reference.split_once(':').unwrap_or((reference, "string"));
        if !is_setting_name(name) || !is_setting_name(kind) {
            return Err(CheckError::BadExpansion { line });
        }
        rest = &inner[end + 1..];
    }
    Ok(())
}

fn is_label(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Writes checked lines back as script text; `emit(check(s)) == s` for scripts in canonical
/// form (single spaces, `# ` before comment text).
pub fn emit_script(lines: &[CheckedLine]) -> String {
    let mut out = String::new();
    for (index, line) in lines.iter().enumerate() {
        match line {
            CheckedLine::Blank => {}
            CheckedLine::Comment(text) if index == 0 && text == "!ipxe" => out.push_str("#!ipxe"),
            CheckedLine::Comment(text) => {
                out.push_str("# ");
                out.push_str(text);
            }
            CheckedLine::Label(name) => {
                out.push(':');
                out.push_str(name);
            }
            CheckedLine::Commands(groups) => {
                let words: Vec<&str> = groups.iter().flatten().map(String::as_str).collect();
                out.push_str(&words.join(" "));
            }
        }
        out.push('\n');
    }
    out
}
