//! Writes the test vectors in `vectors/` (run with
//! `cargo test -p dht-proto --test vectors_gen -- --ignored`). Every case states its
//! expected value independently of the bytes and is checked against dht-proto while
//! being written; `tests/vectors.rs` checks the files again on every test run.

mod common;

use common::{bytes_json, hex, request_json, response_json};
use dht_proto::cid::{Cid, Codec};
use dht_proto::manifest::{chunk_size_for, Manifest, MAX_CHUNKS, MAX_CHUNK_SIZE, MAX_FILE_SIZE};
use dht_proto::message::{
    BatchAnswer, CHUNK_PROTOCOL, MANIFEST_PROTOCOL, MAX_BATCH_DATA, MAX_BATCH_FILES, MAX_ERROR_LEN,
    MAX_MANIFEST_RESPONSE_LEN, MAX_NAME_LEN, MAX_REQUEST_LEN,
};
use dht_proto::{Bitfield, Request, Response};
use serde_bytes::ByteBuf;
use serde_json::{json, Value};

const HELLO: &[u8] = b"hello world\n";

/// A CBOR head of the shortest form.
fn head(major: u8, value: u64) -> Vec<u8> {
    let m = major << 5;
    match value {
        0..=23 => vec![m | value as u8],
        24..=0xff => vec![m | 24, value as u8],
        0x100..=0xffff => [vec![m | 25], (value as u16).to_be_bytes().to_vec()].concat(),
        0x1_0000..=0xffff_ffff => [vec![m | 26], (value as u32).to_be_bytes().to_vec()].concat(),
        _ => [vec![m | 27], value.to_be_bytes().to_vec()].concat(),
    }
}

fn text(s: &str) -> Vec<u8> {
    [head(3, s.len() as u64), s.as_bytes().to_vec()].concat()
}

fn bstr(b: &[u8]) -> Vec<u8> {
    [head(2, b.len() as u64), b.to_vec()].concat()
}

/// `{"<kind>": {fields…}}` from already encoded key/value pairs.
fn variant(kind: &str, fields: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0xa1];
    out.extend(text(kind));
    out.extend(head(5, fields.len() as u64));
    for f in fields {
        out.extend_from_slice(f);
    }
    out
}

fn file_cid() -> Cid {
    manifest_of(HELLO).cid()
}

fn manifest_of(data: &[u8]) -> Manifest {
    let chunk_size = chunk_size_for(data.len() as u64).expect("small file");
    let hashes = data
        .chunks(chunk_size as usize)
        .map(|c| *blake3::hash(c).as_bytes())
        .collect();
    Manifest::new(data.len() as u64, chunk_size, hashes).expect("valid manifest")
}

fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
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

fn cid_vectors() -> Vec<Value> {
    let mut out = Vec::new();
    let valid = |name: &str, content: &[u8], cid: Cid| {
        json!({
            "name": name,
            "valid": true,
            "content": bytes_json(content),
            "codec": match cid.codec() { Codec::Raw => "raw", Codec::DagCbor => "dag-cbor" },
            "digest": hex(cid.hash()),
            "binary": hex(&cid.to_bytes()),
            "string": cid.to_string(),
            "provider_key": hex(&cid.multihash_bytes()),
        })
    };
    out.push(valid("the empty chunk", b"", Cid::for_chunk(b"")));
    out.push(valid(
        "the chunk 'hello world\\n'",
        HELLO,
        Cid::for_chunk(HELLO),
    ));
    let m = manifest_of(HELLO).encode();
    out.push(valid(
        "the file 'hello world\\n' (its manifest)",
        &m,
        Cid::for_manifest_bytes(&m),
    ));
    let empty = manifest_of(b"").encode();
    out.push(valid(
        "the empty file (its manifest)",
        &empty,
        Cid::for_manifest_bytes(&empty),
    ));
    // Spec examples, typed from docs/protocol.md.
    assert_eq!(
        Cid::for_chunk(HELLO).to_string(),
        "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku"
    );
    assert_eq!(
        file_cid().to_string(),
        "bafyr4ih4whrv7mzwlvh34ykp3w7nbk2dimbkqogr7uhatmhz4ujny536py"
    );
    let good = file_cid().to_string();
    let good_bytes = file_cid().to_bytes();
    for (name, string) in [
        ("empty string", String::new()),
        ("multibase prefix only", "b".into()),
        ("upper-case multibase B", good.to_uppercase()),
        ("base58btc multibase z", format!("z{}", &good[1..])),
        (
            "CIDv0",
            "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG".into(),
        ),
        ("character outside base32", format!("{}1", &good[..58])),
        (
            "upper case in the body",
            format!("b{}", good[1..].to_uppercase()),
        ),
        ("one character short", good[..58].to_string()),
        ("bytes after the digest", format!("{good}aa")),
        ("over 256 characters", format!("b{}", "a".repeat(300))),
        (
            "non-canonical base32: a padding bit set",
            format!("{}v", &good[..58]),
        ),
    ] {
        assert!(string.parse::<Cid>().is_err(), "{name}");
        out.push(json!({ "name": name, "valid": false, "string": string }));
    }
    let mut edits: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut b = good_bytes.clone();
    b[0] = 0;
    edits.push(("version 0", b));
    let mut b = good_bytes.clone();
    b[1] = 0x70;
    edits.push(("codec dag-pb (0x70)", b));
    let mut b = good_bytes.clone();
    b[2] = 0x12;
    edits.push(("hash sha2-256 (0x12)", b));
    let mut b = good_bytes.clone();
    b[3] = 0x1f;
    edits.push(("digest length 31", b));
    edits.push(("digest one byte short", good_bytes[..35].to_vec()));
    edits.push((
        "a byte after the digest",
        [good_bytes.clone(), vec![0]].concat(),
    ));
    edits.push((
        "non-minimal varint for the version (0x81 0x00)",
        [vec![0x81, 0x00], good_bytes[1..].to_vec()].concat(),
    ));
    edits.push(("empty", Vec::new()));
    for (name, binary) in edits {
        assert!(Cid::from_bytes(&binary).is_err(), "{name}");
        out.push(json!({ "name": name, "valid": false, "binary": hex(&binary) }));
    }
    out
}

