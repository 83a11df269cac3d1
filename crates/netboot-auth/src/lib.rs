//! What a boot-console login reads from outside, parsed without I/O: the login form iPXE
//! POSTs ([`form`]), the local accounts file ([`users`]), and the escaping of typed names on
//! their way into LDAP filters and DNs ([`ldap_escape`]). Each has proptests here or in
//! `pxe-https` and a fuzz target in `fuzz/`.

#![deny(missing_docs)]

pub mod form;
pub mod fuzzing;
pub mod ldap_escape;
pub mod users;
