//! keywords() and name_matches() on arbitrary text (a file name from a peer's catalog
//! entry). At most 16 keywords, each in keyword form, 3 to 64 characters, no repeats;
//! a name matches its own keywords; keyword_key is 34 bytes starting 0x1e 0x20.
#![no_main]

use dht_proto::keyword::{
    is_keyword, keyword_key, keywords, name_matches, MAX_KEYWORDS, MAX_KEYWORD_CHARS,
    MIN_KEYWORD_CHARS,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = match std::str::from_utf8(data) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
    };
    let words = keywords(name);
    assert!(words.len() <= MAX_KEYWORDS);
    for (i, word) in words.iter().enumerate() {
        let chars = word.chars().count();
        assert!(
            (MIN_KEYWORD_CHARS..=MAX_KEYWORD_CHARS).contains(&chars),
            "{word:?}"
        );
        assert!(is_keyword(word), "{word:?} is not in keyword form");
        assert!(!words[..i].contains(word), "repeated {word:?}");
        let key = keyword_key(word);
        assert_eq!(key.len(), 34);
        assert_eq!(&key[..2], &[0x1e, 0x20]);
    }
    if !words.is_empty() {
        assert!(
            name_matches(name, &words),
            "{name:?} does not match its own words"
        );
    }
});
