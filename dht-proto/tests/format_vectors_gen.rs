//! Writes the vectors of keyword search, the catalog protocol, share tickets, directory
//! manifests, password access and standing (`vectors/{keywords,catalog,tickets,
//! dirmanifests,access,standing}.json`). Refused cases are built by hand (mirror structs,
//! edited bytes), never by the code under test refusing them; every case is checked
//! against dht-proto while writing.
//!
//! `cargo test -p dht-proto --test format_vectors_gen -- --ignored`

mod common;
mod formats_json;

use common::hex;
use dht_proto::access::{
    derive_key, proof, AccessRequest, AccessResponse, KdfParams, ACCESS_PROTOCOL,
};
use dht_proto::catalog::{CatalogRequest, CatalogResponse, EntryInfo, CATALOG_PROTOCOL};
use dht_proto::codec;
use dht_proto::dirmanifest::{DirEntry, DirManifest, EntryKind};
use dht_proto::identity::{ed25519_peer_id, SigningKey};
use dht_proto::keyword::{keyword_key, keywords};
use dht_proto::standing::{Ban, Standing, StandingRequest, StandingResponse, STANDING_PROTOCOL};
use dht_proto::ticket::{checksum, Ticket, CHECKSUM_LEN};
use dht_proto::{Cid, RelPath};
use formats_json::*;
use serde::Serialize;
use serde_json::{json, Value};

/// The 12-byte file "hello world\n" of docs/protocol.md §3.
const FILE_CID: &str = "bafyr4ih4whrv7mzwlvh34ykp3w7nbk2dimbkqogr7uhatmhz4ujny536py";
const SHARE_ID: [u8; 8] = [0x5e, 0x1f, 0x0a, 0x33, 0x9c, 0x41, 0xd2, 0x07];

