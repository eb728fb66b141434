//! The JSON form of the test vectors (see `vectors/README.md`): byte strings, CIDs,
//! bitfields, requests and responses, in both directions.
#![allow(dead_code)]

use dht_proto::message::{
    BatchAnswer, CHUNK_PROTOCOL, MANIFEST_PROTOCOL, MAX_CHUNK_RESPONSE_LEN,
    MAX_MANIFEST_RESPONSE_LEN,
};
use dht_proto::{Bitfield, Request, Response};
use serde_json::{json, Map, Value};

/// Byte strings of up to this many bytes are written as one hex string.
const PLAIN_HEX_MAX: usize = 4096;
/// Runs of one byte at least this long become a `repeat` part.
const MIN_RUN: usize = 64;

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// Reads a BYTES value: a hex string, or `{"parts": [...]}` of `{"hex": …}` and
/// `{"repeat": <hex>, "count": n}` parts, concatenated.
pub fn bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(text) => from_hex(text),
        Value::Object(object) => {
            let parts = object["parts"].as_array().expect("parts is an array");
            let mut out = Vec::new();
            for part in parts {
                if let Some(text) = part.get("hex") {
                    out.extend(from_hex(text.as_str().expect("hex is a string")));
                } else {
                    let unit = from_hex(part["repeat"].as_str().expect("repeat is hex"));
                    let count = part["count"].as_u64().expect("count is a number") as usize;
                    match unit[..] {
                        [byte] => out.resize(out.len() + count, byte),
                        _ => out.extend(unit.repeat(count)),
                    }
                }
            }
            out
        }
        other => panic!("not a BYTES value: {other}"),
    }
}

fn from_hex(text: &str) -> Vec<u8> {
    data_encoding::HEXLOWER
        .decode(text.as_bytes())
        .unwrap_or_else(|e| panic!("bad hex {text:?}: {e}"))
}

/// Writes a BYTES value: plain hex when short, else parts with long runs folded.
pub fn bytes_json(data: &[u8]) -> Value {
    if data.len() <= PLAIN_HEX_MAX {
        return Value::String(hex(data));
    }
    let mut parts = Vec::new();
    let mut literal_start = 0;
    let mut i = 0;
    while i < data.len() {
        let run = data[i..].iter().take_while(|b| **b == data[i]).count();
        if run >= MIN_RUN {
            if literal_start < i {
                parts.push(json!({ "hex": hex(&data[literal_start..i]) }));
            }
            parts.push(json!({ "repeat": hex(&data[i..i + 1]), "count": run }));
            i += run;
            literal_start = i;
        } else {
            i += run;
        }
    }
    if literal_start < data.len() {
        parts.push(json!({ "hex": hex(&data[literal_start..]) }));
    }
    json!({ "parts": parts })
}

/// Whether two JSON values are equal, whatever form (hex or parts) their byte strings
/// were written in. The common case, the same form on both sides, costs no expansion.
pub fn same(a: &Value, b: &Value) -> bool {
    a == b || normalize(a) == normalize(b)
}

/// Expands every `{"parts": …}` object into a plain hex string.
pub fn normalize(value: &Value) -> Value {
    match value {
        Value::Object(object) if object.contains_key("parts") => Value::String(hex(&bytes(value))),
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn bitfield_json(have: &Bitfield) -> Value {
    json!({ "len": have.len(), "bits": bytes_json(have.as_bytes()) })
}

/// The JSON form of a request.
pub fn request_json(request: &Request) -> Value {
    match request {
        Request::Manifest { cid } => json!({ "manifest": { "cid": cid.to_string() } }),
        Request::Chunk { cid, index } => {
            json!({ "chunk": { "cid": cid.to_string(), "index": index } })
        }
        Request::Bitfield { cid, have } => {
            json!({ "bitfield": { "cid": cid.to_string(), "have": bitfield_json(have) } })
        }
        Request::Have { cid, index } => {
            json!({ "have": { "cid": cid.to_string(), "index": index } })
        }
        Request::Cancel { cid, index } => {
            json!({ "cancel": { "cid": cid.to_string(), "index": index } })
        }
        Request::Chunks { cids } => {
            let cids: Vec<String> = cids.iter().map(ToString::to_string).collect();
            json!({ "chunks": { "cids": cids } })
        }
    }
}

/// The JSON form of a response.
pub fn response_json(response: &Response) -> Value {
    match response {
        Response::Manifest { manifest, name } => {
            json!({ "manifest": { "manifest": bytes_json(manifest), "name": name } })
        }
        Response::Chunk { data } => json!({ "chunk": { "data": bytes_json(data) } }),
        Response::Bitfield { have } => json!({ "bitfield": { "have": bitfield_json(have) } }),
        Response::Chunks { answers } => {
            let answers: Vec<Value> = answers
                .iter()
                .map(|answer| match answer {
                    BatchAnswer::Data(data) => json!({ "data": bytes_json(data) }),
                    BatchAnswer::NotFound => json!("not_found"),
                    BatchAnswer::Choked => json!("choked"),
                })
                .collect();
            json!({ "chunks": { "answers": answers } })
        }
        Response::Ack => json!("ack"),
        Response::NotFound => json!("not_found"),
        Response::Choked => json!("choked"),
        Response::Cancelled => json!("cancelled"),
        Response::Error { message } => json!({ "error": { "message": message } }),
    }
}

/// The response-size limit of a protocol named in a vector.
pub fn response_limit(protocol: &str) -> usize {
    match protocol {
        CHUNK_PROTOCOL => MAX_CHUNK_RESPONSE_LEN,
        MANIFEST_PROTOCOL => MAX_MANIFEST_RESPONSE_LEN,
        other => panic!("unknown protocol {other}"),
    }
}

/// A vectors file: its header (`kind`, the spec it follows, and `extra`'s fields) and
/// its cases.
pub fn vectors_file(kind: &str, vectors: Vec<Value>, extra: Value) -> Value {
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

/// Writes `vectors/<name>`, pretty-printed, ending in a newline.
pub fn write_vectors(name: &str, value: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("vectors")
        .join(name);
    let mut text = serde_json::to_string_pretty(value).expect("JSON");
    text.push('\n');
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
