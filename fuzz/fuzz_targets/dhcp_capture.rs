#![no_main]
// Read arbitrary bytes as a packet captured beside another DHCP server, rebuild what parses.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_dhcp::fuzzing::captured_packet(data));
