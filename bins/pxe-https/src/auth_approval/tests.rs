use netboot_core::{BootStage, ClientArch, HardwareInfo};
use proptest::prelude::*;

use super::*;

const WAIT: u64 = 900;
const PICKUP: u64 = 40;

fn request(mac: &str) -> BootRequest {
    let mut request = BootRequest::new(mac.parse().unwrap(), ClientArch::X86Bios, BootStage::Ipxe);
    request.hardware = HardwareInfo {
        manufacturer: Some("QEMU".into()),
        product: Some("Standard PC".into()),
        serial: Some("SN\u{1b}1".into()),
        ..HardwareInfo::default()
    };
    request
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Randomness from a counter: different codes, reproducibly.
fn counter() -> impl FnMut(&mut [u8]) -> bool {
    let mut next = 0u8;
    move |buf: &mut [u8]| {
        for byte in buf.iter_mut() {
            *byte = next;
            next = next.wrapping_add(7);
        }
        true
    }
}

fn waiting(opened: Opened) -> Entry {
    match opened {
        Opened::Waiting(entry) => entry,
        other => panic!("{other:?}"),
    }
}

#[test]
fn codes_use_the_alphabet_and_every_character_of_it() {
    let mut random = |buf: &mut [u8]| getrandom::getrandom(buf).is_ok();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let code = new_code(&mut random).unwrap();
        assert_eq!(code.len(), CODE_LEN);
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        seen.extend(code.bytes());
    }
    assert_eq!(seen.len(), CODE_ALPHABET.len());
    // Bytes past the last whole multiple of the alphabet are skipped, not folded onto it.
    let mut high = |buf: &mut [u8]| {
        buf.fill(255);
        buf[..6].copy_from_slice(&[240, 0, 29, 30, 59, 1]);
        true
    };
    assert_eq!(new_code(&mut high).unwrap(), "2Z2Z32");
    assert_eq!(new_code(&mut |_: &mut [u8]| false), None);
    assert_eq!(
        new_code(&mut |buf: &mut [u8]| {
            buf.fill(250);
            true
        }),
        None
    );
}

#[test]
fn the_same_console_keeps_its_code_and_codes_are_unique() {
    let mut table = Table::new(WAIT, PICKUP, 16);
    let mut random = counter();
    let first = waiting(table.open(&request("52:54:00:00:00:01"), ip("10.0.0.1"), 100, &mut random));
    assert_eq!(first.expires, 100 + WAIT);
    assert_eq!(first.machine.as_deref(), Some("QEMU Standard PC (serial SN?1)"));
    let again = waiting(table.open(&request("52:54:00:00:00:01"), ip("10.0.0.1"), 160, &mut random));
    assert_eq!(
        again, first,
        "asked again while waiting: the same code and expiry"
    );
    // Another address of the same MAC is another console.
    let moved = waiting(table.open(&request("52:54:00:00:00:01"), ip("10.0.0.2"), 160, &mut random));
    assert_ne!(moved.code, first.code);

    // A source of randomness that repeats itself: the code already waiting is skipped.
    let repeated = first.code.clone();
    let mut calls = 0;
    let mut stuck = |buf: &mut [u8]| {
        calls += 1;
        if calls <= 3 {
            // Bytes that make `repeated` again.
            let bytes: Vec<u8> = repeated
                .bytes()
                .map(|c| CODE_ALPHABET.iter().position(|&a| a == c).unwrap() as u8)
                .collect();
            buf.fill(255);
            buf[..CODE_LEN].copy_from_slice(&bytes);
            true
        } else {
            for (i, byte) in buf.iter_mut().enumerate() {
                *byte = (i as u8).wrapping_mul(3).wrapping_add(calls);
            }
            true
        }
    };
    let other = waiting(table.open(&request("52:54:00:00:00:03"), ip("10.0.0.3"), 170, &mut stuck));
    assert_ne!(other.code, first.code);
    assert_eq!(calls, 4);
}

#[test]
fn the_table_is_bounded_and_expired_codes_make_room() {
    let mut table = Table::new(WAIT, PICKUP, 3);
    let mut random = counter();
    for n in 1..=3 {
        waiting(table.open(
            &request(&format!("52:54:00:00:00:0{n}")),
            ip("10.0.0.1"),
            100,
            &mut random,
        ));
    }
    assert_eq!(
        table.open(&request("52:54:00:00:00:04"), ip("10.0.0.1"), 101, &mut random),
        Opened::Full
    );
    // A console already waiting still gets its code when the table is full.
    waiting(table.open(&request("52:54:00:00:00:02"), ip("10.0.0.1"), 101, &mut random));
    assert_eq!(table.waiting(101).len(), 3);
    // Once they expire, they are purged and a new console gets a code.
    assert!(table.waiting(100 + WAIT).is_empty());
    waiting(table.open(
        &request("52:54:00:00:00:04"),
        ip("10.0.0.1"),
        100 + WAIT,
        &mut random,
    ));
    assert_eq!(table.entries.len(), 1);
}

