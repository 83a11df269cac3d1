#![no_main]
// Placeholder until the crate under test exposes its fuzzing entry point.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = data;
});
