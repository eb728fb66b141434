//! What the network layer reports about itself, in domain types: the node's identity
//! and reach ([`NodeInfo`]), its connected peers ([`PeerInfo`]) and live changes
//! ([`NetEvent`]). The control API turns these into its own wire types; nothing here is
//! shaped for JSON.

use std::time::{Duration, SystemTime};

use dht_proto::Cid;
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

/// Why the node does not serve others in some role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannotServe {
    /// No address that is not relayed is confirmed reachable from outside (AutoNAT has
    /// confirmed none and none was given with `--external-addr`).
    NoConfirmedPublicAddress,
    /// The operator chose it (`--dht-mode client`).
    ClientModeChosen,
}

/// The relay server's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayServer {
    /// Not asked for (no `--relay-server`, not a `--dht-mode server` node).
    Off,
    /// Accepting reservations and circuits.
    Serving,
    /// Asked for, but libp2p keeps it disabled.
    Disabled(CannotServe),
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
    /// Why we do not, while we are a DHT client.
    pub dht_client_reason: Option<CannotServe>,
    /// Whether we relay for peers behind NAT, and why not if asked to and we do not.
    pub relay_server: RelayServer,
    /// Number of connected peers.
    pub connected_peers: usize,
    /// Peers in the DHT routing table.
    pub routing_table_peers: usize,
    /// Files we announce as provider.
    pub provided_files: usize,
    /// Our `/p2p-circuit` addresses: relays holding a reservation for us.
    pub relay_reservations: Vec<Multiaddr>,
    /// Provider announcements (DHT `ADD_PROVIDER` rounds) started since the daemon
    /// started: one per file and one per keyword key per round, never one per chunk.
    pub provider_announcements: u64,
    /// Provided files whose last announcement reached no DHT server (they cannot be
    /// found through the DHT until a retry reaches one).
    pub unannounced_files: usize,
    /// Provider lookups (DHT `GET_PROVIDERS` queries) started since the daemon started.
    pub provider_lookups: u64,
}

/// How announcing one provided file went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The file.
    pub cid: Cid,
    /// When its last announcement round ended (`None`: none has ended yet).
    pub last_announced: Option<SystemTime>,
    /// How many DHT servers that round sent the provider record to (`ADD_PROVIDER` has
    /// no answer: sent is all anyone can know). Zero means nobody can find the file yet.
    pub peers: Option<u32>,
    /// A round runs now.
    pub announcing: bool,
    /// After a round that reached nobody: when the next one starts.
    pub retry_in: Option<Duration>,
}

/// How the keyword keys we provide (one per distinct word of the catalog's listed
/// names) stand: how many there are, and how many a finished round sent to at least one
/// DHT server, or to none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeywordAnnouncements {
    /// Keyword keys provided.
    pub provided: usize,
    /// Those whose last finished round reached a DHT server.
    pub announced: usize,
    /// Those whose last finished round reached none (retried).
    pub unannounced: usize,
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
