//! AccessRequest::decode on arbitrary bytes. If it decodes, encode() decodes back to an
//! equal request with a stable encoding.
#![no_main]

use dht_proto::access::{AccessRequest, MAX_ACCESS_REQUEST_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = AccessRequest::decode(data) {
        let encoded = request.encode();
        assert!(encoded.len() <= MAX_ACCESS_REQUEST_LEN);
        let again = AccessRequest::decode(&encoded).expect("encode() output must decode");
        assert_eq!(again, request);
        assert_eq!(again.encode(), encoded, "encode() is not stable");
    }
});
