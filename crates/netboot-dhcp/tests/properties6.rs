//! Property tests of the DHCPv6 wire format and responder: encode/parse round trips,
//! truncation, and arbitrary input.

use std::net::{Ipv6Addr, SocketAddrV6};

use netboot_core::{BootDecision, ClientArch};
use netboot_dhcp::proxy::{ListenPort, ProxySettings};
use netboot_dhcp::v6::class::ClientMacs;
use netboot_dhcp::v6::proxy::{classify, Dhcp6Settings, RequestMeta6};
use netboot_dhcp::v6::wire::*;
use proptest::prelude::*;

const TYPED_CODES: &[u16] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 18, 23, 24, 25, 26, 32, 43, 59, 60, 61, 62, 79,
];

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn ip() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

fn items() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(bytes(12), 0..4)
}

fn leaf_option() -> impl Strategy<Value = Dhcp6Option> {
    prop_oneof![
        bytes(20).prop_map(|b| Dhcp6Option::ClientId(Duid(b))),
        bytes(20).prop_map(|b| Dhcp6Option::ServerId(Duid(b))),
        prop::collection::vec(any::<u16>(), 0..6).prop_map(Dhcp6Option::Oro),
        prop::collection::vec(any::<u16>(), 0..3).prop_map(Dhcp6Option::EchoRequest),
        any::<u8>().prop_map(Dhcp6Option::Preference),
        any::<u16>().prop_map(Dhcp6Option::ElapsedTime),
        ip().prop_map(Dhcp6Option::Unicast),
        (any::<u16>(), bytes(20))
            .prop_map(|(code, message)| Dhcp6Option::StatusCode(StatusCode { code, message })),
        Just(Dhcp6Option::RapidCommit),
        items().prop_map(Dhcp6Option::UserClass),
        (any::<u32>(), items())
            .prop_map(|(enterprise, classes)| Dhcp6Option::VendorClass(VendorClass { enterprise, classes })),
        (any::<u32>(), bytes(20)).prop_map(|(enterprise, data)| Dhcp6Option::VendorOpts { enterprise, data }),
        bytes(10).prop_map(Dhcp6Option::InterfaceId),
        prop::collection::vec(ip(), 0..3).prop_map(Dhcp6Option::DnsServers),
        bytes(20).prop_map(Dhcp6Option::DomainList),
        any::<u32>().prop_map(Dhcp6Option::InformationRefreshTime),
        bytes(60).prop_map(Dhcp6Option::BootfileUrl),
        items().prop_map(Dhcp6Option::BootfileParam),
        prop::collection::vec(any::<u16>().prop_map(ClientArch::from), 0..3)
            .prop_map(Dhcp6Option::ClientArch),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(kind, major, minor)| Dhcp6Option::Nii {
            kind,
            major,
            minor
        }),
        (any::<u16>(), bytes(8)).prop_map(|(hardware_type, address)| Dhcp6Option::ClientLinkLayerAddr {
            hardware_type,
            address
        }),
        (
            any::<u16>().prop_filter("untyped code", |c| !TYPED_CODES.contains(c)),
            bytes(30)
        )
            .prop_map(|(code, data)| Dhcp6Option::Unknown { code, data }),
    ]
}

fn transaction_type() -> impl Strategy<Value = MessageType> {
    any::<u8>()
        .prop_filter("not a relay type", |t| !matches!(t, 12 | 13))
        .prop_map(MessageType::from)
}