fn manifest_vectors() -> Vec<Value> {
    let mut out = Vec::new();
    let valid = |name: &str, file: Value, m: &Manifest, chunk_cids: Option<Vec<String>>| {
        let encoded = m.encode();
        let mut v = json!({
            "name": name,
            "valid": true,
            "file": file,
            "size": m.size(),
            "chunk_size": m.chunk_size(),
            "chunk_hashes": bytes_json(&m.chunk_hashes().concat()),
            "manifest": bytes_json(&encoded),
            "manifest_blake3": hex(blake3::hash(&encoded).as_bytes()),
            "cid": m.cid().to_string(),
            "provider_key": hex(&m.cid().multihash_bytes()),
            "made_by_p2pd": chunk_size_for(m.size()) == Some(m.chunk_size()),
        });
        if let Some(cids) = chunk_cids {
            v["chunk_cids"] = json!(cids);
        }
        v
    };
    let hello = manifest_of(HELLO);
    assert_eq!(
        hex(&hello.encode()),
        "a46176016473697a650c666368756e6b735820dc5a4edb8240b018124052c330270696f96771a63b45250a5c17d3000e8233556a6368756e6b5f73697a651a00100000"
    );
    out.push(valid(
        "hello world",
        bytes_json(HELLO),
        &hello,
        Some(vec![Cid::for_chunk(HELLO).to_string()]),
    ));
    let empty = manifest_of(b"");
    assert_eq!(
        hex(&empty.encode()),
        "a46176016473697a6500666368756e6b73406a6368756e6b5f73697a651a00100000"
    );
    out.push(valid(
        "the empty file",
        bytes_json(b""),
        &empty,
        Some(vec![]),
    ));
    // Three chunks of 1 MiB, the last one short.
    let size = (2 << 20) + 1000;
    let data = pattern(size);
    let three = manifest_of(&data);
    let cids = data
        .chunks(1 << 20)
        .map(|c| Cid::for_chunk(c).to_string())
        .collect();
    out.push(valid(
        "2 MiB + 1000 bytes of the pattern i mod 251: three chunks",
        json!({ "pattern": "index_mod_251", "size": size }),
        &three,
        Some(cids),
    ));
    // Valid, but not what p2pd makes for a file this small (chunk_size_for says 1 MiB).
    let data = pattern(40_000);
    let hashes = data
        .chunks(16 << 10)
        .map(|c| *blake3::hash(c).as_bytes())
        .collect();
    let small = Manifest::new(40_000, 16 << 10, hashes).expect("valid");
    out.push(valid(
        "40000 bytes in chunks of 16 KiB: valid, though p2pd would use 1 MiB",
        json!({ "pattern": "index_mod_251", "size": 40_000 }),
        &small,
        None,
    ));
    // The largest manifest: 2^19 chunks of 4 MiB (all hashes zero; no file is given).
    let largest = Manifest::new(
        MAX_FILE_SIZE,
        MAX_CHUNK_SIZE,
        vec![[0u8; 32]; MAX_CHUNKS as usize],
    )
    .expect("valid");
    assert_eq!(largest.encode().len(), 16_777_262);
    out.push(valid(
        "the largest manifest (2 TiB, 2^19 chunks of 4 MiB, zero hashes)",
        Value::Null,
        &largest,
        None,
    ));

    // Invalid manifests, built by hand from the canonical layout.
    let canon = |v: u64, size: u64, chunks: &[u8], chunk_size: u64| {
        [
            vec![0xa4],
            text("v"),
            head(0, v),
            text("size"),
            head(0, size),
            text("chunks"),
            bstr(chunks),
            text("chunk_size"),
            head(0, chunk_size),
        ]
        .concat()
    };
    let h = hello.chunk_hashes().concat();
    assert_eq!(canon(1, 12, &h, 1 << 20), hello.encode());
    let mut invalid: Vec<(&str, Vec<u8>)> = vec![
        ("version 2", canon(2, 12, &h, 1 << 20)),
        ("hash list of 31 bytes", canon(1, 12, &h[..31], 1 << 20)),
        (
            "two hashes for one chunk",
            canon(1, 12, &[h.clone(), h.clone()].concat(), 1 << 20),
        ),
        ("no hash for a 12-byte file", canon(1, 12, &[], 1 << 20)),
        ("a hash for the empty file", canon(1, 0, &h, 1 << 20)),
        ("chunk size not a power of two", canon(1, 12, &h, 1_000_000)),
        (
            "chunk size 8 KiB, below the minimum",
            canon(1, 12, &h, 8 << 10),
        ),
        (
            "chunk size 8 MiB, above the maximum",
            canon(1, 12, &h, 8 << 20),
        ),
        ("size above 2 TiB", canon(1, MAX_FILE_SIZE + 1, &h, 4 << 20)),
        (
            "a byte after the manifest",
            [canon(1, 12, &h, 1 << 20), vec![0]].concat(),
        ),
        ("truncated", canon(1, 12, &h, 1 << 20)[..60].to_vec()),
        ("not a map", text("manifest")),
    ];
    let mut reordered = vec![0xa4];
    for part in [
        [text("size"), head(0, 12)].concat(),
        [text("v"), head(0, 1)].concat(),
        [text("chunks"), bstr(&h)].concat(),
        [text("chunk_size"), head(0, 1 << 20)].concat(),
    ] {
        reordered.extend(part);
    }
    invalid.push((
        "keys in another order (not canonical, would be a second CID)",
        reordered,
    ));
    let mut extra = canon(1, 12, &h, 1 << 20);
    extra[0] = 0xa5;
    extra.extend([text("name"), text("hello.txt")].concat());
    invalid.push(("an extra key (not canonical, would be a second CID)", extra));
    let mut long_size = canon(1, 12, &h, 1 << 20);
    let at = long_size
        .windows(4)
        .position(|w| w == b"size")
        .expect("size key")
        + 4;
    long_size.splice(at..at + 1, [0x18, 0x0c]);
    invalid.push(("size 12 written in two bytes (18 0c)", long_size));
    let mut indefinite = canon(1, 12, &h, 1 << 20);
    indefinite[0] = 0xbf;
    indefinite.push(0xff);
    invalid.push(("indefinite-length map", indefinite));
    for (name, bytes) in invalid {
        assert!(Manifest::decode(&bytes).is_err(), "{name}");
        out.push(json!({ "name": name, "valid": false, "manifest": bytes_json(&bytes) }));
    }
    out
}

