//! The composed libp2p behaviour of a p2pd node and how each part is configured.

use std::time::Duration;

use dht_proto::message::{
    CHUNK_PROTOCOL, MANIFEST_PROTOCOL, MAX_CHUNK_RESPONSE_LEN, MAX_MANIFEST_RESPONSE_LEN,
};
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    autonat, dcutr, identify, identity, kad, mdns, memory_connection_limits, relay,
    request_response, upnp, PeerId, StreamProtocol,
};

use super::add_provider::{add_provider_behaviour, AddProviderCodec};
use super::catalog::{catalog_behaviour, CatalogCodec};
use super::codec::ChunkCodec;
use super::gate::{ConnectionGate, GateLimits};
use super::hop_stream::HopStreams;
use super::ping::{Ping, PingConfig};
use chunk_store::BufferPool;

/// Kademlia protocol name: our own DHT, not the IPFS one.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/p2pd/kad/1.0.0");
/// Identify protocol version string.
pub const IDENTIFY_PROTOCOL: &str = "/p2pd/id/1.0.0";
/// How often AutoNAT tests the address candidates not tested yet (libp2p's default is
/// 5 s, and the first test waits that long). A provider record carries only confirmed
/// addresses, so until the first test succeeds the files a new node adds cannot be
/// found; a tick with nothing left to test costs nothing.
const AUTONAT_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Tunables of the behaviour that come from the command line.
#[derive(Debug, Clone)]
pub struct BehaviourConfig {
    /// The owner's display name, sent to peers in the identify agent string.
    pub display_name: Option<String>,
    /// Run mDNS discovery on the LAN.
    pub mdns: bool,
    /// Most provider keys the DHT store keeps (ours and other peers').
    pub max_provider_keys: usize,
    /// Most established connections.
    pub max_connections: u32,
    /// Most inbound connections from one IP address.
    pub max_inbound_per_ip: u32,
    /// Timeout of one chunk request (request and response together).
    pub request_timeout: Duration,
    /// Act as a relay for peers behind NAT, with these limits.
    pub relay_server: Option<RelayLimits>,
    /// Ask the router for a port mapping with UPnP.
    pub upnp: bool,
    /// Where received chunks' buffers come from (the store's pool).
    pub chunk_buffers: BufferPool,
    /// The timers that run beside churn ([`Timers::default`] is the daemon's).
    pub timers: Timers,
}

/// The behaviour's wall-clock timers that run beside churn: Kademlia's and the
/// liveness ping's. The daemon runs with [`Timers::default`]; a simulation that runs
/// slower than real time stretches them with [`Timers::scaled`] so that they keep
/// their proportion to its simulated time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timers {
    /// A Kademlia query that has not finished by then ends with what it found.
    pub query_timeout: Duration,
    /// Interval of the routing-table refresh (Kademlia's bootstrap).
    pub periodic_bootstrap: Duration,
    /// How often each connection is pinged (its round-trip time, and proof it lives).
    pub ping_interval: Duration,
    /// A ping unanswered for this long fails (and the connection with it).
    pub ping_timeout: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            query_timeout: Duration::from_secs(30),
            periodic_bootstrap: Duration::from_secs(5 * 60),
            ping_interval: Duration::from_secs(15),
            ping_timeout: Duration::from_secs(20),
        }
    }
}

impl Timers {
    /// The daemon's timers, each `factor` times as long.
    pub fn scaled(factor: f64) -> Self {
        let daemon = Timers::default();
        Timers {
            query_timeout: daemon.query_timeout.mul_f64(factor),
            periodic_bootstrap: daemon.periodic_bootstrap.mul_f64(factor),
            ping_interval: daemon.ping_interval.mul_f64(factor),
            ping_timeout: daemon.ping_timeout.mul_f64(factor),
        }
    }
}

/// Limits of the relay server. libp2p's defaults end a circuit after 2 minutes or
/// 128 KiB, which would cut a relayed file transfer short; ours let it finish while
/// bounding how many peers can lean on the relay at once.
#[derive(Debug, Clone)]
pub struct RelayLimits {
    /// Reservations held at once.
    pub max_reservations: usize,
    /// Circuits open at once.
    pub max_circuits: usize,
    /// Longest life of one circuit.
    pub max_circuit_duration: Duration,
    /// Most bytes through one circuit (0: no limit).
    pub max_circuit_bytes: u64,
}

/// How long a reservation on our relay server lasts unless the peer renews it
/// (libp2p-relay's default; its client renews well before).
pub const RELAY_RESERVATION_DURATION: Duration = Duration::from_secs(3600);

/// `p2pd/<version>`, followed by ` (<display name>)` when the owner set one.
pub fn agent_version(display_name: Option<&str>) -> String {
    let version = env!("CARGO_PKG_VERSION");
    match display_name {
        Some(name) => format!("p2pd/{version} ({name})"),
        None => format!("p2pd/{version}"),
    }
}

/// How long a DHT server keeps a provider record it was sent (libp2p-kad's default,
/// and go-libp2p's): long enough to outlive two missed refreshes of the reprovider,
/// short enough that records of a node gone for good disappear within two days.
pub const PROVIDER_RECORD_TTL: Duration = Duration::from_secs(48 * 3600);

