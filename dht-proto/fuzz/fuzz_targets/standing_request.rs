//! StandingRequest::decode on arbitrary bytes. If it decodes, encode() decodes back to
//! an equal request with a stable encoding.
#![no_main]

mod roundtrip;

use dht_proto::standing::{StandingRequest, MAX_STANDING_REQUEST_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = StandingRequest::decode(data) {
        roundtrip::check(
            &request,
            StandingRequest::encode,
            StandingRequest::decode,
            MAX_STANDING_REQUEST_LEN,
        );
    }
});
