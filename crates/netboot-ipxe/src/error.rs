//! Why a value was refused by the script builder.

/// A value that cannot be placed into an iPXE script safely.
///
/// Untrusted display text never produces this error (it is sanitised instead); these errors
/// are for values that must be exact, such as identifiers, file names and URLs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// An identifier (action id, label, setting name) is empty, too long or uses a character
    /// outside its whitelist.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidIdentifier {
        /// What kind of identifier, e.g. `action id`.
        kind: &'static str,
        /// The refused value, truncated for display.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A URL does not start with `http://` or `https://`, or contains a control character.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The refused URL, truncated for display.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Task sequence variables that cannot be handed to Windows PE.
    #[error("{0}")]
    InvalidVariables(#[from] netboot_core::handoff::VariableError),
    /// A kernel command line contains a character iPXE would interpret.
    #[error("kernel command line contains {found:?}, which iPXE would interpret")]
    UnsafeCommandLine {
        /// The offending character.
        found: char,
    },
}

/// Shortens a refused value for error messages so a 10 KB input does not flood the logs.
pub(crate) fn excerpt(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}
