use super::entry::tests::{info, largest};
use super::*;
use crate::identity::tests::{key, peer};
use data_encoding::HEXLOWER;

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|w| w.to_string()).collect()
}

#[test]
fn requests_round_trip_and_are_checked() {
    let search = CatalogRequest::search("Holiday PHOTOS, holiday!").unwrap();
    assert_eq!(
        search,
        CatalogRequest::Search {
            words: words(&["holiday", "photos"])
        }
    );
    for request in [search, CatalogRequest::Browse { page: 3 }] {
        assert_eq!(CatalogRequest::decode(&request.encode()).unwrap(), request);
    }
    assert_eq!(
        CatalogRequest::search("a b ..."),
        Err(CatalogError::NoSearchWords)
    );
    assert_eq!(
        CatalogRequest::search("one two three four five six seven eight nine"),
        Err(CatalogError::TooManyWords(9))
    );
    for bad in [
        vec![],
        words(&["Holiday"]),
        words(&["ab"]),
        words(&["two words"]),
        vec!["x".repeat(65)],
        words(&["abc"; 9]),
    ] {
        let bytes = CatalogRequest::Search { words: bad.clone() }.encode();
        assert!(
            matches!(CatalogRequest::decode(&bytes), Err(DecodeError::Invalid(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn responses_round_trip() {
    let entries: Vec<CatalogEntry> = (0..3)
        .map(|i| info(&format!("file {i}.txt")).sign(&key(1)).unwrap())
        .collect();
    for response in [
        CatalogResponse::Results {
            entries: entries.clone(),
            more: true,
        },
        CatalogResponse::Page {
            entries,
            page: 0,
            total: 3,
        },
        CatalogResponse::BrowseDisabled,
        CatalogResponse::RateLimited {
            retry_after_secs: 5,
        },
        CatalogResponse::Error {
            message: "busy".into(),
        },
    ] {
        assert_eq!(
            CatalogResponse::decode(&response.encode()).unwrap(),
            response
        );
    }
}

#[test]
fn counts_are_bounded() {
    let entry = info("a.txt").sign(&key(1)).unwrap();
    let too_many = CatalogResponse::Results {
        entries: vec![entry.clone(); MAX_SEARCH_RESULTS + 1],
        more: false,
    };
    assert!(CatalogResponse::decode(&too_many.encode()).is_err());
    let full_page = CatalogResponse::Page {
        entries: vec![entry.clone(); PAGE_SIZE],
        page: 1,
        total: 100,
    };
    assert!(CatalogResponse::decode(&full_page.encode()).is_ok());
    let beyond = CatalogResponse::Page {
        entries: vec![entry.clone(); 2],
        page: 1,
        total: 51,
    };
    assert!(matches!(
        CatalogResponse::decode(&beyond.encode()),
        Err(DecodeError::Invalid(_))
    ));
    // An empty page past the last is valid: it is the answer to a page that does not exist.
    for (page, total) in [(3, 0), (2, 100), (u32::MAX, 7)] {
        let past = CatalogResponse::Page {
            entries: vec![],
            page,
            total,
        };
        assert_eq!(CatalogResponse::decode(&past.encode()).unwrap(), past);
    }
    let huge_page = CatalogResponse::Page {
        entries: vec![entry],
        page: u32::MAX,
        total: u32::MAX,
    };
    assert!(CatalogResponse::decode(&huge_page.encode()).is_err());
    let long_error = CatalogResponse::Error {
        message: "x".repeat(MAX_CATALOG_ERROR_LEN + 1),
    };
    assert!(CatalogResponse::decode(&long_error.encode()).is_err());
    let oversized = vec![0u8; MAX_CATALOG_RESPONSE_LEN + 1];
    assert!(matches!(
        CatalogResponse::decode(&oversized),
        Err(DecodeError::TooLarge { .. })
    ));
    assert!(matches!(
        CatalogRequest::decode(&oversized[..MAX_CATALOG_REQUEST_LEN + 1]),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn the_largest_messages_fit_their_limits() {
    let largest_entry = largest();
    let page = CatalogResponse::Page {
        entries: vec![largest_entry; PAGE_SIZE],
        page: u32::MAX / PAGE_SIZE as u32 - 1,
        total: u32::MAX,
    };
    let len = page.encode().len();
    assert!(len <= MAX_CATALOG_RESPONSE_LEN, "{len}");
    assert_eq!(CatalogResponse::decode(&page.encode()).unwrap(), page);
    let request = CatalogRequest::Search {
        words: vec!["𝔸".repeat(64); MAX_QUERY_WORDS],
    };
    let len = request.encode().len();
    assert!(len <= MAX_CATALOG_REQUEST_LEN, "{len}");
    // 𝔸 has no lower-case form, so 64 of them (256 bytes) are the longest keyword.
    assert_eq!(CatalogRequest::decode(&request.encode()).unwrap(), request);
}

#[test]
fn checked_entries_keep_only_the_senders_matching_entries() {
    let mine = info("Holiday Photos.zip").sign(&key(1)).unwrap();
    let unrelated = info("tax return.pdf").sign(&key(1)).unwrap();
    let someone_elses = info("holiday photos.zip").sign(&key(2)).unwrap();
    let mut forged_info = mine.info();
    forged_info.size = 999;
    let forged = CatalogEntry::assemble(forged_info, *mine.publisher(), *mine.signature());
    let response = CatalogResponse::Results {
        entries: vec![mine.clone(), unrelated.clone(), someone_elses, forged],
        more: false,
    };
    let bytes = response.encode();
    let decoded = CatalogResponse::decode(&bytes).unwrap();
    let search = words(&["holiday", "photos"]);
    let checked = decoded
        .clone()
        .into_checked_entries(&peer(1), Some(&search));
    assert_eq!(checked.entries, vec![mine.clone()]);
    assert_eq!(checked.rejected, 3);
    // A page is not filtered by words.
    let page = CatalogResponse::Page {
        entries: vec![mine.clone(), unrelated.clone()],
        page: 0,
        total: 2,
    };
    let checked = page.into_checked_entries(&peer(1), None);
    assert_eq!(checked.entries, vec![mine, unrelated]);
    assert_eq!(checked.rejected, 0);
    assert_eq!(
        CatalogResponse::BrowseDisabled.into_checked_entries(&peer(1), None),
        CheckedEntries::default()
    );
}

#[test]
fn pages_cover_the_list() {
    assert_eq!(page_count(0), 0);
    assert_eq!(page_count(50), 1);
    assert_eq!(page_count(51), 2);
    assert_eq!(page_range(0, 120), 0..50);
    assert_eq!(page_range(2, 120), 100..120);
    assert_eq!(page_range(3, 120), 120..120);
    assert_eq!(page_range(u32::MAX, 120), 120..120);
}

#[test]
fn truncated_and_garbage_input_fails() {
    let entry = info("a.txt").sign(&key(1)).unwrap();
    let response = CatalogResponse::Results {
        entries: vec![entry],
        more: false,
    }
    .encode();
    for len in 0..response.len() {
        assert!(CatalogResponse::decode(&response[..len]).is_err());
    }
    let request = CatalogRequest::search("holiday photos").unwrap().encode();
    for len in 0..request.len() {
        assert!(CatalogRequest::decode(&request[..len]).is_err());
    }
    for seed in 0..300u32 {
        let garbage: Vec<u8> = (0..seed % 200)
            .map(|i| (i * 97 + seed * 13) as u8)
            .collect();
        let _ = CatalogRequest::decode(&garbage);
        let _ = CatalogResponse::decode(&garbage);
    }
}

/// The worked examples of docs/protocol.md, pinned.
#[test]
fn worked_examples() {
    let request = CatalogRequest::search("Holiday photos").unwrap();
    assert_eq!(
        HEXLOWER.encode(&request.encode()),
        "a166736561726368a165776f7264738267686f6c696461796670686f746f73"
    );
    assert_eq!(
        HEXLOWER.encode(&CatalogRequest::Browse { page: 2 }.encode()),
        "a16662726f777365a16470616765 02".replace(' ', "")
    );
    let entry = EntryInfo {
        cid: "bafyr4ih4whrv7mzwlvh34ykp3w7nbk2dimbkqogr7uhatmhz4ujny536py"
            .parse()
            .unwrap(),
        name: "hello.txt".into(),
        size: 12,
        media_type: "text/plain".into(),
        added: 1_700_000_000,
    };
    let publisher = key(1).verifying_key().to_bytes();
    assert_eq!(
        HEXLOWER.encode(&entry.signed_bytes(&publisher)),
        concat!(
            "7032706420636174616c6f6720656e74727920763100",
            "01711e20fcb1e35fb3365d4fbe614fddbed0ab434302a838d1fd0e09b0f9e512dc777e7e",
            "000000000000000c",
            "000000006553f100",
            "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
            "0009",
            "68656c6c6f2e747874",
            "0a",
            "746578742f706c61696e"
        )
    );
    let signed_entry = entry.sign(&key(1)).unwrap();
    assert_eq!(
        HEXLOWER.encode(&codec::encode(&signed_entry)),
        concat!(
            "a7",
            "63636964",
            "582401711e20fcb1e35fb3365d4fbe614fddbed0ab434302a838d1fd0e09b0f9e512dc777e7e",
            "646e616d65",
            "6968656c6c6f2e747874",
            "6473697a65",
            "0c",
            "6a6d656469615f74797065",
            "6a746578742f706c61696e",
            "656164646564",
            "1a6553f100",
            "697075626c6973686572",
            "58208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
            "697369676e6174757265",
            "5840df781db701ee974386b3be1548ca88af5955ee9ceec654cf22b73bacddea2390",
            "398843168fc096c56bb34e7391cfc1273cfcf39eb7db07f4799112886443b605"
        )
    );
    assert_eq!(
        HEXLOWER.encode(&peer(1)),
        "0024080112208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    );
    signed_entry.verify_from(&peer(1)).unwrap();
}