/// A message vector whose bytes decode to `value`; `canonical` is the encoding of that
/// value when the bytes are another spelling of it.
fn valid_message(name: &str, protocol: &str, bytes: &[u8], message: Message) -> Value {
    let (kind, value, canonical) = match &message {
        Message::Request(r) => {
            assert_eq!(Request::decode(bytes).expect(name), *r, "{name}");
            ("request", request_json(r), r.encode())
        }
        Message::Response(r) => {
            let limit = common::response_limit(protocol);
            assert_eq!(
                Response::decode_limited(bytes, limit).expect(name),
                *r,
                "{name}"
            );
            ("response", response_json(r), r.encode())
        }
    };
    let mut v = json!({
        "name": name,
        "type": kind,
        "protocol": protocol,
        "bytes": bytes_json(bytes),
        "valid": true,
        "value": value,
    });
    if canonical != bytes {
        v["canonical_bytes"] = bytes_json(&canonical);
    }
    v
}

fn invalid_message(name: &str, kind: &str, protocol: &str, bytes: &[u8]) -> Value {
    let refused = match kind {
        "request" => Request::decode(bytes).is_err(),
        _ => Response::decode_limited(bytes, common::response_limit(protocol)).is_err(),
    };
    assert!(refused, "{name} decodes");
    json!({
        "name": name,
        "type": kind,
        "protocol": protocol,
        "bytes": bytes_json(bytes),
        "valid": false,
        "outcome": if kind == "request" { "no_answer" } else { "request_failed" },
    })
}

enum Message {
    Request(Request),
    Response(Response),
}

