//! Tests of provider lookups and announcements against what stands outside a healthy
//! p2pd network: providers that stopped, and stock libp2p-kad nodes with the default
//! Kademlia configuration (nothing of ours but the protocol name).

use std::pin::Pin;
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::transport::{ListenerId, MemoryTransport, Transport, TransportEvent};
use libp2p::kad::store::{MemoryStore, RecordStore as _};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{kad, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::announce::provider_key;
use super::tests::{bare_swarm_with, cid, config, eventually, spawn, spawn_joining, DEADLINE};
use super::*;

/// A memory address that accepts connections and never answers: a dial of it hangs
/// until the dialer's handshake timeout (5 s), like a host that went away behind a
/// firewall that drops packets.
async fn silent_listener() -> (Multiaddr, JoinHandle<()>) {
    let mut transport = MemoryTransport::default();
    transport
        .listen_on(ListenerId::next(), "/memory/0".parse().expect("an address"))
        .expect("a memory listener");
    let addr = loop {
        let event = futures::future::poll_fn(|cx| Pin::new(&mut transport).poll(cx)).await;
        if let TransportEvent::NewAddress { listen_addr, .. } = event {
            break listen_addr;
        }
    };
    let task = tokio::spawn(async move {
        let mut held = vec![];
        loop {
            let event = futures::future::poll_fn(|cx| Pin::new(&mut transport).poll(cx)).await;
            if let TransportEvent::Incoming { upgrade, .. } = event {
                if let Ok(channel) = upgrade.await {
                    held.push(channel);
                }
            }
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_provider_that_stopped_is_dropped_from_lookups_within_2_s() {
    let boot = spawn(config(DhtMode::Server)).await;
    let server = spawn_joining(config(DhtMode::Server), &boot).await;
    let live = spawn_joining(config(DhtMode::Server), &boot).await;
    let finder = spawn_joining(config(DhtMode::Server), &boot).await;
    // The provider that will stop: its records carry an address that, once it is gone,
    // swallows dials (a client, so no routing table holds it under another address).
    let (silent, _silent_task) = silent_listener().await;
    let mut gone_config = config(DhtMode::Client);
    gone_config.external = vec![silent];
    let gone = spawn_joining(gone_config, &boot).await;
    for node in [&boot, &server, &live, &finder] {
        eventually("a routing table", || async {
            (node.net.info().await.ok()?.routing_table_peers >= 3).then_some(())
        })
        .await;
    }
    let file = cid(21);
    for provider in [&live, &gone] {
        provider.net.start_providing(file).await;
        eventually("the announcement's end", || async {
            let a = provider.net.announcements().await.ok()?.pop()?;
            (!a.announcing && a.peers >= Some(3)).then_some(())
        })
        .await;
    }
    let gone_id = gone.net.local_peer_id();
    drop(gone);
    eventually("the stopped provider's connections closed", || async {
        (!finder.net.connected_peers().await.contains(&gone_id)).then_some(())
    })
    .await;
    // The DHT still names it (its records live on)...
    let stored = server
        .poke(move |actor| {
            let store = actor.swarm.behaviour_mut().kad.store_mut();
            store.providers(&provider_key(&file))
        })
        .await;
    assert!(stored.iter().any(|r| r.provider == gone_id), "{stored:?}");

    // ...but a lookup hands out only the provider that answers. The dead one is dialled
    // and no longer counted on within 2 s (1.5 s, checked on the 500 ms tick; the test allows 0.5 s
    // of scheduling on a loaded machine), while its dial still hangs: the lookup itself
    // runs on, since libp2p-kad also asks the provider it was told of.
    let started = tokio::time::Instant::now();
    let mut found = finder.net.find_providers(file).await;
    let mut dialled = false;
    while started.elapsed() < Duration::from_millis(2500) {
        let state = finder
            .poke(move |actor| {
                (
                    actor.providers.dialling.contains_key(&gone_id),
                    actor.providers.queries.len(),
                )
            })
            .await;
        dialled |= state.0;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dialled, "the stopped provider was never dialled");
    let (counted, lookups) = finder
        .poke(move |actor| {
            (
                !actor.providers.not_counted(&gone_id),
                actor.providers.queries.len(),
            )
        })
        .await;
    assert!(!counted, "the stopped provider is still counted on");
    assert_eq!(lookups, 1, "the lookup ended before its dial could hang");
    let mut named = std::collections::HashSet::new();
    while let Some(peer) = tokio::time::timeout(DEADLINE, found.recv())
        .await
        .expect("the lookup ends")
    {
        named.insert(peer);
    }
    // (Each server that holds the record names the live provider once.)
    assert_eq!(named, [live.net.local_peer_id()].into());
}

/// A stock libp2p-kad node: the default configuration with our protocol name, a
/// DHT server. It answers requests for the provider records it holds.
struct StockNode {
    id: PeerId,
    addr: Multiaddr,
    ask: mpsc::Sender<(kad::RecordKey, oneshot::Sender<Vec<kad::ProviderRecord>>)>,
    task: JoinHandle<()>,
}

impl Drop for StockNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn stock_swarm() -> Swarm<kad::Behaviour<MemoryStore>> {
    let mut swarm = bare_swarm_with(|key| {
        let id = key.public().to_peer_id();
        kad::Behaviour::with_config(id, MemoryStore::new(id), kad::Config::new(KAD_PROTOCOL))
    });
    swarm.behaviour_mut().set_mode(Some(kad::Mode::Server));
    swarm
}

async fn listen(swarm: &mut Swarm<kad::Behaviour<MemoryStore>>) -> Multiaddr {
    swarm
        .listen_on("/memory/0".parse().expect("an address"))
        .expect("listens");
    loop {
        let event = tokio::time::timeout(DEADLINE, swarm.select_next_some())
            .await
            .expect("a listen address");
        if let SwarmEvent::NewListenAddr { address, .. } = event {
            return address;
        }
    }
}

async fn stock_node(others: &[(PeerId, Multiaddr)]) -> StockNode {
    let mut swarm = stock_swarm();
    let addr = listen(&mut swarm).await;
    for (peer, addr) in others {
        swarm.behaviour_mut().add_address(peer, addr.clone());
    }
    let id = *swarm.local_peer_id();
    let (ask, mut asks) =
        mpsc::channel::<(kad::RecordKey, oneshot::Sender<Vec<kad::ProviderRecord>>)>(8);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = swarm.select_next_some() => {}
                Some((key, reply)) = asks.recv() => {
                    let _ = reply.send(swarm.behaviour_mut().store_mut().providers(&key));
                }
            }
        }
    });
    StockNode {
        id,
        addr,
        ask,
        task,
    }
}

#[tokio::test]
async fn stock_libp2p_kad_nodes_store_our_batched_records_and_find_us() {
    // Three stock servers that know each other.
    let mut stock: Vec<StockNode> = vec![];
    for _ in 0..3 {
        let known: Vec<(PeerId, Multiaddr)> =
            stock.iter().map(|n| (n.id, n.addr.clone())).collect();
        stock.push(stock_node(&known).await);
    }
    // Our provider joins through them.
    let mut provider_config = config(DhtMode::Server);
    provider_config.bootstrap = stock
        .iter()
        .map(|n| n.addr.clone().with(Protocol::P2p(n.id)))
        .collect();
    let external: Multiaddr = "/memory/434343".parse().expect("an address");
    provider_config.external = vec![external.clone()];
    let provider = spawn(provider_config).await;
    let provider_id = provider.net.local_peer_id();
    let files: Vec<dht_proto::Cid> = (0..50u8).map(cid).collect();
    for file in &files {
        provider.net.start_providing(*file).await;
    }
    eventually("every announcement's end", || async {
        let all = provider.net.announcements().await.ok()?;
        (all.len() == files.len() && all.iter().all(|a| a.peers == Some(3))).then_some(())
    })
    .await;

    // Each stock server holds each record, with our address.
    for node in &stock {
        for file in &files {
            let (reply, answer) = oneshot::channel();
            node.ask
                .send((provider_key(file), reply))
                .await
                .expect("the stock node runs");
            let records = answer.await.expect("the stock node answers");
            let ours = records
                .iter()
                .find(|r| r.provider == provider_id)
                .expect("our record is stored by a stock node");
            assert_eq!(
                ours.addresses,
                vec![external.clone().with(Protocol::P2p(provider_id))]
            );
        }
    }

    // A stock client's GET_PROVIDERS finds us.
    let mut finder = stock_swarm();
    finder.behaviour_mut().set_mode(Some(kad::Mode::Client));
    for node in &stock {
        finder
            .behaviour_mut()
            .add_address(&node.id, node.addr.clone());
    }
    for file in files.iter().step_by(10) {
        let query = finder.behaviour_mut().get_providers(provider_key(file));
        let found = tokio::time::timeout(DEADLINE, async {
            loop {
                if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                    id,
                    result:
                        kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                            providers,
                            ..
                        })),
                    ..
                }) = finder.select_next_some().await
                {
                    if id == query && providers.contains(&provider_id) {
                        return;
                    }
                }
            }
        })
        .await;
        assert!(found.is_ok(), "a stock node did not find us for {file}");
    }
}
