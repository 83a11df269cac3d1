#![no_main]
// Parse, re-encode byte for byte, classify and answer arbitrary DHCPv6 datagrams.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netboot_dhcp::fuzzing::dhcpv6_round_trip(data));
