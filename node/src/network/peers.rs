//! Per-peer bookkeeping: the connections to each peer (direct or relayed, and the rule
//! that a direct one replaces relayed ones), its RTT and agent, what identify tells
//! about peers, and the address helpers the rest of the layer uses.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{identify, relay, Multiaddr, PeerId};

use super::actor::NetworkActor;
use super::behaviour::KAD_PROTOCOL;
use super::info::{ConnectionKind, NetEvent, PeerInfo};
use super::ping::PingEvent;

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

/// What we know of one connected peer. An entry lives exactly as long as the peer has
/// a connection, so the map is bounded by the connection limits.
#[derive(Default)]
pub(super) struct PeerState {
    pub(super) connections: HashMap<ConnectionId, Multiaddr>,
    /// An address we dialed it at directly (usable to reach it as a relay).
    pub(super) dialed: Option<Multiaddr>,
    pub(super) rtt: Option<Duration>,
    pub(super) agent: Option<String>,
}

/// The connected peers.
#[derive(Default)]
pub(super) struct Peers {
    pub(super) by_id: HashMap<PeerId, PeerState>,
}

impl Peers {
    pub(super) fn infos(&self) -> Vec<PeerInfo> {
        let mut out: Vec<PeerInfo> = self
            .by_id
            .iter()
            .filter(|(_, s)| !s.connections.is_empty())
            .map(|(peer, state)| PeerInfo {
                peer_id: *peer,
                addrs: state.connections.values().cloned().collect(),
                connection: if state.connections.values().any(|a| !is_relayed(a)) {
                    ConnectionKind::Direct
                } else {
                    ConnectionKind::Relayed
                },
                rtt: state.rtt,
                agent: state.agent.clone(),
            })
            .collect();
        out.sort_by_key(|p| p.peer_id);
        out
    }

    pub(super) fn on_ping(&mut self, event: PingEvent) {
        match event.result {
            Ok(rtt) => {
                if let Some(state) = self.by_id.get_mut(&event.peer) {
                    state.rtt = Some(rtt);
                }
            }
            Err(e) => tracing::debug!(peer = %event.peer, "{e}"),
        }
    }

    /// Whether `connection` to `peer` is open (established and not yet reported closed).
    pub(super) fn is_open(&self, peer: &PeerId, connection: ConnectionId) -> bool {
        self.by_id
            .get(peer)
            .is_some_and(|s| s.connections.contains_key(&connection))
    }

    /// Whether we reach the peer over loopback (its loopback addresses are then usable).
    fn on_loopback(&self, peer: &PeerId) -> bool {
        self.by_id
            .get(peer)
            .is_some_and(|s| s.connections.values().any(is_loopback))
    }
}

impl NetworkActor {
    pub(super) fn on_connection_established(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        endpoint: &ConnectedPoint,
        num_established: NonZeroU32,
    ) {
        let remote = match endpoint {
            ConnectedPoint::Dialer { address, .. } => address.clone(),
            // An inbound circuit's send-back address is only `/p2p/<peer>`: name the
            // relay path instead, so that it counts as relayed.
            ConnectedPoint::Listener { local_addr, .. } if is_relayed(local_addr) => {
                local_addr.clone().with(Protocol::P2p(peer_id))
            }
            ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr.clone(),
        };
        let relayed = is_relayed(&remote);
        tracing::info!(peer = %peer_id, addr = %remote, relayed, "connection established");
        let state = self.peers.by_id.entry(peer_id).or_default();
        if !relayed {
            if let ConnectedPoint::Dialer { address, .. } = endpoint {
                let mut address = address.clone();
                if matches!(address.iter().last(), Some(Protocol::P2p(_))) {
                    address.pop();
                }
                state.dialed = Some(address);
            }
            // A direct connection replaces relayed ones to the same peer at once:
            // request-response spreads requests over all of a peer's connections, so a
            // relayed one left open would carry a share of every transfer. Requests cut
            // short by the close are retried over the direct one.
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
            // Same rule the other way round: never keep a relayed connection beside a
            // direct one.
            self.swarm.close_connection(connection_id);
        }
        // And a direct QUIC connection beside a direct TCP one closes after a grace
        // (quic_beside_tcp.rs).
        self.note_quic_beside_tcp(peer_id);
        if num_established.get() == 1 {
            let _ = self.events.send(NetEvent::PeerConnected(peer_id));
            self.on_first_connection(peer_id);
        }
    }

    pub(super) fn on_connection_closed(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        num_established: u32,
    ) {
        if let Some(state) = self.peers.by_id.get_mut(&peer_id) {
            state.connections.remove(&connection_id);
        }
        self.forget_quic_beside_tcp(&connection_id);
        self.requests.on_connection_closed(connection_id);
        if num_established == 0 {
            self.peers.by_id.remove(&peer_id);
            let _ = self.events.send(NetEvent::PeerDisconnected(peer_id));
        }
    }

    pub(super) fn on_identify_event(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        self.dial_tcp_beside_quic(peer_id, &info.listen_addrs);
        let mut dialed = None;
        if let Some(state) = self.peers.by_id.get_mut(&peer_id) {
            state.agent = Some(info.agent_version.clone());
            dialed = state.dialed.clone();
        }
        if info.protocols.contains(&relay::HOP_PROTOCOL_NAME) {
            if let Some(addr) = dialed.clone() {
                self.reach.add_relay_candidate(peer_id, addr);
            }
        }
        // Every DHT server we meet enters our routing table here, with its listen
        // addresses and the one we dialed it at (Kademlia's own inserts are off, see
        // `behaviour::kad_behaviour`).
        if info.protocols.contains(&KAD_PROTOCOL) {
            // A loopback address of a peer we reach over a network is useless.
            let on_loopback = self.peers.on_loopback(&peer_id);
            for addr in info.listen_addrs.into_iter().chain(dialed) {
                if on_loopback || !is_loopback(&addr) {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
        }
    }
}
