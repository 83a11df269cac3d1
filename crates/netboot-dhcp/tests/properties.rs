//! Property tests: encode/parse round trips, truncation, and arbitrary input.

use std::net::Ipv4Addr;

use netboot_core::ClientArch;
use netboot_dhcp::pxe::{BootServer, MenuItem, PxeSubOption, PxeVendorOptions};
use netboot_dhcp::wire::{DhcpMessage, DhcpOption, MessageType};
use proptest::prelude::*;

const TYPED_CODES: &[u8] = &[
    1, 3, 6, 12, 43, 50, 51, 52, 53, 54, 55, 57, 60, 61, 66, 67, 77, 82, 93, 94, 97, 175,
];

fn ip() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Any option except overload (52), which would turn `file`/`sname` into option areas.
fn option() -> impl Strategy<Value = DhcpOption> {
    prop_oneof![
        Just(DhcpOption::Pad),
        ip().prop_map(DhcpOption::SubnetMask),
        prop::collection::vec(ip(), 1..80).prop_map(DhcpOption::Router),
        prop::collection::vec(ip(), 1..4).prop_map(DhcpOption::DomainNameServer),
        bytes(40).prop_map(DhcpOption::HostName),
        bytes(300).prop_map(DhcpOption::VendorSpecific),
        ip().prop_map(DhcpOption::RequestedIp),
        any::<u32>().prop_map(DhcpOption::LeaseTime),
        any::<u8>().prop_map(|t| DhcpOption::MessageType(MessageType::from(t))),
        ip().prop_map(DhcpOption::ServerId),
        bytes(40).prop_map(DhcpOption::ParameterRequestList),
        any::<u16>().prop_map(DhcpOption::MaxMessageSize),
        bytes(40).prop_map(DhcpOption::VendorClass),
        bytes(20).prop_map(DhcpOption::ClientId),
        bytes(20).prop_map(DhcpOption::TftpServerName),
        bytes(600).prop_map(DhcpOption::BootfileName),
        bytes(20).prop_map(DhcpOption::UserClass),
        bytes(20).prop_map(DhcpOption::RelayAgentInfo),
        prop::collection::vec(any::<u16>().prop_map(ClientArch::from), 1..3).prop_map(DhcpOption::ClientArch),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(kind, major, minor)| DhcpOption::ClientNdi {
            kind,
            major,
            minor
        }),
        (any::<u8>(), bytes(17)).prop_map(|(kind, id)| DhcpOption::ClientMachineId { kind, id }),
        bytes(60).prop_map(DhcpOption::IpxeEncapsulated),
        (
            (1u8..=254).prop_filter("untyped code", |c| !TYPED_CODES.contains(c)),
            bytes(300)
        )
            .prop_map(|(code, data)| DhcpOption::Unknown { code, data }),
    ]
}

