//! Issue 2: share and fetch a file by CID across daemons, through the DHT alone.
//! Every test starts real `p2pd` processes on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod harness;

use std::time::Duration;

use harness::*;

const MIB: u64 = 1 << 20;

#[test]
fn files_of_every_size_arrive_identical_through_the_dht() {
    let mut swarm = Swarm::new();
    let seeder = swarm.node(&[]);
    let fetcher = swarm.node(&[]);
    // The fetcher knows only the bootstrap node: not the seeder.
    let sizes = [0, 1, MIB, 3 * MIB + 17, 64 * MIB];
    let mut cids = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let path = swarm.path(&format!("src-{size}"));
        random_file(&path, *size, i as u64);
        let cid = add(&seeder, &path, &[]);
        assert!(cid.starts_with("bafyr4"), "{cid}");
        cids.push((cid, path));
    }
    for (cid, src) in &cids {
        let out = swarm.path(&format!("{cid}.out"));
        let result = fetch(&fetcher, cid, &out, 60).success();
        assert_eq!(file_hash(&out), file_hash(src), "{cid}");
        let summary = result.json();
        assert_eq!(summary["cid"], cid.as_str());
        assert_eq!(
            summary["size"].as_u64().unwrap(),
            std::fs::metadata(src).unwrap().len()
        );
        let from_seeder: u64 = summary["peers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["peer_id"] == seeder.peer_id().as_str())
            .map(|p| p["bytes"].as_u64().unwrap())
            .sum();
        assert_eq!(from_seeder, summary["size"].as_u64().unwrap(), "{summary}");
    }
    // The seeder was found by a DHT provider lookup, not only because the fetcher
    // happened to be connected to it (connected peers are asked too). Only the log says
    // which providers a lookup found.
    let seeder_id = seeder.peer_id();
    let log = fetcher.log();
    assert!(
        log.lines()
            .any(|l| l.contains("provider found") && l.contains(&seeder_id)),
        "no DHT lookup found the seeder"
    );
    // The fetcher now provides what it fetched.
    let listed = fetcher.cli(&["ls", "--json"]).success().json();
    assert_eq!(listed.as_array().unwrap().len(), sizes.len());
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["state"] == "complete"));
}

