//! StandingRequest::decode on arbitrary bytes. If it decodes, encode() decodes back to
//! an equal request with a stable encoding.
#![no_main]

use dht_proto::standing::{StandingRequest, MAX_STANDING_REQUEST_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = StandingRequest::decode(data) {
        let encoded = request.encode();
        assert!(encoded.len() <= MAX_STANDING_REQUEST_LEN);
        let again = StandingRequest::decode(&encoded).expect("encode() output must decode");
        assert_eq!(again, request);
        assert_eq!(again.encode(), encoded, "encode() is not stable");
    }
});
