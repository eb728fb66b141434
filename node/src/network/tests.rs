//! Unit tests of the network layer over libp2p's in-memory transport: whole nodes
//! (the daemon's behaviour and actor, built by `build_in_memory`) talking to each other
//! in one process, and the actor's event handling fed events directly.

use std::future::Future;
use std::time::Duration;

use chunk_store::BufferPool;
use dht_proto::{Cid, Request, Response};
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{identity, Multiaddr, PeerId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::*;

/// Longest any test waits for the network to do something.
pub(super) const DEADLINE: Duration = Duration::from_secs(20);

pub(crate) fn config(dht_mode: DhtMode) -> NetworkConfig {
    NetworkConfig {
        listen: vec!["/memory/0".parse().expect("valid address")],
        bootstrap: vec![],
        external: vec![],
        relays: vec![],
        dht_mode,
        behaviour: BehaviourConfig {
            display_name: Some("test node".into()),
            mdns: false,
            max_provider_keys: 1024,
            max_connections: 64,
            max_inbound_per_ip: crate::network::DEFAULT_MAX_INBOUND_PER_IP,
            request_timeout: Duration::from_secs(10),
            relay_server: None,
            upnp: false,
            chunk_buffers: BufferPool::new(8 << 20),
            timers: Timers::default(),
        },
        idle_timeout: Duration::from_secs(60),
        test_panic_after: None,
    }
}

/// Something a test does to a running actor, between two of its events.
pub(crate) type Poke = Box<dyn FnOnce(&mut NetworkActor) + Send>;

/// Sets the round trip last measured to `peer` (if connected), as a ping would: how
/// engine tests play a far peer over the in-memory transport.
pub(crate) fn set_round_trip(actor: &mut NetworkActor, peer: libp2p::PeerId, rtt: Duration) {
    if let Some(state) = actor.peers.by_id.get_mut(&peer) {
        state.rtt = Some(rtt);
    }
}

/// [`NetworkActor::run`], plus pokes from the test.
pub(crate) async fn drive(mut actor: NetworkActor, mut pokes: mpsc::Receiver<Poke>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            event = actor.swarm.select_next_some() => actor.on_swarm_event(event),
            command = actor.commands.recv() => match command {
                Some(command) => actor.on_command(command),
                None => break,
            },
            Some(poke) = pokes.recv() => poke(&mut actor),
            _ = tick.tick() => actor.on_tick(),
        }
    }
}

/// A running in-memory node.
pub(super) struct Node {
    pub(super) net: Network,
    pub(super) inbound: mpsc::Receiver<InboundRequest>,
    /// Its listen address, ending in `/p2p/<id>`.
    pub(super) addr: Multiaddr,
    pokes: mpsc::Sender<Poke>,
    task: JoinHandle<()>,
}

impl Node {
    /// Runs `f` on the node's actor and returns what it returns.
    pub(super) async fn poke<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut NetworkActor) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let poke: Poke = Box::new(move |actor| {
            let _ = tx.send(f(actor));
        });
        self.pokes.send(poke).await.expect("the node runs");
        rx.await.expect("the node runs")
    }

    /// Its listen addresses, once it has `count` of them.
    pub(super) async fn listen_addrs(&self, count: usize) -> Vec<Multiaddr> {
        eventually("the listen addresses", || async {
            let addrs = self.net.info().await.ok()?.listen_addrs;
            (addrs.len() == count).then_some(addrs)
        })
        .await
    }

    /// Its QUIC and its TCP listen address, once it listens on both.
    pub(super) async fn quic_and_tcp_addrs(&self) -> (Multiaddr, Multiaddr) {
        let addrs = self.listen_addrs(2).await;
        let find = |quic: bool| {
            addrs
                .iter()
                .find(|a| super::quic_beside_tcp::is_quic(a) == quic)
                .cloned()
                .expect("a QUIC and a TCP listen address")
        };
        (find(true), find(false))
    }

    /// The remote addresses of its connections to `peer` now (none if not connected).
    pub(super) async fn addrs_of(&self, peer: PeerId) -> Vec<Multiaddr> {
        let peers = self.net.peers().await.unwrap_or_default();
        peers
            .into_iter()
            .find(|p| p.peer_id == peer)
            .map(|p| p.addrs)
            .unwrap_or_default()
    }

    /// The remote addresses of its connections to `peer`, once it has one.
    pub(super) async fn connected_to(&self, peer: PeerId) -> Vec<Multiaddr> {
        eventually("the connection", || async {
            let addrs = self.addrs_of(peer).await;
            (!addrs.is_empty()).then_some(addrs)
        })
        .await
    }
}

