//! AccessRequest::decode on arbitrary bytes. If it decodes, encode() decodes back to an
//! equal request with a stable encoding.
#![no_main]

mod roundtrip;

use dht_proto::access::{AccessRequest, MAX_ACCESS_REQUEST_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = AccessRequest::decode(data) {
        roundtrip::check(
            &request,
            AccessRequest::encode,
            AccessRequest::decode,
            MAX_ACCESS_REQUEST_LEN,
        );
    }
});
