//! Task sequence variables handed to Windows PE.
//!
//! A resolver can attach variables to a wimboot action (`OSDComputerName`,
//! `SMSTSPreferredAdvertID`, ...). The HTTPS service writes them into one file, injected by
//! wimboot into `X:\Windows\System32` as [`VARIABLES_FILE`], which the ConfigMgr prestart
//! script in `contrib/configmgr-handoff/` reads and sets through `Microsoft.SMS.TSEnvironment`
//! (see `docs/configmgr-winpe-handoff.md` for why this route).
//!
//! The file is UTF-16LE with a byte-order mark, one `Name=Value` per line, CRLF line ends:
//! what VBScript's `FileSystemObject.OpenTextFile(path, 1, False, -1)` reads as Unicode
//! text on every Windows PE. Names and values are checked so no value can start a second
//! line or a second assignment.

use std::collections::BTreeMap;

/// Name of the generated file inside `X:\Windows\System32`.
pub const VARIABLES_FILE: &str = "netboot-variables.txt";
/// Longest variable name (ConfigMgr allows 255 characters).
pub const MAX_NAME_LEN: usize = 255;
/// Longest value, in characters.
pub const MAX_VALUE_LEN: usize = 4000;
/// Most variables in one file.
pub const MAX_VARIABLES: usize = 256;

/// A variable that cannot be handed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    /// The name is not a settable task sequence variable name.
    #[error("task sequence variable name {0:?} must be a letter followed by letters, digits or `_` (at most 255); names starting with `_` are read-only")]
    Name(String),
    /// The value holds a control character or is too long.
    #[error(
        "the value of task sequence variable {0} holds a control character or is longer than 4000 characters"
    )]
    Value(String),
    /// Too many variables.
    #[error("at most 256 task sequence variables can be handed over")]
    TooMany,
}

/// Checks one variable.
pub fn check_variable(name: &str, value: &str) -> Result<(), VariableError> {
    let mut chars = name.chars();
    let name_ok = name.len() <= MAX_NAME_LEN
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !name_ok {
        return Err(VariableError::Name(name.chars().take(64).collect()));
    }
    if value.chars().count() > MAX_VALUE_LEN || value.chars().any(char::is_control) {
        return Err(VariableError::Value(name.to_owned()));
    }
    Ok(())
}

/// Checks every variable of a set.
pub fn check_variables(variables: &BTreeMap<String, String>) -> Result<(), VariableError> {
    if variables.len() > MAX_VARIABLES {
        return Err(VariableError::TooMany);
    }
    variables
        .iter()
        .try_for_each(|(name, value)| check_variable(name, value))
}

/// The [`VARIABLES_FILE`] for `variables`, in name order.
pub fn encode_variables(variables: &BTreeMap<String, String>) -> Result<Vec<u8>, VariableError> {
    check_variables(variables)?;
    let mut text = String::new();
    for (name, value) in variables {
        text.push_str(name);
        text.push('=');
        text.push_str(value);
        text.push_str("\r\n");
    }
    let mut out = vec![0xff, 0xfe];
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    Ok(out)
}

/// Reads a [`VARIABLES_FILE`] back (for tests and tools); `None` when it is not one.
pub fn decode_variables(bytes: &[u8]) -> Option<BTreeMap<String, String>> {
    let body = bytes.strip_prefix(&[0xff, 0xfe])?;
    if body.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = body
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    let text = String::from_utf16(&units).ok()?;
    let mut variables = BTreeMap::new();
    for line in text.split_terminator("\r\n") {
        let (name, value) = line.split_once('=')?;
        check_variable(name, value).ok()?;
        variables.insert(name.to_owned(), value.to_owned());
    }
    Some(variables)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_file_is_utf16_with_a_bom_and_crlf() {
        let variables = BTreeMap::from([
            ("OSDComputerName".to_owned(), "PC-Ä1".to_owned()),
            ("SMSTSPreferredAdvertID".to_owned(), "PS120002".to_owned()),
        ]);
        let bytes = encode_variables(&variables).unwrap();
        assert_eq!(&bytes[..6], &[0xff, 0xfe, b'O', 0, b'S', 0]);
        let text: Vec<u16> = bytes[2..]
            .chunks(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect();
        assert_eq!(
            String::from_utf16(&text).unwrap(),
            "OSDComputerName=PC-Ä1\r\nSMSTSPreferredAdvertID=PS120002\r\n"
        );
        assert_eq!(decode_variables(&bytes), Some(variables));
    }

    #[test]
    fn names_and_values_that_could_break_the_file_are_refused() {
        for name in [
            "",
            "1abc",
            "_SMSTSMP",
            "a b",
            "a=b",
            "a\r\nb",
            "ÄB",
            &"a".repeat(256),
        ] {
            assert!(
                matches!(check_variable(name, "x"), Err(VariableError::Name(_))),
                "{name:?}"
            );
        }
        for value in ["a\r\nEvil=1", "a\nb", "a\0b", &"x".repeat(MAX_VALUE_LEN + 1)] {
            assert!(matches!(
                check_variable("OSDComputerName", value),
                Err(VariableError::Value(_))
            ));
        }
        // `=` in a value is fine: the reader splits at the first one.
        assert!(check_variable("Args", "a=b").is_ok());
        let many: BTreeMap<String, String> = (0..=MAX_VARIABLES)
            .map(|i| (format!("V{i}"), String::new()))
            .collect();
        assert_eq!(encode_variables(&many), Err(VariableError::TooMany));
    }

    proptest! {
        #[test]
        fn every_valid_set_round_trips(
            variables in proptest::collection::btree_map("[A-Za-z][A-Za-z0-9_]{0,30}", "[^\\p{Cc}]{0,40}", 0..20)
        ) {
            let bytes = encode_variables(&variables).unwrap();
            prop_assert_eq!(decode_variables(&bytes), Some(variables));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_variables(&bytes);
        }
    }
}