/// Any option, nesting IAs and relayed messages a few levels deep.
fn option() -> impl Strategy<Value = Dhcp6Option> {
    leaf_option().prop_recursive(3, 24, 4, |inner| {
        let options = prop::collection::vec(inner, 0..4);
        prop_oneof![
            (any::<[u32; 3]>(), options.clone()).prop_map(|([iaid, t1, t2], options)| Dhcp6Option::IaNa(
                Ia {
                    iaid,
                    t1,
                    t2,
                    options
                }
            )),
            (any::<[u32; 3]>(), options.clone()).prop_map(|([iaid, t1, t2], options)| Dhcp6Option::IaPd(
                Ia {
                    iaid,
                    t1,
                    t2,
                    options
                }
            )),
            (any::<u32>(), options.clone())
                .prop_map(|(iaid, options)| Dhcp6Option::IaTa(IaTa { iaid, options })),
            (ip(), any::<[u32; 2]>(), options.clone()).prop_map(|(address, [p, v], options)| {
                Dhcp6Option::IaAddr(IaAddr {
                    address,
                    preferred_lifetime: p,
                    valid_lifetime: v,
                    options,
                })
            }),
            (ip(), any::<u8>(), any::<[u32; 2]>(), options.clone()).prop_map(
                |(prefix, prefix_len, [p, v], options)| {
                    Dhcp6Option::IaPrefix(IaPrefix {
                        preferred_lifetime: p,
                        valid_lifetime: v,
                        prefix_len,
                        prefix,
                        options,
                    })
                }
            ),
            (transaction_type(), any::<[u8; 3]>(), options).prop_map(|(msg_type, id, options)| {
                Dhcp6Option::RelayMessage(Box::new(Dhcp6Message {
                    msg_type,
                    header: Header::Transaction(id),
                    options,
                }))
            }),
        ]
    })
}

fn message() -> impl Strategy<Value = Dhcp6Message> {
    let options = || prop::collection::vec(option(), 0..8);
    prop_oneof![
        (transaction_type(), any::<[u8; 3]>(), options()).prop_map(|(msg_type, id, options)| Dhcp6Message {
            msg_type,
            header: Header::Transaction(id),
            options,
        }),
        (
            prop_oneof![Just(MessageType::RelayForward), Just(MessageType::RelayReply)],
            any::<u8>(),
            ip(),
            ip(),
            options()
        )
            .prop_map(
                |(msg_type, hop_count, link_address, peer_address, options)| Dhcp6Message {
                    msg_type,
                    header: Header::Relay {
                        hop_count,
                        link_address,
                        peer_address
                    },
                    options,
                }
            ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn messages_round_trip(message in message()) {
        let bytes = message.to_bytes().unwrap();
        prop_assert_eq!(Dhcp6Message::parse(&bytes).unwrap(), message);
    }

    /// Every prefix of a message either fails to parse or is itself a message that encodes to
    /// exactly that prefix (options end on a boundary); nothing panics.
    #[test]
    fn truncated_messages_fail_or_stay_lossless(message in message()) {
        let bytes = message.to_bytes().unwrap();
        for len in 0..bytes.len() {
            if let Ok(prefix) = Dhcp6Message::parse(&bytes[..len]) {
                prop_assert_eq!(prefix.to_bytes().unwrap(), &bytes[..len]);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_parse_losslessly_or_fail(data in bytes(300)) {
        if let Ok(message) = Dhcp6Message::parse(&data) {
            prop_assert_eq!(message.to_bytes().unwrap(), data);
        }
    }

    /// Whatever arrives on either port, the responder answers with a message that parses, to
    /// the sender, and never with an address.
    #[test]
    fn the_responder_never_panics_and_never_assigns(message in message(), port_4011 in any::<bool>()) {
        let bytes = message.to_bytes().unwrap();
        let settings = Dhcp6Settings::new(Duid::link_layer([2, 0, 0, 0, 0, 1]));
        let meta = RequestMeta6 {
            source: SocketAddrV6::new("fe80::5054:ff:fe12:3456".parse().unwrap(), 546, 0, 2),
            server_addr: "2001:db8::1".parse().unwrap(),
            port: if port_4011 { ListenPort::PxeBootServer } else { ListenPort::Dhcp },
            source_mac: None,
        };
        if let Ok(pending) = classify(&meta, &bytes, &settings, &ClientMacs::default()) {
            let reply = pending.respond(&BootDecision::EXIT, &ProxySettings::default(), &settings).unwrap();
            prop_assert_eq!(reply.target, meta.source);
            let mut parsed = Dhcp6Message::parse(&reply.bytes).unwrap();
            while let Some(inner) = parsed.relayed().cloned() {
                parsed = inner;
            }
            for ia in parsed.ia_nas() {
                prop_assert!(!ia.options.iter().any(|o| matches!(o, Dhcp6Option::IaAddr(_))));
            }
        }
    }
}
