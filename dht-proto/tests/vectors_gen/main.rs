//! Writes the test vectors in `vectors/` (run with
//! `cargo test -p dht-proto --test vectors_gen -- --ignored`). Every case states its
//! expected value independently of the bytes and is checked against dht-proto while
//! being written; `tests/vectors.rs` checks the files again on every test run. The
//! shared encoding helpers are here; each file's cases are in a module of their own.

mod batches;
mod cids;
#[path = "../common/mod.rs"]
mod common;
mod exchanges;
mod manifests;
mod messages;
mod requests;
mod responses;

use common::{
    bytes_json, hex, request_json, response_json, vectors_file as file, write_vectors as write,
};
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

#[test]
#[ignore = "writes vectors/*.json; run when the vectors change"]
fn write_vectors() {
    write("cids.json", &file("cids", cids::cid_vectors(), json!({})));
    write(
        "manifests.json",
        &file("manifests", manifests::manifest_vectors(), json!({})),
    );
    let protocols =
        json!({ "protocols": { "manifest": MANIFEST_PROTOCOL, "chunk": CHUNK_PROTOCOL } });
    write(
        "messages.json",
        &file("messages", messages::message_vectors(), protocols.clone()),
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
        &file("exchanges", exchanges::exchange_vectors(), setup),
    );
}
