#![no_main]
// Untrusted bodies as the boot-console login form: bounded fields, no panic, round trip.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_auth::fuzzing::login_form(data));
