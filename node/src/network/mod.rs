//! The network: one task owns the libp2p [`Swarm`]; everything else holds a cheap
//! [`Network`] handle and sends it [`Command`]s over a bounded channel, getting answers on
//! oneshot channels keyed by request or query id.
//!
//! - `behaviour.rs`: what the node speaks (Kademlia, identify, ping, the chunk and
//!   manifest protocols, mDNS, AutoNAT v2, relay client and server, DCUtR, UPnP) and
//!   its limits.
//! - `codec.rs`: the transfer protocols' libp2p codec.
//! - this file: the swarm task ([`NetworkActor`]) and the handle.
//!
//! Inbound chunk-protocol requests leave the swarm task at once on the `inbound` channel
//! (see `serve.rs`); their answers come back as [`Command::Respond`]. The swarm task itself
//! never touches the disk.

pub mod behaviour;
pub mod codec;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dht_proto::{Cid, Request, Response};
use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{
    dcutr, identify, identity, kad, mdns, noise, ping, relay, tcp, yamux, Multiaddr, PeerId, Swarm,
};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

pub use behaviour::{Behaviour, BehaviourConfig, BehaviourEvent, KAD_PROTOCOL};
pub use codec::Reply;

/// How the node takes part in the DHT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DhtMode {
    /// Server once an address that is not relayed is confirmed reachable; client before.
    Auto,
    /// Always answer DHT queries (public bootstrap nodes).
    Server,
    /// Never answer DHT queries.
    Client,
}

/// Settings of the network task.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Bootstrap nodes (each ending in `/p2p/<peer id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Addresses this node is known to be reachable at (public hosts).
    pub external: Vec<Multiaddr>,
    /// Relays to reserve a slot on when not publicly reachable (besides bootstrap nodes
    /// that offer relaying).
    pub relays: Vec<Multiaddr>,
    /// DHT participation.
    pub dht_mode: DhtMode,
    /// Behaviour tunables.
    pub behaviour: BehaviourConfig,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// Test only (`--test-panic-network-after`): the swarm task panics this long after
    /// start, so tests can see the daemon notice a dead network.
    pub test_panic_after: Option<Duration>,
}

/// Why an outbound chunk-protocol request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// The peer could not be reached.
    #[error("dial failed: {0}")]
    Dial(String),
    /// No response within the request timeout.
    #[error("timed out")]
    Timeout,
    /// The connection closed or the peer does not speak the protocol.
    #[error("{0}")]
    Other(String),
    /// The connection carrying the request closed (e.g. a relayed connection replaced
    /// by a direct one); worth retrying at once.
    #[error("connection closed")]
    ConnectionClosed,
    /// The network task is gone (daemon shutting down).
    #[error("network task stopped")]
    Stopped,
}

/// The two request-response protocols of a transfer (they differ in response limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Transfer {
    Chunk,
    Manifest,
}

/// A request from a peer, waiting for an answer.
pub struct InboundRequest {
    /// Who asked.
    pub peer: PeerId,
    /// What they asked.
    pub request: Request,
    /// Where the answer goes (back through [`Network::respond`]).
    pub channel: ResponseChannel<Reply>,
}

/// What changed in the network, for live views (API events).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NetEvent {
    /// A peer connected.
    PeerConnected {
        /// The peer.
        peer_id: String,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer_id: String,
    },
    /// An address of ours was confirmed reachable from outside.
    ExternalAddress {
        /// The address.
        addr: String,
    },
}

