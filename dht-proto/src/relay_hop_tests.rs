use super::*;

fn unframe(framed: &[u8]) -> &[u8] {
    let (len, used) = frame_length(framed).unwrap().unwrap();
    assert_eq!(framed.len(), used + len);
    &framed[used..]
}

fn accepted(expire: u64) -> HopAnswer {
    HopAnswer {
        status: HopStatus::Ok,
        reservation: Some(Reservation {
            expire: Some(expire),
            addrs: vec![vec![4, 127, 0, 0, 1, 6, 0x1f, 0x90]],
            voucher: None,
        }),
        limit: Some(CircuitLimit {
            duration_secs: Some(3600),
            data_bytes: Some(0),
        }),
    }
}

#[test]
fn reserve_is_the_message_libp2p_relay_expects() {
    // HopMessage { type (field 1, varint) = RESERVE (0) } behind a one-byte length.
    assert_eq!(encode_reserve(), [2, 0x08, 0]);
}

#[test]
fn an_accepted_answer_round_trips_and_names_its_expiry() {
    let answer = accepted(1_800_000_000);
    let framed = encode_answer(&answer);
    let decoded = decode_answer(unframe(&framed)).unwrap();
    assert_eq!(decoded, answer);
    assert_eq!(decoded.accepted_expiry(), Some(1_800_000_000));
}

/// What a libp2p-relay 0.22 server (libp2p 0.57.1: `reservation_duration` 3600 s,
/// `max_circuit_duration` 3600 s, no byte limit, one external address
/// `/memory/<port>/p2p/<relay>`) answered to [`encode_reserve`] on a real connection,
/// byte for byte, captured by the node's `network::relay_expiry_tests` on 2026-12-06.
const LIBP2P_RELAY_ANSWER: [u8; 72] = [
    0x08, 0x02, 0x1a, 0x3b, 0x08, 0xcb, 0xf7, 0xd4, 0xd8, 0x06, 0x12, 0x33, 0x89, 0x06, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x1e, 0x8a, 0x72, 0xa5, 0x03, 0x26, 0x00, 0x24, 0x08, 0x01, 0x12, 0x20, 0x19,
    0x69, 0x5b, 0xe2, 0x74, 0x04, 0x52, 0x1e, 0xbf, 0x4a, 0xf4, 0x46, 0xbb, 0x87, 0xe7, 0xd0, 0x63,
    0x18, 0x0f, 0x58, 0x4e, 0x68, 0xd1, 0xed, 0x6f, 0x02, 0xc6, 0xc8, 0xb7, 0xf5, 0xf0, 0x73, 0x22,
    0x05, 0x08, 0x90, 0x1c, 0x10, 0x00, 0x28, 0x64,
];

#[test]
fn an_answer_written_by_libp2p_relay_decodes() {
    let answer = decode_answer(&LIBP2P_RELAY_ANSWER).unwrap();
    assert_eq!(answer.status, HopStatus::Ok);
    assert_eq!(answer.accepted_expiry(), Some(1796553675));
    let reservation = answer.reservation.as_ref().unwrap();
    assert_eq!(reservation.addrs.len(), 1);
    // /memory/<port> (code 777), then /p2p/ (code 421) and the relay's 38-byte id.
    assert_eq!(reservation.addrs[0][..2], [0x89, 0x06]);
    assert_eq!(reservation.addrs[0].len(), 51);
    assert_eq!(reservation.voucher, None);
    assert_eq!(
        answer.limit,
        Some(CircuitLimit {
            duration_secs: Some(3600),
            data_bytes: Some(0)
        })
    );
    // Our encoder writes the same bytes, in the same order.
    assert_eq!(unframe(&encode_answer(&answer)), &LIBP2P_RELAY_ANSWER[..]);
}

#[test]
fn a_refusal_names_no_expiry() {
    // libp2p-relay's denial: type STATUS, status RESOURCE_LIMIT_EXCEEDED, nothing else.
    let answer = decode_answer(&[0x08, 2, 0x28, 0xc9, 0x01]).unwrap();
    assert_eq!(answer.status, HopStatus::ResourceLimitExceeded);
    assert_eq!(answer.accepted_expiry(), None);
    // Accepted but without an expiry: none is made up.
    let mut no_expiry = accepted(1);
    no_expiry.reservation.as_mut().unwrap().expire = None;
    let framed = encode_answer(&no_expiry);
    assert_eq!(
        decode_answer(unframe(&framed)).unwrap().accepted_expiry(),
        None
    );
    assert_eq!(HopStatus::from_code(999), HopStatus::Other(999));
    assert_eq!(HopStatus::Other(999).code(), 999);
}

