use super::*;
use crate::identity::tests::peer;
use data_encoding::HEXLOWER;

fn addr(text: &str) -> Vec<u8> {
    text.parse::<multiaddr::Multiaddr>().unwrap().to_vec()
}

/// The three addresses of the worked example in docs/protocol.md: a direct TCP address,
/// a direct QUIC address and a relay circuit address.
fn example_addrs() -> Vec<Vec<u8>> {
    let relay = libp2p_identity::PeerId::from_bytes(&peer(2)).unwrap();
    vec![
        addr("/ip4/203.0.113.7/tcp/5891"),
        addr("/ip4/203.0.113.7/udp/5891/quic-v1"),
        addr(&format!(
            "/ip4/198.51.100.2/tcp/5891/p2p/{relay}/p2p-circuit"
        )),
    ]
}

pub(crate) fn example() -> Ticket {
    Ticket {
        cid: "bafyr4ih4whrv7mzwlvh34ykp3w7nbk2dimbkqogr7uhatmhz4ujny536py"
            .parse()
            .unwrap(),
        directory: false,
        name: "hello.txt".into(),
        size: 12,
        provider: peer(1),
        addrs: example_addrs(),
        expires: Some(1_700_086_400),
        password: true,
        share_id: [0x5e, 0x1f, 0x0a, 0x33, 0x9c, 0x41, 0xd2, 0x07],
    }
}

#[test]
fn round_trips_in_every_case() {
    let ticket = example();
    let text = ticket.encode().unwrap();
    assert!(text.starts_with("p2pd1"));
    assert_eq!(text, text.to_ascii_lowercase());
    assert_eq!(Ticket::decode(&text).unwrap(), ticket);
    assert_eq!(Ticket::decode(&text.to_ascii_uppercase()).unwrap(), ticket);
    assert_eq!(Ticket::decode(&ticket.qr_text().unwrap()).unwrap(), ticket);
    assert_eq!(text.parse::<Ticket>().unwrap(), ticket);
    assert_eq!(ticket.to_string(), text);
    // Wrapped over lines and indented, as a mail client might.
    let wrapped: String = text
        .as_bytes()
        .chunks(60)
        .map(|line| format!("  {}\n", std::str::from_utf8(line).unwrap()))
        .collect();
    assert_eq!(Ticket::decode(&wrapped).unwrap(), ticket);
    assert_eq!(
        Ticket::from_bytes(&ticket.to_bytes().unwrap()).unwrap(),
        ticket
    );
    let plain = Ticket {
        expires: None,
        password: false,
        directory: true,
        addrs: vec![],
        size: MAX_TICKET_NUMBER,
        ..example()
    };
    assert_eq!(Ticket::decode(&plain.encode().unwrap()).unwrap(), plain);
}

#[test]
fn three_addresses_make_about_300_characters() {
    let text = example().encode().unwrap();
    assert_eq!(text.len(), 293, "{text}");
    let binary = example().to_bytes().unwrap();
    assert_eq!(binary.len(), 180);
}

#[test]
fn the_largest_ticket_fits_the_text_limit() {
    let largest = Ticket {
        name: "n".repeat(MAX_TICKET_NAME_LEN),
        size: MAX_TICKET_NUMBER,
        expires: Some(MAX_TICKET_NUMBER),
        provider: vec![1; MAX_PEER_ID_LEN],
        addrs: vec![vec![4; MAX_TICKET_ADDR_LEN]; MAX_TICKET_ADDRS],
        ..example()
    };
    let text = largest.encode().unwrap();
    assert_eq!(text.len(), 3917);
    assert!(text.len() <= MAX_TICKET_TEXT_LEN);
    assert_eq!(Ticket::decode(&text).unwrap(), largest);
}

#[test]
fn a_changed_character_is_a_bad_checksum() {
    let text = example().encode().unwrap();
    let mut bad_checksum = 0;
    // Change each character after the prefix to another base32 character (the first
    // four carry the length field).
    for i in 5..text.len() {
        let mut chars: Vec<char> = text.chars().collect();
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        match Ticket::decode(&typo) {
            Err(TicketError::BadChecksum) => bad_checksum += 1,
            other => panic!("typo at {i} gave {other:?}"),
        }
    }
    assert_eq!(bad_checksum, text.len() - 5);
    // Two swapped neighbours.
    let mut chars: Vec<char> = text.chars().collect();
    let j = (20..chars.len() - 1)
        .find(|&j| chars[j] != chars[j + 1])
        .unwrap();
    chars.swap(j, j + 1);
    let swapped: String = chars.into_iter().collect();
    assert_eq!(Ticket::decode(&swapped), Err(TicketError::BadChecksum));
}

#[test]
fn a_cut_ticket_is_truncated_and_a_longer_one_has_extra_characters() {
    let text = example().encode().unwrap();
    for keep in 5..text.len() {
        match Ticket::decode(&text[..keep]) {
            Err(TicketError::Truncated { missing }) => {
                assert!(
                    missing >= 1 && missing <= text.len() - keep + 2,
                    "{keep}: {missing}"
                )
            }
            other => panic!("cut to {keep} gave {other:?}"),
        }
    }
    for extra in ["a", "ab", "abcdefgh", "q7"] {
        assert!(
            matches!(
                Ticket::decode(&format!("{text}{extra}")),
                Err(TicketError::TrailingCharacters { .. })
            ),
            "{extra}"
        );
    }
}

