//! Checks every test vector in `vectors/` against dht-proto, both ways: the bytes decode
//! to the stated value (or are refused), and the value encodes to the stated bytes. The
//! exchanges are also checked against a model of the responder rules of
//! docs/protocol.md §5, so a vector cannot drift from the spec unnoticed.

mod common;

use common::{bytes, hex, request_json, response_json, response_limit, same};
use dht_proto::cid::{Cid, Codec};
use dht_proto::manifest::{chunk_size_for, Manifest};
use dht_proto::message::{CHUNK_PROTOCOL, MANIFEST_PROTOCOL};
use dht_proto::{Bitfield, Request, Response};
use serde_bytes::ByteBuf;
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

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {}", v["name"]))
}

/// A file given as BYTES or as `{"pattern": "index_mod_251", "size": n}`.
fn file_bytes(file: &Value) -> Option<Vec<u8>> {
    match file {
        Value::Null => None,
        Value::Object(o) if o.contains_key("pattern") => {
            assert_eq!(o["pattern"], "index_mod_251");
            let size = o["size"].as_u64().expect("size") as usize;
            Some((0..size).map(|i| (i % 251) as u8).collect())
        }
        other => Some(bytes(other)),
    }
}

#[test]
fn cids() {
    for v in load(include_str!("../vectors/cids.json"), "cids") {
        let name = str_of(&v, "name");
        if v["valid"] == false {
            if let Some(text) = v["string"].as_str() {
                assert!(text.parse::<Cid>().is_err(), "{name}");
            } else {
                assert!(Cid::from_bytes(&bytes(&v["binary"])).is_err(), "{name}");
            }
            continue;
        }
        let content = bytes(&v["content"]);
        let cid = match str_of(&v, "codec") {
            "raw" => Cid::for_chunk(&content),
            "dag-cbor" => Cid::for_manifest_bytes(&content),
            other => panic!("codec {other}"),
        };
        assert_eq!(hex(cid.hash()), str_of(&v, "digest"), "{name}");
        assert_eq!(hex(&cid.to_bytes()), str_of(&v, "binary"), "{name}");
        assert_eq!(cid.to_string(), str_of(&v, "string"), "{name}");
        assert_eq!(hex(&cid.multihash_bytes()), str_of(&v, "provider_key"));
        assert_eq!(str_of(&v, "string").parse::<Cid>().expect(name), cid);
        assert_eq!(Cid::from_bytes(&bytes(&v["binary"])).expect(name), cid);
    }
}

#[test]
fn manifests() {
    for v in load(include_str!("../vectors/manifests.json"), "manifests") {
        let name = str_of(&v, "name");
        let encoded = bytes(&v["manifest"]);
        if v["valid"] == false {
            assert!(Manifest::decode(&encoded).is_err(), "{name}");
            continue;
        }
        let m = Manifest::decode(&encoded).expect(name);
        assert_eq!(m.encode(), encoded, "{name}");
        assert_eq!(Some(m.size()), v["size"].as_u64(), "{name}");
        assert_eq!(Some(u64::from(m.chunk_size())), v["chunk_size"].as_u64());
        let hashes = bytes(&v["chunk_hashes"]);
        assert_eq!(m.chunk_hashes().concat(), hashes, "{name}");
        assert_eq!(
            hex(blake3::hash(&encoded).as_bytes()),
            str_of(&v, "manifest_blake3")
        );
        let cid: Cid = str_of(&v, "cid").parse().expect("cid");
        assert_eq!((cid.codec(), m.cid()), (Codec::DagCbor, cid), "{name}");
        assert_eq!(Manifest::decode_for(&cid, &encoded).expect(name), m);
        assert_eq!(hex(&cid.multihash_bytes()), str_of(&v, "provider_key"));
        let made_by_p2pd = chunk_size_for(m.size()) == Some(m.chunk_size());
        assert_eq!(v["made_by_p2pd"], made_by_p2pd, "{name}");
        if let Some(data) = file_bytes(&v["file"]) {
            assert_eq!(data.len() as u64, m.size(), "{name}");
            let chunks: Vec<&[u8]> = data.chunks(m.chunk_size() as usize).collect();
            assert_eq!(chunks.len() as u32, m.chunk_count(), "{name}");
            for (i, chunk) in chunks.iter().enumerate() {
                assert!(m.verify_chunk(i as u32, chunk), "{name}: chunk {i}");
            }
            if let Some(cids) = v.get("chunk_cids").and_then(Value::as_array) {
                let expected: Vec<String> = chunks
                    .iter()
                    .map(|c| Cid::for_chunk(c).to_string())
                    .collect();
                assert_eq!(cids.len(), expected.len(), "{name}");
                for (got, want) in cids.iter().zip(expected) {
                    assert_eq!(got.as_str(), Some(want.as_str()), "{name}");
                }
            }
        }
    }
}

