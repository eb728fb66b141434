//! Issue 16, daemon-managed downloads: `fetch --detach` starts one and returns at once;
//! after a SIGKILL of the daemon it resumes by itself on the next start and completes
//! with the right bytes; `downloads`, `pause`, `resume` and `cancel` drive it from the
//! CLI, a paused one stays paused across a restart, and the history of ended ones can
//! be cleared.
#![allow(clippy::unwrap_used)]

mod harness;

use std::time::Duration;

use harness::*;
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// This node's `downloads --json` entry for `cid`.
fn listed(node: &Daemon, cid: &str) -> Option<Value> {
    let out = node.cli(&["downloads", "--json"]);
    if out.code != 0 {
        return None;
    }
    out.json()
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["cid"] == cid)
        .cloned()
}

fn state(node: &Daemon, cid: &str) -> String {
    listed(node, cid)
        .and_then(|d| d["state"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn wait_state(node: &Daemon, cid: &str, wanted: &str, within: Duration) -> Value {
    wait_until(&format!("{cid} {wanted}"), within, || {
        state(node, cid) == wanted
    });
    listed(node, cid).unwrap()
}

#[test]
fn a_detached_download_survives_sigkill_of_the_daemon_and_completes_by_itself() {
    let mut swarm = Swarm::new();
    let src = swarm.path("detached.bin");
    let size = 16 * MIB + 5;
    random_file(&src, size, 71);
    let seeder = swarm.node(&["--max-upload-rate", "2MiB"]);
    let cid = add(&seeder, &src, &[]);
    seeder.wait_announced(1);
    let mut fetcher = swarm.node(&[]);

    // Returns at once, with the download running in the daemon.
    let started = std::time::Instant::now();
    let out = fetcher
        .cli(&["fetch", &cid, "--detach", "--json"])
        .success()
        .json();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(out["cid"], cid.as_str(), "{out}");
    let text = fetcher.cli(&["downloads"]).success().stdout;
    assert!(text.contains(&cid), "{text}");

    wait_until("4 MiB fetched", Duration::from_secs(60), || {
        listed(&fetcher, &cid)
            .and_then(|d| d["bytes_done"].as_u64())
            .unwrap_or(0)
            >= 4 * MIB
    });
    fetcher.kill();
    // No command after this: the restarted daemon resumes on its own.
    fetcher.restart();
    let first_seen = listed(&fetcher, &cid).expect("the download is listed after the restart");
    assert_ne!(first_seen["state"], "done", "{first_seen}");
    let done = wait_state(&fetcher, &cid, "done", Duration::from_secs(120));
    assert_eq!(done["size"], size, "{done}");
    // It resumed from the chunks verified before the kill instead of starting over.
    let received = done["bytes_received"].as_u64().unwrap();
    assert!(received < size, "fetched all {size} bytes again: {done}");

    // The right bytes are in the store: a copy out of it needs no peer.
    let copy = swarm.path("detached.out");
    drop(seeder);
    fetch(&fetcher, &cid, &copy, 10).success();
    assert_eq!(file_hash(&copy), file_hash(&src));
}

#[test]
fn pause_resume_cancel_and_the_history_from_the_cli_across_restarts() {
    let mut swarm = Swarm::new();
    let src = swarm.path("paused.bin");
    let size = 12 * MIB;
    random_file(&src, size, 72);
    let seeder = swarm.node(&["--max-upload-rate", "2MiB"]);
    let cid = add(&seeder, &src, &[]);
    seeder.wait_announced(1);
    let mut fetcher = swarm.node(&[]);
    fetcher.cli(&["fetch", &cid, "--detach"]).success();
    wait_until("1 MiB fetched", Duration::from_secs(60), || {
        listed(&fetcher, &cid)
            .and_then(|d| d["bytes_done"].as_u64())
            .unwrap_or(0)
            >= MIB
    });
    let paused = fetcher.cli(&["pause", &cid]).success().stdout;
    assert!(paused.starts_with("paused "), "{paused}");
    assert_eq!(state(&fetcher, &cid), "paused");

    // Paused stays paused, even after a SIGKILL, with what it verified.
    fetcher.kill();
    fetcher.restart();
    let after = listed(&fetcher, &cid).expect("listed after the restart");
    assert_eq!(after["state"], "paused", "{after}");
    assert!(after["bytes_done"].as_u64().unwrap() >= MIB, "{after}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(state(&fetcher, &cid), "paused");

    // A clean stop (SIGTERM) of a running download also resumes it on the next start.
    fetcher.cli(&["resume", &cid, "--json"]).success();
    wait_until("running again", Duration::from_secs(30), || {
        matches!(state(&fetcher, &cid).as_str(), "downloading" | "done")
    });
    fetcher.stop();
    fetcher.restart();
    wait_state(&fetcher, &cid, "done", Duration::from_secs(120));

    // Cancelling a finished download changes nothing; an unknown one is not found.
    let again = fetcher.cli(&["cancel", &cid, "--json"]).success().json();
    assert_eq!(again["state"], "done");
    let unknown = format!("bafyr4i{}", "a".repeat(52));
    fetcher.cli(&["pause", &unknown]).assert_clean_error(1);
    fetcher.cli(&["pause", "not-a-cid"]).assert_clean_error(2);

    // Clearing forgets the ended ones, now and after a restart.
    let cleared = fetcher
        .cli(&["downloads", "--clear", "--json"])
        .success()
        .json();
    assert_eq!(cleared["cleared"], 1, "{cleared}");
    assert!(listed(&fetcher, &cid).is_none());
    fetcher.restart();
    assert!(listed(&fetcher, &cid).is_none());
    assert_eq!(
        fetcher.cli(&["downloads"]).success().stdout.trim(),
        "no downloads"
    );
}
