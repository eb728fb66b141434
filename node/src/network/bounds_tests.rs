//! Tests that what the network layer remembers stays bounded: requests in flight (per
//! peer and in all, refused as a local overload past the limits), and the per-peer state
//! of the actor and the connection gate while 10,000 peers come and go.

use std::net::Ipv4Addr;

use dht_proto::Request;
use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::swarm::behaviour::{ConnectionClosed, ConnectionEstablished};
use libp2p::swarm::{ConnectionId, FromSwarm, NetworkBehaviour};
use libp2p::{identify, identity, relay, Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use super::gate::{ConnectionGate, GateLimits};
use super::reach::MAX_FOUND_RELAYS;
use super::requests::{MAX_PENDING_PER_PEER, MAX_PENDING_REQUESTS};
use super::tests::config;
use super::*;

fn actor(mode: DhtMode) -> NetworkActor {
    let (inbound_tx, _) = mpsc::channel(1);
    build_in_memory(
        identity::Keypair::generate_ed25519(),
        config(mode),
        inbound_tx,
    )
    .expect("builds")
    .0
}

#[tokio::test]
async fn requests_past_the_limits_fail_at_once_as_a_local_overload() {
    let mut actor = actor(DhtMode::Client);
    let request = || Request::Have {
        cid: dht_proto::Cid::for_manifest_bytes(b"x"),
        index: 0,
    };
    let send = |actor: &mut NetworkActor, peer: PeerId| {
        let (reply, answer) = oneshot::channel();
        actor.on_command(Command::Request {
            peer,
            request: request(),
            reply,
        });
        answer
    };
    // One peer: up to its limit, then refused here.
    let busy = PeerId::random();
    let mut answers: Vec<_> = (0..MAX_PENDING_PER_PEER + 10)
        .map(|_| send(&mut actor, busy))
        .collect();
    let refused: Vec<_> = answers.split_off(MAX_PENDING_PER_PEER);
    for mut a in refused {
        let e = a.try_recv().expect("answered at once").unwrap_err();
        assert!(matches!(e, RequestError::Overloaded));
        assert!(!e.blames_peer());
    }
    for mut a in answers {
        assert!(a.try_recv().is_err(), "still in flight");
    }
    // All peers together: up to the total.
    let mut accepted = MAX_PENDING_PER_PEER;
    let mut overloaded = 0;
    while accepted + overloaded < MAX_PENDING_REQUESTS + 100 {
        let peer = PeerId::random();
        for _ in 0..MAX_PENDING_PER_PEER {
            let mut a = send(&mut actor, peer);
            match a.try_recv() {
                Ok(Err(RequestError::Overloaded)) => overloaded += 1,
                Err(oneshot::error::TryRecvError::Empty) => accepted += 1,
                other => panic!("unexpected answer {other:?}"),
            }
        }
    }
    assert_eq!(accepted, MAX_PENDING_REQUESTS);
    assert_eq!(actor.requests.in_flight().0, MAX_PENDING_REQUESTS);
}

#[tokio::test]
async fn ten_thousand_peers_coming_and_going_leave_nothing_behind() {
    let mut actor = actor(DhtMode::Auto);
    let mut gate = ConnectionGate::new(GateLimits::with_max_established(512));
    let key = identity::Keypair::generate_ed25519();
    for i in 0..10_000u32 {
        let peer = PeerId::random();
        let id = ConnectionId::new_unchecked(i as usize);
        let ip = Ipv4Addr::from(0x0a00_0000 + i);
        let addr: Multiaddr = format!("/ip4/{ip}/tcp/4001").parse().unwrap();
        // Half dialed by us (relay candidates), half dialing us.
        let endpoint = if i % 2 == 0 {
            ConnectedPoint::Dialer {
                address: addr.clone(),
                role_override: Endpoint::Dialer,
                port_use: PortUse::Reuse,
            }
        } else {
            ConnectedPoint::Listener {
                local_addr: "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
                send_back_addr: addr.clone(),
            }
        };
        actor.on_connection_established(peer, id, &endpoint, 1.try_into().unwrap());
        actor.on_identify_event(identify::Event::Received {
            connection_id: id,
            peer_id: peer,
            info: identify::Info {
                public_key: key.public(),
                protocol_version: "/p2pd/id/1.0.0".into(),
                agent_version: "p2pd/test".into(),
                listen_addrs: vec![addr.clone()],
                protocols: vec![relay::HOP_PROTOCOL_NAME, KAD_PROTOCOL],
                observed_addr: addr.clone(),
                signed_peer_record: None,
            },
        });
        gate.on_swarm_event(FromSwarm::ConnectionEstablished(ConnectionEstablished {
            peer_id: peer,
            connection_id: id,
            endpoint: &endpoint,
            failed_addresses: &[],
            other_established: 0,
        }));
        if i % 100 == 0 {
            actor.on_tick();
        }
        actor.on_connection_closed(peer, id, 0);
        gate.on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
            peer_id: peer,
            connection_id: id,
            endpoint: &endpoint,
            cause: None,
            remaining_established: 0,
        }));
    }
    actor.on_tick();
    assert!(actor.peers.by_id.is_empty());
    assert!(actor.reach.relay_candidates.len() <= MAX_FOUND_RELAYS);
    assert!(actor.reach.reservation_retry.len() <= MAX_FOUND_RELAYS);
    assert!(actor.reach.reservations.len() <= 2);
    assert_eq!(actor.requests.in_flight(), (0, 0));
    assert_eq!(gate.tracked_entries(), 0);
}
