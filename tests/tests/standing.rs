//! Issue 14: the standing protocol between real daemons on 127.0.0.1. A node asks the
//! peers it is connected to how they see it (`p2pd reputation --mine`): after a seeder
//! uploads a file to a downloader, the seeder sees the downloader's count of the bytes
//! it got; a corrupter banned by a downloader sees the ban and its reason. (A malformed
//! question costs its sender and gets no answer: `network::standing`'s unit tests.)
#![allow(clippy::unwrap_used)]

mod harness;

use std::time::Duration;

use harness::*;
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// `node`'s standing at `peer_id`, as `p2pd reputation --mine --json` shows it.
fn standing_at(node: &Daemon, peer_id: &str) -> Option<Value> {
    node.row_of(&["reputation", "--mine", "--json"], peer_id)
}

#[test]
fn a_seeder_sees_the_bytes_its_downloader_counted_from_it() {
    let mut swarm = Swarm::new();
    let src = swarm.path("standing.bin");
    random_file(&src, 4 * MIB, 41);
    let seeder = swarm.node(&[]);
    let cid = add(&seeder, &src, &[]);
    seeder.wait_announced(1);
    let downloader = swarm.node(&[]);
    let out = swarm.path("standing.out");
    fetch(&downloader, &cid, &out, 60).success();
    let downloader_id = downloader.peer_id();
    // The downloader counts the bytes in memory at once; the answer is from memory.
    let view = standing_at(&seeder, &downloader_id).expect("the downloader was asked");
    assert_eq!(view["answer"], "known", "{view}");
    assert_eq!(view["received_from_me"], 4 * MIB, "{view}");
    // A seed probes a peer it served that never gave anything, once, for a chunk the
    // peer announced (docs/reputation.md, "The upload side probes too"): depending on
    // timing the downloader sent the seeder that one chunk, or nothing.
    let probed = view["sent_to_me"].as_u64().unwrap();
    assert!(probed == 0 || probed == MIB, "{view}");
    assert_eq!(view["banned"], false, "{view}");
    // Giving verified data is what raises a score: 10 × log2(1 + 4 MiB).
    let score = view["score"].as_f64().unwrap();
    assert!((score - 23.22).abs() < 0.01, "{view}");
    // And the other way round: the seeder counted the bytes it sent the downloader,
    // and the downloader gave it nothing (it scores 0 there) or the probed chunk.
    let view = standing_at(&downloader, &seeder.peer_id()).expect("the seeder was asked");
    assert_eq!(view["answer"], "known", "{view}");
    assert_eq!(view["sent_to_me"], 4 * MIB, "{view}");
    // (The probe may also have come after the first question: at most one chunk.)
    let probed_then = view["received_from_me"].as_u64().unwrap();
    assert!(probed_then == probed || probed_then == MIB, "{view}");
    if probed_then == 0 {
        assert_eq!(view["score"], 0.0, "{view}");
    } else {
        assert!(view["score"].as_f64().unwrap() > 0.0, "{view}");
    }
    // The text form names the peer and its count.
    let text = seeder.cli(&["reputation", "--mine"]).success().stdout;
    assert!(
        text.lines()
            .any(|l| l.starts_with(&downloader_id) && l.contains("4.0 MiB")),
        "{text}"
    );
}

#[test]
fn a_banned_corrupter_sees_its_ban_and_the_reason() {
    let mut swarm = Swarm::new();
    let src = swarm.path("corrupt.bin");
    random_file(&src, 4 * MIB, 42);
    let corrupter = swarm.node(&["--test-corrupt-chunks"]);
    let cid = add(&corrupter, &src, &[]);
    corrupter.wait_announced(1);
    let victim = swarm.node(&[]);
    let out = swarm.path("corrupt.out");
    // The corrupter is the only source: the fetch cannot succeed; it ends at its timeout.
    let mut fetch = spawn_cli(
        &victim.data_dir,
        &[
            "fetch",
            &cid,
            "-o",
            out.to_str().unwrap(),
            "--timeout",
            "30",
        ],
    );
    let corrupter_id = corrupter.peer_id();
    let banned = || {
        victim
            .row_of(&["reputation", "--json"], &corrupter_id)
            .is_some_and(|p| p["banned"] == true)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !banned() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    // The fetch has nothing more to get: it is stopped by its pid, whatever comes next.
    let _ = fetch.kill();
    let _ = fetch.wait();
    assert!(banned(), "the victim did not ban the corrupter within 60 s");
    let view = standing_at(&corrupter, &victim.peer_id()).expect("the victim was asked");
    assert_eq!(view["answer"], "known", "{view}");
    assert_eq!(view["banned"], true, "{view}");
    assert_eq!(view["ban_reason"], "sent a corrupt chunk", "{view}");
    assert!(view["corrupt_chunks"].as_u64().unwrap() >= 1, "{view}");
    assert_eq!(view["score"], -100.0, "{view}");
    let text = corrupter.cli(&["reputation", "--mine"]).success().stdout;
    assert!(text.contains("banned (sent a corrupt chunk)"), "{text}");
}
