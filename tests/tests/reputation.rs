//! Issue 14: reputation that changes outcomes, checked on a small lab of real daemons
//! on 127.0.0.1 (the `lab` program of examples/ runs the large one, docs/lab.md): a
//! corrupter is banned by every honest peer it sent a chunk to, within 3 bad chunks,
//! no corrupt byte is written, every honest peer completes; a freeloader's refusals
//! are counted against it; a peer advertising chunks it lacks is banned; the ledger
//! with its bans survives a SIGKILL.
#![allow(clippy::unwrap_used)]

mod harness;

use std::process::Child;

use harness::*;
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// `node`'s ledger entry for `peer_id`, if it has one.
fn ledger_entry(node: &Daemon, peer_id: &str) -> Option<Value> {
    node.row_of(&["reputation", "--json"], peer_id)
}

fn start_fetch(node: &Daemon, cid: &str, out: &std::path::Path) -> Child {
    spawn_cli(
        &node.data_dir,
        &[
            "fetch",
            cid,
            "-o",
            out.to_str().unwrap(),
            "--json",
            "--timeout",
            "120",
        ],
    )
}

#[test]
fn a_small_lab_bans_corrupters_writes_no_corrupt_byte_and_every_honest_peer_completes() {
    let mut swarm = Swarm::new();
    let src = swarm.path("lab.bin");
    random_file(&src, 16 * MIB, 14);
    let seeder = swarm.node(&["--max-upload-rate", "2MiB"]);
    // Fast, so that the downloaders ask it first and often.
    let corrupter = swarm.node(&["--test-corrupt-rate", "0.5"]);
    let cid = add(&seeder, &src, &[]);
    add(&corrupter, &src, &[]);
    seeder.wait_announced(1);
    corrupter.wait_announced(1);
    let freeloader = swarm.node(&["--test-freeload"]);
    let honest: Vec<Daemon> = (0..3).map(|_| swarm.node(&[])).collect();
    let mut fetches = Vec::new();
    for (i, node) in honest.iter().chain([&freeloader]).enumerate() {
        let out = swarm.path(&format!("out{i}"));
        fetches.push((start_fetch(node, &cid, &out), out));
    }
    for (child, out) in fetches {
        finish(child).success();
        // No corrupt byte written: every output is the source, bit for bit.
        assert_eq!(file_hash(&out), file_hash(&src), "{}", out.display());
    }
    let corrupter_id = corrupter.peer_id();
    let freeloader_id = freeloader.peer_id();
    let mut exposed = 0;
    let mut choked_by_freeloader = 0;
    for node in &honest {
        if let Some(entry) = ledger_entry(node, &corrupter_id) {
            let bad = entry["corrupt_chunks"].as_u64().unwrap();
            if bad > 0 || entry["received"].as_u64().unwrap() > 0 {
                exposed += 1;
                assert!(bad >= 1, "a corrupter's good chunk only: {entry}");
                assert!(bad <= 3, "banned only after {bad} bad chunks: {entry}");
                assert_eq!(entry["banned"], true, "{entry}");
                assert_eq!(entry["ban_reason"], "sent a corrupt chunk", "{entry}");
            }
        }
        if let Some(entry) = ledger_entry(node, &freeloader_id) {
            choked_by_freeloader += entry["chokes"].as_u64().unwrap();
            assert_eq!(entry["received"], 0, "the freeloader gave: {entry}");
        }
    }
    assert!(exposed >= 1, "no honest peer asked the corrupter anything");
    assert!(
        choked_by_freeloader >= 1,
        "no honest peer was refused by the freeloader"
    );
}

#[test]
fn a_peer_advertising_chunks_it_lacks_is_banned_and_the_ban_survives_a_kill() {
    let mut swarm = Swarm::new();
    let src = swarm.path("lie.bin");
    random_file(&src, 24 * MIB, 15);
    let seeder = swarm.node(&["--max-upload-rate", "2MiB"]);
    let cid = add(&seeder, &src, &[]);
    seeder.wait_announced(1);
    // The liar downloads slowly and claims to hold everything from the start.
    let liar = swarm.node(&["--test-lie-have", "--max-download-rate", "256KiB"]);
    let liar_out = swarm.path("liar.out");
    let liar_fetch = fetch_in_background(&liar, &cid, &liar_out, MIB);
    let mut fetcher = swarm.node(&[]);
    let out = swarm.path("lie.out");
    // 12 s at the seeder's cap. The seeder must not hold the fetcher back for passing
    // nothing on to the liar: the liar claims every chunk, and the fetcher banned it.
    fetch(&fetcher, &cid, &out, 60).success();
    assert_eq!(file_hash(&out), file_hash(&src));
    let liar_id = liar.peer_id();
    let check = |fetcher: &Daemon| {
        let entry = ledger_entry(fetcher, &liar_id).expect("the liar is in the ledger");
        assert_eq!(entry["banned"], true, "{entry}");
        assert_eq!(
            entry["ban_reason"], "advertised chunks it does not have",
            "{entry}"
        );
        assert!(entry["refusals"].as_u64().unwrap() >= 4, "{entry}");
        assert_eq!(entry["score"], -100.0);
    };
    check(&fetcher);
    // The ban was written at once: it is there after a SIGKILL.
    fetcher.kill();
    fetcher.restart();
    check(&fetcher);
    let mut liar_fetch = liar_fetch;
    let _ = liar_fetch.kill();
    let _ = liar_fetch.wait();
}
