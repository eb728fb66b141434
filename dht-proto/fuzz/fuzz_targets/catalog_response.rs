//! CatalogResponse::decode on arbitrary bytes. If it decodes: encode() decodes back to
//! an equal response with a stable encoding; every entry passes its own checks and
//! re-encodes within MAX_ENTRY_LEN; counts are within their limits; checking entries
//! against any sender never panics and never keeps an entry that fails verify_from.
#![no_main]

mod roundtrip;

use dht_proto::catalog::{
    CatalogResponse, EntryInfo, MAX_CATALOG_RESPONSE_LEN, MAX_SEARCH_RESULTS, PAGE_SIZE,
};
use dht_proto::identity::ed25519_peer_id;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = CatalogResponse::decode(data) {
        roundtrip::check(
            &response,
            CatalogResponse::encode,
            CatalogResponse::decode,
            MAX_CATALOG_RESPONSE_LEN,
        );
        let entries = match &response {
            CatalogResponse::Results { entries, .. } => {
                assert!(entries.len() <= MAX_SEARCH_RESULTS);
                entries.clone()
            }
            CatalogResponse::Page {
                entries,
                page,
                total,
            } => {
                assert!(entries.len() <= PAGE_SIZE);
                assert!(
                    u64::from(*page) * PAGE_SIZE as u64 + entries.len() as u64 <= u64::from(*total)
                );
                entries.clone()
            }
            _ => Vec::new(),
        };
        for entry in &entries {
            let info: EntryInfo = entry.info();
            info.check().expect("a decoded entry passes check()");
            let _ = entry.verify();
        }
        let words = vec!["holiday".to_string()];
        let sender = entries
            .first()
            .map(|e| ed25519_peer_id(e.publisher()).to_vec())
            .unwrap_or_default();
        let checked = response.into_checked_entries(&sender, Some(&words));
        assert_eq!(checked.entries.len() + checked.rejected, entries.len());
        for kept in &checked.entries {
            kept.verify_from(&sender).expect("kept entries verify");
        }
    }
});
