//! Issue 3: swarming downloads, failure of peers, resume after SIGKILL, corrupt peers,
//! leechers serving what they hold. Real daemons on 127.0.0.1; upload caps slow the
//! seeders down so that failures can be injected mid-transfer.
#![allow(clippy::unwrap_used)]

mod harness;

use std::time::Duration;

use harness::*;
use serde_json::Value;

const MIB: u64 = 1 << 20;

fn per_peer(summary: &Value) -> Vec<(String, u64)> {
    summary["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["peer_id"].as_str().unwrap().to_string(),
                p["bytes"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn four_seeders_each_send_part_of_the_file() {
    let mut swarm = Swarm::new();
    let src = swarm.path("swarm.bin");
    random_file(&src, 48 * MIB, 1);
    let seeders: Vec<Daemon> = (0..4)
        .map(|_| swarm.node(&["--max-upload-rate", "6MiB"]))
        .collect();
    let mut cid = String::new();
    for s in &seeders {
        cid = add(s, &src, &[]);
    }
    for s in &seeders {
        s.wait_announced(1);
    }
    let fetcher = swarm.node(&[]);
    let out = swarm.path("swarm.out");
    let summary = fetch(&fetcher, &cid, &out, 60).success().json();
    assert_eq!(file_hash(&out), file_hash(&src));
    let peers = per_peer(&summary);
    let seeder_ids: Vec<String> = seeders.iter().map(|s| s.peer_id()).collect();
    let contributing = peers
        .iter()
        .filter(|(p, b)| seeder_ids.contains(p) && *b > 0)
        .count();
    assert!(
        contributing >= 3,
        "bytes came from {contributing} seeders: {summary}"
    );
    assert_eq!(bytes_from_peers(&summary), 48 * MIB, "{summary}");
}

#[test]
fn a_seeder_killed_mid_transfer_does_not_stop_the_fetch() {
    let mut swarm = Swarm::new();
    let src = swarm.path("two.bin");
    random_file(&src, 32 * MIB, 2);
    let mut first = swarm.node(&["--max-upload-rate", "4MiB"]);
    let second = swarm.node(&["--max-upload-rate", "4MiB"]);
    let cid = add(&first, &src, &[]);
    add(&second, &src, &[]);
    first.wait_announced(1);
    second.wait_announced(1);
    let fetcher = swarm.node(&[]);
    let out = swarm.path("two.out");
    let child = spawn_cli(
        &fetcher.data_dir,
        &[
            "fetch",
            &cid,
            "-o",
            out.to_str().unwrap(),
            "--json",
            "--timeout",
            "30",
        ],
    );
    wait_until("a quarter of the file", Duration::from_secs(60), || {
        fetcher.bytes_done(&cid) >= 8 * MIB
    });
    first.kill();
    let result = finish(child).success();
    assert_eq!(file_hash(&out), file_hash(&src));
    let second_id = second.peer_id();
    let peers = per_peer(&result.json());
    assert!(
        peers.iter().any(|(p, b)| *p == second_id && *b > 0),
        "{peers:?}"
    );
}

#[test]
fn a_fetcher_killed_with_sigkill_resumes_without_refetching_verified_chunks() {
    let mut swarm = Swarm::new();
    let src = swarm.path("resume.bin");
    let size = 40 * MIB;
    random_file(&src, size, 3);
    let seeder = swarm.node(&["--max-upload-rate", "8MiB"]);
    let cid = add(&seeder, &src, &[]);
    let mut fetcher = swarm.node(&[]);
    let out = swarm.path("resume.out");
    let child = fetch_in_background(&fetcher, &cid, &out, 12 * MIB);
    let done_before_kill = fetcher.bytes_done(&cid);
    fetcher.kill();
    let interrupted = finish(child);
    assert_eq!(interrupted.code, 1, "{interrupted:?}");
    assert!(
        !out.exists(),
        "no partial file may appear at the output path"
    );

    fetcher.restart();
    let listed = fetcher.cli(&["ls", "--json"]).success().json();
    assert_eq!(listed[0]["state"], "partial", "{listed}");
    let summary = fetch(&fetcher, &cid, &out, 60).success().json();
    assert_eq!(file_hash(&out), file_hash(&src));
    let received_after = bytes_from_peers(&summary);
    assert!(
        received_after <= size - done_before_kill,
        "fetched {received_after} bytes after the restart, but {done_before_kill} of {size} were verified before the kill"
    );
    assert!(received_after > 0);
}

#[test]
fn a_seeder_sending_corrupt_chunks_is_banned_and_the_file_arrives_intact() {
    let mut swarm = Swarm::new();
    let src = swarm.path("corrupt.bin");
    random_file(&src, 16 * MIB, 4);
    let liar = swarm.node(&["--test-corrupt-chunks"]);
    let honest = swarm.node(&["--max-upload-rate", "8MiB"]);
    let cid = add(&liar, &src, &[]);
    add(&honest, &src, &[]);
    liar.wait_announced(1);
    honest.wait_announced(1);
    let fetcher = swarm.node(&[]);
    let out = swarm.path("corrupt.out");
    let summary = fetch(&fetcher, &cid, &out, 60).success().json();
    assert_eq!(file_hash(&out), file_hash(&src));
    let liar_id = liar.peer_id();
    let peers = per_peer(&summary);
    assert!(peers.iter().all(|(p, _)| *p != liar_id), "{peers:?}");
    // The reputation table shows the ban, which survives a restart.
    let mut fetcher = fetcher;
    let honest_id = honest.peer_id();
    let check = |fetcher: &Daemon| {
        let table = fetcher.cli(&["reputation", "--json"]).success().json();
        let entry = |id: &str| {
            table
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["peer_id"] == id)
                .cloned()
                .unwrap_or_else(|| panic!("{id} missing from {table}"))
        };
        let liar_entry = entry(&liar_id);
        assert_eq!(liar_entry["banned"], true, "{liar_entry}");
        assert_eq!(liar_entry["score"], -100.0);
        assert!(liar_entry["corrupt_chunks"].as_u64().unwrap() >= 1);
        let honest_entry = entry(&honest_id);
        assert!(
            honest_entry["score"].as_f64().unwrap() > 0.0,
            "{honest_entry}"
        );
        assert_eq!(honest_entry["received"], 16 * MIB);
    };
    check(&fetcher);
    fetcher.stop();
    fetcher.restart();
    check(&fetcher);
}

#[test]
fn a_leecher_serves_the_chunks_it_holds_to_a_third_peer() {
    let mut swarm = Swarm::new();
    let src = swarm.path("leech.bin");
    let size = 24 * MIB;
    random_file(&src, size, 5);
    let mut seeder = swarm.node(&["--max-upload-rate", "4MiB"]);
    let cid = add(&seeder, &src, &[]);
    let leecher = swarm.node(&[]);
    let leech_out = swarm.path("leech.out");
    let leech = spawn_cli(
        &leecher.data_dir,
        &[
            "fetch",
            &cid,
            "-o",
            leech_out.to_str().unwrap(),
            "--timeout",
            "120",
        ],
    );
    wait_until(
        "half the file at the leecher",
        Duration::from_secs(60),
        || leecher.bytes_done(&cid) >= size / 2,
    );
    seeder.kill();
    let leecher_has = leecher.bytes_done(&cid);

    // The third peer finds the leecher through the DHT and gets what it holds.
    let third = swarm.node(&[]);
    let third_out = swarm.path("third.out");
    let stalled = fetch(&third, &cid, &third_out, 6);
    assert_eq!(stalled.code, 1, "{stalled:?}");
    let third_has = third.cli(&["ls", "--json"]).success().json()[0]["have_chunks"]
        .as_u64()
        .unwrap()
        * MIB;
    assert!(
        third_has >= leecher_has,
        "third peer holds {third_has} bytes, the leecher held {leecher_has}"
    );

    // With the seeder back, both finish.
    seeder.restart();
    let summary = fetch(&third, &cid, &third_out, 60).success().json();
    assert_eq!(file_hash(&third_out), file_hash(&src));
    assert!(bytes_from_peers(&summary) <= size - third_has);
    finish(leech).success();
    assert_eq!(file_hash(&leech_out), file_hash(&src));
}

/// Bytes `node` has sent to `peer`, as its `peers --json` reports them.
fn bytes_sent(node: &Daemon, peer: &str) -> u64 {
    node.peer_entry(peer)
        .map_or(0, |p| p["bytes_sent"].as_u64().unwrap())
}

#[test]
fn endgame_duplicates_are_withdrawn_from_the_slow_peer() {
    let mut swarm = Swarm::new();
    let src = swarm.path("endgame.bin");
    random_file(&src, 48 * MIB, 8);
    // The slow seeder is asked for its share of chunks at once (6 in flight) but sends
    // one per second; the fast one delivers the rest, and in the endgame the slow one's
    // chunks too.
    let slow = swarm.node(&["--max-upload-rate", "1MiB"]);
    let fast = swarm.node(&[]);
    let cid = add(&slow, &src, &[]);
    add(&fast, &src, &[]);
    slow.wait_announced(1);
    fast.wait_announced(1);
    let fetcher = swarm.node(&[]);
    let out = swarm.path("endgame.out");
    fetch(&fetcher, &cid, &out, 60).success();
    assert_eq!(file_hash(&out), file_hash(&src));
    let fetcher_id = fetcher.peer_id();
    let at_end = bytes_sent(&slow, &fetcher_id);

    // The fetcher withdrew the duplicates it no longer needed (its log says how many;
    // the API does not)...
    let log = fetcher.log();
    let line = log
        .lines()
        .find(|l| l.contains("download finished"))
        .unwrap_or_else(|| panic!("no end of download in the log: {log}"));
    let cancelled: u64 = line
        .split("requests_cancelled=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no requests_cancelled in {line:?}"));
    assert!(cancelled >= 1, "nothing was withdrawn: {line}");

    // ...so the slow seeder stops: without the Cancel it would go on sending each chunk
    // it was asked for, one per second, to a fetcher that already has them. Nothing to
    // wait for here: this is the window in which it must send (almost) nothing.
    std::thread::sleep(Duration::from_secs(4));
    let later = bytes_sent(&slow, &fetcher_id);
    assert!(
        later - at_end <= MIB,
        "the slow seeder sent {} bytes after the fetch ended ({cancelled} requests withdrawn)",
        later - at_end
    );
}
