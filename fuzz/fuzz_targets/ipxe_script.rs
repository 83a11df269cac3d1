#![no_main]
// Untrusted bytes as client identity and resolver text: every rendered script must stay safe.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_ipxe::fuzzing::render_untrusted(data));
