//! Vectors of the catalog protocol (`vectors/catalog.json`).

use super::*;

/// A catalog entry as a peer could send it, with no check.
#[derive(Serialize)]
struct RawEntry {
    cid: Cid,
    name: String,
    size: u64,
    media_type: String,
    added: u64,
    #[serde(with = "serde_bytes")]
    publisher: [u8; 32],
    #[serde(with = "serde_bytes")]
    signature: [u8; 64],
}

fn info(name: &str) -> EntryInfo {
    EntryInfo {
        cid: file_cid(),
        name: name.into(),
        size: 12,
        media_type: dht_proto::media_type::media_type_for_name(name).into(),
        added: 1_700_000_000,
    }
}

pub(super) fn catalog_vectors() -> Vec<Value> {
    let mut out = Vec::new();
    let publisher = key(1).verifying_key().to_bytes();
    // Signed entries.
    for (name, seed, entry_name) in [
        ("entry for hello.txt", 1u8, "hello.txt"),
        ("entry with a non-ASCII name", 1, "Мастер и Маргарита.epub"),
        ("entry of another publisher", 2, "Holiday Photos.zip"),
    ] {
        let entry = info(entry_name).sign(&key(seed)).expect("signs");
        out.push(json!({
            "name": name, "type": "entry", "valid": true,
            "seed": hex(&[seed; 32]),
            "signed_bytes": hex(&info(entry_name).signed_bytes(entry.publisher())),
            "bytes": hex(&codec::encode(&entry)), "value": entry_json(&entry),
            "sender": hex(&peer(seed)), "verify": "ok",
        }));
    }
    let entry = info("hello.txt").sign(&key(1)).expect("signs");
    out.push(json!({
        "name": "entry relayed by another peer", "type": "entry", "valid": true,
        "bytes": hex(&codec::encode(&entry)), "value": entry_json(&entry),
        "sender": hex(&peer(2)), "verify": "wrong_publisher",
    }));
    let mut forged = RawEntry {
        cid: file_cid(),
        name: "hello.txt".into(),
        size: 13,
        media_type: "text/plain".into(),
        added: 1_700_000_000,
        publisher,
        signature: *entry.signature(),
    };
    out.push(json!({
        "name": "entry whose size was changed after signing", "type": "entry", "valid": true,
        "bytes": hex(&codec::encode(&forged)), "sender": hex(&peer(1)), "verify": "bad_signature",
    }));
    forged.size = 12;
    type Edit = fn(&mut RawEntry);
    let refused: [(&str, Edit); 5] = [
        ("entry with a chunk CID", |e| e.cid = Cid::for_chunk(b"x")),
        ("entry with an empty name", |e| e.name = String::new()),
        ("entry with a newline in its name", |e| {
            e.name = "a\nb".into()
        }),
        ("entry with a 256-byte name", |e| e.name = "x".repeat(256)),
        ("entry with media type parameters", |e| {
            e.media_type = "text/plain; charset=utf-8".into()
        }),
    ];
    for (name, edit) in refused {
        let mut raw = RawEntry {
            name: forged.name.clone(),
            media_type: forged.media_type.clone(),
            ..forged
        };
        edit(&mut raw);
        out.push(json!({
            "name": name, "type": "entry", "valid": false, "bytes": hex(&codec::encode(&raw)),
        }));
    }
    // Requests.
    let requests = [
        (
            "Search two words",
            CatalogRequest::search("Holiday photos").expect("search"),
        ),
        (
            "Search non-ASCII",
            CatalogRequest::search("Мастер Straße").expect("search"),
        ),
        ("Browse page 2", CatalogRequest::Browse { page: 2 }),
    ];
    for (name, r) in requests {
        out.push(json!({
            "name": name, "type": "request", "valid": true, "bytes": hex(&r.encode()),
            "value": catalog_request_json(&r),
        }));
    }
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (name, bad) in [
        ("Search with no word", vec![]),
        ("Search with an upper-case word", words(&["Holiday"])),
        ("Search with a two-letter word", words(&["ab"])),
        ("Search with a space in a word", words(&["two words"])),
        ("Search with nine words", words(&["abc"; 9])),
    ] {
        let bytes = CatalogRequest::Search { words: bad }.encode();
        out.push(json!({ "name": name, "type": "request", "valid": false, "bytes": hex(&bytes) }));
    }
    // Responses.
    let hello = info("hello.txt").sign(&key(1)).expect("signs");
    let photos = info("Holiday Photos.zip").sign(&key(1)).expect("signs");
    let others = info("holiday photos.zip").sign(&key(2)).expect("signs");
    let responses = [
        (
            "Results",
            CatalogResponse::Results {
                entries: vec![photos.clone()],
                more: false,
            },
        ),
        (
            "Page 0 of 2 entries",
            CatalogResponse::Page {
                entries: vec![photos.clone(), hello.clone()],
                page: 0,
                total: 2,
            },
        ),
        (
            "Empty page past the last",
            CatalogResponse::Page {
                entries: vec![],
                page: 3,
                total: 2,
            },
        ),
        ("BrowseDisabled", CatalogResponse::BrowseDisabled),
        (
            "RateLimited",
            CatalogResponse::RateLimited {
                retry_after_secs: 5,
            },
        ),
        (
            "Error",
            CatalogResponse::Error {
                message: "busy".into(),
            },
        ),
    ];
    for (name, r) in responses {
        out.push(json!({
            "name": name, "type": "response", "valid": true, "bytes": hex(&r.encode()),
            "value": catalog_response_json(&r),
        }));
    }
    let mixed = CatalogResponse::Results {
        entries: vec![photos, hello.clone(), others],
        more: false,
    };
    out.push(json!({
        "name": "Results with an unmatched entry and another publisher's entry",
        "type": "response", "valid": true, "bytes": hex(&mixed.encode()),
        "value": catalog_response_json(&mixed),
        "checked": { "sender": hex(&peer(1)), "words": ["holiday", "photos"], "kept": 1, "rejected": 2 },
    }));
    for (name, r) in [
        (
            "Results with 51 entries",
            CatalogResponse::Results {
                entries: vec![hello.clone(); 51],
                more: true,
            },
        ),
        (
            "Page with 51 entries",
            CatalogResponse::Page {
                entries: vec![hello.clone(); 51],
                page: 0,
                total: 51,
            },
        ),
        (
            "Page past its total",
            CatalogResponse::Page {
                entries: vec![hello.clone(); 2],
                page: 1,
                total: 51,
            },
        ),
        (
            "Error of 513 bytes",
            CatalogResponse::Error {
                message: "x".repeat(513),
            },
        ),
    ] {
        out.push(
            json!({ "name": name, "type": "response", "valid": false, "bytes": hex(&r.encode()) }),
        );
    }
    out
}
