//! DHCPv6 wire format (RFC 8415, RFC 5970): a borrowed view ([`Dhcp6Packet`]) for checking
//! and peeking, and an owned message ([`Dhcp6Message`]) with typed options kept in wire order.

mod duid;
mod error;
mod message;
mod options;
mod raw;

pub use duid::{duid_type, Duid, DuidView, HARDWARE_ETHERNET};
pub use error::{DecodeError, EncodeError};
pub use message::{Dhcp6Message, Header, MessageType};
pub use options::{
    code, status, Dhcp6Option, Ia, IaAddr, IaPrefix, IaTa, StatusCode, VendorClass, MAX_DEPTH, PXE_ENTERPRISE,
};
pub use raw::{Dhcp6Packet, RawOption, RawOptions};

#[cfg(test)]
mod tests {
    use super::*;

    fn option(code: u16, value: &[u8]) -> Vec<u8> {
        let mut out = code.to_be_bytes().to_vec();
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
        out
    }

    #[test]
    fn known_options_with_the_wrong_shape_are_errors_with_their_offset() {
        let mut solicit = vec![1, 0, 0, 1];
        solicit.extend(option(code::ELAPSED_TIME, &[0, 0]));
        solicit.extend(option(code::PREFERENCE, &[1, 2]));
        assert_eq!(
            Dhcp6Message::parse(&solicit),
            Err(DecodeError::BadOptionValue {
                code: code::PREFERENCE,
                len: 2,
                offset: 10
            })
        );
        let mut classes = vec![1, 0, 0, 1];
        classes.extend(option(code::USER_CLASS, &[0, 5, b'i', b'P']));
        assert!(matches!(
            Dhcp6Message::parse(&classes),
            Err(DecodeError::BadOptionValue { code: 15, .. })
        ));
        let mut truncated = vec![11, 0, 0, 1];
        truncated.extend(option(code::CLIENT_ID, &[0, 4, 1]));
        truncated.pop();
        assert_eq!(
            Dhcp6Message::parse(&truncated),
            Err(DecodeError::Truncated {
                needed: 7,
                got: 6,
                offset: 4
            })
        );
    }

    #[test]
    fn relay_chains_deeper_than_any_real_one_are_refused() {
        let mut message = vec![11, 0, 0, 1];
        for _ in 0..=MAX_DEPTH {
            let mut relay = vec![12, 0];
            relay.extend_from_slice(&[0; 32]);
            relay.extend(option(code::RELAY_MSG, &message));
            message = relay;
        }
        assert_eq!(
            Dhcp6Message::parse(&message),
            Err(DecodeError::TooDeep(MAX_DEPTH))
        );
        // Eight relays, the protocol's limit, are fine.
        let mut message = vec![11, 0, 0, 1];
        for _ in 0..8 {
            let mut relay = vec![12, 0];
            relay.extend_from_slice(&[0; 32]);
            relay.extend(option(code::RELAY_MSG, &message));
            message = relay;
        }
        let parsed = Dhcp6Message::parse(&message).unwrap();
        assert_eq!(parsed.to_bytes().unwrap(), message);
    }

    #[test]
    fn duid_views_and_odd_duids_survive() {
        let llt = Duid(vec![0, 1, 0, 1, 0, 0, 0, 9, 0x52, 0x54, 0, 1, 2, 3]);
        assert_eq!(llt.mac().unwrap().to_string(), "52:54:00:01:02:03");
        assert!(matches!(llt.view(), DuidView::LinkLayerTime { time: 9, .. }));
        let uuid = Duid([&[0, 4][..], &[1; 16]].concat());
        assert!(matches!(uuid.view(), DuidView::Uuid(_)));
        assert_eq!(uuid.mac(), None);
        assert!(matches!(Duid(vec![0, 4, 1]).view(), DuidView::Other(_)));
        assert!(matches!(Duid(vec![7]).view(), DuidView::Other(_)));
        assert_eq!(Duid(vec![0, 3, 0xab]).to_string(), "00:03:ab");
        let message = Dhcp6Message {
            msg_type: MessageType::Solicit,
            header: Header::Relay {
                hop_count: 0,
                link_address: std::net::Ipv6Addr::UNSPECIFIED,
                peer_address: std::net::Ipv6Addr::UNSPECIFIED,
            },
            options: Vec::new(),
        };
        assert_eq!(
            message.to_bytes(),
            Err(EncodeError::HeaderMismatch(MessageType::Solicit))
        );
    }
}