/// The node's view of itself.
#[derive(Debug, Clone, Serialize)]
pub struct NodeInfo {
    /// Our peer id.
    pub peer_id: String,
    /// Addresses we listen on, each ending in `/p2p/<peer id>`.
    pub listen_addrs: Vec<String>,
    /// Addresses confirmed reachable from outside.
    pub external_addrs: Vec<String>,
    /// `public` when an address that is not relayed is confirmed, `private` otherwise.
    pub nat_status: String,
    /// Whether we answer DHT queries now.
    pub dht_server: bool,
    /// Number of connected peers.
    pub connected_peers: usize,
    /// Peers in the DHT routing table.
    pub routing_table_peers: usize,
    /// Files we announce as provider.
    pub provided_files: usize,
    /// Our `/p2p-circuit` addresses: relays holding a reservation for us.
    pub relay_reservations: Vec<String>,
    /// Provider announcements (DHT `ADD_PROVIDER` rounds) started since the daemon
    /// started: one per file per round, never one per chunk.
    pub provider_announcements: u64,
}

/// One connected peer.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    /// The peer.
    pub peer_id: String,
    /// Remote addresses of our connections to it.
    pub addrs: Vec<String>,
    /// Whether any connection is direct (not through a relay).
    pub direct: bool,
    /// Last measured round-trip time.
    pub rtt_ms: Option<f64>,
    /// What software it runs.
    pub agent: Option<String>,
}

/// What the swarm task can be asked to do.
pub enum Command {
    /// Send a chunk-protocol request.
    Request {
        /// To whom.
        peer: PeerId,
        /// What.
        request: Request,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Reply, RequestError>>,
    },
    /// Answer an inbound request.
    Respond {
        /// The request's channel.
        channel: ResponseChannel<Reply>,
        /// The answer.
        response: Reply,
    },
    /// Announce that we provide a file (and keep re-announcing it).
    StartProviding(Cid),
    /// Stop announcing a file.
    StopProviding(Cid),
    /// Look up providers of a file; found peers are sent on `found` (and dialed) until the
    /// lookup ends, then the sender is dropped.
    FindProviders {
        /// The file.
        cid: Cid,
        /// Where found providers go.
        found: mpsc::Sender<PeerId>,
    },
    /// Our own identity and reach.
    Info(oneshot::Sender<NodeInfo>),
    /// Connected peers.
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    /// Peers we are connected to now (ids only).
    ConnectedPeers(oneshot::Sender<Vec<PeerId>>),
}

/// A cheap, cloneable handle to the swarm task.
#[derive(Clone)]
pub struct Network {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<NetEvent>,
    local_peer_id: PeerId,
}

impl Network {
    async fn send(&self, command: Command) {
        // If the task is gone the daemon is shutting down; callers see closed oneshots.
        let _ = self.commands.send(command).await;
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Sends a chunk-protocol request and waits for the answer.
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Reply, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Request {
            peer,
            request,
            reply,
        })
        .await;
        answer.await.unwrap_or(Err(RequestError::Stopped))
    }

    /// Answers an inbound request.
    pub async fn respond(&self, channel: ResponseChannel<Reply>, response: impl Into<Reply>) {
        let response = response.into();
        self.send(Command::Respond { channel, response }).await;
    }

    /// Announces a file.
    pub async fn start_providing(&self, cid: Cid) {
        self.send(Command::StartProviding(cid)).await;
    }

    /// Stops announcing a file.
    pub async fn stop_providing(&self, cid: Cid) {
        self.send(Command::StopProviding(cid)).await;
    }

    /// Starts a provider lookup; providers arrive on the returned channel, which closes
    /// when the lookup ends.
    pub async fn find_providers(&self, cid: Cid) -> mpsc::Receiver<PeerId> {
        let (found, rx) = mpsc::channel(256);
        self.send(Command::FindProviders { cid, found }).await;
        rx
    }

    /// Our identity and reach.
    pub async fn info(&self) -> anyhow::Result<NodeInfo> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Info(reply)).await;
        answer.await.context("network task stopped")
    }

    /// Connected peers.
    pub async fn peers(&self) -> anyhow::Result<Vec<PeerInfo>> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Peers(reply)).await;
        answer.await.context("network task stopped")
    }

    /// Ids of the peers connected now.
    pub async fn connected_peers(&self) -> Vec<PeerId> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::ConnectedPeers(reply)).await;
        answer.await.unwrap_or_default()
    }

    /// Live network events.
    pub fn subscribe(&self) -> broadcast::Receiver<NetEvent> {
        self.events.subscribe()
    }
}

