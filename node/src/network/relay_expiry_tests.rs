//! The reservation expiry read from a real libp2p relay server over the in-memory
//! transport: after the reservation is accepted the client knows when it expires, the
//! relay's own view agrees, and the relay's answer to our `RESERVE` is what
//! `dht_proto::relay_hop` reads.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dht_proto::relay_hop::{self, HopStatus};
use futures::AsyncWriteExt as _;
use libp2p::{Multiaddr, StreamProtocol};

use super::behaviour::{RelayLimits, RELAY_RESERVATION_DURATION};
use super::relay_expiry::{read_frame, ExpiryError};
use super::tests::*;
use super::*;

fn relay_config() -> NetworkConfig {
    let mut relay_cfg = config(DhtMode::Server);
    relay_cfg.behaviour.relay_server = Some(RelayLimits {
        max_reservations: 8,
        max_circuits: 8,
        max_circuit_duration: Duration::from_secs(3600),
        max_circuit_bytes: 0,
    });
    // libp2p's relay server serves only on a confirmed external address.
    let port: u64 = rand::random::<u64>() % 1_000_000 + 2_000_000;
    let relay_addr: Multiaddr = format!("/memory/{port}").parse().unwrap();
    relay_cfg.listen = vec![relay_addr.clone()];
    relay_cfg.external = vec![relay_addr];
    relay_cfg
}

fn secs_apart(a: SystemTime, b: SystemTime) -> u64 {
    a.duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn the_reservation_expiry_is_read_from_the_relay_and_agrees_with_its_view() {
    let relay = spawn(relay_config()).await;
    let relay_id = relay.net.local_peer_id();
    let hidden = spawn_joining(config(DhtMode::Auto), &relay).await;
    let hidden_id = hidden.net.local_peer_id();
    let held = eventually("the reservation's expiry", || async {
        let report = hidden.net.relays().await.ok()?;
        let used = report.relays.into_iter().find(|r| r.peer == relay_id)?;
        (used.reservation == ReservationState::Accepted).then_some(())?;
        used.expires_at
    })
    .await;
    let now = SystemTime::now();
    assert!(held > now, "the expiry is in the future");
    assert!(held <= now + RELAY_RESERVATION_DURATION + Duration::from_secs(5));

    let report = relay.net.relays().await.unwrap();
    let server = report.server.expect("a relay node reports its load");
    assert_eq!(server.reservation_duration, RELAY_RESERVATION_DURATION);
    let on_relay = server
        .held
        .iter()
        .find(|h| h.peer == hidden_id)
        .expect("the relay lists the reservation");
    assert!(
        secs_apart(on_relay.expires_at, held) <= 3,
        "the relay says {:?}, the client {held:?}",
        on_relay.expires_at
    );

    // The exchange itself, by hand: a RESERVE on the one connection is a refresh the
    // relay accepts with a later (or equal) expiry.
    let mut stream = hidden
        .net
        .streams()
        .open_stream(relay_id, StreamProtocol::new(relay_hop::HOP_PROTOCOL))
        .await
        .unwrap();
    stream
        .write_all(&relay_hop::encode_reserve())
        .await
        .unwrap();
    stream.flush().await.unwrap();
    let message = read_frame(&mut stream, |b| {
        relay_hop::frame_length(b).map_err(ExpiryError::from)
    })
    .await
    .unwrap();
    let answer = relay_hop::decode_answer(&message).unwrap();
    assert_eq!(answer.status, HopStatus::Ok, "{answer:?}");
    let expire = answer.accepted_expiry().unwrap();
    assert!(UNIX_EPOCH + Duration::from_secs(expire) >= held);
    let limit = answer.limit.unwrap();
    assert_eq!(limit.duration_secs, Some(3600));
    assert_eq!(limit.data_bytes, Some(0));
    eprintln!("relay answer: {message:02x?}");
}

/// How many connections `node` has to `peer`.
async fn connections_to(node: &Node, peer: libp2p::PeerId) -> Option<usize> {
    node.poke(move |actor| actor.peers.by_id.get(&peer).map(|s| s.connections.len()))
        .await
}

#[tokio::test]
async fn the_expiry_is_read_on_the_connection_that_holds_the_reservation() {
    use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
    use std::time::Instant;

    let relay = spawn(relay_config()).await;
    let relay_id = relay.net.local_peer_id();
    let hidden = spawn_joining(config(DhtMode::Auto), &relay).await;
    eventually("the reservation's expiry", || async {
        let report = hidden.net.relays().await.ok()?;
        report
            .relays
            .into_iter()
            .find(|r| r.peer == relay_id)?
            .expires_at
    })
    .await;
    // A second direct connection to the relay, which holds no reservation.
    let relay_addr = relay.addr.clone();
    hidden
        .poke(move |actor| {
            actor.swarm.dial(
                DialOpts::peer_id(relay_id)
                    .addresses(vec![relay_addr])
                    .condition(PeerCondition::Always)
                    .build(),
            )
        })
        .await
        .unwrap();
    eventually("a second connection to the relay", || async {
        let connections = connections_to(&hidden, relay_id).await?;
        (connections >= 2).then_some(())
    })
    .await;
    let load = || async { relay.net.relays().await.unwrap().server.unwrap() };
    let before = load().await;
    const READS: u64 = 4;
    for _ in 0..READS {
        hidden
            .poke(move |actor| {
                actor.relays.expiry_wanted.insert(relay_id, Instant::now());
            })
            .await;
        eventually("the expiry read to end", || async {
            hidden
                .poke(|actor| {
                    (actor.relays.expiry_wanted.is_empty()
                        && actor.relays.expiry_in_flight.is_empty())
                    .then_some(())
                })
                .await
        })
        .await;
    }
    let after = eventually("the relay to count the reads", || async {
        let after = load().await;
        (after.reservations_renewed >= before.reservations_renewed + READS).then_some(after)
    })
    .await;
    // Every read was a renewal of the one reservation: on the other connection it would
    // have been a new one (50 % of the time, had the connection been picked at random).
    assert_eq!(
        after.reservations_accepted - before.reservations_accepted,
        after.reservations_renewed - before.reservations_renewed
    );
    let connections = connections_to(&hidden, relay_id).await;
    assert!(
        connections >= Some(2),
        "both connections lasted: {connections:?}"
    );
    let report = hidden.net.relays().await.unwrap();
    let used = report.relays.iter().find(|r| r.peer == relay_id).unwrap();
    assert!(used.expires_at.is_some(), "{used:?}");
    assert_eq!(used.expiry_error, None);
}
