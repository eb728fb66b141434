//! Unit tests of reachability over in-memory nodes and fed events: why a node cannot
//! serve, a confirmed address turning a node public and a DHT server, and a node
//! behind NAT reached through a relay.

use super::behaviour::RelayLimits;
use super::reach::reservation_order;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{identity, Multiaddr, PeerId};
use std::time::Duration;
use tokio::sync::mpsc;

use super::tests::*;
use super::*;

#[tokio::test]
async fn why_a_node_cannot_serve_is_reported() {
    let build = |cfg: NetworkConfig| {
        let (inbound_tx, _) = mpsc::channel(1);
        build_in_memory(identity::Keypair::generate_ed25519(), cfg, inbound_tx)
            .unwrap()
            .0
    };
    let relay_limits = RelayLimits {
        max_reservations: 1,
        max_circuits: 1,
        max_circuit_duration: Duration::from_secs(1),
        max_circuit_bytes: 0,
    };
    // A relay without a confirmed public address: disabled, and why.
    let mut cfg = config(DhtMode::Server);
    cfg.behaviour.relay_server = Some(relay_limits.clone());
    let mut relay = build(cfg);
    let info = relay.node_info();
    assert_eq!(
        info.relay_server,
        RelayServer::Disabled(CannotServe::NoConfirmedPublicAddress)
    );
    assert_eq!(info.dht_client_reason, None);
    relay.report_serving();
    assert!(relay.reach.told.is_some());

    // With --external-addr it serves.
    let mut cfg = config(DhtMode::Server);
    cfg.behaviour.relay_server = Some(relay_limits);
    cfg.external = vec!["/memory/77".parse().unwrap()];
    assert_eq!(build(cfg).node_info().relay_server, RelayServer::Serving);

    // No relay asked for.
    let mut auto = build(config(DhtMode::Auto));
    let info = auto.node_info();
    assert_eq!(info.relay_server, RelayServer::Off);
    assert_eq!(info.dht_role, DhtRole::Client);
    assert_eq!(
        info.dht_client_reason,
        Some(CannotServe::NoConfirmedPublicAddress)
    );
    assert_eq!(
        build(config(DhtMode::Client)).node_info().dht_client_reason,
        Some(CannotServe::ClientModeChosen)
    );
}

#[tokio::test]
async fn a_confirmed_direct_address_makes_an_auto_node_public_and_a_dht_server() {
    let (inbound_tx, _inbound) = mpsc::channel(8);
    let (mut actor, net) = build_in_memory(
        identity::Keypair::generate_ed25519(),
        config(DhtMode::Auto),
        inbound_tx,
    )
    .unwrap();
    let mut events = net.subscribe();
    assert_eq!(actor.node_info().dht_role, DhtRole::Client);

    // A relayed address (what a relay reservation gets confirmed) changes nothing.
    let relay = PeerId::random();
    let circuit: Multiaddr = format!("/memory/9/p2p/{relay}/p2p-circuit")
        .parse()
        .unwrap();
    actor.swarm.add_external_address(circuit.clone());
    actor.on_swarm_event(SwarmEvent::ExternalAddrConfirmed {
        address: circuit.clone(),
    });
    let info = actor.node_info();
    assert_eq!(info.nat_status, NatStatus::Private);
    assert_eq!(info.dht_role, DhtRole::Client);

    // What AutoNAT reports for a direct address.
    let direct: Multiaddr = "/memory/4242".parse().unwrap();
    actor.swarm.add_external_address(direct.clone());
    actor.on_swarm_event(SwarmEvent::ExternalAddrConfirmed {
        address: direct.clone(),
    });
    let info = actor.node_info();
    assert_eq!(info.nat_status, NatStatus::Public);
    assert_eq!(info.dht_role, DhtRole::Server);
    let local = net.local_peer_id();
    assert!(info
        .external_addrs
        .contains(&direct.clone().with(Protocol::P2p(local))));
    assert_eq!(
        events.try_recv().unwrap(),
        NetEvent::ExternalAddressConfirmed(circuit)
    );
    assert_eq!(
        events.try_recv().unwrap(),
        NetEvent::ExternalAddressConfirmed(direct.clone())
    );

    // And back when it expires.
    actor.swarm.remove_external_address(&direct);
    actor.on_swarm_event(SwarmEvent::ExternalAddrExpired { address: direct });
    assert_eq!(actor.node_info().dht_role, DhtRole::Client);
}

