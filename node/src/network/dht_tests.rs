//! Unit tests of the network layer's DHT work over in-memory nodes: provider lookups,
//! batched announcements as libp2p-kad stores them, announcements that reach nobody,
//! lookups nobody waits for, and what announces everything again.

use dht_proto::Cid;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{identity, Multiaddr, PeerId};
use tokio::sync::mpsc;

use super::tests::*;
use super::*;

#[tokio::test]
async fn a_provider_is_found_through_the_dht_and_stops_being_counted_when_it_stops() {
    let boot = spawn(config(DhtMode::Server)).await;
    let provider = spawn_joining(config(DhtMode::Server), &boot).await;
    let finder = spawn_joining(config(DhtMode::Server), &boot).await;
    for (node, peers) in [(&provider, 1), (&finder, 1), (&boot, 2)] {
        eventually("a routing table", || async {
            (node.net.info().await.ok()?.routing_table_peers >= peers).then_some(())
        })
        .await;
    }
    let file = cid(7);
    provider.net.start_providing(file).await;
    // Announcing twice is announcing once.
    provider.net.start_providing(file).await;
    let info = provider.net.info().await.unwrap();
    assert_eq!(info.provided_files, 1);
    assert_eq!(info.provider_announcements, 1);
    // The record went to both other DHT servers, and that is what is reported.
    let announced = eventually("the announcement's end", || async {
        let a = provider.net.announcements().await.ok()?.pop()?;
        (!a.announcing).then_some(a)
    })
    .await;
    assert_eq!(announced.cid, file);
    assert_eq!(announced.peers, Some(2));
    assert!(announced.last_announced.is_some());
    assert_eq!(announced.retry_in, None);
    assert_eq!(provider.net.info().await.unwrap().unannounced_files, 0);

    let provider_id = provider.net.local_peer_id();
    let found = eventually("the provider found", || async {
        let mut found = finder.net.find_providers(file).await;
        let mut peers = vec![];
        while let Ok(Some(p)) = tokio::time::timeout(DEADLINE, found.recv()).await {
            peers.push(p);
        }
        peers.contains(&provider_id).then_some(peers)
    })
    .await;
    assert!(!found.contains(&finder.net.local_peer_id()));
    // The finder dials what it finds.
    wait_connected(&finder, provider_id).await;

    provider.net.stop_providing(file).await;
    assert_eq!(provider.net.info().await.unwrap().provided_files, 0);
    assert!(provider.net.announcements().await.unwrap().is_empty());
}

#[tokio::test]
async fn batched_add_providers_are_stored_by_libp2p_kademlia_with_our_address() {
    use libp2p::kad::store::RecordStore as _;

    let boot = spawn(config(DhtMode::Server)).await;
    let servers = [
        spawn_joining(config(DhtMode::Server), &boot).await,
        spawn_joining(config(DhtMode::Server), &boot).await,
    ];
    let mut provider_config = config(DhtMode::Server);
    let external: Multiaddr = "/memory/424242".parse().unwrap();
    provider_config.external = vec![external.clone()];
    let provider = spawn_joining(provider_config, &boot).await;
    eventually("a routing table", || async {
        (provider.net.info().await.ok()?.routing_table_peers >= 3).then_some(())
    })
    .await;
    // More keys than one batch holds: a server gets them over several streams.
    let keys: Vec<Cid> = (0..300u32)
        .map(|i| Cid::for_manifest_bytes(&i.to_le_bytes()))
        .collect();
    for key in &keys {
        provider.net.start_providing(*key).await;
    }
    eventually("every announcement's end", || async {
        let all = provider.net.announcements().await.ok()?;
        (all.len() == keys.len() && all.iter().all(|a| a.peers == Some(3))).then_some(())
    })
    .await;
    let stats = provider.net.reprovide_stats().await.unwrap();
    assert_eq!(stats.messages_sent, 3 * keys.len() as u64);
    assert!(stats.lookups < keys.len() as u64 / 10, "{stats:?}");
    // Every server's own Kademlia store holds every key, with us and our address (once
    // it has read what was written: it reads a stream after the writer closed it).
    let provider_id = provider.net.local_peer_id();
    for node in servers.iter().chain([&boot]) {
        let stored = eventually("every record stored", || async {
            let keys = keys.clone();
            let stored = node
                .poke(move |actor| {
                    let store = actor.swarm.behaviour_mut().kad.store_mut();
                    keys.iter()
                        .map(|cid| store.providers(&super::announce::provider_key(cid)))
                        .collect::<Vec<_>>()
                })
                .await;
            stored
                .iter()
                .all(|records| records.iter().any(|r| r.provider == provider_id))
                .then_some(stored)
        })
        .await;
        for records in stored {
            let ours = records
                .iter()
                .find(|r| r.provider == provider_id)
                .expect("our record is stored");
            // (libp2p-kad ends each address it reads with the provider's id.)
            let expected = external.clone().with(Protocol::P2p(provider_id));
            assert_eq!(ours.addresses, vec![expected]);
        }
    }
}

