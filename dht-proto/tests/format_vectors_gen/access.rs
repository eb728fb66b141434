//! Vectors of the password access protocol (`vectors/access.json`).

use super::*;

pub(super) fn access_vectors() -> Vec<Value> {
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
