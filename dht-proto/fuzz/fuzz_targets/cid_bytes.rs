//! Cid::from_bytes on arbitrary bytes. If it parses, to_bytes must give back the input
//! exactly (one binary form per CID) and parse to an equal CID; so must Display.
#![no_main]

use dht_proto::cid::CID_BYTES_LEN;
use dht_proto::Cid;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cid) = Cid::from_bytes(data) {
        let bytes = cid.to_bytes();
        assert_eq!(bytes.len(), CID_BYTES_LEN);
        assert_eq!(
            Cid::from_bytes(&bytes),
            Ok(cid),
            "to_bytes does not round-trip"
        );
        assert_eq!(bytes, data, "two binary forms of one CID");
        assert_eq!(cid.to_string().parse::<Cid>(), Ok(cid));
    }
});
