//! What every message vector is made of, and `messages.json` put together.

use super::*;

/// The message vectors (`messages.json`): requests, responses, then batches.
pub(super) fn message_vectors() -> Vec<Value> {
    let mut out = requests::request_vectors();
    out.extend(responses::response_vectors());
    out.extend(batches::batch_vectors());
    out
}

/// A message vector whose bytes decode to `value`; `canonical` is the encoding of that
/// value when the bytes are another spelling of it.
pub(super) fn valid_message(name: &str, protocol: &str, bytes: &[u8], message: Message) -> Value {
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

pub(super) fn invalid_message(name: &str, kind: &str, protocol: &str, bytes: &[u8]) -> Value {
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

pub(super) enum Message {
    Request(Request),
    Response(Response),
}
