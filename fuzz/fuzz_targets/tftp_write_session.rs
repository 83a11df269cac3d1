#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_tftp::fuzzing::write_session(
    std::time::Instant::now(),
    data
));
