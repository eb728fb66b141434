//! What the network layer reports about itself, in domain types: the node's identity
//! and reach ([`NodeInfo`]), its connected peers ([`PeerInfo`]) and live changes
//! ([`NetEvent`]). The control API turns these into its own wire types; nothing here is
//! shaped for JSON.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};

/// How the node takes part in the DHT (the operator's choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhtMode {
    /// Server once an address that is not relayed is confirmed reachable; client before.
    Auto,
    /// Always answer DHT queries (public bootstrap nodes).
    Server,
    /// Never answer DHT queries.
    Client,
}

/// Whether the node answers DHT queries right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhtRole {
    /// It answers queries and is in others' routing tables.
    Server,
    /// It only asks.
    Client,
}

/// Whether others can reach the node directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatStatus {
    /// An address that is not relayed is confirmed reachable from outside.
    Public,
    /// No such address (yet): others reach it only through relays or its own dials.
    Private,
}

/// How we are connected to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionKind {
    /// At least one connection goes straight to the peer.
    Direct,
    /// Every connection goes through a relay.
    Relayed,
}

/// The node's view of itself.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Our peer id.
    pub peer_id: PeerId,
    /// Addresses we listen on, each ending in `/p2p/<peer id>`.
    pub listen_addrs: Vec<Multiaddr>,
    /// Addresses confirmed reachable from outside, each ending in `/p2p/<peer id>`.
    pub external_addrs: Vec<Multiaddr>,
    /// Whether an address that is not relayed is confirmed.
    pub nat_status: NatStatus,
    /// Whether we answer DHT queries now.
    pub dht_role: DhtRole,
    /// Number of connected peers.
    pub connected_peers: usize,
    /// Peers in the DHT routing table.
    pub routing_table_peers: usize,
    /// Files we announce as provider.
    pub provided_files: usize,
    /// Our `/p2p-circuit` addresses: relays holding a reservation for us.
    pub relay_reservations: Vec<Multiaddr>,
    /// Provider announcements (DHT `ADD_PROVIDER` rounds) started since the daemon
    /// started: one per file per round, never one per chunk.
    pub provider_announcements: u64,
}

/// One connected peer.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The peer.
    pub peer_id: PeerId,
    /// Remote addresses of our connections to it.
    pub addrs: Vec<Multiaddr>,
    /// Direct or relayed.
    pub connection: ConnectionKind,
    /// Last measured round-trip time.
    pub rtt: Option<Duration>,
    /// What software it runs (identify's agent string).
    pub agent: Option<String>,
}

/// What changed in the network, for live views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// A peer connected (its first connection).
    PeerConnected(PeerId),
    /// The last connection to a peer closed.
    PeerDisconnected(PeerId),
    /// An address of ours was confirmed reachable from outside.
    ExternalAddressConfirmed(Multiaddr),
}
