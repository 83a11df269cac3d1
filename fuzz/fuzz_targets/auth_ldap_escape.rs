#![no_main]
// Typed names escaped for LDAP filters and DNs: no metacharacter gets through, round trip.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_auth::fuzzing::ldap_escape(data));
