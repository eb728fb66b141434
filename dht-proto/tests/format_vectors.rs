//! Checks the vectors of keyword search, the catalog protocol, share tickets, directory
//! manifests, password access and standing against dht-proto, both ways: the bytes (or
//! text) decode to the stated value or are refused, and the value encodes to the stated
//! bytes.

mod common;
mod formats_json;

use common::{bytes, hex};
use dht_proto::access::{check_proof, derive_key, proof, AccessKey, AccessRequest, AccessResponse};
use dht_proto::catalog::{CatalogEntry, CatalogRequest, CatalogResponse, MAX_ENTRY_LEN};
use dht_proto::codec;
use dht_proto::dirmanifest::{decode_any_for, AnyManifest, DirManifest};
use dht_proto::keyword::{keyword_key, keywords};
use dht_proto::standing::{StandingRequest, StandingResponse};
use dht_proto::ticket::{Ticket, TicketError};
use dht_proto::Cid;
use formats_json::*;
use serde_json::Value;

fn load(text: &str, kind: &str) -> Vec<Value> {
    let file: Value = serde_json::from_str(text).expect("vector file is JSON");
    assert_eq!(file["format"], "p2pd-test-vectors");
    assert_eq!(file["format_version"], 1);
    assert_eq!(file["kind"], kind);
    let vectors = file["vectors"].as_array().expect("vectors").clone();
    assert!(!vectors.is_empty());
    vectors
}

fn name(v: &Value) -> String {
    v["name"].as_str().expect("name").to_string()
}

fn valid(v: &Value) -> bool {
    v["valid"].as_bool().expect("valid")
}

/// Checks a message vector both ways with the type's decoder, encoder and JSON form.
fn check_message<T: PartialEq + std::fmt::Debug>(
    v: &Value,
    decode: impl Fn(&[u8]) -> Result<T, codec::DecodeError>,
    encode: impl Fn(&T) -> Vec<u8>,
    to_json: impl Fn(&T) -> Value,
    from_json: impl Fn(&Value) -> T,
) {
    let wire = bytes(&v["bytes"]);
    if !valid(v) {
        assert!(decode(&wire).is_err(), "{} decodes", name(v));
        return;
    }
    let decoded = decode(&wire).unwrap_or_else(|e| panic!("{}: {e}", name(v)));
    assert_eq!(to_json(&decoded), v["value"], "{}", name(v));
    let stated = from_json(&v["value"]);
    assert_eq!(stated, decoded, "{}", name(v));
    assert_eq!(hex(&encode(&stated)), hex(&wire), "{}", name(v));
}

#[test]
fn keyword_vectors() {
    for v in load(include_str!("../vectors/keywords.json"), "keywords") {
        let input = v["input"].as_str().expect("input");
        let words = keywords(input);
        assert_eq!(serde_json::json!(words), v["keywords"], "{}", name(&v));
        let keys: Vec<String> = words.iter().map(|w| hex(&keyword_key(w))).collect();
        assert_eq!(serde_json::json!(keys), v["keyword_keys"], "{}", name(&v));
        for (word, key) in words.iter().zip(&keys) {
            let mut expected = vec![0x1e, 0x20];
            expected
                .extend(blake3::hash(&[b"p2pd keyword v1\0", word.as_bytes()].concat()).as_bytes());
            assert_eq!(*key, hex(&expected));
        }
    }
}

#[test]
fn catalog_vectors() {
    for v in load(include_str!("../vectors/catalog.json"), "catalog") {
        match v["type"].as_str().expect("type") {
            "entry" => check_entry(&v),
            "request" => check_message(
                &v,
                CatalogRequest::decode,
                CatalogRequest::encode,
                catalog_request_json,
                catalog_request_from,
            ),
            "response" => {
                check_message(
                    &v,
                    CatalogResponse::decode,
                    CatalogResponse::encode,
                    catalog_response_json,
                    catalog_response_from,
                );
                if let Some(checked) = v.get("checked") {
                    let response = CatalogResponse::decode(&bytes(&v["bytes"])).expect("decodes");
                    let words: Vec<String> =
                        serde_json::from_value(checked["words"].clone()).expect("words");
                    let result =
                        response.into_checked_entries(&bytes(&checked["sender"]), Some(&words));
                    assert_eq!(
                        result.entries.len() as u64,
                        checked["kept"].as_u64().expect("kept")
                    );
                    assert_eq!(
                        result.rejected as u64,
                        checked["rejected"].as_u64().expect("rejected")
                    );
                }
            }
            other => panic!("unknown type {other}"),
        }
    }
}

fn check_entry(v: &Value) {
    let wire = bytes(&v["bytes"]);
    let decoded = codec::decode::<CatalogEntry>(&wire, MAX_ENTRY_LEN);
    if !valid(v) {
        assert!(decoded.is_err(), "{} decodes", name(v));
        return;
    }
    let entry = decoded.unwrap_or_else(|e| panic!("{}: {e}", name(v)));
    let verdict = match entry.verify_from(&bytes(&v["sender"])) {
        Ok(()) => "ok",
        Err(dht_proto::catalog::EntryError::WrongPublisher) => "wrong_publisher",
        Err(dht_proto::catalog::EntryError::BadSignature) => "bad_signature",
        Err(other) => panic!("{}: {other}", name(v)),
    };
    assert_eq!(verdict, v["verify"], "{}", name(v));
    if !v["value"].is_null() {
        assert_eq!(entry_json(&entry), v["value"], "{}", name(v));
        assert_eq!(entry_from(&v["value"]), entry, "{}", name(v));
        assert_eq!(hex(&codec::encode(&entry)), hex(&wire));
    }
    if let Some(seed) = v.get("seed") {
        let key = dht_proto::identity::SigningKey::from_bytes(
            &bytes(seed).try_into().expect("32-byte seed"),
        );
        let signed = bytes(&v["signed_bytes"]);
        assert_eq!(
            signed,
            entry.info().signed_bytes(entry.publisher()),
            "{}",
            name(v)
        );
        assert_eq!(
            dht_proto::identity::sign(&key, &signed),
            *entry.signature(),
            "{}",
            name(v)
        );
    }
}