fn message_vectors() -> Vec<Value> {
    let c = file_cid();
    let cb = c.to_bytes();
    let cid_field = [text("cid"), bstr(&cb)].concat();
    let index_field = |head_bytes: &[u8]| [text("index"), head_bytes.to_vec()].concat();
    let mut out = Vec::new();
    let req = |r: Request| Message::Request(r);
    let resp = |r: Response| Message::Response(r);
    let chunk = |index| Request::Chunk { cid: c, index };

    // Valid requests in their canonical encoding.
    let spec_chunk = chunk(7).encode();
    assert_eq!(spec_chunk.len(), 57);
    assert_eq!(
        hex(&spec_chunk[..14]),
        "a1656368756e6ba263636964582401711e20"[..28]
    );
    out.push(valid_message(
        "Manifest",
        MANIFEST_PROTOCOL,
        &Request::Manifest { cid: c }.encode(),
        req(Request::Manifest { cid: c }),
    ));
    for index in [7u32, 0, 23, 24, 255, 256, 65_535, 65_536, u32::MAX] {
        out.push(valid_message(
            &format!("Chunk index {index}"),
            CHUNK_PROTOCOL,
            &chunk(index).encode(),
            req(chunk(index)),
        ));
    }
    let mut have = Bitfield::new(10);
    have.set(0);
    have.set(9);
    let bitfield = Request::Bitfield {
        cid: c,
        have: have.clone(),
    };
    assert_eq!(bitfield.encode().len(), 72);
    out.push(valid_message(
        "Bitfield len 10, chunks 0 and 9",
        CHUNK_PROTOCOL,
        &bitfield.encode(),
        req(bitfield),
    ));
    let empty = Request::Bitfield {
        cid: c,
        have: Bitfield::new(0),
    };
    out.push(valid_message(
        "Bitfield len 0",
        CHUNK_PROTOCOL,
        &empty.encode(),
        req(empty),
    ));
    let full = Request::Bitfield {
        cid: c,
        have: Bitfield::full(MAX_CHUNKS as u32),
    };
    assert_eq!(full.encode().len(), 65_614);
    out.push(valid_message(
        "the largest Bitfield request: 2^19 chunks, all held",
        CHUNK_PROTOCOL,
        &full.encode(),
        req(full.clone()),
    ));
    let have_req = Request::Have { cid: c, index: 300 };
    out.push(valid_message(
        "Have 300",
        CHUNK_PROTOCOL,
        &have_req.encode(),
        req(have_req),
    ));
    let cancel = Request::Cancel { cid: c, index: 5 };
    out.push(valid_message(
        "Cancel 5",
        CHUNK_PROTOCOL,
        &cancel.encode(),
        req(cancel),
    ));
    let raw = Request::Chunk {
        cid: Cid::for_chunk(HELLO),
        index: 0,
    };
    out.push(valid_message(
        "Chunk naming a raw CID (decodes; answered NotFound)",
        CHUNK_PROTOCOL,
        &raw.encode(),
        req(raw),
    ));

    // Valid requests in another spelling.
    for (name, kind, index_head) in [
        (
            "Chunk index 2^32 (reads as 4294967295)",
            "chunk",
            head(0, 1 << 32),
        ),
        (
            "Chunk index 2^64-1 (reads as 4294967295)",
            "chunk",
            head(0, u64::MAX),
        ),
        (
            "Have index 2^32 (reads as 4294967295)",
            "have",
            head(0, 1 << 32),
        ),
        (
            "Cancel index 2^40 (reads as 4294967295)",
            "cancel",
            head(0, 1 << 40),
        ),
    ] {
        let bytes = variant(kind, &[cid_field.clone(), index_field(&index_head)]);
        let r = match kind {
            "chunk" => chunk(u32::MAX),
            "have" => Request::Have {
                cid: c,
                index: u32::MAX,
            },
            _ => Request::Cancel {
                cid: c,
                index: u32::MAX,
            },
        };
        out.push(valid_message(name, CHUNK_PROTOCOL, &bytes, req(r)));
    }
    let reordered = variant("chunk", &[index_field(&[7]), cid_field.clone()]);
    out.push(valid_message(
        "Chunk with \"index\" before \"cid\"",
        CHUNK_PROTOCOL,
        &reordered,
        req(chunk(7)),
    ));
    let unknown = variant(
        "chunk",
        &[
            cid_field.clone(),
            index_field(&[7]),
            [
                text("priority"),
                vec![0xa1],
                text("x"),
                vec![0x82, 0xf6, 0xf5],
            ]
            .concat(),
        ],
    );
    out.push(valid_message(
        "Chunk with an unknown key (ignored)",
        CHUNK_PROTOCOL,
        &unknown,
        req(chunk(7)),
    ));
    // 14 arrays inside an unknown key: depth 16 with the two maps around them.
    let deep = variant(
        "chunk",
        &[
            cid_field.clone(),
            index_field(&[7]),
            [text("x"), vec![0x81; 13], vec![0x80]].concat(),
        ],
    );
    out.push(valid_message(
        "Chunk with an unknown key nesting to depth 16 (the limit)",
        CHUNK_PROTOCOL,
        &deep,
        req(chunk(7)),
    ));
    // Exactly MAX_REQUEST_LEN bytes: the largest bitfield plus a padding key.
    let full_fields = |pad: usize| {
        variant(
            "bitfield",
            &[
                cid_field.clone(),
                [
                    text("have"),
                    vec![0xa2],
                    text("len"),
                    head(0, MAX_CHUNKS),
                    text("bits"),
                    bstr(&vec![0xff; MAX_CHUNKS as usize / 8]),
                ]
                .concat(),
                [text("pad"), bstr(&vec![0; pad])].concat(),
            ],
        )
    };
    let base = full_fields(1000).len() - 1000;
    let at_limit = full_fields(MAX_REQUEST_LEN - base);
    assert_eq!(at_limit.len(), MAX_REQUEST_LEN);
    out.push(valid_message(
        "a request of exactly 66560 bytes (the limit)",
        CHUNK_PROTOCOL,
        &at_limit,
        req(full),
    ));
    let over = full_fields(MAX_REQUEST_LEN - base + 1);
    assert_eq!(over.len(), MAX_REQUEST_LEN + 1);
    out.push(invalid_message(
        "a request of 66561 bytes (one over the limit)",
        "request",
        CHUNK_PROTOCOL,
        &over,
    ));

    // Invalid requests.
    let good = chunk(7).encode();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated by one byte", good[..good.len() - 1].to_vec()),
        ("a byte after the request", [good.clone(), vec![0]].concat()),
        (
            "index 7 written as 18 07",
            variant("chunk", &[cid_field.clone(), index_field(&[0x18, 7])]),
        ),
        (
            "index 7 written in 8 bytes",
            variant(
                "chunk",
                &[
                    cid_field.clone(),
                    index_field(&[0x1b, 0, 0, 0, 0, 0, 0, 0, 7]),
                ],
            ),
        ),
        (
            "index 2^32-1 written in 8 bytes",
            variant(
                "chunk",
                &[
                    cid_field.clone(),
                    index_field(&[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
                ],
            ),
        ),
        (
            "negative index -1",
            variant("chunk", &[cid_field.clone(), index_field(&[0x20])]),
        ),
        (
            "index as a float 7.0",
            variant(
                "chunk",
                &[cid_field.clone(), index_field(&[0xf9, 0x47, 0x00])],
            ),
        ),
        (
            "index as a text string",
            variant("chunk", &[cid_field.clone(), index_field(&text("7"))]),
        ),
        (
            "CID length written as 59 00 24",
            variant(
                "chunk",
                &[
                    [text("cid"), vec![0x59, 0, 0x24], cb.clone()].concat(),
                    index_field(&[7]),
                ],
            ),
        ),
        (
            "key \"chunk\" length written as 78 05",
            [vec![0xa1, 0x78, 5], b"chunk".to_vec(), good[7..].to_vec()].concat(),
        ),
        (
            "outer map length written as b8 01",
            [vec![0xb8, 1], good[1..].to_vec()].concat(),
        ),
        (
            "indefinite-length inner map",
            [
                good[..7].to_vec(),
                vec![0xbf],
                good[8..].to_vec(),
                vec![0xff],
            ]
            .concat(),
        ),
        (
            "CID as an indefinite-length byte string",
            variant(
                "chunk",
                &[
                    [
                        text("cid"),
                        vec![0x5f],
                        bstr(&cb[..4]),
                        bstr(&cb[4..]),
                        vec![0xff],
                    ]
                    .concat(),
                    index_field(&[7]),
                ],
            ),
        ),
        (
            "CID as a tag-42 link",
            variant(
                "chunk",
                &[
                    [text("cid"), vec![0xd8, 0x2a], bstr(&cb)].concat(),
                    index_field(&[7]),
                ],
            ),
        ),
        (
            "CID hashed with sha2-256 (0x12)",
            variant(
                "chunk",
                &[
                    [text("cid"), bstr(&[&cb[..2], &[0x12], &cb[3..]].concat())].concat(),
                    index_field(&[7]),
                ],
            ),
        ),
        (
            "CID of 35 bytes",
            variant(
                "chunk",
                &[[text("cid"), bstr(&cb[..35])].concat(), index_field(&[7])],
            ),
        ),
        (
            "\"index\" twice",
            variant(
                "chunk",
                &[cid_field.clone(), index_field(&[7]), index_field(&[8])],
            ),
        ),
        (
            "\"index\" missing",
            variant("chunk", std::slice::from_ref(&cid_field)),
        ),
        (
            "unknown request kind \"delete\"",
            variant("delete", &[cid_field.clone(), index_field(&[7])]),
        ),
        (
            "two request kinds in one map",
            [
                vec![0xa2],
                good[1..].to_vec(),
                text("have"),
                good[7..].to_vec(),
            ]
            .concat(),
        ),
        ("\"manifest\" as a bare text string", text("manifest")),
        (
            "an unknown key nesting to depth 17",
            variant(
                "chunk",
                &[
                    cid_field.clone(),
                    index_field(&[7]),
                    [text("x"), vec![0x81; 14], vec![0x80]].concat(),
                ],
            ),
        ),
        (
            "undefined (f7) in an unknown key",
            variant(
                "chunk",
                &[
                    cid_field.clone(),
                    index_field(&[7]),
                    [text("x"), vec![0xf7]].concat(),
                ],
            ),
        ),
        (
            "a key that is not valid UTF-8",
            variant(
                "chunk",
                &[cid_field.clone(), index_field(&[7]), vec![0x61, 0xff, 0x00]],
            ),
        ),
    ];
    let bits = |len: u64, bits: &[u8]| {
        variant(
            "bitfield",
            &[
                cid_field.clone(),
                [
                    text("have"),
                    vec![0xa2],
                    text("len"),
                    head(0, len),
                    text("bits"),
                    bstr(bits),
                ]
                .concat(),
            ],
        )
    };
    assert_eq!(
        hex(&bits(10, &[0x80, 0x40])),
        hex(&Request::Bitfield { cid: c, have }.encode())
    );
    cases.push((
        "Bitfield with a bit set past len (len 10, bits 80 60)",
        bits(10, &[0x80, 0x60]),
    ));
    cases.push((
        "Bitfield with 3 bytes for len 10",
        bits(10, &[0x80, 0x40, 0]),
    ));
    cases.push((
        "Bitfield with len 2^19 + 1",
        bits(MAX_CHUNKS + 1, &vec![0; MAX_CHUNKS as usize / 8 + 1]),
    ));
    for (name, bytes) in cases {
        let protocol = if name.contains("manifest") {
            MANIFEST_PROTOCOL
        } else {
            CHUNK_PROTOCOL
        };
        out.push(invalid_message(name, "request", protocol, &bytes));
    }

    // Valid responses.
    let spec = [
        (
            "Manifest h'0102', name null",
            MANIFEST_PROTOCOL,
            Response::Manifest {
                manifest: ByteBuf::from(vec![1, 2]),
                name: None,
            },
            "a1686d616e6966657374a2686d616e696665737442010264 6e616d65f6",
        ),
        (
            "Chunk \"hello world\\n\"",
            CHUNK_PROTOCOL,
            Response::Chunk {
                data: ByteBuf::from(HELLO.to_vec()),
            },
            "a1656368756e6ba16464617461 4c68656c6c6f20776f726c640a",
        ),
        ("Ack", CHUNK_PROTOCOL, Response::Ack, "6361636b"),
        (
            "NotFound",
            CHUNK_PROTOCOL,
            Response::NotFound,
            "696e6f745f666f756e64",
        ),
        ("Choked", CHUNK_PROTOCOL, Response::Choked, "6663686f6b6564"),
        (
            "Error \"oops\"",
            CHUNK_PROTOCOL,
            Response::Error {
                message: "oops".into(),
            },
            "a1656572726f72a1676d65737361676564 6f6f7073",
        ),
    ];
    for (name, protocol, response, spec_hex) in spec {
        assert_eq!(hex(&response.encode()), spec_hex.replace(' ', ""), "{name}");
        out.push(valid_message(
            name,
            protocol,
            &response.encode(),
            resp(response),
        ));
    }
    let mut more = vec![
        (
            "Manifest of hello world, name \"hello.txt\"",
            MANIFEST_PROTOCOL,
            Response::Manifest {
                manifest: ByteBuf::from(manifest_of(HELLO).encode()),
                name: Some("hello.txt".into()),
            },
        ),
        (
            "Manifest with a 255-byte name (the limit)",
            MANIFEST_PROTOCOL,
            Response::Manifest {
                manifest: ByteBuf::new(),
                name: Some("é".repeat(127) + "x"),
            },
        ),
        (
            "Chunk of 0 bytes",
            CHUNK_PROTOCOL,
            Response::Chunk {
                data: ByteBuf::new(),
            },
        ),
        (
            "Chunk of 4 MiB (the largest)",
            CHUNK_PROTOCOL,
            Response::Chunk {
                data: ByteBuf::from(vec![0xab; MAX_CHUNK_SIZE as usize]),
            },
        ),
        (
            "Bitfield len 10, chunks 0 and 9",
            CHUNK_PROTOCOL,
            Response::Bitfield {
                have: {
                    let mut b = Bitfield::new(10);
                    b.set(0);
                    b.set(9);
                    b
                },
            },
        ),
        ("Cancelled", CHUNK_PROTOCOL, Response::Cancelled),
        (
            "Error with a 512-byte message (the limit)",
            CHUNK_PROTOCOL,
            Response::Error {
                message: "e".repeat(MAX_ERROR_LEN),
            },
        ),
        (
            "Ack on the manifest protocol",
            MANIFEST_PROTOCOL,
            Response::Ack,
        ),
    ];
    // A Manifest response of exactly the manifest protocol's limit.
    let overhead = Response::Manifest {
        manifest: ByteBuf::from(vec![0; 1 << 20]),
        name: None,
    }
    .encode()
    .len()
        - (1 << 20);
    let at_limit = Response::Manifest {
        manifest: ByteBuf::from(vec![0; MAX_MANIFEST_RESPONSE_LEN - overhead]),
        name: None,
    };
    assert_eq!(at_limit.encode().len(), MAX_MANIFEST_RESPONSE_LEN);
    more.push((
        "a Manifest response of exactly 16778304 bytes (the manifest protocol's limit)",
        MANIFEST_PROTOCOL,
        at_limit.clone(),
    ));
    for (name, protocol, response) in more {
        assert_eq!(
            name.contains("255-byte"),
            response_name_len(&response) == Some(MAX_NAME_LEN)
        );
        out.push(valid_message(
            name,
            protocol,
            &response.encode(),
            resp(response),
        ));
    }
    let unit = |s: &str| text(s);
    let chunk_resp = |data_head: Vec<u8>, data: &[u8]| {
        [
            vec![0xa1],
            text("chunk"),
            vec![0xa1],
            text("data"),
            data_head,
            data.to_vec(),
        ]
        .concat()
    };
    let invalid_responses: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "Ack in map form {\"ack\": null}",
            CHUNK_PROTOCOL,
            [vec![0xa1], text("ack"), vec![0xf6]].concat(),
        ),
        ("unknown response \"maybe\"", CHUNK_PROTOCOL, unit("maybe")),
        (
            "Chunk with its length written as 59 00 0c",
            CHUNK_PROTOCOL,
            chunk_resp(vec![0x59, 0, 12], HELLO),
        ),
        (
            "Chunk announcing 13 bytes, holding 12",
            CHUNK_PROTOCOL,
            chunk_resp(vec![0x4d], HELLO),
        ),
        (
            "Chunk with a byte after it",
            CHUNK_PROTOCOL,
            [chunk_resp(vec![0x4c], HELLO), vec![0]].concat(),
        ),
        (
            "Chunk of 4 MiB + 1 byte",
            CHUNK_PROTOCOL,
            Response::Chunk {
                data: ByteBuf::from(vec![0xab; MAX_CHUNK_SIZE as usize + 1]),
            }
            .encode(),
        ),
        (
            "Manifest with a 256-byte name",
            MANIFEST_PROTOCOL,
            Response::Manifest {
                manifest: ByteBuf::new(),
                name: Some("x".repeat(MAX_NAME_LEN + 1)),
            }
            .encode(),
        ),
        (
            "Manifest with a name that is not valid UTF-8",
            MANIFEST_PROTOCOL,
            [
                vec![0xa1],
                text("manifest"),
                vec![0xa2],
                text("manifest"),
                bstr(&[]),
                text("name"),
                vec![0x61, 0xff],
            ]
            .concat(),
        ),
        (
            "Error with a 513-byte message",
            CHUNK_PROTOCOL,
            Response::Error {
                message: "e".repeat(MAX_ERROR_LEN + 1),
            }
            .encode(),
        ),
        (
            "the manifest protocol's largest response, received on the chunk protocol",
            CHUNK_PROTOCOL,
            at_limit.encode(),
        ),
    ];
    let mut one_over = at_limit.encode();
    one_over.push(0);
    for (name, protocol, bytes) in invalid_responses.into_iter().chain([(
        "a Manifest response one byte over the manifest protocol's limit",
        MANIFEST_PROTOCOL,
        one_over,
    )]) {
        out.push(invalid_message(name, "response", protocol, &bytes));
    }
    out.extend(batch_vectors());
    out
}

