//! The network: one task owns the libp2p `Swarm`; everything else holds a cheap
//! [`Network`] handle and sends it [`Command`]s over a bounded channel, getting answers on
//! oneshot channels keyed by request or query id. The swarm task never touches the disk.
//!
//! Layout:
//! - `handle.rs`: the [`Network`] handle, its [`Command`]s and their errors.
//! - `build.rs`: settings ([`NetworkConfig`]) and building the swarm and its task, over
//!   TCP/QUIC ([`build`]) or in memory ([`build_in_memory`], for tests and simulations).
//! - `actor.rs`: the swarm task ([`NetworkActor`]): its loop, commands, snapshots.
//! - `behaviour.rs`: what the node speaks and its limits; [`kad_behaviour`] is the one
//!   place our Kademlia is configured.
//! - `dht.rs`: Kademlia: when everything is announced again, server or client mode.
//! - `providers.rs`: provider lookups, handing callers only the providers that answer
//!   a dial in time.
//! - `known_peers.rs`: saving the routing table in the store and rejoining through it
//!   after a restart, without a bootstrap node.
//! - `providing.rs`: starting and stopping to provide a key, and carrying out what the
//!   batched reprovider asks.
//! - `reprovide/`: the batched reprovider: keys grouped by keyspace region, one
//!   exploration per region, refreshes spread over the interval; `explore.rs`: what it
//!   knows of the servers around its keys and what to look up next; `keyspace.rs`: the
//!   keyspace arithmetic both use.
//! - `add_provider.rs`: writing batches of `ADD_PROVIDER` messages to chosen servers.
//! - `announce.rs`: the keys we provide and how each announcement went.
//! - `reach.rs`: being reachable: relay reservations, AutoNAT, DCUtR, UPnP.
//! - `relays/`: relays as the operator sees them (reservations, circuits, a relay
//!   node's load) and the owner's added and dropped relays.
//! - `relay_expiry.rs`: when each relay reservation expires, read with our own
//!   `RESERVE` (a refresh) in a spawned task; `hop_stream.rs` opens its stream on the
//!   connection that holds the reservation.
//! - `relay_traffic.rs`: bytes carried through each relay, counted by the transport.
//! - `probe.rs`: one `GET_PROVIDERS` to one DHT server, for `p2pd doctor`.
//! - `requests.rs`: the transfer protocols: outbound requests in flight, inbound ones
//!   handed to the upload server.
//! - `catalog.rs`: the catalog protocol (search and browse): its codec, outbound
//!   requests, inbound ones handed to the catalog server; dials by address.
//! - `in_flight.rs`: outbound requests in flight, bounded in all and per peer (both of
//!   the above keep one).
//! - `peers.rs`: per-peer bookkeeping: connections, direct or relayed, RTT, agent.
//! - `info.rs`: what the layer reports, in domain types.
//! - `gate.rs`: connection limits, in all, per peer, per IP address and per subnet.
//! - `pending.rs`: inbound handshakes in progress, bounded and evicted to make room.
//! - `accept_rate.rs`: how fast one address, and one subnet, may open inbound connections.
//! - `secure.rs`: securing and multiplexing a TCP connection: a dialer proposes TLS alone,
//!   a listener accepts TLS or Noise; `tls.rs`: TLS 1.3 with the fastest suite for this CPU.
//! - `ping.rs`: the ping protocol, answered whatever happened to our own pings.
//! - `codec.rs`: the transfer protocols' libp2p codec.
//! - `standing.rs`: the standing protocol ("how do you see me?") on plain streams.

mod accept_rate;
mod actor;
mod add_provider;
mod announce;
pub mod behaviour;
#[cfg(test)]
mod bounds_tests;
mod build;
pub mod catalog;
#[cfg(test)]
mod catalog_tests;
pub mod codec;
mod dht;
#[cfg(test)]
mod dht_tests;
mod dial_order;
mod explore;
pub mod gate;
mod handle;
mod hop_stream;
mod in_flight;
mod info;
mod keyspace;
mod known_peers;
mod lan;
mod metrics;
mod peers;
pub mod pending;
pub mod ping;
mod probe;
mod providers;
#[cfg(test)]
mod providers_tests;
mod providing;
mod quic_beside_tcp;
mod reach;
#[cfg(test)]
mod reach_tests;
mod relay_expiry;
#[cfg(test)]
mod relay_expiry_tests;
mod relay_traffic;
mod relays;
mod reprovide;
#[cfg(test)]
mod request_tests;
mod requests;
#[cfg(test)]
mod routing_tests;
pub mod secure;
pub mod standing;
mod tcp_dial;
#[cfg(test)]
pub(crate) mod tests;
pub mod tls;

pub use actor::NetworkActor;
pub use announce::ProviderKey;
pub use behaviour::{
    kad_behaviour, Behaviour, BehaviourConfig, BehaviourEvent, Timers, KAD_PROTOCOL,
    PROVIDER_RECORD_TTL,
};
pub use build::{build, build_in_memory, memory_transport, NetworkConfig};
pub use catalog::InboundCatalogRequest;
pub use codec::Reply;
pub use gate::DEFAULT_MAX_INBOUND_PER_IP;
pub use handle::{Command, InboundRequest, Network, ProviderLookup, RequestError};
pub use info::{
    Announcement, CannotServe, ConnectionKind, DhtMode, DhtRole, KeywordAnnouncements, NatStatus,
    NetEvent, NodeInfo, PeerInfo, RelayServer,
};
pub use known_peers::{keep_known_peers, PeerAddrs};
pub use peers::{is_loopback, is_relayed, split_peer_addr};
pub use probe::{ask_providers, closest_to, ProbeError};
pub use reach::describe as describe_cannot_serve;
pub use relays::{
    relay_of, CarriedCircuit, CircuitLimit, HeldReservation, RelayChoiceError, RelayLoad,
    RelayOrigin, RelayUse, RelaysReport, ReservationState, MAX_ADDED_RELAYS,
};
pub use reprovide::{ReprovideStats, DEFAULT_REPROVIDE_INTERVAL};
