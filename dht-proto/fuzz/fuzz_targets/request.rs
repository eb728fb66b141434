//! Request::decode on arbitrary bytes. If it decodes, encode() must decode back to an
//! equal request.
#![no_main]

mod common;

use dht_proto::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::decode(data) {
        let encoded = req.encode();
        let again = Request::decode(&encoded).expect("encode() output must decode");
        assert_eq!(again, req, "request does not round-trip");
        assert_eq!(again.encode(), encoded, "encode() is not stable");
        let _ = req.cid().to_string();
        if let Request::Bitfield { have, .. } = &req {
            common::check_wire_bitfield(have);
        }
    }
});