/// `Chunks` requests and responses: valid ones at the limits, and those past them.
fn batch_vectors() -> Vec<Value> {
    let c = file_cid();
    let other = manifest_of(b"another file").cid();
    let mut out = Vec::new();
    let many = |n: usize| -> Vec<Cid> {
        (0..n)
            .map(|i| manifest_of(&i.to_le_bytes()).cid())
            .collect()
    };
    let valid = [
        (
            "Chunks of two files",
            Message::Request(Request::Chunks {
                cids: vec![c, other],
            }),
        ),
        (
            "Chunks of 128 files, the most",
            Message::Request(Request::Chunks {
                cids: many(MAX_BATCH_FILES),
            }),
        ),
        (
            "Chunks answers: data, not_found, choked",
            Message::Response(Response::Chunks {
                answers: vec![
                    BatchAnswer::Data(ByteBuf::from(HELLO.to_vec())),
                    BatchAnswer::NotFound,
                    BatchAnswer::Choked,
                ],
            }),
        ),
        (
            "Chunks answer of 1 MiB, the most data",
            Message::Response(Response::Chunks {
                answers: vec![BatchAnswer::Data(ByteBuf::from(vec![0x5a; MAX_BATCH_DATA]))],
            }),
        ),
    ];
    for (name, message) in valid {
        let bytes = match &message {
            Message::Request(r) => r.encode(),
            Message::Response(r) => r.encode(),
        };
        out.push(valid_message(name, CHUNK_PROTOCOL, &bytes, message));
    }
    for (name, bytes) in [
        (
            "Chunks of no file",
            Request::Chunks { cids: vec![] }.encode(),
        ),
        (
            "Chunks of 129 files",
            Request::Chunks {
                cids: many(MAX_BATCH_FILES + 1),
            }
            .encode(),
        ),
        (
            "Chunks with a CID that is not a CID",
            variant(
                "chunks",
                &[[text("cids"), vec![0x81], bstr(&[1, 2, 3])].concat()],
            ),
        ),
    ] {
        out.push(invalid_message(name, "request", CHUNK_PROTOCOL, &bytes));
    }
    for (name, bytes) in [
        (
            "Chunks answers with 1 MiB and 1 byte of data",
            Response::Chunks {
                answers: vec![
                    BatchAnswer::Data(ByteBuf::from(vec![0x5a; MAX_BATCH_DATA])),
                    BatchAnswer::Data(ByteBuf::from(vec![0x5a])),
                ],
            }
            .encode(),
        ),
        (
            "Chunks with 129 answers",
            Response::Chunks {
                answers: vec![BatchAnswer::NotFound; MAX_BATCH_FILES + 1],
            }
            .encode(),
        ),
        (
            "Chunks with an answer of an unknown kind",
            variant(
                "chunks",
                &[[text("answers"), vec![0x81], text("maybe")].concat()],
            ),
        ),
    ] {
        out.push(invalid_message(name, "response", CHUNK_PROTOCOL, &bytes));
    }
    out
}

