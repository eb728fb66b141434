//! Request::decode on arbitrary bytes. If it decodes, encode() must decode back to an
//! equal request. A batch names 1 to `MAX_BATCH_FILES` files.
#![no_main]

mod common;

use dht_proto::message::MAX_BATCH_FILES;
use dht_proto::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::decode(data) {
        let encoded = req.encode();
        let again = Request::decode(&encoded).expect("encode() output must decode");
        assert_eq!(again, req, "request does not round-trip");
        assert_eq!(again.encode(), encoded, "encode() is not stable");
        if let Some(cid) = req.cid() {
            let _ = cid.to_string();
        }
        match &req {
            Request::Bitfield { have, .. } => common::check_wire_bitfield(have),
            Request::Chunks { cids } => {
                assert!(!cids.is_empty() && cids.len() <= MAX_BATCH_FILES, "batch size");
            }
            _ => {}
        }
    }
});
