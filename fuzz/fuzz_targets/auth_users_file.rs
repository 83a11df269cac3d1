#![no_main]
// Untrusted text as the local accounts file: parsed or refused, written back unchanged.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_auth::fuzzing::users_file(data));
