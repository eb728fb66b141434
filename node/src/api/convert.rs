//! The API's wire types for what the network layer reports (`node` in
//! `GET /api/status`, `GET /api/peers`, network events), and their conversion from the
//! network's domain types. Ids and addresses become strings and durations milliseconds
//! here, at the edge, and nowhere below.

use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::network::{
    self, describe_cannot_serve, ConnectionKind, DhtRole, NatStatus, RelayServer,
};

/// The node's view of itself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    /// Provided files whose last announcement reached no DHT server.
    #[serde(default)]
    pub unannounced_files: usize,
    /// Provider lookups (DHT `GET_PROVIDERS` queries) started since the daemon started:
    /// a file download makes one unless it was given sources (a folder's files are).
    #[serde(default)]
    pub provider_lookups: u64,
    /// Why we are a DHT client, while we are one (e.g. `no confirmed public address`).
    #[serde(default)]
    pub dht_client_reason: Option<String>,
    /// `off` (not asked for), `serving`, or `disabled` (asked for, see the reason).
    #[serde(default)]
    pub relay_server: String,
    /// Why the relay server is disabled, with what to do about it.
    #[serde(default)]
    pub relay_server_reason: Option<String>,
}

/// How announcing one file went (`announcement` in `GET /api/files`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnnouncementInfo {
    /// When its last announcement round ended (seconds since the Unix epoch).
    pub last_announced_unix: Option<u64>,
    /// How many DHT servers that round sent the provider record to; 0 means nobody can
    /// find the file through the DHT yet.
    pub peers: Option<u32>,
    /// A round runs now.
    pub announcing: bool,
    /// After a round that reached nobody: seconds until the next one.
    pub retry_in_secs: Option<u64>,
}

/// One connected peer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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

/// What changed in the network, for live views (API events).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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

fn strings<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

impl From<network::NodeInfo> for NodeInfo {
    fn from(info: network::NodeInfo) -> Self {
        NodeInfo {
            peer_id: info.peer_id.to_string(),
            listen_addrs: strings(&info.listen_addrs),
            external_addrs: strings(&info.external_addrs),
            nat_status: match info.nat_status {
                NatStatus::Public => "public",
                NatStatus::Private => "private",
            }
            .into(),
            dht_server: info.dht_role == DhtRole::Server,
            connected_peers: info.connected_peers,
            routing_table_peers: info.routing_table_peers,
            provided_files: info.provided_files,
            relay_reservations: strings(&info.relay_reservations),
            provider_announcements: info.provider_announcements,
            unannounced_files: info.unannounced_files,
            provider_lookups: info.provider_lookups,
            dht_client_reason: info
                .dht_client_reason
                .map(|r| describe_cannot_serve(r).to_string()),
            relay_server: match info.relay_server {
                RelayServer::Off => "off",
                RelayServer::Serving => "serving",
                RelayServer::Disabled(_) => "disabled",
            }
            .into(),
            relay_server_reason: match info.relay_server {
                RelayServer::Disabled(reason) => Some(format!(
                    "{}; pass --external-addr",
                    describe_cannot_serve(reason)
                )),
                _ => None,
            },
        }
    }
}

impl From<network::Announcement> for AnnouncementInfo {
    fn from(a: network::Announcement) -> Self {
        AnnouncementInfo {
            last_announced_unix: a
                .last_announced
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
            peers: a.peers,
            announcing: a.announcing,
            retry_in_secs: a.retry_in.map(|d| d.as_secs()),
        }
    }
}

impl From<network::PeerInfo> for PeerInfo {
    fn from(info: network::PeerInfo) -> Self {
        PeerInfo {
            peer_id: info.peer_id.to_string(),
            addrs: strings(&info.addrs),
            direct: info.connection == ConnectionKind::Direct,
            rtt_ms: info.rtt.map(|d| d.as_secs_f64() * 1000.0),
            agent: info.agent,
        }
    }
}

impl From<network::NetEvent> for NetEvent {
    fn from(event: network::NetEvent) -> Self {
        match event {
            network::NetEvent::PeerConnected(peer) => NetEvent::PeerConnected {
                peer_id: peer.to_string(),
            },
            network::NetEvent::PeerDisconnected(peer) => NetEvent::PeerDisconnected {
                peer_id: peer.to_string(),
            },
            network::NetEvent::ExternalAddressConfirmed(addr) => NetEvent::ExternalAddress {
                addr: addr.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use libp2p::{Multiaddr, PeerId};
    use serde_json::json;

    use super::*;

    #[test]
    fn domain_values_become_the_documented_json() {
        let peer = PeerId::random();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let info = NodeInfo::from(network::NodeInfo {
            peer_id: peer,
            listen_addrs: vec![addr.clone()],
            external_addrs: vec![],
            nat_status: NatStatus::Public,
            dht_role: DhtRole::Server,
            connected_peers: 2,
            routing_table_peers: 3,
            provided_files: 4,
            relay_reservations: vec![],
            provider_announcements: 5,
            unannounced_files: 1,
            provider_lookups: 6,
            dht_client_reason: None,
            relay_server: RelayServer::Disabled(network::CannotServe::NoConfirmedPublicAddress),
        });
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(v["peer_id"], peer.to_string());
        assert_eq!(v["listen_addrs"], json!(["/ip4/127.0.0.1/tcp/1"]));
        assert_eq!(v["nat_status"], "public");
        assert_eq!(v["dht_server"], true);
        assert_eq!(v["relay_server"], "disabled");
        assert_eq!(
            v["relay_server_reason"],
            "no confirmed public address; pass --external-addr"
        );

        let p = PeerInfo::from(network::PeerInfo {
            peer_id: peer,
            addrs: vec![addr.clone()],
            connection: ConnectionKind::Relayed,
            rtt: Some(Duration::from_micros(1500)),
            agent: None,
        });
        assert!(!p.direct);
        assert_eq!(p.rtt_ms, Some(1.5));

        let e = serde_json::to_value(NetEvent::from(network::NetEvent::ExternalAddressConfirmed(
            addr,
        )))
        .unwrap();
        assert_eq!(
            e,
            json!({"type": "external_address", "addr": "/ip4/127.0.0.1/tcp/1"})
        );
    }
}
