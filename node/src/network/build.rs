//! Building the network: its settings ([`NetworkConfig`]), the swarm over TCP/QUIC/DNS
//! for the daemon ([`build`]) or over libp2p's in-memory transport for tests and
//! simulations ([`build_in_memory`]), and the actor and handle around either. Both
//! transports carry the same behaviour and the same actor, so what runs in memory is
//! what the daemon runs.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context as _;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade::Version;
use libp2p::core::Transport as _;
use libp2p::{identity, noise, quic, relay, tcp, yamux, Multiaddr, Swarm};
use tokio::sync::{broadcast, mpsc};

use super::accept_rate::RateLimits;
use super::actor::NetworkActor;
use super::behaviour::{Behaviour, BehaviourConfig};
use super::dht::Dht;
use super::dial_order::{DialOrder, TcpDials, QUIC_HEAD_START};
use super::handle::{InboundRequest, Network};
use super::info::DhtMode;
use super::peers::{split_peer_addr, Peers};
use super::pending::{PendingGate, PendingLimits};
use super::reach::Reach;
use super::relay_traffic::RelayTraffic;
use super::relays::RelayBook;
use super::reprovide::{Reprovider, DEFAULT_REPROVIDE_INTERVAL};
use super::requests::Requests;
use super::secure::Upgrader;

/// Longest a connection may take from its first byte to a secured, multiplexed
/// connection (libp2p's default is 10 s). A handshake is a few round trips; a peer that
/// needs longer is most likely holding a slot on purpose.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Commands waiting for the swarm task.
const COMMAND_QUEUE: usize = 1024;
/// Network events kept for slow subscribers (older ones are skipped).
const EVENT_QUEUE: usize = 256;

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

fn behaviour_error(e: anyhow::Error) -> Box<dyn std::error::Error + Send + Sync> {
    e.to_string().into()
}

/// Builds the daemon's swarm (TCP, QUIC, DNS, relay client) and returns the actor to
/// run and the handle to it. libp2p's metrics (and the transport's bytes) are recorded
/// into `metrics`.
pub fn build(
    key: identity::Keypair,
    config: NetworkConfig,
    inbound: mpsc::Sender<InboundRequest>,
    metrics: &mut libp2p::metrics::Registry,
) -> anyhow::Result<(NetworkActor, Network)> {
    let behaviour_config = config.behaviour.clone();
    // The relay client built here rather than by the builder's `with_relay_client`, so
    // that its connections can be counted per relay (`relay_traffic.rs`).
    let (relay_transport, relay_client) = relay::client::new(key.public().to_peer_id());
    let traffic = RelayTraffic::default();
    let counting = traffic.clone();
    let tcp_dials = TcpDials::default();
    let noted = tcp_dials.clone();
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|key| {
            // TCP first when a peer has both (dial_order.rs).
            DialOrder::tcp_first(
                quic::tokio::Transport::new(quic::Config::new(key)),
                tcp_dials,
                QUIC_HEAD_START,
            )
            .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection)))
        })?
        .with_other_transport(
            |key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
                let upgrader = Upgrader::new(key)?;
                let tcp_config = tcp::Config::default().nodelay(true);
                let tcp = super::tcp_dial::ReuseOrNewPort::new(tcp_config.clone()).and_then(
                    move |conn, endpoint| {
                        let tcp_config = tcp_config.clone();
                        upgrader
                            .clone()
                            .upgrade_or_redial(conn, endpoint, move |address| {
                                super::tcp_dial::dial_from_new_port(tcp_config, address)
                            })
                    },
                );
                let limits = PendingLimits {
                    rate: RateLimits::for_inbound_per_ip(behaviour_config.max_inbound_per_ip),
                    ..PendingLimits::default()
                };
                Ok(DialOrder::note_tcp(PendingGate::new(tcp, limits), noted))
            },
        )?
        .with_other_transport(
            |key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
                Ok(relay_transport
                    .upgrade(Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default())
                    .map(move |(peer, muxer), endpoint| {
                        (peer, counting.count(StreamMuxerBox::new(muxer), &endpoint))
                    }))
            },
        )?
        .with_dns()?
        .with_bandwidth_metrics(metrics)
        .with_behaviour(|key| {
            Behaviour::new(key, relay_client, &behaviour_config).map_err(behaviour_error)
        })?
        .with_swarm_config(|c| swarm_config(c, config.idle_timeout))
        .with_connection_timeout(HANDSHAKE_TIMEOUT)
        .build();
    let recorder = libp2p::metrics::Metrics::new(metrics);
    assemble(swarm, config, inbound, Some(recorder), traffic)
}