fn ticket_error_kind(error: &TicketError) -> &'static str {
    match error {
        TicketError::Empty => "empty",
        TicketError::TooLong(_) => "too_long",
        TicketError::NotATicket => "not_a_ticket",
        TicketError::UnknownVersion(_) => "unknown_version",
        TicketError::BadCharacter { .. } => "bad_character",
        TicketError::Truncated { .. } => "truncated",
        TicketError::TrailingCharacters { .. } => "trailing_characters",
        TicketError::BadChecksum => "bad_checksum",
        TicketError::Malformed(_) => "malformed",
        TicketError::Invalid(_) => "invalid",
    }
}

#[test]
fn ticket_vectors() {
    for v in load(include_str!("../vectors/tickets.json"), "tickets") {
        let text = v["text"].as_str().expect("text");
        let decoded = Ticket::decode(text);
        if !valid(&v) {
            let error = decoded.expect_err(&name(&v));
            assert_eq!(
                ticket_error_kind(&error),
                v["error"],
                "{}: {error}",
                name(&v)
            );
            continue;
        }
        let ticket = decoded.unwrap_or_else(|e| panic!("{}: {e}", name(&v)));
        assert_eq!(ticket_json(&ticket), v["value"], "{}", name(&v));
        let stated = ticket_from(&v["value"]);
        assert_eq!(stated, ticket);
        if let Some(binary) = v.get("binary") {
            assert_eq!(stated.encode().expect("encodes"), text, "{}", name(&v));
            assert_eq!(
                hex(&stated.to_bytes().expect("encodes")),
                binary.as_str().expect("hex")
            );
        }
    }
}

#[test]
fn dir_manifest_vectors() {
    for v in load(include_str!("../vectors/dirmanifests.json"), "dirmanifests") {
        let wire = bytes(&v["bytes"]);
        if !valid(&v) {
            assert!(DirManifest::decode(&wire).is_err(), "{} decodes", name(&v));
            continue;
        }
        let cid: Cid = v["cid"].as_str().expect("cid").parse().expect("CID");
        let decoded =
            DirManifest::decode_for(&cid, &wire).unwrap_or_else(|e| panic!("{}: {e}", name(&v)));
        assert_eq!(
            decode_any_for(&cid, &wire).expect("decodes"),
            AnyManifest::Dir(decoded.clone())
        );
        assert_eq!(dir_json(&decoded), v["value"], "{}", name(&v));
        let stated = dir_from(&v["value"]);
        assert_eq!(stated, decoded);
        assert_eq!(hex(&stated.encode()), hex(&wire), "{}", name(&v));
        assert_eq!(stated.cid(), cid);
        let collisions: Vec<[String; 2]> = decoded
            .case_collisions()
            .iter()
            .map(|(a, b)| [a.to_string(), b.to_string()])
            .collect();
        assert_eq!(
            serde_json::json!(collisions),
            v["case_collisions"],
            "{}",
            name(&v)
        );
    }
}

#[test]
fn access_vectors() {
    for v in load(include_str!("../vectors/access.json"), "access") {
        match v["type"].as_str().expect("type") {
            "key" => {
                let salt: [u8; 16] = bytes(&v["salt"]).try_into().expect("16-byte salt");
                let password = v["password"].as_str().expect("password");
                let derived = derive_key(password, &salt, kdf_from(&v["kdf"]));
                if valid(&v) {
                    let key = derived.unwrap_or_else(|e| panic!("{}: {e}", name(&v)));
                    assert_eq!(
                        hex(&key.to_bytes()),
                        v["key"].as_str().expect("key"),
                        "{}",
                        name(&v)
                    );
                } else {
                    assert!(derived.is_err(), "{}", name(&v));
                }
            }
            "proof" => {
                let key = AccessKey::from_bytes(bytes(&v["key"]).try_into().expect("key"));
                let nonce: [u8; 32] = bytes(&v["nonce"]).try_into().expect("nonce");
                let share: [u8; 8] = bytes(&v["share_id"]).try_into().expect("share id");
                let (provider, fetcher) = (bytes(&v["provider"]), bytes(&v["fetcher"]));
                let made = proof(&key, &nonce, &provider, &fetcher, &share).expect("proof");
                assert_eq!(hex(&made), v["proof"].as_str().expect("proof"));
                assert!(check_proof(
                    &key, &nonce, &provider, &fetcher, &share, &made
                ));
            }
            "request" => check_message(
                &v,
                AccessRequest::decode,
                AccessRequest::encode,
                access_request_json,
                access_request_from,
            ),
            "response" => check_message(
                &v,
                AccessResponse::decode,
                AccessResponse::encode,
                access_response_json,
                access_response_from,
            ),
            other => panic!("unknown type {other}"),
        }
    }
}

#[test]
fn standing_vectors() {
    for v in load(include_str!("../vectors/standing.json"), "standing") {
        match v["type"].as_str().expect("type") {
            "request" => check_message(
                &v,
                StandingRequest::decode,
                StandingRequest::encode,
                standing_request_json,
                standing_request_from,
            ),
            "response" => check_message(
                &v,
                StandingResponse::decode,
                StandingResponse::encode,
                standing_response_json,
                standing_response_from,
            ),
            other => panic!("unknown type {other}"),
        }
    }
}
