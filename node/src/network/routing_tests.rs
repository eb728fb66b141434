//! Who enters the routing table: only peers that say (through identify) that they
//! serve our Kademlia protocol. A DHT client that sends a query over a connection we
//! dialed is still a client: libp2p-kad on its own takes any inbound Kademlia stream as
//! proof that the remote serves the protocol, and inserts it with the address we dialed.

use std::time::Duration;

use futures::StreamExt;
use libp2p::kad::{self, store::MemoryStore};

use super::behaviour::KAD_PROTOCOL;
use super::tests::{bare_swarm_with, config, eventually, spawn, wait_connected};
use super::DhtMode;

#[tokio::test]
async fn a_client_that_queries_over_a_connection_we_dialed_stays_out_of_the_routing_table() {
    let server = spawn(config(DhtMode::Server)).await;
    // A stock libp2p-kad client (no identify): it never says which protocols it serves.
    let mut client = bare_swarm_with(|key| {
        let id = key.public().to_peer_id();
        let mut kad =
            kad::Behaviour::with_config(id, MemoryStore::new(id), kad::Config::new(KAD_PROTOCOL));
        kad.set_mode(Some(kad::Mode::Client));
        kad
    });
    client
        .listen_on("/memory/0".parse().expect("an address"))
        .expect("the client listens");
    let client_addr = loop {
        if let libp2p::swarm::SwarmEvent::NewListenAddr { address, .. } =
            client.select_next_some().await
        {
            break address;
        }
    };
    let client_id = *client.local_peer_id();
    let server_id = server.net.info().await.expect("info").peer_id;
    client
        .behaviour_mut()
        .add_address(&server_id, server.addr.clone());
    let driver = tokio::spawn(async move {
        let mut queried = false;
        loop {
            let event = client.select_next_some().await;
            if let libp2p::swarm::SwarmEvent::ConnectionEstablished { .. } = event {
                if !queried {
                    // Its first act on the connection the server dialed: a query.
                    client.behaviour_mut().get_closest_peers(server_id);
                    queried = true;
                }
            }
        }
    });
    // The server dials the client: the connection's address is known to the server.
    server.net.dial_at(client_id, vec![client_addr]).await;
    wait_connected(&server, client_id).await;
    // Give the query time to reach the server and its answer to come back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let table = eventually("a routing table", || async {
        server.net.routing_table().await.ok()
    })
    .await;
    driver.abort();
    assert!(
        !table.iter().any(|(peer, _)| *peer == client_id),
        "a DHT client entered the routing table: {table:?}"
    );
}
