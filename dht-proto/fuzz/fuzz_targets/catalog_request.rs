//! CatalogRequest::decode on arbitrary bytes. If it decodes: encode() decodes back to an
//! equal request with a stable encoding, and every search word is a keyword as
//! `keywords()` produces it, within the word-count limit.
#![no_main]

mod roundtrip;

use dht_proto::catalog::{CatalogRequest, MAX_CATALOG_REQUEST_LEN, MAX_QUERY_WORDS};
use dht_proto::keyword::{is_keyword, keyword_key, keywords};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = CatalogRequest::decode(data) {
        roundtrip::check(
            &request,
            CatalogRequest::encode,
            CatalogRequest::decode,
            MAX_CATALOG_REQUEST_LEN,
        );
        if let CatalogRequest::Search { words } = &request {
            assert!(!words.is_empty() && words.len() <= MAX_QUERY_WORDS);
            for word in words {
                assert!(is_keyword(word));
                assert_eq!(keywords(word), vec![word.clone()]);
                assert_eq!(keyword_key(word).len(), 34);
            }
        }
    }
});
