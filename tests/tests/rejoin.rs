//! Issue 15, no single point: a daemon restarted while every bootstrap node is down
//! rejoins the network through the peers it saved (its routing table, in the store)
//! and still finds and fetches a file from the others. Real daemons on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod harness;

use std::time::Duration;

use harness::*;

const MIB: u64 = 1 << 20;

fn routing_table_peers(node: &Daemon) -> u64 {
    let status = node.cli(&["status", "--json"]);
    if status.code != 0 {
        return 0;
    }
    status.json()["node"]["routing_table_peers"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn a_node_restarted_with_every_bootstrap_node_down_still_fetches_from_the_others() {
    let mut swarm = Swarm::new();
    let src = swarm.path("shared.bin");
    random_file(&src, 4 * MIB, 15);
    // Four daemons sharing a file, all DHT servers (on loopback nothing confirms an
    // address, so the mode is set).
    let nodes: Vec<Daemon> = (0..4)
        .map(|_| swarm.node(&["--dht-mode", "server"]))
        .collect();
    let cid = add(&nodes[0], &src, &[]);
    add(&nodes[1], &src, &[]);
    nodes[0].wait_announced(1);
    nodes[1].wait_announced(1);
    let mut restarted = swarm.node(&["--dht-mode", "server"]);
    // It knows the others (the bootstrap node and the four).
    wait_until("a full routing table", Duration::from_secs(60), || {
        routing_table_peers(&restarted) >= 5
    });

    // Every bootstrap node goes away, then the node restarts with the same flags.
    swarm.bootstrap.kill();
    restarted.stop();
    restarted.restart();

    let out = swarm.path("shared.out");
    let summary = fetch(&restarted, &cid, &out, 60).success().json();
    assert_eq!(file_hash(&out), file_hash(&src));
    assert_eq!(bytes_from_peers(&summary), 4 * MIB, "{summary}");
    assert!(
        restarted.log().contains("rejoining through saved peers"),
        "{}",
        restarted.log()
    );
    drop(nodes);
}
