//! AccessResponse::decode on arbitrary bytes. If it decodes, encode() decodes back to an
//! equal response with a stable encoding, and a challenge's parameters are either in
//! the accepted range or refused by check() (derive_key is not run: Argon2 would make
//! each execution take 50 ms).
#![no_main]

mod roundtrip;

use dht_proto::access::{AccessResponse, KdfParams, MAX_ACCESS_RESPONSE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = AccessResponse::decode(data) {
        roundtrip::check(
            &response,
            AccessResponse::encode,
            AccessResponse::decode,
            MAX_ACCESS_RESPONSE_LEN,
        );
        if let AccessResponse::Challenge { kdf, .. } = response {
            let in_range = (KdfParams::MIN.m..=KdfParams::MAX.m).contains(&kdf.m)
                && (KdfParams::MIN.t..=KdfParams::MAX.t).contains(&kdf.t)
                && (KdfParams::MIN.p..=KdfParams::MAX.p).contains(&kdf.p);
            assert_eq!(kdf.check().is_ok(), in_range);
        }
    }
});
