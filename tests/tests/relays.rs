//! `p2pd relays` (issue 16) against real daemons on 127.0.0.1: the bootstrap node is a
//! relay server; a node adds it as its relay and holds a reservation on it (even though
//! loopback makes the node reachable directly), a third node reaches the node through
//! the relay, and the counts move on both sides; the reservation's expiry is read from
//! the relay and agrees with the relay's own view; dropping the relay gives the
//! reservation back. Bad input is refused with a clean error.
#![allow(clippy::unwrap_used)]

mod harness;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use harness::*;
use serde_json::Value;

fn relays(node: &Daemon) -> Value {
    node.cli(&["relays", "--json"]).success().json()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Slack between two clocks' readings of the same moment (both on this machine, read a
/// request apart, rounded down to seconds).
const CLOCK_SLACK: u64 = 5;

/// What `probe` finds, polled until it finds something or `timeout` passes.
fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let mut found = None;
    wait_until(what, timeout, || {
        found = probe();
        found.is_some()
    });
    found.unwrap()
}

fn entry(view: &Value, peer: &str) -> Option<Value> {
    view["relays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["peer_id"] == peer)
        .cloned()
}

#[test]
fn a_node_holds_a_reservation_on_an_added_relay_and_both_sides_count_circuits() {
    let mut swarm = Swarm::new();
    let relay_id = swarm.bootstrap.peer_id();
    let relay_addr = swarm.bootstrap.addr();
    let node = swarm.node(&[]);
    let node_id = node.peer_id();
    // Reachable directly on loopback: the reservations it took at start are given back.
    node.wait_reachable_without_reservations();
    // The relay serves once its own address is confirmed.
    wait_until("the relay server to serve", Duration::from_secs(30), || {
        relays(&swarm.bootstrap)["server"]["state"] == "serving"
    });
    let server = relays(&swarm.bootstrap)["server"].clone();
    assert_eq!(server["max_reservations"], 128);
    assert_eq!(server["max_circuits"], 64);
    let accepted_before = server["reservations_accepted"].as_u64().unwrap();
    let renewed_before = server["reservations_renewed"].as_u64().unwrap();
    let circuits_before = server["circuits_accepted"].as_u64().unwrap();

    // Added by the owner: held even though the node is reachable directly.
    let added = node
        .cli(&["relays", "add", &relay_addr, "--json"])
        .success()
        .json();
    assert_eq!(added["reservation"], "accepted", "{added}");
    assert_eq!(added["origin"], "added");
    let view = relays(&node);
    let held = entry(&view, &relay_id).expect("the relay is listed");
    assert_eq!(held["reservation"], "accepted", "{view}");
    assert!(held["accepted_unix"].as_u64().unwrap() > 0);
    let circuit_addr = held["circuit_addrs"][0].as_str().unwrap().to_string();
    assert!(
        circuit_addr.contains(&format!("/p2p/{relay_id}/p2p-circuit")),
        "{circuit_addr}"
    );
    assert!(view["server"].is_null(), "the node is no relay: {view}");

    // When it expires: read from the relay shortly after it accepted.
    let expires = wait_for("the reservation's expiry", Duration::from_secs(20), || {
        entry(&relays(&node), &relay_id)?["expires_unix"].as_u64()
    });
    let reservation_secs = server["reservation_secs"].as_u64().unwrap();
    assert_eq!(reservation_secs, 3600);
    let now = unix_now();
    assert!(expires > now, "expires {expires}, now {now}");
    assert!(
        expires <= now + reservation_secs + CLOCK_SLACK,
        "expires {expires}, now {now}"
    );
    // The relay's own view of the reservation agrees.
    let held_on_relay = wait_for(
        "the relay to list the reservation",
        Duration::from_secs(10),
        || {
            let server = relays(&swarm.bootstrap)["server"].clone();
            let held = server["held"].as_array()?.clone();
            held.into_iter().find(|h| h["peer_id"] == node_id.as_str())
        },
    );
    let on_relay = held_on_relay["expires_unix"].as_u64().unwrap();
    assert!(
        on_relay.abs_diff(expires) <= CLOCK_SLACK,
        "the relay says {on_relay}, the node {expires}"
    );
    // The node's own RESERVE is a renewal on the relay, not a second reservation. (The
    // added relay's own request may count as either: the relay still held the one the
    // node gave back earlier on the same connection.)
    let server = relays(&swarm.bootstrap)["server"].clone();
    let renewed = server["reservations_renewed"].as_u64().unwrap() - renewed_before;
    let taken = server["reservations_accepted"].as_u64().unwrap() - accepted_before - renewed;
    assert!(
        taken <= 1,
        "at most the added relay's request is new: {server}"
    );
    assert!(renewed >= 1, "the expiry read is a renewal: {server}");
    let text = node.cli(&["relays"]).success();
    assert!(
        text.stdout.contains(&format!("expires at {expires} (in ")),
        "{text:?}"
    );
    let text = swarm.bootstrap.cli(&["relays"]).success();
    assert!(
        text.stdout
            .contains(&format!("reservation for {node_id}: expires at")),
        "{text:?}"
    );
    // It stays held across ticks (not given back for being reachable).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        entry(&relays(&node), &relay_id).unwrap()["reservation"],
        "accepted"
    );
    wait_until(
        "the relay to count the reservation",
        Duration::from_secs(10),
        || {
            let server = relays(&swarm.bootstrap)["server"].clone();
            server["reservations_accepted"].as_u64().unwrap() > accepted_before
                && server["reservations"].as_u64().unwrap() >= 1
        },
    );

    // A node that knows only the circuit address reaches the node through the relay.
    let dir = tempfile::tempdir().unwrap();
    let visitor = Daemon::start(&dir.path().join("visitor"), &[]);
    let circuit_to_node = if circuit_addr.ends_with(&format!("/p2p/{node_id}")) {
        circuit_addr.clone()
    } else {
        format!("{circuit_addr}/p2p/{node_id}")
    };
    let _ = visitor.cli(&["browse", &circuit_to_node, "--timeout", "20"]);
    wait_until(
        "the relay to count a circuit",
        Duration::from_secs(20),
        || {
            relays(&swarm.bootstrap)["server"]["circuits_accepted"]
                .as_u64()
                .unwrap()
                > circuits_before
        },
    );
    wait_until(
        "the node to count a circuit through the relay",
        Duration::from_secs(20),
        || {
            entry(&relays(&node), &relay_id).unwrap()["circuits_total"]
                .as_u64()
                .unwrap()
                >= 1
        },
    );
    // The streams through the relay (identify, the catalog request) were counted.
    wait_until(
        "bytes carried by the relay",
        Duration::from_secs(20),
        || {
            let through = entry(&relays(&node), &relay_id).unwrap();
            through["bytes_sent"].as_u64().unwrap() > 0
                && through["bytes_received"].as_u64().unwrap() > 0
        },
    );
    let text = node.cli(&["relays"]).success();
    assert!(text.stdout.contains("carried"), "{text:?}");
    let text = swarm.bootstrap.cli(&["relays"]).success();
    assert!(text.stdout.contains("relay server: serving"), "{text:?}");
    assert!(text.stdout.contains("reservations "), "{text:?}");

    // Dropped: the reservation is given back and the relay is not picked again.
    node.cli(&["relays", "drop", &relay_id]).success();
    wait_until(
        "the reservation to be given back",
        Duration::from_secs(10),
        || {
            let status = node.status();
            status["node"]["relay_reservations"]
                .as_array()
                .unwrap()
                .is_empty()
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    if let Some(after) = entry(&relays(&node), &relay_id) {
        assert_ne!(after["reservation"], "accepted", "{after}");
        assert_ne!(after["origin"], "added", "{after}");
        assert!(
            after["circuit_addrs"].as_array().unwrap().is_empty(),
            "{after}"
        );
    }
}

#[test]
fn bad_relay_input_is_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start(&dir.path().join("node"), &[]);
    node.cli(&["relays", "add", "not-an-address"])
        .assert_clean_error(2);
    node.cli(&["relays", "add", "/ip4/127.0.0.1/tcp/1"])
        .assert_clean_error(2);
    let own = node.addr();
    node.cli(&["relays", "add", &own]).assert_clean_error(2);
    // Two peer ids, as a copy of `id`'s address with `/p2p/<id>` added again gives.
    let other = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    let doubled = format!("/ip4/127.0.0.1/tcp/1/p2p/{other}/p2p/{other}");
    node.cli(&["relays", "add", &doubled]).assert_clean_error(2);
    node.cli(&["relays", "drop", "nonsense"])
        .assert_clean_error(2);
    let unknown = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    node.cli(&["relays", "drop", unknown]).assert_clean_error(1);
    // A relay nobody answers at fails with the reason, and is listed as failed.
    let nowhere = format!("/ip4/127.0.0.1/tcp/1/p2p/{unknown}");
    let out = node.cli(&["relays", "add", &nowhere]);
    out.assert_clean_error(1);
    let view = relays(&node);
    assert_eq!(
        entry(&view, unknown).unwrap()["reservation"],
        "failed",
        "{view}"
    );
    assert_eq!(view["relays"].as_array().unwrap().len(), 1, "{view}");
}

#[test]
fn the_relays_page_and_the_play_button_work_in_chromium() {
    use harness::browser::*;
    let Some(Browser {
        web,
        executable: chromium,
        shots,
    }) = chromium("web-screenshots-relays")
    else {
        return;
    };
    let mut swarm = Swarm::new();
    let relay_id = swarm.bootstrap.peer_id();
    let relay_addr = swarm.bootstrap.addr();
    let node = swarm.node(&[]);
    let clip = swarm.path("clip.webm");
    random_file(&clip, 300_000, 41);
    let media_cid = add(&node, &clip, &[]);
    let notes = swarm.path("notes.bin");
    random_file(&notes, 1000, 42);
    let other_cid = add(&node, &notes, &[]);
    wait_until("the relay server to serve", Duration::from_secs(30), || {
        relays(&swarm.bootstrap)["server"]["state"] == "serving"
    });
    let envs = vec![
        ("P2PD_SETUP_LINK", node.setup_link()),
        ("P2PD_PASSWORD", "a long web password".to_string()),
        ("P2PD_RELAY_ADDR", relay_addr),
        ("P2PD_RELAY_PEER", relay_id.clone()),
        ("P2PD_MEDIA_CID", media_cid.clone()),
        ("P2PD_OTHER_CID", other_cid),
        ("P2PD_SCREENSHOTS", path_str(&shots)),
        ("CHROMIUM", chromium),
    ];
    let results = run_node(&web, "relays.mjs", &envs, &swarm.path("relays.stderr"));
    assert_eq!(results["problems"], serde_json::json!([]), "{results}");
    assert!(
        results["relay_row"].as_str().unwrap().contains("added"),
        "{results}"
    );
    assert!(
        results["bad_address_error"]
            .as_str()
            .unwrap()
            .contains("/p2p/"),
        "{results}"
    );
    assert_eq!(results["media_button"], "Play", "{results}");
    assert_eq!(
        results["player_src"],
        format!("/api/files/{media_cid}/content"),
        "{results}"
    );
    assert!(
        results["ranges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("bytes=")),
        "the player reads by Range: {results}"
    );
    assert_eq!(results["other_button"], "Open", "{results}");
    assert_eq!(results["downloaded_name"], "notes.bin", "{results}");
    // What the page did, seen from the CLI: the relay was added, then dropped.
    let after = entry(&relays(&node), &relay_id);
    assert!(
        after
            .as_ref()
            .is_none_or(|r| r["reservation"] != "accepted" && r["origin"] != "added"),
        "{after:?}"
    );
    // The page showed when the reservation expires, as the API says it, in words.
    let expires = results["relay_expires_unix"].as_f64().unwrap();
    let page_now = results["page_now_unix"].as_f64().unwrap();
    assert!(
        expires > page_now && expires <= page_now + 3600.0 + CLOCK_SLACK as f64,
        "{results}"
    );
    assert!(
        results["relay_expires_text"]
            .as_str()
            .unwrap()
            .starts_with("in "),
        "{results}"
    );
    assert!(shots.join("relays.png").exists());
}
