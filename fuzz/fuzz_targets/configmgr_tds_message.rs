#![no_main]
// Every TDS client-message parser of the test endpoint (LOGIN7, SQL batch, RPC, packet header).
libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_tds_testserver::fuzzing::parse_client_message(data));