/// libp2p's memory transport with the daemon's security and multiplexing (Noise,
/// Yamux): what in-memory nodes (tests, `dht-sim`, `reprovide-bench`) and the plain
/// swarms beside them connect over.
pub fn memory_transport(
    key: &identity::Keypair,
) -> Result<
    libp2p::core::transport::Boxed<(libp2p::PeerId, StreamMuxerBox)>,
    Box<dyn std::error::Error + Send + Sync>,
> {
    Ok(MemoryTransport::default()
        .upgrade(Version::V1)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed())
}

/// Builds the same node over libp2p's in-memory transport (`/memory/<port>`
/// addresses, noise and yamux as over TCP), for tests and simulations that run many
/// nodes in one process.
pub fn build_in_memory(
    key: identity::Keypair,
    config: NetworkConfig,
    inbound: mpsc::Sender<InboundRequest>,
) -> anyhow::Result<(NetworkActor, Network)> {
    let behaviour_config = config.behaviour.clone();
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(memory_transport)?
        .with_relay_client(noise::Config::new, yamux::Config::default)?
        .with_behaviour(|key, relay_client| {
            Behaviour::new(key, relay_client, &behaviour_config).map_err(behaviour_error)
        })?
        .with_swarm_config(|c| swarm_config(c, config.idle_timeout))
        .with_connection_timeout(HANDSHAKE_TIMEOUT)
        .build();
    assemble(swarm, config, inbound, None, RelayTraffic::default())
}

/// The swarm settings both builds share. Substreams are opened with multistream-select's
/// `V1Lazy`: a dialer proposing one protocol sends its first data with the proposal
/// instead of waiting a round trip for the peer to confirm it. The bytes on the wire
/// are the same as `V1`'s and a listener behaves the same, so peers that speak plain
/// `V1` interoperate; what changes is that a refused protocol shows up when the dialer
/// reads its answer (as an I/O error) rather than as a failed negotiation. Every
/// request here is a stream of its own, so over an 80 ms path this saves 80 ms on each
/// manifest, bitfield and chunk request.
fn swarm_config(config: libp2p::swarm::Config, idle_timeout: Duration) -> libp2p::swarm::Config {
    config
        .with_idle_connection_timeout(idle_timeout)
        .with_substream_upgrade_protocol_override(Version::V1Lazy)
}

/// Starts listening, dials the bootstrap nodes and wraps the swarm in its actor.
fn assemble(
    mut swarm: Swarm<Behaviour>,
    config: NetworkConfig,
    inbound: mpsc::Sender<InboundRequest>,
    metrics: Option<libp2p::metrics::Metrics>,
    traffic: RelayTraffic,
) -> anyhow::Result<(NetworkActor, Network)> {
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

    let (command_tx, commands) = mpsc::channel(COMMAND_QUEUE);
    let (events, _) = broadcast::channel(EVENT_QUEUE);
    let local_peer_id = *swarm.local_peer_id();
    let use_relays = config.dht_mode != DhtMode::Server && config.external.is_empty();
    let mut actor = NetworkActor {
        test_panic_at: config
            .test_panic_after
            .map(|after| std::time::Instant::now() + after),
        swarm,
        commands,
        events: events.clone(),
        requests: Requests::new(inbound),
        dht: Dht::new(
            config.dht_mode,
            bootstrap_peers,
            Reprovider::new(DEFAULT_REPROVIDE_INTERVAL, std::time::Instant::now()),
            &config.external,
        ),
        reach: Reach::new(
            use_relays,
            relay_candidates,
            config.behaviour.relay_server.is_some(),
        ),
        peers: Peers::default(),
        relays: RelayBook::new(
            config.behaviour.relay_server.clone(),
            traffic,
            command_tx.downgrade(),
        ),
        providers: Default::default(),
        metrics,
        catalog: Default::default(),
        lan: Default::default(),
        quic_beside_tcp: Default::default(),
    };
    actor.update_dht_mode();
    let streams = actor.swarm.behaviour().streams.new_control();
    Ok((
        actor,
        Network {
            commands: command_tx,
            events,
            local_peer_id,
            streams,
        },
    ))
}
