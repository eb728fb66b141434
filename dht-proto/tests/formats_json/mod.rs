//! The JSON form of the catalog, ticket, directory-manifest, access and standing vectors
//! (see `vectors/README.md`), both ways: `*_json` writes a value, `*_from` reads one
//! back into the dht-proto type, so a vector's `value` is checked against its bytes in
//! both directions.
#![allow(dead_code)]

use dht_proto::access::{AccessRequest, AccessResponse, KdfParams};
use dht_proto::catalog::{CatalogEntry, CatalogRequest, CatalogResponse, EntryInfo};
use dht_proto::dirmanifest::{DirEntry, DirManifest, EntryKind};
use dht_proto::standing::{Ban, Standing, StandingRequest, StandingResponse};
use dht_proto::{Cid, RelPath, Ticket};
use serde_json::{json, Value};

use crate::common::{bytes, hex};

fn cid(v: &Value) -> Cid {
    v.as_str().expect("CID string").parse().expect("valid CID")
}

fn num<T: TryFrom<u64>>(v: &Value) -> T {
    T::try_from(v.as_u64().expect("number")).unwrap_or_else(|_| panic!("{v} out of range"))
}

fn text(v: &Value) -> String {
    v.as_str().expect("string").to_string()
}

fn fixed<const N: usize>(v: &Value) -> [u8; N] {
    bytes(v)
        .try_into()
        .expect("byte string of the stated length")
}

fn opt_fixed<const N: usize>(v: &Value) -> Option<[u8; N]> {
    (!v.is_null()).then(|| fixed(v))
}

fn opt_hex(v: Option<&[u8]>) -> Value {
    v.map_or(Value::Null, |b| Value::String(hex(b)))
}

fn one_variant(v: &Value) -> (&str, &Value) {
    match v {
        Value::String(name) => (name.as_str(), &Value::Null),
        Value::Object(o) if o.len() == 1 => {
            let (k, inner) = o.iter().next().expect("one key");
            (k.as_str(), inner)
        }
        other => panic!("not a variant: {other}"),
    }
}

pub fn entry_json(e: &CatalogEntry) -> Value {
    json!({
        "cid": e.cid().to_string(), "name": e.name(), "size": e.size(),
        "media_type": e.media_type(), "added": e.added(),
        "publisher": hex(e.publisher()), "signature": hex(e.signature()),
    })
}

pub fn entry_from(v: &Value) -> CatalogEntry {
    EntryInfo {
        cid: cid(&v["cid"]),
        name: text(&v["name"]),
        size: num(&v["size"]),
        media_type: text(&v["media_type"]),
        added: num(&v["added"]),
    }
    .with_signature(fixed(&v["publisher"]), fixed(&v["signature"]))
    .expect("a vector entry verifies")
}

pub fn catalog_request_json(r: &CatalogRequest) -> Value {
    match r {
        CatalogRequest::Search { words } => json!({ "search": { "words": words } }),
        CatalogRequest::Browse { page } => json!({ "browse": { "page": page } }),
    }
}

pub fn catalog_request_from(v: &Value) -> CatalogRequest {
    match one_variant(v) {
        ("search", f) => CatalogRequest::Search {
            words: f["words"]
                .as_array()
                .expect("words")
                .iter()
                .map(text)
                .collect(),
        },
        ("browse", f) => CatalogRequest::Browse {
            page: num(&f["page"]),
        },
        (other, _) => panic!("unknown catalog request {other}"),
    }
}

fn entries_json(entries: &[CatalogEntry]) -> Value {
    Value::Array(entries.iter().map(entry_json).collect())
}

fn entries_from(v: &Value) -> Vec<CatalogEntry> {
    v.as_array()
        .expect("entries")
        .iter()
        .map(entry_from)
        .collect()
}

pub fn catalog_response_json(r: &CatalogResponse) -> Value {
    match r {
        CatalogResponse::Results { entries, more } => {
            json!({ "results": { "entries": entries_json(entries), "more": more } })
        }
        CatalogResponse::Page {
            entries,
            page,
            total,
        } => json!({ "page": { "entries": entries_json(entries), "page": page, "total": total } }),
        CatalogResponse::BrowseDisabled => json!("browse_disabled"),
        CatalogResponse::RateLimited { retry_after_secs } => {
            json!({ "rate_limited": { "retry_after_secs": retry_after_secs } })
        }
        CatalogResponse::Error { message } => json!({ "error": { "message": message } }),
    }
}

