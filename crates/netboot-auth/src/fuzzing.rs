//! The checks the fuzz targets in `fuzz/` run on arbitrary bytes, kept here so the unit tests
//! run them too. Each panics only when an invariant breaks.

use crate::form::{LoginForm, MAX_FIELD};
use crate::ldap_escape::{dn_value_escape, dn_value_unescape, filter_escape, filter_unescape};
use crate::users::UsersFile;

/// Any body parses into a bounded form, and a form written back reads the same.
pub fn login_form(data: &[u8]) {
    let form = LoginForm::parse(data);
    assert!(form.username.len() <= MAX_FIELD && form.password.len() <= MAX_FIELD);
    assert!(form.attempt >= 1);
    assert_eq!(LoginForm::parse(form.to_form().as_bytes()), form);
}

/// Any text parses or fails cleanly; a parsed file is written back and reads the same.
pub fn users_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = UsersFile::parse(text) {
        let again = UsersFile::parse(&file.render()).expect("a written file parses");
        assert_eq!(again, file);
    }
}

/// Escaped text never carries a filter or DN metacharacter unescaped, and unescapes back.
pub fn ldap_escape(data: &[u8]) {
    let value = String::from_utf8_lossy(data);
    let filter = filter_escape(&value);
    assert!(!filter.contains(['*', '(', ')', '\0']));
    assert_eq!(filter_unescape(&filter).as_deref(), Some(&*value));
    let dn = dn_value_escape(&value);
    assert_eq!(dn_value_unescape(&dn).as_deref(), Some(&*value));
    // Arbitrary escaped-looking input is refused or decoded, never a panic.
    let _ = filter_unescape(&value);
    let _ = dn_value_unescape(&value);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_fuzz_checks_hold_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            super::login_form(&data);
            super::users_file(&data);
            super::ldap_escape(&data);
        }
    }

    #[test]
    fn the_fuzz_checks_hold_on_real_inputs() {
        super::login_form(b"username=61-20-62&password=70-25-24-7b&attempt=2&mac=52-54-00-12-34-56");
        super::users_file(
            b"# boot users\nalice:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA\n\n",
        );
        super::ldap_escape(b"*)(uid=*\\ #, ");
        // Found by the fuzz target: a lone carriage return.
        for text in [&b"\r"[..], b"\r\r", b"# note\r", b"# a\r\n\r\n"] {
            super::users_file(text);
        }
    }
}
