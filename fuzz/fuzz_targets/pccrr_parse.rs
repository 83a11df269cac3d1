#![no_main]
// BranchCache retrieval requests and responses (parse, write, read back) and request planning.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_pccr::fuzzing::retrieval_round_trip(data));