#[test]
fn unknown_fields_are_skipped_and_addresses_bounded() {
    let mut answer = accepted(5);
    answer.reservation.as_mut().unwrap().addrs = vec![vec![1]; MAX_RELAY_ADDRS + 5];
    let framed = encode_answer(&answer);
    let mut message = unframe(&framed).to_vec();
    // A peer (field 2), a fixed64 and a fixed32 field, an unknown varint.
    message.extend_from_slice(&[0x12, 2, 0x0a, 0]);
    message.extend_from_slice(&[0x31, 1, 2, 3, 4, 5, 6, 7, 8]);
    message.extend_from_slice(&[0x3d, 1, 2, 3, 4]);
    message.extend_from_slice(&[0x40, 7]);
    let decoded = decode_answer(&message).unwrap();
    assert_eq!(
        decoded.reservation.as_ref().unwrap().addrs.len(),
        MAX_RELAY_ADDRS
    );
    assert_eq!(decoded.accepted_expiry(), Some(5));
}

#[test]
fn malformed_answers_are_refused() {
    let framed = encode_answer(&accepted(1_800_000_000));
    let message = unframe(&framed);
    for cut in 1..message.len() {
        assert!(
            decode_answer(&message[..cut]).is_err(),
            "a message cut at {cut} bytes decoded"
        );
    }
    let malformed =
        |bytes: &[u8]| matches!(decode_answer(bytes), Err(HopDecodeError::Malformed(_)));
    assert!(malformed(&[]), "no type");
    assert!(malformed(&[0x28, 100]), "no type");
    assert!(malformed(&[0x08, 2]), "no status");
    assert!(malformed(&[0x0a, 1, 2, 0x28, 100]), "type as bytes");
    assert!(malformed(&[0x08, 2, 0x2a, 0, 0x28, 100]), "status as bytes");
    assert!(
        malformed(&[0x08, 2, 0x18, 1, 0x28, 100]),
        "reservation as a varint"
    );
    assert!(
        malformed(&[0x08, 2, 0x1a, 0, 0x1a, 0, 0x28, 100]),
        "reservation twice"
    );
    assert!(
        malformed(&[0x08, 2, 0x22, 0, 0x22, 0, 0x28, 100]),
        "limit twice"
    );
    assert!(
        malformed(&[0x08, 2, 0x1a, 2, 0x0a, 0, 0x28, 100]),
        "expire as bytes"
    );
    assert!(
        malformed(&[0x08, 2, 0x1a, 2, 0x10, 0, 0x28, 100]),
        "addr as a varint"
    );
    assert!(
        malformed(&[0x08, 2, 0x22, 2, 0x12, 0, 0x28, 100]),
        "data as bytes"
    );
    assert!(
        malformed(&[0x08, 2, 0x22, 6, 0x08, 0x80, 0x80, 0x80, 0x80, 0x10, 0x28, 100]),
        "a duration over uint32"
    );
    assert!(malformed(&[0x0b]), "unknown wire type");
    assert!(malformed(&[
        0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1
    ]));
    // A reservation whose inner length runs past the message.
    assert_eq!(
        decode_answer(&[0x08, 2, 0x1a, 9, 0x08, 1]),
        Err(HopDecodeError::Truncated)
    );
    // A RESERVE or CONNECT is not an answer.
    assert_eq!(decode_answer(&[0x08, 0]), Err(HopDecodeError::WrongType(0)));
    assert_eq!(
        decode_answer(&[0x08, 1, 0x28, 100]),
        Err(HopDecodeError::WrongType(1))
    );
    assert_eq!(
        decode_answer(&vec![0; MAX_HOP_MESSAGE_LEN + 1]),
        Err(HopDecodeError::TooLarge(MAX_HOP_MESSAGE_LEN as u64 + 1))
    );
}

#[test]
fn frame_lengths_are_bounded() {
    assert_eq!(frame_length(&[0x80]), Ok(None));
    assert_eq!(frame_length(&[0x80, 0x20]), Ok(Some((4096, 2))));
    assert_eq!(
        frame_length(&[0x81, 0x20]),
        Err(HopDecodeError::TooLarge(4097))
    );
    assert!(matches!(
        frame_length(&[0xff; 11]),
        Err(HopDecodeError::Malformed(_))
    ));
}