/// The TCP port of an address.
pub(super) fn tcp_port(addr: &Multiaddr) -> u16 {
    addr.iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("a TCP address")
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits for `check` to return `Some`, polling every 50 ms, for at most [`DEADLINE`]
/// (the transfer engine's in-process tests use it too).
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) async fn spawn(config: NetworkConfig) -> Node {
    spawn_with_inbound_queue(config, 64).await
}

pub(super) async fn spawn_with_inbound_queue(config: NetworkConfig, queue: usize) -> Node {
    let (inbound_tx, inbound) = mpsc::channel(queue);
    let (actor, net) = build_in_memory(identity::Keypair::generate_ed25519(), config, inbound_tx)
        .expect("an in-memory node builds");
    run_node(actor, net, inbound).await
}

/// A node built as the daemon builds it (TCP, QUIC, DNS, relay client), listening on
/// 127.0.0.1 at a port the system picks.
pub(super) async fn spawn_over_tcp(config: NetworkConfig) -> Node {
    spawn_listening(config, &["/ip4/127.0.0.1/tcp/0"]).await
}

/// Listen addresses of a node reached over both TCP and QUIC.
pub(super) const TCP_AND_QUIC: [&str; 2] = ["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"];

/// A node built as the daemon builds it, listening on `listen` (addresses on
/// 127.0.0.1).
pub(super) async fn spawn_listening(mut config: NetworkConfig, listen: &[&str]) -> Node {
    config.listen = listen
        .iter()
        .map(|a| a.parse().expect("valid address"))
        .collect();
    let (inbound_tx, inbound) = mpsc::channel(64);
    let mut registry = libp2p::metrics::Registry::default();
    let (actor, net) = build(
        identity::Keypair::generate_ed25519(),
        config,
        inbound_tx,
        &mut registry,
    )
    .expect("a TCP node builds");
    run_node(actor, net, inbound).await
}

async fn run_node(
    actor: NetworkActor,
    net: Network,
    inbound: mpsc::Receiver<InboundRequest>,
) -> Node {
    let (pokes, poke_rx) = mpsc::channel(8);
    let task = tokio::spawn(drive(actor, poke_rx));
    let addr = eventually("a listen address", || async {
        net.info().await.ok()?.listen_addrs.into_iter().next()
    })
    .await;
    Node {
        net,
        inbound,
        addr,
        pokes,
        task,
    }
}

/// A swarm over the memory transport with nothing but `behaviour`: a peer that is not
/// p2pd, for tests of how a node treats other implementations.
pub(super) fn bare_swarm<B: libp2p::swarm::NetworkBehaviour + Send>(
    behaviour: B,
) -> libp2p::Swarm<B> {
    bare_swarm_with(|_| behaviour)
}