#[tokio::test]
async fn an_announcement_that_reaches_nobody_is_reported_and_retried() {
    let lonely = spawn(config(DhtMode::Server)).await;
    let file = cid(9);
    lonely.net.start_providing(file).await;
    let first = eventually("the first round's end", || async {
        let a = lonely.net.announcements().await.ok()?.pop()?;
        (!a.announcing).then_some(a)
    })
    .await;
    assert_eq!(first.peers, Some(0));
    assert!(first.retry_in.is_some());
    assert_eq!(lonely.net.info().await.unwrap().unannounced_files, 1);

    // A DHT server appears; the retry reaches it.
    let _other = spawn_joining(config(DhtMode::Server), &lonely).await;
    let retried = eventually("a retry that reaches a peer", || async {
        let a = lonely.net.announcements().await.ok()?.pop()?;
        (a.peers == Some(1)).then_some(a)
    })
    .await;
    assert_eq!(retried.retry_in, None);
    let info = lonely.net.info().await.unwrap();
    assert_eq!(info.unannounced_files, 0);
    assert!(info.provider_announcements >= 2);
}

#[tokio::test]
async fn a_lookup_nobody_waits_for_is_finished() {
    let boot = spawn(config(DhtMode::Server)).await;
    let (inbound_tx, _inbound) = mpsc::channel(8);
    let mut cfg = config(DhtMode::Server);
    cfg.bootstrap = vec![boot.addr.clone()];
    let (mut actor, _net) =
        build_in_memory(identity::Keypair::generate_ed25519(), cfg, inbound_tx).unwrap();
    let (found, receiver) = mpsc::channel(4);
    actor.on_command(Command::FindProviders {
        key: ProviderKey::File(cid(3)),
        found,
        started: None,
    });
    assert_eq!(actor.providers.queries.len(), 1);
    drop(receiver);
    actor.on_tick();
    assert!(actor.providers.queries.is_empty());
}

#[tokio::test]
async fn only_a_new_address_or_the_first_bootstrap_connection_announces_everything_again() {
    let boot = PeerId::random();
    let mut cfg = config(DhtMode::Server);
    cfg.bootstrap = vec![format!("/memory/3/p2p/{boot}").parse().unwrap()];
    let given: Multiaddr = "/memory/77".parse().unwrap();
    cfg.external = vec![given.clone()];
    let (inbound_tx, _inbound) = mpsc::channel(8);
    let (mut actor, _net) =
        build_in_memory(identity::Keypair::generate_ed25519(), cfg, inbound_tx).unwrap();
    actor
        .dht
        .reprovider
        .provide(ProviderKey::File(cid(1)), std::time::Instant::now());
    let everything_again = |actor: &mut NetworkActor| actor.dht.reannounce_at.take().is_some();

    // Joining: the first connection to a bootstrap node.
    actor.on_first_connection(boot);
    assert!(everything_again(&mut actor));
    // Its connection closed when idle and opened again: the timetable stands.
    actor.on_first_connection(boot);
    assert!(!everything_again(&mut actor));
    actor.on_first_connection(PeerId::random());
    assert!(!everything_again(&mut actor));

    let confirm = |actor: &mut NetworkActor, address: &Multiaddr| {
        actor.swarm.add_external_address(address.clone());
        actor.on_swarm_event(SwarmEvent::ExternalAddrConfirmed {
            address: address.clone(),
        });
    };
    // AutoNAT confirming --external-addr: records carry it already.
    confirm(&mut actor, &given);
    assert!(!everything_again(&mut actor));
    // A new address, then the same confirmed again.
    let found: Multiaddr = "/memory/4242".parse().unwrap();
    confirm(&mut actor, &found);
    assert!(everything_again(&mut actor));
    confirm(&mut actor, &found);
    assert!(!everything_again(&mut actor));
    // Expired, and confirmed once more: records announced meanwhile lack it.
    actor.swarm.remove_external_address(&found);
    actor.on_swarm_event(SwarmEvent::ExternalAddrExpired {
        address: found.clone(),
    });
    assert!(!everything_again(&mut actor));
    confirm(&mut actor, &found);
    assert!(everything_again(&mut actor));
}

