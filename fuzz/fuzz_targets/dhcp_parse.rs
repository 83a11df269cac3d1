#![no_main]
// Parse, re-encode byte for byte, classify and answer arbitrary datagrams.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_dhcp::fuzzing::parse_round_trip(data));
