//! relay_hop::decode_answer on arbitrary bytes (and frame_length on their start). If it
//! decodes: at most MAX_RELAY_ADDRS relay addresses, and the answer re-encoded decodes
//! to the same answer (status, reservation, limit) with the same expiry.
#![no_main]

use dht_proto::relay_hop::{
    decode_answer, encode_answer, frame_length, MAX_HOP_MESSAGE_LEN, MAX_RELAY_ADDRS,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((len, used))) = frame_length(data) {
        assert!(len <= MAX_HOP_MESSAGE_LEN && used <= 10);
    }
    if let Ok(answer) = decode_answer(data) {
        assert!(data.len() <= MAX_HOP_MESSAGE_LEN);
        if let Some(reservation) = &answer.reservation {
            assert!(reservation.addrs.len() <= MAX_RELAY_ADDRS);
        }
        let framed = encode_answer(&answer);
        if let Ok(Some((len, used))) = frame_length(&framed) {
            let again = decode_answer(&framed[used..used + len]).expect("re-decodes");
            assert_eq!(again, answer);
            assert_eq!(again.accepted_expiry(), answer.accepted_expiry());
        }
    }
});