fn file_cid() -> Cid {
    FILE_CID.parse().expect("CID")
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn peer(seed: u8) -> Vec<u8> {
    ed25519_peer_id(&key(seed).verifying_key().to_bytes()).to_vec()
}

fn file(kind: &str, vectors: Vec<Value>, extra: Value) -> Value {
    let mut out = json!({
        "format": "p2pd-test-vectors",
        "format_version": 1,
        "kind": kind,
        "spec": "docs/protocol.md",
    });
    if let (Value::Object(out), Value::Object(extra)) = (&mut out, extra) {
        out.extend(extra);
    }
    out["vectors"] = Value::Array(vectors);
    out
}

fn write(name: &str, value: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("vectors")
        .join(name);
    let mut text = serde_json::to_string_pretty(value).expect("JSON");
    text.push('\n');
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn keyword_vectors() -> Vec<Value> {
    let cases = [
        (
            "words, digits and separators",
            "The_Matrix.1999.1080p.BluRay.x264-GROUP.mkv",
        ),
        (
            "repeats and short words",
            "  Holiday   PHOTOS!! holiday a bc ",
        ),
        ("German and capital umlaut", "Straße nach ÖSTERREICH"),
        ("Greek with final sigma", "ΣΟΦΊΑ και ζωή"),
        ("decomposed accent (NFD)", "cafe\u{301} noir"),
        ("Devanagari marks stay in the word", "हिन्दी गाना"),
        ("CJK and Arabic-Indic digits", "第一章 ١٢٣"),
        ("emoji and dash separate", "rock🎸roll—live"),
        ("no keyword", "a b cd"),
        ("empty", ""),
        (
            "more than 16 words",
            "w01 w02 w03 w04 w05 w06 w07 w08 w09 w10 w11 w12 w13 w14 w15 w16 w17 w18",
        ),
        ("a 70-character word is cut to 64", &"abcdefghij".repeat(7)),
    ];
    cases
        .iter()
        .map(|(name, input)| {
            let words = keywords(input);
            let keys: Vec<String> = words.iter().map(|w| hex(&keyword_key(w))).collect();
            json!({ "name": name, "input": input, "keywords": words, "keyword_keys": keys })
        })
        .collect()
}

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

fn catalog_vectors() -> Vec<Value> {
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

fn example_ticket() -> Ticket {
    Ticket {
        cid: file_cid(),
        directory: false,
        name: "hello.txt".into(),
        size: 12,
        provider: peer(1),
        addrs: vec![
            common_bytes("04cb007107061703"),
            common_bytes("04cb00710791021703cd03"),
            [
                &common_bytes("04c6336402061703a50326")[..],
                &peer(2),
                &[0xa2, 0x02],
            ]
            .concat(),
        ],
        expires: Some(1_700_086_400),
        password: true,
        share_id: SHARE_ID,
    }
}

fn common_bytes(text: &str) -> Vec<u8> {
    common::bytes(&json!(text))
}

fn ticket_vectors() -> Vec<Value> {
    let mut out = Vec::new();
    let ticket = example_ticket();
    let plain = Ticket {
        directory: true,
        addrs: vec![],
        expires: None,
        password: false,
        ..example_ticket()
    };
    for (name, t) in [
        ("three addresses, password, expiry", &ticket),
        ("directory, no address", &plain),
    ] {
        out.push(json!({
            "name": name, "valid": true, "text": t.encode().expect("encodes"),
            "binary": hex(&t.to_bytes().expect("encodes")), "value": ticket_json(t),
        }));
    }
    let text = ticket.encode().expect("encodes");
    let with = |name: &str, input: String| json!({ "name": name, "valid": true, "text": input, "value": ticket_json(&ticket) });
    out.push(with("upper case", text.to_uppercase()));
    out.push(with(
        "wrapped over lines",
        format!("{}\n  {}\n", &text[..100], &text[100..]),
    ));
    let mut changed: Vec<char> = text.chars().collect();
    changed[100] = if changed[100] == 'a' { 'b' } else { 'a' };
    let mut length_typo: Vec<char> = text.chars().collect();
    length_typo[6] = if length_typo[6] == 'a' { 'b' } else { 'a' };
    // A body with a valid checksum and flags bit 7 set.
    let bytes = ticket.to_bytes().expect("encodes");
    let mut flagged = bytes[..bytes.len() - CHECKSUM_LEN].to_vec();
    flagged[2] |= 0x80;
    let sum = checksum(&flagged);
    flagged.extend_from_slice(&sum);
    let flagged_text = format!(
        "p2pd1{}",
        data_encoding::BASE32_NOPAD.encode(&flagged).to_lowercase()
    );
    let refused = [
        ("empty", "   ".to_string(), "empty"),
        ("a CID, not a ticket", FILE_CID.to_string(), "not_a_ticket"),
        (
            "version 2",
            text.replacen("p2pd1", "p2pd2", 1),
            "unknown_version",
        ),
        (
            "the digit 1 inside",
            format!("{}1{}", &text[..40], &text[41..]),
            "bad_character",
        ),
        (
            "cut to 200 characters",
            text[..200].to_string(),
            "truncated",
        ),
        (
            "cut by one character",
            text[..text.len() - 1].to_string(),
            "truncated",
        ),
        (
            "one character added",
            format!("{text}a"),
            "trailing_characters",
        ),
        (
            "eight characters added",
            format!("{text}abcdefgh"),
            "trailing_characters",
        ),
        (
            "one character changed",
            changed.into_iter().collect(),
            "bad_checksum",
        ),
        (
            "a character of the length field changed",
            length_typo.into_iter().collect(),
            "bad_checksum",
        ),
        (
            "unknown flag with a valid checksum",
            flagged_text,
            "malformed",
        ),
        (
            "over 4096 characters",
            "p2pd1".to_string() + &"a".repeat(4092),
            "too_long",
        ),
    ];
    for (name, input, error) in refused {
        out.push(json!({ "name": name, "valid": false, "text": input, "error": error }));
    }
    out
}

/// A directory manifest as a peer could send it, with no check.
#[derive(Serialize)]
struct RawDir {
    t: &'static str,
    v: u32,
    entries: Vec<RawDirEntry>,
}

#[derive(Serialize)]
struct RawDirEntry {
    c: Option<Cid>,
    p: Vec<&'static str>,
    s: u64,
    x: bool,
}

fn raw_file(p: Vec<&'static str>) -> RawDirEntry {
    RawDirEntry {
        c: Some(file_cid()),
        p,
        s: 12,
        x: false,
    }
}

fn dir_vectors() -> Vec<Value> {
    let mut out = Vec::new();
    let file = |path: &str, executable: bool| DirEntry {
        path: RelPath::parse(path).expect("path"),
        kind: EntryKind::File {
            cid: file_cid(),
            size: 12,
            executable,
        },
    };
    let empty = |path: &str| DirEntry {
        path: RelPath::parse(path).expect("path"),
        kind: EntryKind::EmptyDir,
    };
    let trees = [
        (
            "docs/hello.txt and empty tmp",
            vec![file("docs/hello.txt", false), empty("tmp")],
        ),
        (
            "executable, nested, sorted by component",
            vec![file("a-b", false), file("a/b", true), file("B", false)],
        ),
        (
            "names Windows reserves are accepted",
            vec![file("aux.c", false), file("what?.txt", false)],
        ),
        (
            "a case collision is valid but reported",
            vec![file("Photos/a.jpg", false), file("photos/b.jpg", false)],
        ),
        ("empty tree", vec![]),
    ];
    for (name, entries) in trees {
        let m = DirManifest::new(entries).expect("valid tree");
        let collisions: Vec<[String; 2]> = m
            .case_collisions()
            .iter()
            .map(|(a, b)| [a.to_string(), b.to_string()])
            .collect();
        out.push(json!({
            "name": name, "valid": true, "bytes": hex(&m.encode()), "cid": m.cid().to_string(),
            "value": dir_json(&m), "case_collisions": collisions,
        }));
    }
    let hostile: Vec<(&str, Vec<RawDirEntry>)> = vec![
        (
            "parent component",
            vec![raw_file(vec!["..", "etc", "passwd"])],
        ),
        (
            "absolute path as a component",
            vec![raw_file(vec!["/etc/passwd"])],
        ),
        ("empty first component", vec![raw_file(vec!["", "etc"])]),
        ("backslash", vec![raw_file(vec!["..\\..\\x"])]),
        ("dot", vec![raw_file(vec!["."])]),
        ("no component", vec![raw_file(vec![])]),
        ("NUL", vec![raw_file(vec!["a\0b"])]),
        ("33 levels", vec![raw_file(vec!["d"; 33])]),
        ("duplicate", vec![raw_file(vec!["a"]), raw_file(vec!["a"])]),
        (
            "file used as a directory",
            vec![raw_file(vec!["a"]), raw_file(vec!["a", "b"])],
        ),
        ("unsorted", vec![raw_file(vec!["b"]), raw_file(vec!["a"])]),
        (
            "empty directory with a size",
            vec![RawDirEntry {
                c: None,
                p: vec!["a"],
                s: 1,
                x: false,
            }],
        ),
    ];
    for (name, entries) in hostile {
        let bytes = codec::encode(&RawDir {
            t: "dir",
            v: 1,
            entries,
        });
        out.push(json!({ "name": name, "valid": false, "bytes": hex(&bytes) }));
    }
    out
}

fn access_vectors() -> Vec<Value> {
    let mut out = Vec::new();
    let salt = [0x11; 16];
    let nonce = [0x22; 32];
    let key = derive_key("correct horse", &salt, KdfParams::DEFAULT).expect("derives");
    out.push(json!({
        "name": "key of the example", "type": "key", "valid": true, "password": "correct horse",
        "salt": hex(&salt), "kdf": { "m": 19456, "t": 2, "p": 1 }, "key": hex(&key.to_bytes()),
    }));
    let nfd = derive_key("cafe\u{301}", &salt, KdfParams::DEFAULT).expect("derives");
    out.push(json!({
        "name": "a decomposed password gives the key of its NFC form", "type": "key", "valid": true,
        "password": "cafe\u{301}", "salt": hex(&salt), "kdf": { "m": 19456, "t": 2, "p": 1 },
        "key": hex(&nfd.to_bytes()),
    }));
    for (name, kdf) in [
        (
            "memory below the minimum",
            json!({ "m": 8, "t": 2, "p": 1 }),
        ),
        ("one pass", json!({ "m": 19456, "t": 1, "p": 1 })),
        (
            "memory above the maximum",
            json!({ "m": 1048576, "t": 2, "p": 1 }),
        ),
    ] {
        out.push(json!({
            "name": name, "type": "key", "valid": false, "password": "correct horse",
            "salt": hex(&salt), "kdf": kdf,
        }));
    }
    let the_proof = proof(&key, &nonce, &peer(1), &peer(2), &SHARE_ID).expect("proof");
    out.push(json!({
        "name": "proof of the example", "type": "proof", "key": hex(&key.to_bytes()),
        "nonce": hex(&nonce), "provider": hex(&peer(1)), "fetcher": hex(&peer(2)),
        "share_id": hex(&SHARE_ID), "proof": hex(&the_proof),
    }));
    let requests = [
        ("Challenge", AccessRequest::Challenge { share_id: SHARE_ID }),
        (
            "Prove",
            AccessRequest::Prove {
                share_id: SHARE_ID,
                nonce,
                proof: the_proof,
            },
        ),
    ];
    for (name, r) in requests {
        out.push(json!({
            "name": name, "type": "request", "valid": true, "bytes": hex(&r.encode()),
            "value": access_request_json(&r),
        }));
    }
    let responses = [
        (
            "Challenge",
            AccessResponse::Challenge {
                nonce,
                salt,
                kdf: KdfParams::DEFAULT,
            },
        ),
        ("Granted", AccessResponse::Granted { valid_secs: 3600 }),
        ("Denied", AccessResponse::Denied),
        (
            "RateLimited",
            AccessResponse::RateLimited {
                retry_after_secs: 30,
            },
        ),
        ("UnknownShare", AccessResponse::UnknownShare),
        ("Expired", AccessResponse::Expired),
    ];
    for (name, r) in responses {
        out.push(json!({
            "name": name, "type": "response", "valid": true, "bytes": hex(&r.encode()),
            "value": access_response_json(&r),
        }));
    }
    // A 7-byte share id: edit the byte-string header 0x48 (8 bytes) to 0x47 and drop a byte.
    let mut short = AccessRequest::Challenge { share_id: SHARE_ID }.encode();
    let at = short.iter().position(|b| *b == 0x48).expect("header");
    short[at] = 0x47;
    short.pop();
    out.push(json!({ "name": "Challenge with a 7-byte share id", "type": "request", "valid": false, "bytes": hex(&short) }));
    out
}

fn standing_vectors() -> Vec<Value> {
    let mut out = Vec::new();
    for (name, r) in [
        ("no nonce", StandingRequest::default()),
        (
            "with a nonce",
            StandingRequest {
                nonce: Some([7; 16]),
            },
        ),
    ] {
        out.push(json!({
            "name": name, "type": "request", "valid": true, "bytes": hex(&r.encode()),
            "value": standing_request_json(&r),
        }));
    }
    let standing = Standing {
        sent_to_you: 10 << 20,
        received_from_you: 3 << 20,
        corrupt_chunks: 1,
        timeouts: 2,
        refusals: 0,
        score_hundredths: -3800,
        ban: Some(Ban {
            reason: "sent a corrupt chunk".into(),
            until: 1_700_003_600,
        }),
        first_seen: Some(1_700_000_000),
        last_seen: Some(1_700_000_100),
    };
    let plain = Standing {
        ban: None,
        first_seen: None,
        last_seen: None,
        score_hundredths: 1250,
        ..standing.clone()
    };
    for (name, r) in [
        (
            "Known, banned",
            StandingResponse::Known {
                nonce: Some([7; 16]),
                standing: standing.clone(),
            },
        ),
        (
            "Known, plain",
            StandingResponse::Known {
                nonce: None,
                standing: plain,
            },
        ),
        ("Unknown", StandingResponse::Unknown { nonce: None }),
        (
            "RateLimited",
            StandingResponse::RateLimited {
                retry_after_secs: 10,
            },
        ),
    ] {
        out.push(json!({
            "name": name, "type": "response", "valid": true, "bytes": hex(&r.encode()),
            "value": standing_response_json(&r),
        }));
    }
    for (name, bad) in [
        (
            "score above 10000",
            Standing {
                score_hundredths: 10_001,
                ..standing.clone()
            },
        ),
        (
            "newline in the ban reason",
            Standing {
                ban: Some(Ban {
                    reason: "a\nb".into(),
                    until: 0,
                }),
                ..standing.clone()
            },
        ),
        (
            "first seen after last seen",
            Standing {
                first_seen: Some(2),
                last_seen: Some(1),
                ..standing.clone()
            },
        ),
    ] {
        let bytes = StandingResponse::Known {
            nonce: None,
            standing: bad,
        }
        .encode();
        out.push(json!({ "name": name, "type": "response", "valid": false, "bytes": hex(&bytes) }));
    }
    // The score as a CBOR float (-38.0): floats are outside the strict subset.
    let good = StandingResponse::Known {
        nonce: None,
        standing,
    }
    .encode();
    let key_at = good
        .windows(17)
        .position(|w| w == b"\x70score_hundredths")
        .expect("key");
    let mut float = good[..key_at].to_vec();
    float.extend_from_slice(b"\x70score_hundredths\xfb\xc0\x43\x00\x00\x00\x00\x00\x00");
    float.extend_from_slice(&good[key_at + 17 + 3..]);
    out.push(json!({ "name": "score written as a float", "type": "response", "valid": false, "bytes": hex(&float) }));
    out
}

#[test]
#[ignore = "writes vectors/*.json; run when the vectors change"]
fn write_vectors() {
    write(
        "keywords.json",
        &file("keywords", keyword_vectors(), json!({})),
    );
    write(
        "catalog.json",
        &file(
            "catalog",
            catalog_vectors(),
            json!({ "protocols": { "catalog": CATALOG_PROTOCOL } }),
        ),
    );
    write(
        "tickets.json",
        &file("tickets", ticket_vectors(), json!({})),
    );
    write(
        "dirmanifests.json",
        &file("dirmanifests", dir_vectors(), json!({})),
    );
    write(
        "access.json",
        &file(
            "access",
            access_vectors(),
            json!({ "protocols": { "access": ACCESS_PROTOCOL } }),
        ),
    );
    write(
        "standing.json",
        &file(
            "standing",
            standing_vectors(),
            json!({ "protocols": { "standing": STANDING_PROTOCOL } }),
        ),
    );
}
