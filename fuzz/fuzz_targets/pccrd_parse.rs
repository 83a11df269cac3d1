#![no_main]
// BranchCache discovery datagrams: probes and probe matches (parse, write, read back) and the
// answer a peer holding every segment would give.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_pccr::fuzzing::discovery_round_trip(data));
