//! Vectors of share tickets (`vectors/tickets.json`).

use super::*;

fn example_ticket() -> Ticket {
    Ticket {
        cid: file_cid(),
        directory: false,
        name: "hello.txt".into(),
        size: 12,
        provider: peer(1),
        addrs: vec![
            common_bytes("04cb007107061703"),
            common_bytes("04cb00710791021703cd03"),
            [
                &common_bytes("04c6336402061703a50326")[..],
                &peer(2),
                &[0xa2, 0x02],
            ]
            .concat(),
        ],
        expires: Some(1_700_086_400),
        password: true,
        share_id: SHARE_ID,
    }
}

fn common_bytes(text: &str) -> Vec<u8> {
    common::bytes(&json!(text))
}

pub(super) fn ticket_vectors() -> Vec<Value> {
    let mut out = Vec::new();
    let ticket = example_ticket();
    let plain = Ticket {
        directory: true,
        addrs: vec![],
        expires: None,
        password: false,
        ..example_ticket()
    };
    for (name, t) in [
        ("three addresses, password, expiry", &ticket),
        ("directory, no address", &plain),
    ] {
        out.push(json!({
            "name": name, "valid": true, "text": t.encode().expect("encodes"),
            "binary": hex(&t.to_bytes().expect("encodes")), "value": ticket_json(t),
        }));
    }
    let text = ticket.encode().expect("encodes");
    let with = |name: &str, input: String| json!({ "name": name, "valid": true, "text": input, "value": ticket_json(&ticket) });
    out.push(with("upper case", text.to_uppercase()));
    out.push(with(
        "wrapped over lines",
        format!("{}\n  {}\n", &text[..100], &text[100..]),
    ));
    let mut changed: Vec<char> = text.chars().collect();
    changed[100] = if changed[100] == 'a' { 'b' } else { 'a' };
    let mut length_typo: Vec<char> = text.chars().collect();
    length_typo[6] = if length_typo[6] == 'a' { 'b' } else { 'a' };
    // A body with a valid checksum and flags bit 7 set.
    let bytes = ticket.to_bytes().expect("encodes");
    let mut flagged = bytes[..bytes.len() - CHECKSUM_LEN].to_vec();
    flagged[2] |= 0x80;
    let sum = checksum(&flagged);
    flagged.extend_from_slice(&sum);
    let flagged_text = format!(
        "p2pd1{}",
        data_encoding::BASE32_NOPAD.encode(&flagged).to_lowercase()
    );
    let refused = [
        ("empty", "   ".to_string(), "empty"),
        ("a CID, not a ticket", FILE_CID.to_string(), "not_a_ticket"),
        (
            "version 2",
            text.replacen("p2pd1", "p2pd2", 1),
            "unknown_version",
        ),
        (
            "the digit 1 inside",
            format!("{}1{}", &text[..40], &text[41..]),
            "bad_character",
        ),
        (
            "cut to 200 characters",
            text[..200].to_string(),
            "truncated",
        ),
        (
            "cut by one character",
            text[..text.len() - 1].to_string(),
            "truncated",
        ),
        (
            "one character added",
            format!("{text}a"),
            "trailing_characters",
        ),
        (
            "eight characters added",
            format!("{text}abcdefgh"),
            "trailing_characters",
        ),
        (
            "one character changed",
            changed.into_iter().collect(),
            "bad_checksum",
        ),
        (
            "a character of the length field changed",
            length_typo.into_iter().collect(),
            "bad_checksum",
        ),
        (
            "unknown flag with a valid checksum",
            flagged_text,
            "malformed",
        ),
        (
            "over 4096 characters",
            "p2pd1".to_string() + &"a".repeat(4092),
            "too_long",
        ),
    ];
    for (name, input, error) in refused {
        out.push(json!({ "name": name, "valid": false, "text": input, "error": error }));
    }
    out
}
