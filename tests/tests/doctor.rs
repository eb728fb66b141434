//! `p2pd doctor` (issue 16) against real daemons on 127.0.0.1: a healthy small network
//! passes and another node's DHT server is found to hold a shared file's record; a node
//! with no peers fails naming the DHT check; a record a DHT server did not keep, and
//! records that cannot be checked once the only DHT server is gone, are named.
#![allow(clippy::unwrap_used)]

mod harness;

use std::time::Duration;

use harness::*;
use serde_json::Value;

/// Waits until a node's own address is confirmed (AutoNAT on loopback), so that its
/// reachability check can pass.
fn wait_public(node: &Daemon) {
    wait_until("a confirmed address", Duration::from_secs(30), || {
        node.status()["node"]["nat_status"] == "public"
    });
}

fn record<'a>(report: &'a Value, cid: &str) -> &'a Value {
    report["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cid"] == cid)
        .unwrap_or_else(|| panic!("no record probe of {cid}: {report}"))
}

fn failed_checks(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            format!(
                "{} {}",
                c["check"].as_str().unwrap(),
                c["subject"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn a_healthy_network_passes_and_the_record_is_found_by_another_dht_server() {
    let mut swarm = Swarm::new();
    let a = swarm.node(&[]);
    let _b = swarm.node(&[]);
    let src = swarm.path("shared.bin");
    random_file(&src, 200_000, 1);
    let cid = add(&a, &src, &[]);
    a.wait_announced(1);
    wait_public(&a);

    let out = a.cli(&["doctor", "--json"]);
    let report = out.json();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(report["healthy"], true, "{report}");
    let probe = record(&report, &cid);
    assert_eq!(probe["found"], true, "{report}");
    // Another node was asked, over the network.
    let asked = probe["asked"].as_str().unwrap();
    assert_ne!(asked, a.peer_id());
    assert!(probe["providers"].as_u64().unwrap() >= 1);
    assert!(report["routing_table_peers"].as_u64().unwrap() >= 1);

    let text = a.cli(&["doctor"]).success();
    assert!(
        text.stdout
            .contains(&format!("provider-record {cid}: found")),
        "{text:?}"
    );
    assert!(text.stdout.contains("] dht:"), "{text:?}");
}

#[test]
fn a_node_without_peers_fails_naming_the_dht_check() {
    let dir = tempfile::tempdir().unwrap();
    let alone = Daemon::start(&dir.path().join("alone"), &[]);
    let out = alone.cli(&["doctor"]);
    out.assert_clean_error(1);
    assert!(out.stderr.contains("dht"), "{out:?}");
    assert!(
        out.stdout
            .contains("[FAIL] dht: 0 peer(s) in the routing table"),
        "{out:?}"
    );
    assert!(out.stdout.contains("advice: no DHT peers"), "{out:?}");
    let report = alone.cli(&["doctor", "--json"]);
    assert_eq!(report.code, 1);
    let failed = failed_checks(&report.json());
    assert!(failed.iter().any(|c| c.trim() == "dht"), "{failed:?}");
}

#[test]
fn a_record_the_dht_server_did_not_keep_and_records_without_a_server_are_named() {
    let dir = tempfile::tempdir().unwrap();
    // The only DHT server keeps one provider key: a second record is dropped silently.
    let mut server = Daemon::start(
        &dir.path().join("server"),
        &["--dht-mode", "server", "--max-provider-keys", "1"],
    );
    let server_addr = server.addr();
    let node = Daemon::start(
        &dir.path().join("node"),
        &["--bootstrap", &server_addr, "--dht-mode", "client"],
    );
    // Records carry only confirmed addresses: without one no server names the node.
    wait_public(&node);
    let first = dir.path().join("first.bin");
    let second = dir.path().join("second.bin");
    random_file(&first, 10_000, 2);
    random_file(&second, 10_000, 3);
    // Unlisted: no keyword records to take the server's one key.
    let kept = add(&node, &first, &["--unlisted"]);
    node.wait_announced(1);
    let dropped = add(&node, &second, &["--unlisted"]);
    node.wait_announced(2);

    let out = node.cli(&["doctor", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = out.json();
    assert_eq!(record(&report, &kept)["found"], true, "{report}");
    assert_eq!(record(&report, &dropped)["found"], false, "{report}");
    let failed = failed_checks(&report);
    assert!(
        failed.contains(&format!("provider-record {dropped}")),
        "{failed:?}"
    );
    assert!(
        !failed.contains(&format!("provider-record {kept}")),
        "{failed:?}"
    );
    let text = node.cli(&["doctor"]);
    assert!(text.stderr.contains(&dropped), "{text:?}");
    assert!(
        text.stdout
            .contains(&format!("[FAIL] provider-record {dropped}: not found")),
        "{text:?}"
    );

    // With the only DHT server gone, no record can be checked: each is named.
    server.stop();
    wait_until(
        "the server's connection to close",
        Duration::from_secs(30),
        || node.status()["node"]["connected_peers"] == 0,
    );
    let out = node.cli(&["doctor", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = out.json();
    let probe = record(&report, &kept);
    assert_eq!(probe["found"], false);
    assert_eq!(probe["error"], "no connected DHT server to ask", "{report}");
    let failed = failed_checks(&report);
    assert!(
        failed.contains(&format!("provider-record {kept}")),
        "{failed:?}"
    );
}
