//! DHCPv6 for network boot, sans-IO: the wire format ([`wire`]), the classification of a
//! client message ([`class`]) and the boot-offer responder ([`proxy`]).
//!
//! See the crate README section "DHCPv6" for which message flows UEFI firmware and iPXE
//! accept from a boot server that is not their address server, with the sources.

pub mod class;
pub mod proxy;
pub mod wire;
