#![no_main]
// Content Information of both versions (parse, re-encode, walk segments and blocks) and the
// PeerDist HTTP header values.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_peerdist::fuzzing::parse_round_trip(data));