/// [`bare_swarm`] with a behaviour made from the swarm's key.
pub(super) fn bare_swarm_with<B: libp2p::swarm::NetworkBehaviour + Send>(
    behaviour: impl FnOnce(&identity::Keypair) -> B,
) -> libp2p::Swarm<B> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(super::memory_transport)
        .expect("a memory transport")
        .with_behaviour(|key| behaviour(key))
        .expect("a behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// A node that bootstraps from `boot`.
pub(super) async fn spawn_joining(mut config: NetworkConfig, boot: &Node) -> Node {
    config.bootstrap = vec![boot.addr.clone()];
    spawn(config).await
}

pub(super) async fn wait_connected(node: &Node, peer: PeerId) {
    eventually("a connection", || async {
        node.net
            .connected_peers()
            .await
            .contains(&peer)
            .then_some(())
    })
    .await;
}

pub(super) fn cid(n: u8) -> Cid {
    Cid::for_manifest_bytes(&[n; 8])
}

#[tokio::test]
async fn identify_tells_each_side_the_others_agent_and_ping_measures_rtt() {
    let a = spawn(config(DhtMode::Server)).await;
    let b = spawn_joining(config(DhtMode::Client), &a).await;
    let a_id = a.net.local_peer_id();
    wait_connected(&b, a_id).await;
    let peer = eventually("identify and a ping", || async {
        let peers = b.net.peers().await.ok()?;
        let p = peers.into_iter().find(|p| p.peer_id == a_id)?;
        (p.agent.is_some() && p.rtt.is_some()).then_some(p)
    })
    .await;
    assert!(peer
        .agent
        .as_deref()
        .is_some_and(|a| a.starts_with("p2pd/") && a.ends_with("(test node)")));
    assert_eq!(peer.connection, ConnectionKind::Direct);
    assert_eq!(peer.addrs.len(), 1);
    // A DHT server's listen address reached B's routing table through identify.
    let info = b.net.info().await.unwrap();
    assert_eq!(info.routing_table_peers, 1);
    assert_eq!(info.connected_peers, 1);
    assert_eq!(info.dht_role, DhtRole::Client);
    assert_eq!(info.nat_status, NatStatus::Private);
    // A client is not added to a server's routing table.
    assert_eq!(a.net.info().await.unwrap().routing_table_peers, 0);
    assert_eq!(a.net.info().await.unwrap().dht_role, DhtRole::Server);
}

#[tokio::test]
async fn requests_reach_the_inbound_channel_and_answers_come_back() {
    let mut a = spawn(config(DhtMode::Server)).await;
    let b = spawn_joining(config(DhtMode::Client), &a).await;
    let a_id = a.net.local_peer_id();
    wait_connected(&b, a_id).await;
    let server = a.net.clone();
    let b_id = b.net.local_peer_id();
    let answering = tokio::spawn(async move {
        for _ in 0..2 {
            let r = a.inbound.recv().await.expect("a request arrives");
            assert_eq!(r.peer, b_id);
            let answer = match r.request {
                Request::Manifest { .. } => Response::NotFound,
                Request::Have { .. } => Response::Ack,
                other => panic!("unexpected request {other:?}"),
            };
            server.respond(r.channel, answer).await;
        }
        a
    });
    // One request on each transfer protocol.
    let have = b.net.request(
        a_id,
        Request::Have {
            cid: cid(1),
            index: 0,
        },
    );
    let manifest = b.net.request(a_id, Request::Manifest { cid: cid(1) });
    let (have, manifest) = tokio::time::timeout(DEADLINE, async { tokio::join!(have, manifest) })
        .await
        .expect("answers in time");
    assert_eq!(have.unwrap(), Reply::Message(Response::Ack));
    assert_eq!(manifest.unwrap(), Reply::Message(Response::NotFound));
    let _a = answering.await.unwrap();
}

#[tokio::test]
async fn an_unreachable_peer_is_a_dial_error() {
    let a = spawn(config(DhtMode::Client)).await;
    let stranger = PeerId::random();
    let result = tokio::time::timeout(
        DEADLINE,
        a.net.request(
            stranger,
            Request::Have {
                cid: cid(1),
                index: 0,
            },
        ),
    )
    .await
    .expect("fails in time");
    assert!(matches!(result, Err(RequestError::Dial(_))), "{result:?}");
}

/// A TCP proxy on 127.0.0.1 to `to`; returns its port. It waits `connect_delay` before
/// it connects each accepted connection onward, and then holds every byte back
/// `one_way` in each direction (a long path, with no limit on its rate).
pub(super) async fn tcp_proxy(to: &Multiaddr, connect_delay: Duration, one_way: Duration) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

    async fn carry(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, one_way: Duration) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
        let writer = tokio::spawn(async move {
            while let Some((due, bytes)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                if to.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            if tx
                .send((tokio::time::Instant::now() + one_way, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
        drop(tx);
        let _ = writer.await;
    }

    let port = tcp_port(to);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let local = listener.local_addr().expect("bound").port();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(connect_delay).await;
                let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                    return;
                };
                let (in_read, in_write) = inbound.into_split();
                let (out_read, out_write) = outbound.into_split();
                tokio::spawn(carry(in_read, out_write, one_way));
                carry(out_read, in_write, one_way).await;
            });
        }
    });
    local
}

#[tokio::test]
async fn pings_are_answered_after_the_peer_refused_ours() {
    use super::ping::{Ping, PingConfig, PingEvent};

    let a = spawn(config(DhtMode::Client)).await;
    // A peer that pings every 200 ms but does not answer pings itself, as some
    // js-libp2p configurations do.
    let mut b = bare_swarm(Ping::new(PingConfig {
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
        answer: false,
    }));
    b.dial(a.addr.clone()).unwrap();
    let mut answered = 0;
    let until = tokio::time::Instant::now() + DEADLINE;
    while answered < 10 {
        let event = tokio::time::timeout_at(until, b.select_next_some())
            .await
            .expect("pings answered in time");
        if let SwarmEvent::Behaviour(PingEvent { result, .. }) = event {
            result.expect("A answers every ping");
            answered += 1;
        }
    }
    // A's own pings to B found no ping protocol: no RTT for B, yet B's pings were
    // answered all along.
    let b_id = *b.local_peer_id();
    let peers = a.net.peers().await.unwrap();
    let seen = peers
        .iter()
        .find(|p| p.peer_id == b_id)
        .expect("B connected");
    assert_eq!(seen.rtt, None);
}
