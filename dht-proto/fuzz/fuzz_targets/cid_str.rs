//! Cid::from_str on arbitrary UTF-8. If it parses, Display must give a string that parses
//! to an equal CID, and that string must be the (trimmed) input: a CID has one spelling.
#![no_main]

use dht_proto::Cid;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Every input maps to a string: its longest valid UTF-8 prefix.
    let s = match std::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).expect("valid prefix"),
    };
    if let Ok(cid) = s.parse::<Cid>() {
        let text = cid.to_string();
        let again: Cid = text.parse().expect("Display output must parse");
        assert_eq!(again, cid, "Display does not round-trip");
        assert_eq!(text, s.trim(), "two spellings of one CID");
        assert_eq!(Cid::from_bytes(&cid.to_bytes()), Ok(cid));
    }
});