#[test]
fn messages() {
    let (mut requests, mut responses, mut refused) = (0, 0, 0);
    for v in load(include_str!("../vectors/messages.json"), "messages") {
        let name = str_of(&v, "name");
        let protocol = str_of(&v, "protocol");
        let input = bytes(&v["bytes"]);
        let is_request = match str_of(&v, "type") {
            "request" => true,
            "response" => false,
            other => panic!("type {other}"),
        };
        let decoded = if is_request {
            Request::decode(&input).map(|r| (request_json(&r), r.encode()))
        } else {
            Response::decode_limited(&input, response_limit(protocol))
                .map(|r| (response_json(&r), r.encode()))
        };
        if v["valid"] == false {
            assert!(decoded.is_err(), "{name} decodes");
            let outcome = if is_request {
                "no_answer"
            } else {
                "request_failed"
            };
            assert_eq!(v["outcome"], outcome, "{name}");
            refused += 1;
            continue;
        }
        let (value, encoded) = decoded.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(same(&value, &v["value"]), "{name}");
        let canonical = v.get("canonical_bytes").map_or(input.clone(), bytes);
        assert!(encoded == canonical, "{name}: encodes to another form");
        assert_eq!(
            v.get("canonical_bytes").is_some(),
            canonical != input,
            "{name}"
        );
        if is_request {
            requests += 1;
        } else {
            responses += 1;
        }
    }
    // Every request and response variant is covered, valid and refused.
    assert!(requests >= 6 && responses >= 9 && refused >= 20);
}

/// What the responder of the exchanges' setup answers, by docs/protocol.md §5: `None` is
/// no answer at all.
fn model_answer(setup: &Value, request: &[u8]) -> Option<Response> {
    let file = bytes(&setup["file"]);
    let manifest = Manifest::new(
        file.len() as u64,
        chunk_size_for(file.len() as u64).expect("small"),
        file.chunks(1 << 20)
            .map(|c| *blake3::hash(c).as_bytes())
            .collect(),
    )
    .expect("manifest");
    let held = manifest.cid();
    Some(match Request::decode(request).ok()? {
        Request::Manifest { cid } if cid == held => Response::Manifest {
            manifest: ByteBuf::from(manifest.encode()),
            name: setup["name"].as_str().map(String::from),
        },
        Request::Chunk { cid, index } if cid == held && index < manifest.chunk_count() => {
            let start = manifest.chunk_offset(index) as usize;
            let end = start + manifest.chunk_len(index) as usize;
            Response::Chunk {
                data: ByteBuf::from(file[start..end].to_vec()),
            }
        }
        // Whatever the requester's bitfield says, the question is answered.
        Request::Bitfield { cid, .. } if cid == held => Response::Bitfield {
            have: Bitfield::full(manifest.chunk_count()),
        },
        Request::Have { .. } | Request::Cancel { .. } => Response::Ack,
        _ => Response::NotFound,
    })
}

#[test]
fn exchanges() {
    let text = include_str!("../vectors/exchanges.json");
    let file: Value = serde_json::from_str(text).expect("JSON");
    let setup = &file["setup"];
    let cid: Cid = str_of(setup, "cid").parse().expect("cid");
    assert!(Manifest::decode_for(&cid, &model_manifest(setup)).is_ok());
    let mut answered = 0;
    for v in load(text, "exchanges") {
        let name = str_of(&v, "name");
        let protocol = str_of(&v, "protocol");
        assert!([CHUNK_PROTOCOL, MANIFEST_PROTOCOL].contains(&protocol));
        let request = bytes(&v["request"]);
        let expected = model_answer(setup, &request);
        match str_of(&v, "outcome") {
            "no_answer" => assert!(expected.is_none(), "{name}: the model answers"),
            "answer" => {
                let answer = bytes(&v["answer"]);
                let decoded = Response::decode_limited(&answer, response_limit(protocol))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(Some(&decoded), expected.as_ref(), "{name}");
                assert_eq!(decoded.encode(), answer, "{name}");
                assert!(same(&response_json(&decoded), &v["answer_value"]));
                let r = Request::decode(&request).expect(name);
                assert!(decoded.answers(&r), "{name}: not an answer to {r:?}");
                assert!(same(&request_json(&r), &v["request_value"]));
                answered += 1;
            }
            other => panic!("{name}: outcome {other}"),
        }
    }
    assert!(answered >= 10);
}

fn model_manifest(setup: &Value) -> Vec<u8> {
    let file = bytes(&setup["file"]);
    Manifest::new(
        file.len() as u64,
        chunk_size_for(file.len() as u64).expect("small"),
        file.chunks(1 << 20)
            .map(|c| *blake3::hash(c).as_bytes())
            .collect(),
    )
    .expect("manifest")
    .encode()
}