#[test]
fn other_mistakes_have_their_own_errors() {
    let text = example().encode().unwrap();
    assert_eq!(Ticket::decode("   "), Err(TicketError::Empty));
    assert_eq!(
        Ticket::decode("bafyr4ih4whrv7mzwlvh34ykp3w7nbk2dimbkqogr7uhatmhz4ujny536py"),
        Err(TicketError::NotATicket)
    );
    assert_eq!(
        Ticket::decode(&text.replacen("p2pd1", "p2pd2", 1)),
        Err(TicketError::UnknownVersion('2'))
    );
    assert!(matches!(
        Ticket::decode("p2pd"),
        Err(TicketError::Truncated { .. })
    ));
    let mut chars: Vec<char> = text.chars().collect();
    chars[40] = '1';
    let typo: String = chars.into_iter().collect();
    assert_eq!(
        Ticket::decode(&typo),
        Err(TicketError::BadCharacter {
            position: 41,
            character: '1'
        })
    );
    assert!(matches!(
        Ticket::decode(&format!("{text}é")),
        Err(TicketError::BadCharacter {
            character: 'é', ..
        })
    ));
    assert_eq!(
        Ticket::decode(&"a".repeat(MAX_TICKET_TEXT_LEN + 1)),
        Err(TicketError::TooLong(MAX_TICKET_TEXT_LEN + 1))
    );
    assert!(looks_like_ticket(" P2PD1abc"));
    assert!(!looks_like_ticket("bafy…"));
}

/// Binary bodies with a valid length and checksum but broken content: what a hostile
/// program could write. Each is `Malformed`, never a panic.
#[test]
fn crafted_tickets_are_malformed() {
    let seal = |body: &[u8]| {
        let mut out = ((body.len() + CHECKSUM_LEN) as u16).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        let sum = checksum(&out);
        out.extend_from_slice(&sum);
        out
    };
    let good = example().to_bytes().unwrap();
    let body = &good[2..good.len() - CHECKSUM_LEN];
    assert_eq!(Ticket::from_bytes(&seal(body)).unwrap(), example());
    let mut cases: Vec<Vec<u8>> = Vec::new();
    let mut flags = body.to_vec();
    flags[0] |= 0x80;
    cases.push(flags);
    let mut chunk_cid = body.to_vec();
    chunk_cid[2] = 0x55; // codec raw
    cases.push(chunk_cid);
    cases.push(body[..body.len() - 1].to_vec());
    cases.push([body, &[0]].concat());
    for cut in 0..body.len() {
        cases.push(body[..cut].to_vec());
    }
    for case in cases {
        match Ticket::from_bytes(&seal(&case)) {
            Err(TicketError::Malformed(_)) => {}
            other => panic!("{} gave {other:?}", HEXLOWER.encode(&case)),
        }
    }
    // A checksum-valid ticket whose length field lies.
    let mut lying = good.clone();
    lying[1] += 1;
    let n = lying.len() - CHECKSUM_LEN;
    let sum = checksum(&lying[..n]);
    lying[n..].copy_from_slice(&sum);
    assert!(matches!(
        Ticket::from_bytes(&lying),
        Err(TicketError::Malformed(_))
    ));
}

#[test]
fn building_an_invalid_ticket_fails() {
    let cases = [
        Ticket {
            name: String::new(),
            ..example()
        },
        Ticket {
            name: "a\u{1b}[31m".into(),
            ..example()
        },
        Ticket {
            provider: vec![],
            ..example()
        },
        Ticket {
            addrs: vec![vec![4]; MAX_TICKET_ADDRS + 1],
            ..example()
        },
        Ticket {
            addrs: vec![vec![]],
            ..example()
        },
        Ticket {
            size: MAX_TICKET_NUMBER + 1,
            ..example()
        },
        Ticket {
            cid: Cid::for_chunk(b"x"),
            ..example()
        },
    ];
    for ticket in cases {
        assert!(matches!(ticket.encode(), Err(TicketError::Invalid(_))));
    }
}

#[test]
fn expiry_is_inclusive() {
    let ticket = example();
    assert!(!ticket.is_expired_at(1_700_086_399));
    assert!(ticket.is_expired_at(1_700_086_400));
    assert!(!Ticket {
        expires: None,
        ..example()
    }
    .is_expired_at(u64::MAX));
}

/// The worked example of docs/protocol.md, pinned byte for byte.
#[test]
fn worked_example() {
    let ticket = example();
    assert_eq!(
        HEXLOWER.encode(&ticket.to_bytes().unwrap()),
        concat!(
            "00b2",
            "05",
            "01711e20fcb1e35fb3365d4fbe614fddbed0ab434302a838d1fd0e09b0f9e512dc777e7e",
            "0c",
            "8085d5aa06",
            "5e1f0a339c41d207",
            "26",
            "0024080112208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
            "09",
            "68656c6c6f2e747874",
            "03",
            "08",
            "04cb007107061703",
            "0b",
            "04cb00710791021703cd03",
            "33",
            "04c6336402061703a50326",
            "0024080112208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394",
            "a202",
            "6725342a"
        )
    );
    assert_eq!(
        ticket.encode().unwrap(),
        concat!(
            "p2pd1aczakalrdyqpzmpdl6ztmxkpxzqu7xn62cvugqycva4nd7iobgyptzis3r3x47qmqcc5lkqgly",
            "pqum44ihjaojqaeqeacerarkeohxlubhyzl7ks3mwtzos5olfgocn7dwkbeg7toseadnapn5oas2dfn",
            "rwg6ltupb2agcaezmahcbygc4bqwbglabyqpeicc4b42aztatddgzacaylqhjideyacicabciqicolx",
            "b2uh2f27k2rvizwdjr7mzs4nrki3j3rxujo7md23r7e3hffcajtsknbk"
        )
    );
    let addrs: Vec<String> = example_addrs().iter().map(|a| HEXLOWER.encode(a)).collect();
    assert_eq!(addrs[0], "04cb007107061703");
    assert_eq!(addrs[1], "04cb00710791021703cd03");
    assert!(addrs[2].starts_with("04c6336402061703a50326"));
}
