#![no_main]
// Untrusted bytes as NTLM CHALLENGE/AUTHENTICATE messages from a distribution point.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_dp::ntlm::fuzzing::parse_untrusted(data));
