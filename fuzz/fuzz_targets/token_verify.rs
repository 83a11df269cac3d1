#![no_main]
// Untrusted text as a per-boot URL token: refused without panicking, unless really issued.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_token::fuzzing::verify_untrusted(data));
