//! Sans-IO DHCPv4 and PXE for network boot: no sockets, no clock, no async runtime. You pass
//! datagrams in and get typed messages, client classifications and reply bytes with their
//! destination out.
//!
//! - [`wire`]: the BOOTP/DHCPv4 message, options kept losslessly in wire order (PAD, unknown
//!   options and bytes after END included), RFC 3396 long options, option overload (52).
//! - [`pxe`]: option 43 PXE sub-options, option 77 user classes (RFC 3004 or iPXE's raw
//!   `iPXE`), option 175 iPXE features, and [`pxe::ClientClass`], computed once per packet.
//! - [`proxy`]: the proxyDHCP responder: [`proxy::classify`] → ask a resolver about
//!   [`proxy::PendingClient::request`] → [`proxy::PendingClient::respond_remembering`].
//! - [`chainload`]: the per-MAC memory that keeps chainloaded iPXE from loading itself again.
//!
//! Deviation from the proposed design: the owned [`wire::DhcpMessage`] is the main API and the
//! borrowed [`wire::DhcpPacket`] only checks and peeks; a proxy reads nearly every option of
//! every packet, so a second, lazily-typed view would not save work.

#![deny(missing_docs)]

mod answer;
pub mod capture;
pub mod chainload;
pub mod proxy;
pub mod pxe;
pub mod v6;
pub mod wire;

#[doc(hidden)]
pub mod fuzzing;
