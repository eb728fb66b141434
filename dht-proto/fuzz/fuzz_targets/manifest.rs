//! Manifest::decode on arbitrary bytes. If it decodes, the input must be exactly the
//! canonical encoding, and encode() must decode back to an equal manifest (see
//! common::check_manifest for the other invariants).
#![no_main]

mod common;

use dht_proto::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::decode(data) {
        assert_eq!(
            m.encode(),
            data,
            "a manifest decoded from a non-canonical encoding"
        );
        common::check_manifest(&m);
    }
});