fn response_name_len(response: &Response) -> Option<usize> {
    match response {
        Response::Manifest {
            name: Some(name), ..
        } => Some(name.len()),
        _ => None,
    }
}

fn exchange_vectors() -> Vec<Value> {
    let f = file_cid();
    let raw = Cid::for_chunk(HELLO);
    let unknown = manifest_of(b"a file the responder does not hold").cid();
    // A raw CID with the file's own digest: a responder that looked files up by digest
    // alone would answer it.
    let same_digest = Cid::new(Codec::Raw, *f.hash());
    let fb = f.to_bytes();
    let indexed = |kind: &str, index: u64| {
        variant(
            kind,
            &[
                [text("cid"), bstr(&fb)].concat(),
                [text("index"), head(0, index)].concat(),
            ],
        )
    };
    let one = |bits: u8, len: u32| {
        let mut have = Bitfield::new(len);
        if bits != 0 {
            have.set(0);
        }
        have
    };
    let answer_manifest = Response::Manifest {
        manifest: ByteBuf::from(manifest_of(HELLO).encode()),
        name: Some("hello.txt".into()),
    };
    let answer_chunk = Response::Chunk {
        data: ByteBuf::from(HELLO.to_vec()),
    };
    let answer_bitfield = Response::Bitfield { have: one(1, 1) };
    use Response::{Ack, NotFound};
    let cases: Vec<(&str, &str, Vec<u8>, Option<Response>)> = vec![
        (
            "Manifest of the file",
            MANIFEST_PROTOCOL,
            Request::Manifest { cid: f }.encode(),
            Some(answer_manifest.clone()),
        ),
        (
            "Manifest of the file, asked on the chunk protocol",
            CHUNK_PROTOCOL,
            Request::Manifest { cid: f }.encode(),
            Some(answer_manifest),
        ),
        (
            "Manifest of a file not held",
            MANIFEST_PROTOCOL,
            Request::Manifest { cid: unknown }.encode(),
            Some(NotFound),
        ),
        (
            "Manifest of a raw CID (the file's only chunk)",
            MANIFEST_PROTOCOL,
            Request::Manifest { cid: raw }.encode(),
            Some(NotFound),
        ),
        (
            "Manifest of a raw CID with the file's digest",
            MANIFEST_PROTOCOL,
            Request::Manifest { cid: same_digest }.encode(),
            Some(NotFound),
        ),
        (
            "Chunk 0 of a raw CID with the file's digest",
            CHUNK_PROTOCOL,
            Request::Chunk {
                cid: same_digest,
                index: 0,
            }
            .encode(),
            Some(NotFound),
        ),
        (
            "Chunk 0",
            CHUNK_PROTOCOL,
            indexed("chunk", 0),
            Some(answer_chunk),
        ),
        (
            "Chunk 1, past the last chunk",
            CHUNK_PROTOCOL,
            indexed("chunk", 1),
            Some(NotFound),
        ),
        (
            "Chunk 2^32 - 1",
            CHUNK_PROTOCOL,
            indexed("chunk", u64::from(u32::MAX)),
            Some(NotFound),
        ),
        (
            "Chunk 2^32",
            CHUNK_PROTOCOL,
            indexed("chunk", 1 << 32),
            Some(NotFound),
        ),
        (
            "Chunk 2^64 - 1",
            CHUNK_PROTOCOL,
            indexed("chunk", u64::MAX),
            Some(NotFound),
        ),
        (
            "Chunk 0 of a raw CID",
            CHUNK_PROTOCOL,
            Request::Chunk { cid: raw, index: 0 }.encode(),
            Some(NotFound),
        ),
        (
            "Chunk 0 of a file not held",
            CHUNK_PROTOCOL,
            Request::Chunk {
                cid: unknown,
                index: 0,
            }
            .encode(),
            Some(NotFound),
        ),
        (
            "Bitfield of the file, holding nothing",
            CHUNK_PROTOCOL,
            Request::Bitfield {
                cid: f,
                have: one(0, 1),
            }
            .encode(),
            Some(answer_bitfield.clone()),
        ),
        (
            "Bitfield of the file, holding everything",
            CHUNK_PROTOCOL,
            Request::Bitfield {
                cid: f,
                have: one(1, 1),
            }
            .encode(),
            Some(answer_bitfield.clone()),
        ),
        (
            "Bitfield whose len (5) is not the file's chunk count (1): answered all the same",
            CHUNK_PROTOCOL,
            Request::Bitfield {
                cid: f,
                have: one(1, 5),
            }
            .encode(),
            Some(answer_bitfield),
        ),
        (
            "Bitfield of a file not held",
            CHUNK_PROTOCOL,
            Request::Bitfield {
                cid: unknown,
                have: one(0, 1),
            }
            .encode(),
            Some(NotFound),
        ),
        (
            "Bitfield of a raw CID",
            CHUNK_PROTOCOL,
            Request::Bitfield {
                cid: raw,
                have: one(0, 1),
            }
            .encode(),
            Some(NotFound),
        ),
        ("Have 0", CHUNK_PROTOCOL, indexed("have", 0), Some(Ack)),
        (
            "Have 2^32",
            CHUNK_PROTOCOL,
            indexed("have", 1 << 32),
            Some(Ack),
        ),
        (
            "Have of a file not held",
            CHUNK_PROTOCOL,
            Request::Have {
                cid: unknown,
                index: 3,
            }
            .encode(),
            Some(Ack),
        ),
        (
            "Have of a raw CID",
            CHUNK_PROTOCOL,
            Request::Have { cid: raw, index: 0 }.encode(),
            Some(Ack),
        ),
        (
            "Cancel 0, never requested",
            CHUNK_PROTOCOL,
            indexed("cancel", 0),
            Some(Ack),
        ),
        (
            "Cancel of a raw CID",
            CHUNK_PROTOCOL,
            Request::Cancel { cid: raw, index: 0 }.encode(),
            Some(Ack),
        ),
        (
            "Cancel 2^32",
            CHUNK_PROTOCOL,
            indexed("cancel", 1 << 32),
            Some(Ack),
        ),
        (
            "Chunk 0 with its index written as 18 00",
            CHUNK_PROTOCOL,
            [indexed("chunk", 0)[..56].to_vec(), vec![0x18, 0]].concat(),
            None,
        ),
        (
            "Chunk 0 followed by a stray byte",
            CHUNK_PROTOCOL,
            [indexed("chunk", 0), vec![0]].concat(),
            None,
        ),
        (
            "garbage",
            CHUNK_PROTOCOL,
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            None,
        ),
        (
            "nothing at all (the requester closes at once)",
            CHUNK_PROTOCOL,
            Vec::new(),
            None,
        ),
        (
            "66561 bytes (over the request limit)",
            CHUNK_PROTOCOL,
            vec![0; MAX_REQUEST_LEN + 1],
            None,
        ),
    ];
    cases
        .into_iter()
        .map(|(name, protocol, request, answer)| {
            let decoded = Request::decode(&request);
            assert_eq!(decoded.is_ok(), answer.is_some(), "{name}");
            let mut v = json!({
                "name": name,
                "protocol": protocol,
                "request": bytes_json(&request),
            });
            match (decoded, answer) {
                (Ok(r), Some(answer)) => {
                    v["outcome"] = json!("answer");
                    v["request_value"] = request_json(&r);
                    v["answer"] = bytes_json(&answer.encode());
                    v["answer_value"] = response_json(&answer);
                }
                _ => v["outcome"] = json!("no_answer"),
            }
            v
        })
        .collect()
}

#[test]
#[ignore = "writes vectors/*.json; run when the vectors change"]
fn write_vectors() {
    write("cids.json", &file("cids", cid_vectors(), json!({})));
    write(
        "manifests.json",
        &file("manifests", manifest_vectors(), json!({})),
    );
    let protocols =
        json!({ "protocols": { "manifest": MANIFEST_PROTOCOL, "chunk": CHUNK_PROTOCOL } });
    write(
        "messages.json",
        &file("messages", message_vectors(), protocols.clone()),
    );
    let mut setup = protocols;
    setup["setup"] = json!({
        "file": bytes_json(HELLO),
        "name": "hello.txt",
        "cid": file_cid().to_string(),
        "description": "The responder holds one file, complete: these 12 bytes, added under the name hello.txt. It holds nothing else, the requester holds an upload slot and is not banned, and the responder is not overloaded (so no answer is Choked).",
    });
    write(
        "exchanges.json",
        &file("exchanges", exchange_vectors(), setup),
    );
}
