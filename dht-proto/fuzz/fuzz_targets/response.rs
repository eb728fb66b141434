//! Response::decode on arbitrary bytes. If it decodes, encode() must decode back to an
//! equal response. A manifest carried inside is decoded too, as the node does; a batch
//! stays within its limits of answers and bytes.
#![no_main]

mod common;

use dht_proto::message::{BatchAnswer, MAX_BATCH_DATA, MAX_BATCH_FILES};
use dht_proto::{Manifest, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(resp) = Response::decode(data) {
        let encoded = resp.encode();
        let again = Response::decode(&encoded).expect("encode() output must decode");
        assert_eq!(again, resp, "response does not round-trip");
        assert_eq!(again.encode(), encoded, "encode() is not stable");
        match &resp {
            Response::Bitfield { have } => common::check_wire_bitfield(have),
            Response::Manifest { manifest, .. } => {
                if let Ok(m) = Manifest::decode(manifest) {
                    common::check_manifest(&m);
                }
            }
            Response::Chunks { answers } => {
                assert!(answers.len() <= MAX_BATCH_FILES, "batch size");
                let data: usize = answers.iter().map(BatchAnswer::data_len).sum();
                assert!(data <= MAX_BATCH_DATA, "batch data");
            }
            _ => {}
        }
    }
});
