//! kad_probe::decode_providers_answer on arbitrary bytes (and frame_length on their
//! start). If it decodes: at most MAX_PROVIDERS providers with at most
//! MAX_ADDRS_PER_PEER addresses each, and the answer re-encoded decodes to the same
//! providers and key.
#![no_main]

use dht_proto::kad_probe::{
    decode_providers_answer, encode_providers_answer, frame_length, MAX_ADDRS_PER_PEER,
    MAX_PROVIDERS,
};
use dht_proto::kademlia::MAX_KAD_MESSAGE_LEN;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((len, used))) = frame_length(data) {
        assert!(len <= MAX_KAD_MESSAGE_LEN && used <= 10);
    }
    if let Ok(answer) = decode_providers_answer(data) {
        assert!(answer.providers.len() <= MAX_PROVIDERS);
        assert!(answer.providers.iter().all(|p| p.addrs.len() <= MAX_ADDRS_PER_PEER));
        let framed = encode_providers_answer(&answer);
        if let Ok(Some((len, used))) = frame_length(&framed) {
            let again = decode_providers_answer(&framed[used..used + len]).expect("re-decodes");
            assert_eq!(again.providers, answer.providers);
            assert_eq!(again.key, answer.key);
        }
    }
});