pub fn catalog_response_from(v: &Value) -> CatalogResponse {
    match one_variant(v) {
        ("results", f) => CatalogResponse::Results {
            entries: entries_from(&f["entries"]),
            more: f["more"].as_bool().expect("more"),
        },
        ("page", f) => CatalogResponse::Page {
            entries: entries_from(&f["entries"]),
            page: num(&f["page"]),
            total: num(&f["total"]),
        },
        ("browse_disabled", _) => CatalogResponse::BrowseDisabled,
        ("rate_limited", f) => CatalogResponse::RateLimited {
            retry_after_secs: num(&f["retry_after_secs"]),
        },
        ("error", f) => CatalogResponse::Error {
            message: text(&f["message"]),
        },
        (other, _) => panic!("unknown catalog response {other}"),
    }
}

pub fn ticket_json(t: &Ticket) -> Value {
    json!({
        "cid": t.cid.to_string(), "directory": t.directory, "name": t.name, "size": t.size,
        "provider": hex(&t.provider),
        "addrs": t.addrs.iter().map(|a| hex(a)).collect::<Vec<_>>(),
        "expires": t.expires, "password": t.password, "share_id": hex(&t.share_id),
    })
}

pub fn ticket_from(v: &Value) -> Ticket {
    Ticket {
        cid: cid(&v["cid"]),
        directory: v["directory"].as_bool().expect("directory"),
        name: text(&v["name"]),
        size: num(&v["size"]),
        provider: bytes(&v["provider"]),
        addrs: v["addrs"]
            .as_array()
            .expect("addrs")
            .iter()
            .map(bytes)
            .collect(),
        expires: (!v["expires"].is_null()).then(|| num(&v["expires"])),
        password: v["password"].as_bool().expect("password"),
        share_id: fixed(&v["share_id"]),
    }
}

pub fn dir_json(m: &DirManifest) -> Value {
    let entries: Vec<Value> = m
        .entries()
        .iter()
        .map(|e| match e.kind {
            EntryKind::File {
                cid,
                size,
                executable,
            } => json!({
                "path": e.path.components(), "cid": cid.to_string(), "size": size,
                "executable": executable,
            }),
            EntryKind::EmptyDir => json!({ "path": e.path.components(), "cid": null }),
        })
        .collect();
    json!({ "entries": entries })
}

pub fn dir_from(v: &Value) -> DirManifest {
    let entries = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| DirEntry {
            path: RelPath::new(
                e["path"]
                    .as_array()
                    .expect("path")
                    .iter()
                    .map(text)
                    .collect(),
            )
            .expect("valid path"),
            kind: if e["cid"].is_null() {
                EntryKind::EmptyDir
            } else {
                EntryKind::File {
                    cid: cid(&e["cid"]),
                    size: num(&e["size"]),
                    executable: e["executable"].as_bool().expect("executable"),
                }
            },
        })
        .collect();
    DirManifest::new(entries).expect("valid directory")
}

fn kdf_json(k: &KdfParams) -> Value {
    json!({ "m": k.m, "t": k.t, "p": k.p })
}

pub fn kdf_from(v: &Value) -> KdfParams {
    KdfParams {
        m: num(&v["m"]),
        t: num(&v["t"]),
        p: num(&v["p"]),
    }
}

pub fn access_request_json(r: &AccessRequest) -> Value {
    match r {
        AccessRequest::Challenge { share_id } => {
            json!({ "challenge": { "share_id": hex(share_id) } })
        }
        AccessRequest::Prove {
            share_id,
            nonce,
            proof,
        } => json!({ "prove": {
            "share_id": hex(share_id), "nonce": hex(nonce), "proof": hex(proof),
        } }),
    }
}

pub fn access_request_from(v: &Value) -> AccessRequest {
    match one_variant(v) {
        ("challenge", f) => AccessRequest::Challenge {
            share_id: fixed(&f["share_id"]),
        },
        ("prove", f) => AccessRequest::Prove {
            share_id: fixed(&f["share_id"]),
            nonce: fixed(&f["nonce"]),
            proof: fixed(&f["proof"]),
        },
        (other, _) => panic!("unknown access request {other}"),
    }
}