#[derive(Default)]
struct PeerState {
    connections: HashMap<ConnectionId, Multiaddr>,
    /// An address we dialed it at directly (usable to reach it as a relay).
    dialed: Option<Multiaddr>,
    rtt: Option<Duration>,
    agent: Option<String>,
}

/// Whether an address goes through a relay.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// Whether an address is on 127.0.0.0/8 or ::1.
pub fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

/// Splits `/…/p2p/<id>` into the peer id and the address.
pub fn split_peer_addr(addr: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    let mut addr = addr.clone();
    match addr.pop() {
        Some(Protocol::P2p(peer)) => Some((peer, addr)),
        _ => None,
    }
}

/// Re-announcements are delayed this long after a trigger, so a burst of triggers
/// (several addresses confirmed at once) costs one round of announcements.
const REANNOUNCE_DELAY: Duration = Duration::from_secs(1);
/// A reconnect to a bootstrap node re-announces everything only if the last full round
/// is older than this (Kademlia republishes provider records on its own schedule).
const REANNOUNCE_MIN_INTERVAL: Duration = Duration::from_secs(3600);
/// Relays we keep a reservation on while not publicly reachable.
const MAX_RELAYS: usize = 2;
/// Pause before asking a relay again after a reservation failed or ended.
const RESERVATION_RETRY: Duration = Duration::from_secs(10);
/// Most chunk-protocol requests in flight from this node at once.
const MAX_PENDING_REQUESTS: usize = 4096;

/// The task that owns the swarm.
pub struct NetworkActor {
    /// See [`NetworkConfig::test_panic_after`].
    test_panic_at: Option<Instant>,
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    inbound: mpsc::Sender<InboundRequest>,
    events: broadcast::Sender<NetEvent>,
    dht_mode: DhtMode,
    /// Requests in flight, by the protocol they went on and their id there.
    pending_requests:
        HashMap<(Transfer, OutboundRequestId), oneshot::Sender<Result<Reply, RequestError>>>,
    provider_queries: HashMap<kad::QueryId, mpsc::Sender<PeerId>>,
    provided: HashSet<Cid>,
    reannounce_at: Option<Instant>,
    last_announce_all: Option<Instant>,
    provider_announcements: u64,
    peers: HashMap<PeerId, PeerState>,
    bootstrap_peers: HashSet<PeerId>,
    /// Whether to reserve relay slots when not publicly reachable.
    use_relays: bool,
    /// Peers that offer relaying, and a direct address of each.
    relay_candidates: HashMap<PeerId, Multiaddr>,
    /// Relay listeners (one per relay we asked for a reservation).
    reservations: HashMap<PeerId, ListenerId>,
    reservation_retry: HashMap<PeerId, Instant>,
    /// Our circuit addresses, by the listener that got them.
    circuit_addrs: HashMap<ListenerId, Vec<Multiaddr>>,
}