/// The Kademlia behaviour exactly as a p2pd node runs it: our protocol name, our record
/// store limits (at most `max_provider_keys` provider keys, ours and other peers'),
/// timeouts and record lifetimes. libp2p-kad's own republication of our provider
/// records (one lookup per key every 12 h) is off: the batched reprovider
/// (`reprovide/`) announces them instead. It works over any transport; the daemon and
/// anything that simulates it (tests, `dht-sim`) build Kademlia only through here.
pub fn kad_behaviour(
    peer_id: PeerId,
    max_provider_keys: usize,
    timers: Timers,
) -> kad::Behaviour<MemoryStore> {
    let store = MemoryStore::with_config(
        peer_id,
        MemoryStoreConfig {
            max_records: 4096,
            max_value_bytes: 65 * 1024,
            max_providers_per_key: 20,
            max_provided_keys: max_provider_keys,
        },
    );
    let mut config = kad::Config::new(KAD_PROTOCOL);
    config
        .set_query_timeout(timers.query_timeout)
        .set_provider_record_ttl(Some(PROVIDER_RECORD_TTL))
        .set_provider_publication_interval(None)
        .set_periodic_bootstrap_interval(Some(timers.periodic_bootstrap))
        // Left to itself, libp2p-kad takes any inbound Kademlia stream as proof that the
        // remote serves the protocol, and a DHT client that queries us over a connection
        // we dialed would enter the routing table. Peers enter it only when identify
        // says they serve it (`peers::on_identify_event`), or as bootstrap and saved
        // peers.
        .set_kbucket_inserts(kad::BucketInserts::Manual);
    kad::Behaviour::with_config(peer_id, store, config)
}

/// Everything a p2pd node speaks.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub(crate) gate: ConnectionGate,
    pub(crate) memory: memory_connection_limits::Behaviour,
    pub(crate) kad: kad::Behaviour<MemoryStore>,
    pub(crate) provide: request_response::Behaviour<AddProviderCodec>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: Ping,
    pub(crate) chunk: request_response::Behaviour<ChunkCodec>,
    pub(crate) manifest: request_response::Behaviour<ChunkCodec>,
    pub(crate) catalog: request_response::Behaviour<CatalogCodec>,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) autonat_client: autonat::v2::client::Behaviour,
    pub(crate) autonat_server: autonat::v2::server::Behaviour,
    pub(crate) relay_client: relay::client::Behaviour,
    pub(crate) relay_server: Toggle<relay::Behaviour>,
    pub(crate) dcutr: dcutr::Behaviour,
    pub(crate) upnp: Toggle<upnp::tokio::Behaviour>,
    /// Plain streams for protocols served outside the swarm task (share access).
    pub(crate) streams: libp2p_stream::Behaviour,
    /// Relay hop streams on a chosen connection (reading reservation expiries).
    pub(crate) hop_streams: HopStreams,
}

impl Behaviour {
    /// Builds the behaviour for `key`; `relay_client` comes from the transport builder.
    pub fn new(
        key: &identity::Keypair,
        relay_client: relay::client::Behaviour,
        config: &BehaviourConfig,
    ) -> anyhow::Result<Self> {
        let peer_id = key.public().to_peer_id();

        let kad = kad_behaviour(peer_id, config.max_provider_keys, config.timers);

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.to_string(), key.public())
                .with_agent_version(agent_version(config.display_name.as_deref()))
                .with_cache_size(256),
        );

        let transfer_protocol = |name: &'static str, max_response: usize| {
            request_response::Behaviour::with_codec(
                ChunkCodec {
                    max_response,
                    buffers: config.chunk_buffers.clone(),
                },
                [(
                    StreamProtocol::new(name),
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default()
                    .with_request_timeout(config.request_timeout)
                    .with_max_concurrent_streams(dht_proto::message::MAX_CONCURRENT_STREAMS),
            )
        };
        let chunk = transfer_protocol(CHUNK_PROTOCOL, MAX_CHUNK_RESPONSE_LEN);
        let manifest = transfer_protocol(MANIFEST_PROTOCOL, MAX_MANIFEST_RESPONSE_LEN);

        let mdns = if config.mdns {
            Some(mdns::tokio::Behaviour::new(
                mdns::Config::default(),
                peer_id,
            )?)
        } else {
            None
        };

        Ok(Behaviour {
            gate: ConnectionGate::new(
                GateLimits::with_max_established(config.max_connections)
                    .with_inbound_per_ip(config.max_inbound_per_ip),
            ),
            memory: memory_connection_limits::Behaviour::with_max_percentage(0.9),
            kad,
            provide: add_provider_behaviour(),
            identify,
            ping: Ping::new(PingConfig {
                interval: config.timers.ping_interval,
                timeout: config.timers.ping_timeout,
                answer: true,
            }),
            chunk,
            manifest,
            catalog: catalog_behaviour(),
            mdns: mdns.into(),
            // Candidates come from identify's observed addresses.
            autonat_client: autonat::v2::client::Behaviour::new(
                rand_autonat::make_rng::<rand_autonat::rngs::StdRng>(),
                autonat::v2::client::Config::default().with_probe_interval(AUTONAT_PROBE_INTERVAL),
            ),
            autonat_server: autonat::v2::server::Behaviour::default(),
            relay_client,
            relay_server: config
                .relay_server
                .as_ref()
                .map(|limits| {
                    relay::Behaviour::new(
                        peer_id,
                        relay::Config {
                            max_reservations: limits.max_reservations,
                            max_reservations_per_peer: 4,
                            reservation_duration: RELAY_RESERVATION_DURATION,
                            max_circuits: limits.max_circuits,
                            max_circuits_per_peer: 8,
                            max_circuit_duration: limits.max_circuit_duration,
                            max_circuit_bytes: limits.max_circuit_bytes,
                            ..relay::Config::default()
                        },
                    )
                })
                .into(),
            dcutr: dcutr::Behaviour::new(peer_id),
            upnp: config.upnp.then(upnp::tokio::Behaviour::default).into(),
            streams: libp2p_stream::Behaviour::new(),
            hop_streams: HopStreams::default(),
        })
    }
}