#[test]
fn a_code_answers_only_its_machine_and_address_until_it_expires() {
    let mut table = Table::new(WAIT, PICKUP, 16);
    let mut random = counter();
    let mac: MacAddr = "52:54:00:00:00:01".parse().unwrap();
    let entry = waiting(table.open(&request("52:54:00:00:00:01"), ip("10.0.0.1"), 100, &mut random));
    let code = entry.code.clone();
    assert_eq!(
        table.poll(&code, mac, ip("10.0.0.1"), 105),
        Polled::Waiting(entry.clone())
    );
    assert_eq!(
        table.poll(&code, "52:54:00:00:00:02".parse().unwrap(), ip("10.0.0.1"), 105),
        Polled::OtherMachine
    );
    assert_eq!(table.poll(&code, mac, ip("10.0.0.9"), 105), Polled::OtherMachine);
    assert_eq!(table.poll("ZZZZZZ", mac, ip("10.0.0.1"), 105), Polled::Unknown);
    // A poll by another machine leaves the code alone.
    assert_eq!(
        table.poll(&code, mac, ip("10.0.0.1"), 106),
        Polled::Waiting(entry.clone())
    );
    // At its expiry: expired once, then unknown; too late for an operator too.
    assert_eq!(
        table.decide(&code, ApprovalDecision::Approve, "ops", 100 + WAIT),
        Err(ApprovalError::Unknown(code.clone()))
    );
    assert_eq!(
        table.poll(&code, mac, ip("10.0.0.1"), 100 + WAIT),
        Polled::Expired(entry)
    );
    assert_eq!(
        table.poll(&code, mac, ip("10.0.0.1"), 100 + WAIT),
        Polled::Unknown
    );
}

#[test]
fn decisions_are_taken_once_and_picked_up_once() {
    let mut table = Table::new(WAIT, PICKUP, 16);
    let mut random = counter();
    let mac: MacAddr = "52:54:00:00:00:01".parse().unwrap();
    let approved = waiting(table.open(&request("52:54:00:00:00:01"), ip("10.0.0.1"), 100, &mut random));
    let denied = waiting(table.open(&request("52:54:00:00:00:02"), ip("10.0.0.2"), 100, &mut random));

    // Decided just before expiry: the console still has time to pick it up.
    let at = 100 + WAIT - 1;
    let decided = table
        .decide(
            &approved.code.to_ascii_lowercase(),
            ApprovalDecision::Approve,
            "ops",
            at,
        )
        .unwrap();
    assert_eq!(decided.expires, at + PICKUP);
    assert_eq!(
        table.decide(&approved.code, ApprovalDecision::Deny, "eve", at),
        Err(ApprovalError::AlreadyDecided(approved.code.clone(), "approved"))
    );
    table
        .decide(&denied.code, ApprovalDecision::Deny, "ops", at)
        .unwrap();
    assert_eq!(table.waiting(at), Vec::new(), "decided codes no longer wait");

    match table.poll(&approved.code, mac, ip("10.0.0.1"), at + PICKUP - 1) {
        Polled::Approved(entry, by) => assert_eq!((entry.code, by.as_str()), (approved.code.clone(), "ops")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        table.poll(&approved.code, mac, ip("10.0.0.1"), at + 2),
        Polled::Unknown
    );
    match table.poll(
        &denied.code,
        "52:54:00:00:00:02".parse().unwrap(),
        ip("10.0.0.2"),
        at + 1,
    ) {
        Polled::Denied(_, by) => assert_eq!(by, "ops"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_decided_code_not_picked_up_gives_way_to_a_new_one() {
    let mut table = Table::new(WAIT, PICKUP, 16);
    let mut random = counter();
    let first = waiting(table.open(&request("52:54:00:00:00:01"), ip("10.0.0.1"), 100, &mut random));
    table
        .decide(&first.code, ApprovalDecision::Deny, "ops", 110)
        .unwrap();
    let second = waiting(table.open(&request("52:54:00:00:00:01"), ip("10.0.0.1"), 120, &mut random));
    assert_ne!(second.code, first.code);
    assert_eq!(table.entries.len(), 1);
}

#[test]
fn polls_read_only_well_formed_codes() {
    assert_eq!(
        ApprovalPoll::parse(b"mac=52-54&code=k7qx2m&uuid=x").code,
        "K7QX2M"
    );
    assert_eq!(ApprovalPoll::parse(b"code=K7QX2").code, "");
    assert_eq!(
        ApprovalPoll::parse(b"code=K7QX2O").code,
        "",
        "O is not in the alphabet"
    );
    assert_eq!(ApprovalPoll::parse(b"code=K7Q%582M").code, "");
    assert_eq!(ApprovalPoll::parse(b"").code, "");
}

proptest! {
    #[test]
    fn any_body_parses_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let code = ApprovalPoll::parse(&body).code;
        prop_assert!(code.is_empty() || code.len() == CODE_LEN);
    }
}