/// Builds the swarm and returns the actor to run and the handle to it.
pub fn build(
    key: identity::Keypair,
    config: NetworkConfig,
    inbound: mpsc::Sender<InboundRequest>,
) -> anyhow::Result<(NetworkActor, Network)> {
    let behaviour_config = config.behaviour.clone();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_quic()
        .with_dns()?
        .with_relay_client(noise::Config::new, yamux::Config::default)?
        .with_behaviour(|key, relay_client| {
            Behaviour::new(key, relay_client, &behaviour_config)
                .map_err(|e| Box::<dyn std::error::Error + Send + Sync>::from(e.to_string()))
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();

    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .with_context(|| format!("cannot listen on {addr}"))?;
    }
    for addr in &config.external {
        swarm.add_external_address(addr.clone());
    }
    let mut relay_candidates = HashMap::new();
    for addr in &config.relays {
        let (peer, transport_addr) = split_peer_addr(addr)
            .with_context(|| format!("relay address {addr} must end in /p2p/<peer id>"))?;
        relay_candidates.insert(peer, transport_addr);
    }
    let mut bootstrap_peers = HashSet::new();
    for addr in &config.bootstrap {
        let (peer, transport_addr) = split_peer_addr(addr)
            .with_context(|| format!("bootstrap address {addr} must end in /p2p/<peer id>"))?;
        swarm.behaviour_mut().kad.add_address(&peer, transport_addr);
        bootstrap_peers.insert(peer);
        if let Err(e) = swarm.dial(addr.clone()) {
            tracing::warn!(%addr, "cannot dial bootstrap node: {e}");
        }
    }
    match config.dht_mode {
        DhtMode::Server => swarm.behaviour_mut().kad.set_mode(Some(kad::Mode::Server)),
        DhtMode::Client => swarm.behaviour_mut().kad.set_mode(Some(kad::Mode::Client)),
        DhtMode::Auto => swarm.behaviour_mut().kad.set_mode(Some(kad::Mode::Client)),
    }

    let (command_tx, commands) = mpsc::channel(1024);
    let (events, _) = broadcast::channel(256);
    let local_peer_id = *swarm.local_peer_id();
    let mut actor = NetworkActor {
        test_panic_at: config.test_panic_after.map(|after| Instant::now() + after),
        swarm,
        commands,
        inbound,
        events: events.clone(),
        dht_mode: config.dht_mode,
        pending_requests: HashMap::new(),
        provider_queries: HashMap::new(),
        provided: HashSet::new(),
        reannounce_at: None,
        last_announce_all: None,
        provider_announcements: 0,
        peers: HashMap::new(),
        bootstrap_peers,
        use_relays: config.dht_mode != DhtMode::Server && config.external.is_empty(),
        relay_candidates,
        reservations: HashMap::new(),
        reservation_retry: HashMap::new(),
        circuit_addrs: HashMap::new(),
    };
    actor.update_dht_mode();
    Ok((
        actor,
        Network {
            commands: command_tx,
            events,
            local_peer_id,
        },
    ))
}

impl NetworkActor {
    /// Runs until every [`Network`] handle is dropped.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                _ = tick.tick() => self.on_tick(),
            }
        }
        tracing::debug!("network task stopped");
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        if self.test_panic_at.is_some_and(|at| now >= at) {
            panic!("test fault: the network task panics as asked (--test-panic-network-after)");
        }
        if let Some(at) = self.reannounce_at {
            if now >= at {
                self.reannounce_at = None;
                self.announce_all();
            }
        }
        self.keep_reservations(now);
        self.finish_abandoned_provider_queries();
    }

    /// Whether an address that is not relayed is confirmed reachable.
    fn is_public(&self) -> bool {
        self.swarm.external_addresses().any(|a| !is_relayed(a))
    }

    /// A node that is not publicly reachable keeps reservations on up to [`MAX_RELAYS`]
    /// relays, so that others can reach it through them (and then hole-punch). One that
    /// turns out to be reachable (reservations are taken while that is still unknown,
    /// right after start) gives them back.
    fn keep_reservations(&mut self, now: Instant) {
        if self.is_public() {
            for (relay, listener) in self.reservations.drain() {
                tracing::info!(%relay, "reachable directly: giving back the relay reservation");
                self.swarm.remove_listener(listener);
            }
            return;
        }
        if !self.use_relays || self.reservations.len() >= MAX_RELAYS {
            return;
        }
        let mut candidates: Vec<(PeerId, Multiaddr)> = self
            .relay_candidates
            .iter()
            .filter(|(peer, _)| {
                !self.reservations.contains_key(peer)
                    && self.reservation_retry.get(peer).is_none_or(|t| *t <= now)
            })
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        candidates.sort_by_key(|(p, _)| *p);
        for (peer, addr) in candidates {
            if self.reservations.len() >= MAX_RELAYS {
                break;
            }
            let circuit = addr.with(Protocol::P2p(peer)).with(Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(id) => {
                    tracing::info!(relay = %peer, "asking relay for a reservation");
                    self.reservations.insert(peer, id);
                }
                Err(e) => {
                    tracing::debug!(%circuit, "cannot listen through relay: {e}");
                    self.reservation_retry.insert(peer, now + RESERVATION_RETRY);
                }
            }
        }
    }

    fn schedule_reannounce(&mut self) {
        if !self.provided.is_empty() && self.reannounce_at.is_none() {
            self.reannounce_at = Some(Instant::now() + REANNOUNCE_DELAY);
        }
    }

    fn announce_all(&mut self) {
        self.last_announce_all = Some(Instant::now());
        let cids: Vec<Cid> = self.provided.iter().copied().collect();
        tracing::info!(files = cids.len(), "announcing provider records");
        for cid in cids {
            self.announce(cid);
        }
    }

    fn announce(&mut self, cid: Cid) {
        let key = kad::RecordKey::new(&cid.multihash_bytes());
        self.provider_announcements += 1;
        match self.swarm.behaviour_mut().kad.start_providing(key) {
            Ok(_) => tracing::debug!(%cid, "provider announcement started"),
            Err(e) => tracing::warn!(%cid, "cannot announce provider record: {e}"),
        }
    }

    /// Kademlia server mode only on a confirmed address that is not relayed: a relay
    /// reservation must not turn a node behind NAT into a DHT server.
    fn update_dht_mode(&mut self) {
        if self.dht_mode != DhtMode::Auto {
            return;
        }
        let mode = if self.is_public() {
            kad::Mode::Server
        } else {
            kad::Mode::Client
        };
        if self.swarm.behaviour().kad.mode() != mode {
            tracing::info!(?mode, "DHT mode changed");
            self.swarm.behaviour_mut().kad.set_mode(Some(mode));
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Request {
                peer,
                request,
                reply,
            } => {
                if self.pending_requests.len() >= MAX_PENDING_REQUESTS {
                    let _ = reply.send(Err(RequestError::Other(
                        "too many requests in flight".into(),
                    )));
                    return;
                }
                let behaviour = self.swarm.behaviour_mut();
                let key = match request {
                    Request::Manifest { .. } => (
                        Transfer::Manifest,
                        behaviour.manifest.send_request(&peer, request),
                    ),
                    _ => (
                        Transfer::Chunk,
                        behaviour.chunk.send_request(&peer, request),
                    ),
                };
                self.pending_requests.insert(key, reply);
            }
            Command::Respond { channel, response } => {
                // A response channel carries its own sender: answering through the chunk
                // behaviour is right for requests of either transfer protocol.
                if self
                    .swarm
                    .behaviour_mut()
                    .chunk
                    .send_response(channel, response)
                    .is_err()
                {
                    tracing::debug!("response dropped: the requester went away");
                }
            }
            Command::StartProviding(cid) => {
                // Already announced: Kademlia republishes it on its own schedule.
                if self.provided.insert(cid) {
                    tracing::info!(%cid, "announcing as provider");
                    self.announce(cid);
                }
            }
            Command::StopProviding(cid) => {
                self.provided.remove(&cid);
                let key = kad::RecordKey::new(&cid.multihash_bytes());
                self.swarm.behaviour_mut().kad.stop_providing(&key);
            }
            Command::FindProviders { cid, found } => {
                let key = kad::RecordKey::new(&cid.multihash_bytes());
                let id = self.swarm.behaviour_mut().kad.get_providers(key);
                tracing::info!(%cid, "provider lookup started");
                self.provider_queries.insert(id, found);
            }
            Command::Info(reply) => {
                let _ = reply.send(self.node_info());
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.peer_infos());
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
        }
    }

    fn node_info(&mut self) -> NodeInfo {
        let local = *self.swarm.local_peer_id();
        // Relayed addresses already end in our id (`…/p2p-circuit/p2p/<us>`).
        let with_id = |a: &Multiaddr| match a.iter().last() {
            Some(Protocol::P2p(_)) => a.to_string(),
            _ => a.clone().with(Protocol::P2p(local)).to_string(),
        };
        let external: Vec<Multiaddr> = self.swarm.external_addresses().cloned().collect();
        let routing_table_peers = self
            .swarm
            .behaviour_mut()
            .kad
            .kbuckets()
            .map(|b| b.num_entries())
            .sum();
        let mut relay_reservations: Vec<String> = self
            .circuit_addrs
            .values()
            .flatten()
            .map(|a| a.to_string())
            .collect();
        relay_reservations.sort();
        NodeInfo {
            relay_reservations,
            peer_id: local.to_string(),
            listen_addrs: self.swarm.listeners().map(with_id).collect(),
            external_addrs: external.iter().map(with_id).collect(),
            nat_status: if self.is_public() {
                "public".into()
            } else {
                "private".into()
            },
            dht_server: self.swarm.behaviour().kad.mode() == kad::Mode::Server,
            connected_peers: self.swarm.connected_peers().count(),
            routing_table_peers,
            provided_files: self.provided.len(),
            provider_announcements: self.provider_announcements,
        }
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        let mut out: Vec<PeerInfo> = self
            .peers
            .iter()
            .filter(|(_, s)| !s.connections.is_empty())
            .map(|(peer, state)| PeerInfo {
                peer_id: peer.to_string(),
                addrs: state.connections.values().map(|a| a.to_string()).collect(),
                direct: state.connections.values().any(|a| !is_relayed(a)),
                rtt_ms: state.rtt.map(|d| d.as_secs_f64() * 1000.0),
                agent: state.agent.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        out
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr {
                address,
                listener_id,
            } => {
                tracing::info!(%address, "listening");
                if is_relayed(&address) {
                    self.circuit_addrs
                        .entry(listener_id)
                        .or_default()
                        .push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr {
                address,
                listener_id,
            } => {
                if let Some(addrs) = self.circuit_addrs.get_mut(&listener_id) {
                    addrs.retain(|a| *a != address);
                }
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                self.circuit_addrs.remove(&listener_id);
                let relay = self
                    .reservations
                    .iter()
                    .find(|(_, id)| **id == listener_id)
                    .map(|(p, _)| *p);
                if let Some(relay) = relay {
                    tracing::info!(%relay, ?reason, "relay reservation ended");
                    self.reservations.remove(&relay);
                    self.reservation_retry
                        .insert(relay, Instant::now() + RESERVATION_RETRY);
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                let remote = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => address.clone(),
                    ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr.clone(),
                };
                let relayed = is_relayed(&remote);
                tracing::info!(peer = %peer_id, addr = %remote, relayed, "connection established");
                let state = self.peers.entry(peer_id).or_default();
                if !relayed {
                    if let ConnectedPoint::Dialer { address, .. } = &endpoint {
                        let mut address = address.clone();
                        if matches!(address.iter().last(), Some(Protocol::P2p(_))) {
                            address.pop();
                        }
                        state.dialed = Some(address);
                    }
                    // A direct connection replaces relayed ones to the same peer at once:
                    // request-response spreads requests over all of a peer's connections,
                    // so a relayed one left open would carry a share of every transfer.
                    // Requests cut short by the close are retried over the direct one.
                    let relayed_ids: Vec<ConnectionId> = state
                        .connections
                        .iter()
                        .filter(|(_, addr)| is_relayed(addr))
                        .map(|(id, _)| *id)
                        .collect();
                    for id in relayed_ids {
                        tracing::debug!(peer = %peer_id, "closing relayed connection: a direct one exists");
                        self.swarm.close_connection(id);
                    }
                }
                let has_direct = state.connections.values().any(|a| !is_relayed(a));
                state.connections.insert(connection_id, remote);
                if relayed && has_direct {
                    // Same rule the other way round: never keep a relayed connection
                    // beside a direct one.
                    self.swarm.close_connection(connection_id);
                }
                if num_established.get() == 1 {
                    let _ = self.events.send(NetEvent::PeerConnected {
                        peer_id: peer_id.to_string(),
                    });
                }
                if self.bootstrap_peers.contains(&peer_id) && num_established.get() == 1 {
                    // Fill the routing table from the bootstrap node. Announce on the
                    // first connection, and again only if the last full round is old
                    // (a reconnect every few minutes must not re-announce everything).
                    let _ = self.swarm.behaviour_mut().kad.bootstrap();
                    if self
                        .last_announce_all
                        .is_none_or(|t| t.elapsed() > REANNOUNCE_MIN_INTERVAL)
                    {
                        self.schedule_reannounce();
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                tracing::info!(peer = %peer_id, cause = ?cause, "connection closed");
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.connections.remove(&connection_id);
                }
                if num_established == 0 {
                    self.peers.remove(&peer_id);
                    let _ = self.events.send(NetEvent::PeerDisconnected {
                        peer_id: peer_id.to_string(),
                    });
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, "dial failed: {error}");
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                tracing::info!(%address, "external address confirmed");
                let _ = self.events.send(NetEvent::ExternalAddress {
                    addr: address.to_string(),
                });
                self.update_dht_mode();
                // Provider records carry our addresses: re-announce with the new ones.
                self.schedule_reannounce();
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                tracing::info!(%address, "external address expired");
                self.update_dht_mode();
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Chunk(event) => self.on_transfer_event(Transfer::Chunk, event),
            BehaviourEvent::Manifest(event) => self.on_transfer_event(Transfer::Manifest, event),
            BehaviourEvent::Kad(event) => self.on_kad_event(event),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let mut dialed = None;
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.agent = Some(info.agent_version.clone());
                    dialed = state.dialed.clone();
                }
                if info.protocols.contains(&relay::HOP_PROTOCOL_NAME) {
                    if let Some(addr) = dialed {
                        if self.relay_candidates.insert(peer_id, addr).is_none() {
                            tracing::debug!(peer = %peer_id, "peer offers relaying");
                        }
                    }
                }
                // Kademlia learns addresses only of peers it dialed itself: feed it the
                // listen addresses of every DHT server we meet.
                if info.protocols.contains(&KAD_PROTOCOL) {
                    // A loopback address of a peer we reach over a network is useless.
                    let on_loopback = self
                        .peers
                        .get(&peer_id)
                        .is_some_and(|s| s.connections.values().any(is_loopback));
                    for addr in info.listen_addrs {
                        if on_loopback || !is_loopback(&addr) {
                            self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                        }
                    }
                }
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => {
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.rtt = Some(rtt);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    tracing::debug!(%peer, %addr, "found on the LAN");
                    if !self.swarm.is_connected(&peer) {
                        let addr = match addr.iter().last() {
                            Some(Protocol::P2p(_)) => addr,
                            _ => addr.with(Protocol::P2p(peer)),
                        };
                        if let Err(e) = self.swarm.dial(addr) {
                            tracing::debug!(%peer, "cannot dial LAN peer: {e}");
                        }
                    }
                }
            }
            BehaviourEvent::Dcutr(dcutr::Event {
                remote_peer_id,
                result,
            }) => match result {
                Ok(_) => {
                    tracing::info!(peer = %remote_peer_id, "hole punch succeeded: direct connection")
                }
                Err(e) => tracing::info!(peer = %remote_peer_id, "hole punch failed: {e}"),
            },
            BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal: false,
                ..
            }) => {
                tracing::info!(relay = %relay_peer_id, "relay reservation accepted");
            }
            BehaviourEvent::RelayServer(event) => {
                tracing::debug!(?event, "relay server");
            }
            BehaviourEvent::Upnp(event) => {
                tracing::info!(?event, "UPnP");
            }
            BehaviourEvent::AutonatClient(event) => {
                tracing::debug!(addr = %event.tested_addr, server = %event.server, ok = event.result.is_ok(), "AutoNAT probe");
            }
            _ => {}
        }
    }

    fn on_transfer_event(
        &mut self,
        protocol: Transfer,
        event: request_response::Event<Request, Reply>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let inbound = InboundRequest {
                        peer,
                        request,
                        channel,
                    };
                    if let Err(e) = self.inbound.try_send(inbound) {
                        // Overloaded: say so rather than queue without bound.
                        let inbound = match e {
                            mpsc::error::TrySendError::Full(i)
                            | mpsc::error::TrySendError::Closed(i) => i,
                        };
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .chunk
                            .send_response(inbound.channel, Reply::Message(Response::Choked));
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending_requests.remove(&(protocol, request_id)) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                tracing::debug!(%peer, "chunk request failed: {error}");
                if let Some(reply) = self.pending_requests.remove(&(protocol, request_id)) {
                    let error = match error {
                        request_response::OutboundFailure::DialFailure => {
                            RequestError::Dial("cannot reach peer".into())
                        }
                        request_response::OutboundFailure::Timeout => RequestError::Timeout,
                        request_response::OutboundFailure::ConnectionClosed => {
                            RequestError::ConnectionClosed
                        }
                        other => RequestError::Other(other.to_string()),
                    };
                    let _ = reply.send(Err(error));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "inbound chunk request failed: {error}");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            } => match result {
                kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                    providers,
                    ..
                })) => {
                    let local = *self.swarm.local_peer_id();
                    if let Some(found) = self.provider_queries.get(&id) {
                        for peer in providers.into_iter().filter(|p| *p != local) {
                            tracing::info!(%peer, "provider found");
                            // Dial now: Kademlia knows the provider's addresses only while
                            // the query runs.
                            if !self.swarm.is_connected(&peer) {
                                let _ = self.swarm.dial(peer);
                            }
                            let _ = found.try_send(peer);
                        }
                    }
                }
                kad::QueryResult::GetProviders(Ok(
                    kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. },
                )) => {
                    self.provider_queries.remove(&id);
                }
                kad::QueryResult::GetProviders(Err(e)) => {
                    tracing::debug!("provider lookup ended: {e}");
                    self.provider_queries.remove(&id);
                }
                kad::QueryResult::StartProviding(result) => match result {
                    Ok(ok) => {
                        tracing::info!(key = ?ok.key, "provider announcement stored in the DHT")
                    }
                    Err(e) => tracing::info!("provider announcement incomplete: {e}"),
                },
                kad::QueryResult::Bootstrap(Ok(_)) if step.last => {
                    tracing::debug!("DHT bootstrap finished");
                }
                _ => {}
            },
            kad::Event::RoutingUpdated {
                peer,
                is_new_peer: true,
                ..
            } => {
                tracing::debug!(%peer, "added to the routing table");
            }
            _ => {}
        }
    }

    /// Stops the provider lookups nobody waits for any more (the download ended while
    /// its lookup ran), so they do not go on querying the DHT until their timeout.
    fn finish_abandoned_provider_queries(&mut self) {
        let abandoned: Vec<kad::QueryId> = self
            .provider_queries
            .iter()
            .filter(|(_, found)| found.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in abandoned {
            self.provider_queries.remove(&id);
            if let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                query.finish();
            }
        }
    }
}
