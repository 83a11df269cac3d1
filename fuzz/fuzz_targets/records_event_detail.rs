#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_records::fuzzing::event_detail_round_trip(data));