#[test]
fn add_prints_cid_and_json_and_same_bytes_give_one_cid() {
    let mut swarm = Swarm::new();
    let node = swarm.node(&[]);
    let a = swarm.path("a.txt");
    let b = swarm.path("b.txt");
    random_file(&a, 100_000, 7);
    std::fs::copy(&a, &b).unwrap();
    let cid_a = add(&node, &a, &[]);
    let json = node
        .cli(&["add", b.to_str().unwrap(), "--no-copy", "--json"])
        .success()
        .json();
    assert_eq!(json["cid"], cid_a.as_str());
    assert_eq!(json["size"], 100_000);
    assert_eq!(json["chunks"], 1);
    assert_eq!(json["name"], "a.txt");
    let listed = node.cli(&["ls", "--json"]).success().json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[test]
fn files_tracked_in_place_are_served_until_they_change() {
    let mut swarm = Swarm::new();
    let seeder = swarm.node(&[]);
    let fetcher = swarm.node(&[]);
    let src = swarm.path("in-place.bin");
    random_file(&src, 2 * MIB + 5, 11);
    let cid = add(&seeder, &src, &["--no-copy"]);
    let out = swarm.path("in-place.out");
    fetch(&fetcher, &cid, &out, 60).success();
    assert_eq!(file_hash(&out), file_hash(&src));

    // Change the file on the seeder: it must refuse to serve rather than serve wrong bytes.
    let src2 = swarm.path("in-place-2.bin");
    random_file(&src2, 3 * MIB, 12);
    let cid2 = add(&seeder, &src2, &["--no-copy"]);
    // Same size, other bytes, and a modification time that surely differs (a rewrite
    // within one tick of the file system's clock would keep it).
    let added_mtime = std::fs::metadata(&src2).unwrap().modified().unwrap();
    random_file(&src2, 3 * MIB, 13);
    std::fs::File::options()
        .write(true)
        .open(&src2)
        .unwrap()
        .set_modified(added_mtime + Duration::from_secs(1))
        .unwrap();
    let other = swarm.node(&[]);
    let out2 = swarm.path("in-place-2.out");
    let failed = fetch(&other, &cid2, &out2, 5);
    failed.assert_clean_error(1);
    assert!(!out2.exists(), "nothing may be written for a failed fetch");
    // It failed because the seeder refused, not because it was not found (only the log
    // says which providers a lookup found) or because it sent the changed bytes (which
    // the fetcher would have caught, counted and banned it for).
    let log = other.log();
    let seeder_id = seeder.peer_id();
    assert!(
        log.lines()
            .any(|l| l.contains("provider found") && l.contains(&seeder_id)),
        "the seeder was never found: {log}"
    );
    let scores = other.cli(&["reputation", "--json"]).success().json();
    let seeder_score = scores
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer_id"] == seeder_id.as_str());
    if let Some(score) = seeder_score {
        assert_eq!(score["corrupt_chunks"], 0, "{scores}");
        assert_eq!(score["banned"], false, "{scores}");
    }
}

#[test]
fn a_restarted_seeder_serves_and_a_restarted_fetcher_keeps_its_store() {
    let mut swarm = Swarm::new();
    let mut seeder = swarm.node(&[]);
    let src = swarm.path("restart.bin");
    random_file(&src, 5 * MIB + 1, 21);
    let cid = add(&seeder, &src, &[]);
    seeder.stop();
    std::fs::remove_file(&src).unwrap(); // the store has its own copy
    seeder.restart();

    let mut fetcher = swarm.node(&[]);
    let out = swarm.path("restart.out");
    fetch(&fetcher, &cid, &out, 60).success();
    let expected = file_hash(&out);

    fetcher.restart();
    let listed = fetcher.cli(&["ls", "--json"]).success().json();
    assert_eq!(listed[0]["cid"], cid.as_str());
    assert_eq!(listed[0]["state"], "complete");
    // A second fetch is served from the local store even with the seeder gone.
    seeder.kill();
    let again = swarm.path("restart-again.out");
    fetch(&fetcher, &cid, &again, 10).success();
    assert_eq!(file_hash(&again), expected);
}

#[test]
fn bad_input_gives_one_clear_line_and_the_documented_exit_code() {
    let mut swarm = Swarm::new();
    let node = swarm.node(&[]);
    let dir = swarm.path("");
    let missing = swarm.path("no-such-file");

    // Malformed CIDs: exit 2.
    for bad in [
        "hello",
        "bafy",
        "Qmabc",
        "bafkr4ifpcne3t5pzugtkaqcn5i3nzskjtpfslsnnyejlpte2spfoihzsmi",
    ] {
        node.cli(&["fetch", bad, "--timeout", "2"])
            .assert_clean_error(2);
    }
    node.cli(&["rm", "not-a-cid"]).assert_clean_error(2);
    // A missing file or one that is neither a file nor a directory (a FIFO): exit 2,
    // and nothing is added. (A directory is added as a folder: tests/tests/folders.rs.)
    node.cli(&["add", missing.to_str().unwrap()])
        .assert_clean_error(2);
    let fifo = dir.join("a-fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    node.cli(&["add", fifo.to_str().unwrap()])
        .assert_clean_error(2);
    // A name with path parts (or otherwise not one plain file name): exit 2.
    let file = swarm.path("named");
    std::fs::write(&file, b"some bytes").unwrap();
    for bad in ["../../n", "a/b", ".hidden", "c:\\x"] {
        let out = node.cli(&["add", file.to_str().unwrap(), "--name", bad]);
        out.assert_clean_error(2);
        assert!(out.stderr.contains("invalid name"), "{bad}: {out:?}");
    }
    assert_eq!(
        node.cli(&["ls", "--json"]).success().json(),
        serde_json::json!([])
    );
    // Bad usage: exit 2.
    assert_eq!(node.cli(&["fetch"]).code, 2);
    assert_eq!(node.cli(&["frobnicate"]).code, 2);
    // An unknown CID with a short timeout: exit 1.
    let unknown = "bafyr4ifpcne3t5pzugtkaqcn5i3nzskjtpfslsnnyejlpte2spfoihzsmi";
    let result = node.cli(&[
        "fetch",
        unknown,
        "-o",
        swarm.path("x").to_str().unwrap(),
        "--timeout",
        "2",
    ]);
    result.assert_clean_error(1);
    assert!(result.stderr.contains("no provider"), "{result:?}");
    // An output that exists already: exit 2, and it is left alone.
    let existing = swarm.path("existing");
    std::fs::write(&existing, b"keep me").unwrap();
    node.cli(&["fetch", unknown, "-o", existing.to_str().unwrap()])
        .assert_clean_error(2);
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    // Removing a file the node does not have: exit 1.
    node.cli(&["rm", unknown]).assert_clean_error(1);
    // No daemon running for a data directory: exit 1.
    let nobody = swarm.path("nobody");
    cli(&nobody, &["ls"]).assert_clean_error(1);
    cli(&nobody, &["status"]).assert_clean_error(1);
    let out = cli(&nobody, &["fetch", unknown]);
    out.assert_clean_error(1);
    assert!(out.stderr.contains("not running"), "{out:?}");
}

#[test]
fn id_and_status_report_the_node() {
    let mut swarm = Swarm::new();
    let node = swarm.node(&[]);
    let id = node.cli(&["id", "--json"]).success().json();
    let peer = id["peer_id"].as_str().unwrap();
    assert!(peer.starts_with("12D3Koo"));
    for addr in id["addrs"].as_array().unwrap() {
        let addr = addr.as_str().unwrap();
        assert!(addr.ends_with(&format!("/p2p/{peer}")), "{addr}");
        assert_eq!(addr.matches(&format!("/p2p/{peer}")).count(), 1, "{addr}");
    }
    let status = node.status();
    assert_eq!(status["node"]["peer_id"], peer);
    // A reader that goes away (`p2pd status | head -1`) ends the command quietly.
    let mut child = spawn_cli(&node.data_dir, &["status", "--json"]);
    drop(child.stdout.take());
    let closed = finish(child);
    assert_eq!(closed.code, 0, "{closed:?}");
    assert!(closed.stderr.is_empty(), "{closed:?}");
    wait_until(
        "a connection to the bootstrap node",
        Duration::from_secs(20),
        || node.status()["node"]["connected_peers"].as_u64().unwrap() >= 1,
    );
    // The bootstrap node is a DHT server.
    assert_eq!(swarm.bootstrap.status()["node"]["dht_server"], true);
    // The bootstrap node relays; a node may take a slot on it while its reachability is
    // unknown, and gives it back once its own address is confirmed.
    node.wait_reachable_without_reservations();
    // The identity survives a restart.
    let mut node = node;
    node.restart();
    assert_eq!(node.peer_id(), peer);
    assert!(node.data_dir.join("p2pd.log").exists());
}

#[test]
fn unpublish_and_rm_survive_a_restart() {
    let mut swarm = Swarm::new();
    let mut node = swarm.node(&[]);
    let a = swarm.path("pub-a");
    let b = swarm.path("pub-b");
    random_file(&a, 1000, 31);
    random_file(&b, 2000, 32);
    let cid_a = add(&node, &a, &[]);
    let cid_b = add(&node, &b, &[]);
    assert_eq!(node.status()["node"]["provided_files"], 2);
    node.cli(&["unpublish", &cid_a]).success();
    node.cli(&["rm", &cid_b]).success();
    assert_eq!(node.status()["node"]["provided_files"], 0);
    node.restart();
    assert_eq!(node.status()["node"]["provided_files"], 0);
    let listed = node.cli(&["ls", "--json"]).success().json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["cid"], cid_a.as_str());
    // Adding it again announces it again.
    add(&node, &a, &[]);
    assert_eq!(node.status()["node"]["provided_files"], 1);
}

#[test]
fn peers_see_the_display_name_of_the_owner() {
    let mut swarm = Swarm::new();
    let named = swarm.node(&["--display-name", "Bob's server"]);
    let other = swarm.node(&[]);
    let named_id = named.peer_id();
    let src = swarm.path("named.bin");
    random_file(&src, 1000, 51);
    let cid = add(&named, &src, &[]);
    fetch(&other, &cid, &swarm.path("named.out"), 30).success();
    wait_until(
        "the named peer's agent string",
        Duration::from_secs(20),
        || {
            other
                .cli(&["peers", "--json"])
                .success()
                .json()
                .as_array()
                .unwrap()
                .iter()
                .any(|p| {
                    p["peer_id"] == named_id.as_str() && p["agent"] == "p2pd/0.1.0 (Bob's server)"
                })
        },
    );
}
