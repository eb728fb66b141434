//! The engine's download states over the API: at most 16 downloads run at once and
//! the others wait `queued`; a queued download can be paused, resumed and cancelled; a
//! freed run slot goes to the download that waited.
#![allow(clippy::unwrap_used)]

mod harness;

use std::time::Duration;

use harness::http::{endpoint, request};
use harness::*;
use serde_json::{json, Value};

/// Downloads the engine runs at once (`transfer::downloads::MAX_RUNNING`).
const MAX_RUNNING: usize = 16;

/// A well-formed file CID no daemon holds, different for each `i` (< 32).
fn unknown_cid(i: usize) -> String {
    const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut cid = format!("bafyr4i{}", "a".repeat(52)).into_bytes();
    cid[20] = BASE32[i % 32];
    String::from_utf8(cid).unwrap()
}

fn state_of(list: &Value, cid: &str) -> String {
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["cid"] == cid)
        .map(|d| d["state"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn downloads_past_the_run_slots_wait_queued_and_can_be_paused_resumed_and_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start(&dir.path().join("a"), &[]);
    let (addr, token) = endpoint(&node.data_dir);
    let call = |method: &str, path: &str| request(&addr, method, path).bearer(&token);
    let cids: Vec<String> = (0..=MAX_RUNNING).map(unknown_cid).collect();
    for cid in &cids {
        let r = call("POST", "/api/downloads")
            .json(&json!({"cid": cid, "timeout_secs": 600}))
            .send();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let list = |what: &str, ok: &dyn Fn(&Value) -> bool| -> Value {
        let mut seen = Value::Null;
        wait_until(what, Duration::from_secs(30), || {
            seen = call("GET", "/api/downloads").send().json();
            ok(&seen)
        });
        seen
    };
    let last = cids[MAX_RUNNING].clone();
    let v = list("16 running, 1 queued", &|v| {
        cids[..MAX_RUNNING]
            .iter()
            .all(|c| state_of(v, c) == "finding")
    });
    assert_eq!(state_of(&v, &last), "queued", "{v}");

    // A queued download pauses at once, and resumes into the queue.
    let paused = call("POST", &format!("/api/downloads/{last}/pause")).send();
    assert_eq!(paused.status, 200, "{}", paused.text());
    assert_eq!(paused.json()["state"], "paused");
    assert_eq!(paused.json()["paused"], true);
    let resumed = call("POST", &format!("/api/downloads/{last}/resume")).send();
    assert_eq!(resumed.status, 200, "{}", resumed.text());
    assert_eq!(resumed.json()["state"], "queued");

    // A run slot that frees up goes to the download that waited.
    let first = &cids[0];
    let cancelled = call("DELETE", &format!("/api/downloads/{first}")).send();
    assert_eq!(
        cancelled.json()["state"],
        "cancelled",
        "{}",
        cancelled.text()
    );
    list("the queued download runs", &|v| {
        state_of(v, &last) == "finding"
    });
    // A cancelled download is not resumed: it is started again.
    call("POST", &format!("/api/downloads/{first}/resume"))
        .send()
        .assert_error(409);

    // Cancelling a paused download cancels it; pausing it again is refused.
    call("POST", &format!("/api/downloads/{last}/pause")).send();
    let r = call("DELETE", &format!("/api/downloads/{last}")).send();
    assert_eq!(r.json()["state"], "cancelled", "{}", r.text());
    call("POST", &format!("/api/downloads/{last}/pause"))
        .send()
        .assert_error(409);
}
