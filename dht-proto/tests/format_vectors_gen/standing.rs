//! Vectors of the standing protocol (`vectors/standing.json`).

use super::*;

pub(super) fn standing_vectors() -> Vec<Value> {
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