pub fn access_response_json(r: &AccessResponse) -> Value {
    match r {
        AccessResponse::Challenge { nonce, salt, kdf } => json!({ "challenge": {
            "nonce": hex(nonce), "salt": hex(salt), "kdf": kdf_json(kdf),
        } }),
        AccessResponse::Granted { valid_secs } => {
            json!({ "granted": { "valid_secs": valid_secs } })
        }
        AccessResponse::Denied => json!("denied"),
        AccessResponse::RateLimited { retry_after_secs } => {
            json!({ "rate_limited": { "retry_after_secs": retry_after_secs } })
        }
        AccessResponse::UnknownShare => json!("unknown_share"),
        AccessResponse::Expired => json!("expired"),
    }
}

pub fn access_response_from(v: &Value) -> AccessResponse {
    match one_variant(v) {
        ("challenge", f) => AccessResponse::Challenge {
            nonce: fixed(&f["nonce"]),
            salt: fixed(&f["salt"]),
            kdf: kdf_from(&f["kdf"]),
        },
        ("granted", f) => AccessResponse::Granted {
            valid_secs: num(&f["valid_secs"]),
        },
        ("denied", _) => AccessResponse::Denied,
        ("rate_limited", f) => AccessResponse::RateLimited {
            retry_after_secs: num(&f["retry_after_secs"]),
        },
        ("unknown_share", _) => AccessResponse::UnknownShare,
        ("expired", _) => AccessResponse::Expired,
        (other, _) => panic!("unknown access response {other}"),
    }
}

pub fn standing_request_json(r: &StandingRequest) -> Value {
    json!({ "nonce": opt_hex(r.nonce.as_ref().map(|n| &n[..])) })
}

pub fn standing_request_from(v: &Value) -> StandingRequest {
    StandingRequest {
        nonce: opt_fixed(&v["nonce"]),
    }
}

fn standing_json(s: &Standing) -> Value {
    json!({
        "sent_to_you": s.sent_to_you, "received_from_you": s.received_from_you,
        "corrupt_chunks": s.corrupt_chunks, "timeouts": s.timeouts, "refusals": s.refusals,
        "score_hundredths": s.score_hundredths,
        "ban": s.ban.as_ref().map(|b| json!({ "reason": b.reason, "until": b.until })),
        "first_seen": s.first_seen, "last_seen": s.last_seen,
    })
}

fn standing_from(v: &Value) -> Standing {
    let opt = |v: &Value| (!v.is_null()).then(|| num::<u64>(v));
    Standing {
        sent_to_you: num(&v["sent_to_you"]),
        received_from_you: num(&v["received_from_you"]),
        corrupt_chunks: num(&v["corrupt_chunks"]),
        timeouts: num(&v["timeouts"]),
        refusals: num(&v["refusals"]),
        score_hundredths: v["score_hundredths"]
            .as_i64()
            .and_then(|s| i32::try_from(s).ok())
            .expect("score_hundredths"),
        ban: (!v["ban"].is_null()).then(|| Ban {
            reason: text(&v["ban"]["reason"]),
            until: num(&v["ban"]["until"]),
        }),
        first_seen: opt(&v["first_seen"]),
        last_seen: opt(&v["last_seen"]),
    }
}

pub fn standing_response_json(r: &StandingResponse) -> Value {
    match r {
        StandingResponse::Known { nonce, standing } => json!({ "known": {
            "nonce": opt_hex(nonce.as_ref().map(|n| &n[..])), "standing": standing_json(standing),
        } }),
        StandingResponse::Unknown { nonce } => {
            json!({ "unknown": { "nonce": opt_hex(nonce.as_ref().map(|n| &n[..])) } })
        }
        StandingResponse::RateLimited { retry_after_secs } => {
            json!({ "rate_limited": { "retry_after_secs": retry_after_secs } })
        }
    }
}

pub fn standing_response_from(v: &Value) -> StandingResponse {
    match one_variant(v) {
        ("known", f) => StandingResponse::Known {
            nonce: opt_fixed(&f["nonce"]),
            standing: standing_from(&f["standing"]),
        },
        ("unknown", f) => StandingResponse::Unknown {
            nonce: opt_fixed(&f["nonce"]),
        },
        ("rate_limited", f) => StandingResponse::RateLimited {
            retry_after_secs: num(&f["retry_after_secs"]),
        },
        (other, _) => panic!("unknown standing response {other}"),
    }
}