#[tokio::test]
async fn bootstrap_nodes_connected_at_once_start_one_bootstrap() {
    let boots: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
    let mut cfg = config(DhtMode::Server);
    cfg.bootstrap = boots
        .iter()
        .enumerate()
        .map(|(i, boot)| format!("/memory/{}/p2p/{boot}", 3 + i).parse().unwrap())
        .collect();
    let (inbound_tx, _inbound) = mpsc::channel(8);
    let (mut actor, _net) =
        build_in_memory(identity::Keypair::generate_ed25519(), cfg, inbound_tx).unwrap();
    let bootstraps = |actor: &mut NetworkActor| {
        actor
            .swarm
            .behaviour_mut()
            .kad
            .iter_queries()
            .filter(|q| matches!(q.info(), libp2p::kad::QueryInfo::Bootstrap { .. }))
            .count()
    };
    assert_eq!(bootstraps(&mut actor), 0);

    // Joining: all three connect within a moment; one walk, not three.
    for boot in &boots {
        actor.on_first_connection(*boot);
    }
    assert_eq!(bootstraps(&mut actor), 1);
    // A peer that is no bootstrap node starts none.
    actor.on_first_connection(PeerId::random());
    assert_eq!(bootstraps(&mut actor), 1);

    // Once that walk has ended, a bootstrap node connecting again starts the next one.
    for mut query in actor.swarm.behaviour_mut().kad.iter_queries_mut() {
        query.finish();
    }
    assert_eq!(bootstraps(&mut actor), 0);
    actor.on_first_connection(boots[1]);
    assert_eq!(bootstraps(&mut actor), 1);
}

#[tokio::test]
async fn a_provider_with_no_confirmed_address_is_found_through_its_listen_address() {
    // A node that is no DHT server (its address not confirmed yet: just started, or
    // AutoNAT's one dial-back failed) is in nobody's routing table, so a server cannot
    // fill in addresses for its record: the record must carry them.
    let boot = spawn(config(DhtMode::Server)).await;
    let provider = spawn_joining(config(DhtMode::Client), &boot).await;
    // A client too, so that the record reaches it only through the server.
    let finder = spawn_joining(config(DhtMode::Client), &boot).await;
    let provider_id = provider.net.local_peer_id();
    wait_connected(&provider, boot.net.local_peer_id()).await;
    eventually("the finder in the routing table", || async {
        (finder.net.info().await.ok()?.routing_table_peers >= 1).then_some(())
    })
    .await;
    assert_eq!(provider.net.info().await.unwrap().external_addrs.len(), 0);
    let file = cid(11);
    provider.net.start_providing(file).await;
    eventually("the announcement's end", || async {
        let a = provider.net.announcements().await.ok()?.pop()?;
        (!a.announcing && a.peers > Some(0)).then_some(a)
    })
    .await;
    // The record the server stored names the provider's listen address.
    let stored = eventually("the record stored", || async {
        boot.poke(move |actor| {
            use libp2p::kad::store::RecordStore as _;
            let store = actor.swarm.behaviour_mut().kad.store_mut();
            store.providers(&super::announce::provider_key(&file))
        })
        .await
        .into_iter()
        .find(|r| r.provider == provider_id)
    })
    .await;
    assert_eq!(stored.addresses, vec![provider.addr.clone()]);
    eventually("the provider found", || async {
        let mut found = finder.net.find_providers(file).await;
        while let Ok(Some(p)) = tokio::time::timeout(DEADLINE, found.recv()).await {
            if p == provider_id {
                return Some(());
            }
        }
        None
    })
    .await;
    wait_connected(&finder, provider_id).await;
}