#[tokio::test]
async fn a_node_behind_nat_reserves_on_a_relay_and_is_reached_through_it() {
    let mut relay_cfg = config(DhtMode::Server);
    relay_cfg.behaviour.relay_server = Some(RelayLimits {
        max_reservations: 8,
        max_circuits: 8,
        max_circuit_duration: Duration::from_secs(60),
        max_circuit_bytes: 0,
    });
    // libp2p's relay server serves only on a confirmed external address.
    let port: u64 = rand::random::<u64>() % 1_000_000 + 1_000_000;
    let relay_addr: Multiaddr = format!("/memory/{port}").parse().unwrap();
    relay_cfg.listen = vec![relay_addr.clone()];
    relay_cfg.external = vec![relay_addr];
    let relay = spawn(relay_cfg).await;

    let hidden = spawn_joining(config(DhtMode::Auto), &relay).await;
    let circuit = eventually("a relay reservation", || async {
        hidden
            .net
            .info()
            .await
            .ok()?
            .relay_reservations
            .into_iter()
            .next()
    })
    .await;
    assert!(is_relayed(&circuit), "{circuit}");
    // A reservation does not make the node a DHT server.
    assert_eq!(hidden.net.info().await.unwrap().dht_role, DhtRole::Client);

    // A third node reaches it through the relay; the connection shows as relayed.
    let visitor = spawn_joining(config(DhtMode::Client), &relay).await;
    wait_connected(&visitor, relay.net.local_peer_id()).await;
    visitor
        .poke(move |actor| actor.swarm.dial(circuit))
        .await
        .expect("dial through the relay");
    let hidden_id = hidden.net.local_peer_id();
    let peer = eventually("a relayed connection", || async {
        visitor
            .net
            .peers()
            .await
            .ok()?
            .into_iter()
            .find(|p| p.peer_id == hidden_id)
    })
    .await;
    assert_eq!(peer.connection, ConnectionKind::Relayed);
}

/// Nodes behind NAT that know the same relays spread their reservations over them: each
/// orders the candidates by its own distance to them, so the relay every node asks first
/// is not the same one (ordered by peer id alone, all 60 below picked the same relay).
/// One node's order does not depend on the order it learned the relays in, and relays
/// the owner added come first whatever their distance.
#[test]
fn nodes_behind_nat_spread_their_reservations_over_the_relays_they_know() {
    let relays: Vec<PeerId> = (0..20).map(|_| PeerId::random()).collect();
    let first_choice = |local: &PeerId, candidates: &[PeerId]| -> PeerId {
        *candidates
            .iter()
            .min_by_key(|relay| reservation_order(local, true, relay))
            .expect("candidates")
    };
    let locals: Vec<PeerId> = (0..60).map(|_| PeerId::random()).collect();
    let firsts: std::collections::HashSet<PeerId> = locals
        .iter()
        .map(|local| first_choice(local, &relays))
        .collect();
    // 60 nodes over 20 relays: about 19 distinct first choices if spread evenly; fewer
    // than 8 is as good as certain not to happen by chance.
    assert!(
        firsts.len() >= 8,
        "60 nodes asked only {} of 20 relays first",
        firsts.len()
    );

    let mut reversed = relays.clone();
    reversed.reverse();
    for local in &locals {
        assert_eq!(first_choice(local, &relays), first_choice(local, &reversed));
    }

    let local = locals[0];
    let added = *relays
        .iter()
        .max_by_key(|relay| reservation_order(&local, true, relay))
        .expect("relays");
    let nearest = first_choice(&local, &relays);
    assert!(reservation_order(&local, false, &added) < reservation_order(&local, true, &nearest));
}