fn message(with_trailer: bool) -> impl Strategy<Value = DhcpMessage> {
    let header = (
        any::<[u8; 4]>(),
        any::<u32>(),
        any::<u16>(),
        any::<u16>(),
        [ip(), ip(), ip(), ip()],
        any::<[u8; 16]>(),
    );
    let areas = (
        prop::collection::vec(any::<u8>(), 64),
        prop::collection::vec(any::<u8>(), 128),
    );
    let options =
        prop::collection::vec(option(), 0..12).prop_filter("no adjacent repeats of one code", |opts| {
            opts.windows(2)
                .all(|w| w[0].code() != w[1].code() || w[0].code() == 0)
        });
    let trailer = if with_trailer {
        bytes(80).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (header, areas, options, trailer).prop_map(
        |(
            ([op, htype, hlen, hops], xid, secs, flags, [ciaddr, yiaddr, siaddr, giaddr], chaddr),
            (sname, file),
            options,
            trailer,
        )| {
            DhcpMessage {
                op,
                htype,
                hlen,
                hops,
                xid,
                secs,
                flags,
                ciaddr,
                yiaddr,
                siaddr,
                giaddr,
                chaddr,
                sname: sname.try_into().unwrap(),
                file: file.try_into().unwrap(),
                options,
                trailer,
            }
        },
    )
}

fn pxe_sub_option() -> impl Strategy<Value = PxeSubOption> {
    prop_oneof![
        Just(PxeSubOption::Pad),
        any::<u8>().prop_map(PxeSubOption::DiscoveryControl),
        prop::collection::vec(
            (any::<u16>(), prop::collection::vec(ip(), 0..4))
                .prop_map(|(kind, addresses)| BootServer { kind, addresses }),
            0..4
        )
        .prop_map(PxeSubOption::BootServers),
        prop::collection::vec(
            (any::<u16>(), bytes(20)).prop_map(|(kind, description)| MenuItem { kind, description }),
            0..4
        )
        .prop_map(PxeSubOption::BootMenu),
        (any::<u8>(), bytes(30)).prop_map(|(timeout, prompt)| PxeSubOption::MenuPrompt { timeout, prompt }),
        (any::<u16>(), any::<u16>()).prop_map(|(kind, layer)| PxeSubOption::BootItem { kind, layer }),
        (
            (1u8..=254).prop_filter("untyped", |c| ![6, 8, 9, 10, 71].contains(c)),
            bytes(30)
        )
            .prop_map(|(code, data)| PxeSubOption::Unknown { code, data }),
    ]
}

proptest! {
    #[test]
    fn message_round_trips(message in message(true)) {
        let bytes = message.to_bytes();
        let parsed = DhcpMessage::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &message);
        prop_assert_eq!(parsed.to_bytes(), bytes);
    }

    #[test]
    fn every_truncated_prefix_errors(message in message(false)) {
        let bytes = message.to_bytes();
        for len in 0..bytes.len() {
            prop_assert!(DhcpMessage::parse(&bytes[..len]).is_err(), "prefix of {} bytes parsed", len);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in bytes(700)) {
        netboot_dhcp::fuzzing::parse_round_trip(&data);
    }

    #[test]
    fn arbitrary_options_after_a_valid_header_never_panic(options in bytes(400), op in 1u8..=2) {
        let mut data = DhcpMessage::new_request(1, [2, 0, 0, 0, 0, 1]).to_bytes();
        data[0] = op;
        data.truncate(240);
        data.extend_from_slice(&options);
        netboot_dhcp::fuzzing::parse_round_trip(&data);
    }

    #[test]
    fn pxe_vendor_options_round_trip(items in prop::collection::vec(pxe_sub_option(), 0..6), has_end in any::<bool>()) {
        let options = PxeVendorOptions { items, has_end, trailer: Vec::new() };
        prop_assert_eq!(PxeVendorOptions::parse(&options.to_bytes()).unwrap(), options);
    }
}

#[test]
fn long_options_are_split_and_joined_per_rfc_3396() {
    let mut message = DhcpMessage::new_request(9, [2, 0, 0, 0, 0, 1]);
    let url = vec![b'a'; 600];
    message.options.push(DhcpOption::BootfileName(url.clone()));
    let bytes = message.to_bytes();
    // 600 bytes become three fragments: 255 + 255 + 90.
    assert_eq!(bytes[240..242], [67, 255]);
    assert_eq!(bytes[240 + 257..240 + 259], [67, 255]);
    assert_eq!(bytes[240 + 514..240 + 516], [67, 90]);
    assert_eq!(
        DhcpMessage::parse(&bytes).unwrap().bootfile_name(),
        Some(&url[..])
    );
}

#[test]
fn overloaded_file_and_sname_are_read() {
    let mut message = DhcpMessage::new_request(9, [2, 0, 0, 0, 0, 1]);
    message.options.push(DhcpOption::Overload(3));
    message.file[..4].copy_from_slice(&[53, 1, 1, 255]);
    message.sname[..6].copy_from_slice(&[54, 4, 10, 0, 0, 1]);
    message.sname[6] = 255;
    let parsed = DhcpMessage::parse(&message.to_bytes()).unwrap();
    assert_eq!(parsed.message_type(), Some(MessageType::Discover));
    assert_eq!(parsed.server_id(), Some(Ipv4Addr::new(10, 0, 0, 1)));

    message.file[3] = 0; // no END in the overloaded file field
    assert!(DhcpMessage::parse(&message.to_bytes()).is_err());
}

#[test]
fn structured_errors() {
    use netboot_dhcp::wire::DecodeError;
    assert_eq!(
        DhcpMessage::parse(&[0; 10]),
        Err(DecodeError::Truncated {
            needed: 240,
            got: 10,
            offset: 0
        })
    );
    let mut bytes = DhcpMessage::new_request(1, [0; 6]).to_bytes();
    bytes[236] = 0;
    assert_eq!(
        DhcpMessage::parse(&bytes),
        Err(DecodeError::BadCookie(0x0082_5363))
    );
    let mut bytes = DhcpMessage::new_request(1, [0; 6]).to_bytes();
    bytes.truncate(240);
    bytes.extend_from_slice(&[53, 2, 1]);
    assert_eq!(
        DhcpMessage::parse(&bytes),
        Err(DecodeError::Truncated {
            needed: 4,
            got: 3,
            offset: 240
        })
    );
    bytes.truncate(240);
    bytes.extend_from_slice(&[53, 2, 1, 1, 255]);
    assert_eq!(
        DhcpMessage::parse(&bytes),
        Err(DecodeError::BadOptionValue { code: 53, len: 2 })
    );
}
