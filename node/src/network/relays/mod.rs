//! Relays as the operator sees them (`p2pd relays`): on the client side, each relay we
//! hold or seek a reservation on (how the reservation stands, when it was accepted,
//! the circuit limits it announced, the circuits through it); on a relay node, what it
//! carries against its limits (reservations and circuits held now, and in all). Also
//! the owner's own choices: relays added by hand are held even while the node is
//! reachable directly, and dropped ones are not picked again until added.
//!
//! Everything here is driven by the swarm task's events (relay client and server
//! events, connections, listeners); `reach.rs` decides when to reserve and
//! `relay_expiry.rs` reads when each reservation expires.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{relay, Multiaddr, PeerId};

use super::behaviour::{RelayLimits, RELAY_RESERVATION_DURATION};
use super::info::RelayServer;
use super::relay_expiry::ExpiryReports;
use super::relay_traffic::RelayTraffic;

/// Relays the owner may add by hand.
pub const MAX_ADDED_RELAYS: usize = 8;
/// Relays we keep counters for (those we use, and those a circuit went through).
const MAX_TRACKED_RELAYS: usize = 128;

/// Where a relay came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayOrigin {
    /// `--relay` (or the configuration file).
    Configured,
    /// A peer we met that offers relaying (a bootstrap node, say).
    Found,
    /// Added by the owner (`p2pd relays add`); held even while reachable directly.
    Added,
    /// None of those: only circuits went through it.
    Other,
}

/// How our reservation on a relay stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationState {
    /// None wanted now (the node is reachable directly, or enough relays are held).
    Idle,
    /// Asked for, no answer yet.
    Requested,
    /// Held (libp2p renews it before it expires).
    Accepted,
    /// The last request failed or the reservation ended; asked again later.
    Failed,
}

/// The limits a relay puts on each circuit through it, as it announced them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitLimit {
    /// Longest life of a circuit.
    pub duration: Option<Duration>,
    /// Most bytes through a circuit.
    pub bytes: Option<u64>,
}

/// One relay, from the client side.
#[derive(Debug, Clone)]
pub struct RelayUse {
    /// The relay.
    pub peer: PeerId,
    /// A direct address of it, if we know one.
    pub addr: Option<Multiaddr>,
    /// Where it came from.
    pub origin: RelayOrigin,
    /// Our reservation.
    pub reservation: ReservationState,
    /// Why the last request failed or the reservation ended.
    pub error: Option<String>,
    /// When the current reservation was first accepted.
    pub accepted_at: Option<SystemTime>,
    /// Renewals of the current reservation since.
    pub renewals: u32,
    /// When the current reservation expires, as the relay last answered our own
    /// `RESERVE` (renewals move it on).
    pub expires_at: Option<SystemTime>,
    /// Why the expiry is not known, when the last attempt to read it failed.
    pub expiry_error: Option<String>,
    /// The circuit limits it announced with the reservation.
    pub circuit_limit: Option<CircuitLimit>,
    /// Our `/p2p-circuit` addresses on it.
    pub circuit_addrs: Vec<Multiaddr>,
    /// Connections through it now (either way).
    pub circuits_open: usize,
    /// Connections through it since the daemon started.
    pub circuits_total: u64,
    /// Bytes our streams through it sent since the daemon started.
    pub bytes_sent: u64,
    /// Bytes our streams through it received since the daemon started.
    pub bytes_received: u64,
}

/// One circuit a relay node carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedCircuit {
    /// Who opened it.
    pub src: PeerId,
    /// Whom it reaches (the reservation holder).
    pub dst: PeerId,
    /// Since when.
    pub since: SystemTime,
}

/// A reservation a relay node holds for a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldReservation {
    /// The peer it is for.
    pub peer: PeerId,
    /// When it was last accepted (taken or renewed).
    pub accepted_at: SystemTime,
    /// When it expires unless renewed: `accepted_at` plus the reservation duration.
    pub expires_at: SystemTime,
}

/// What a relay node carries, against its limits.
#[derive(Debug, Clone)]
pub struct RelayLoad {
    /// Whether the relay server runs.
    pub state: RelayServer,
    /// Peers holding a reservation now.
    pub reservations: usize,
    /// Those reservations, sorted by peer id.
    pub held: Vec<HeldReservation>,
    /// How long a reservation lasts unless renewed.
    pub reservation_duration: Duration,
    /// Most reservations at once.
    pub max_reservations: usize,
    /// Circuits open now.
    pub circuits: Vec<CarriedCircuit>,
    /// Most circuits at once.
    pub max_circuits: usize,
    /// Longest life of one circuit.
    pub max_circuit_duration: Duration,
    /// Most bytes through one circuit (0: no limit).
    pub max_circuit_bytes: u64,
    /// Reservation requests accepted (renewals included) since the daemon started.
    pub reservations_accepted: u64,
    /// Of those, renewals (refreshes on a connection that already held one).
    pub reservations_renewed: u64,
    /// Reservation requests refused.
    pub reservations_denied: u64,
    /// Circuits accepted since the daemon started.
    pub circuits_accepted: u64,
    /// Circuit requests refused.
    pub circuits_denied: u64,
}

/// `p2pd relays`: the relays in use and, on a relay node, its load.
#[derive(Debug, Clone)]
pub struct RelaysReport {
    /// Relays we hold, seek or route through, sorted by peer id.
    pub relays: Vec<RelayUse>,
    /// The relay server's load, if this node was asked to relay.
    pub server: Option<RelayLoad>,
}

/// Why a relay could not be added or dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayChoiceError {
    /// [`MAX_ADDED_RELAYS`] are added already.
    #[error("at most {MAX_ADDED_RELAYS} relays can be added; drop one first")]
    TooMany,
    /// The address names this node.
    #[error("that is this node's own address")]
    Ourselves,
    /// No relay with that peer id is known.
    #[error("no such relay")]
    Unknown,
    /// The network task is gone.
    #[error("network task stopped")]
    Stopped,
}

/// What the client side keeps per relay, beyond what `Reach` keeps.
#[derive(Debug, Clone, Default)]
struct ClientSide {
    accepted: bool,
    accepted_at: Option<SystemTime>,
    renewals: u32,
    expires_at: Option<SystemTime>,
    expiry_error: Option<String>,
    limit: Option<CircuitLimit>,
    error: Option<String>,
    circuits_total: u64,
}

/// The relay server's counters.
#[derive(Debug, Clone)]
struct ServerSide {
    limits: RelayLimits,
    /// Peers holding a reservation, and when it was last accepted.
    holders: HashMap<PeerId, SystemTime>,
    circuits: Vec<CarriedCircuit>,
    reservations_accepted: u64,
    reservations_renewed: u64,
    reservations_denied: u64,
    circuits_accepted: u64,
    circuits_denied: u64,
}

/// The relay bookkeeping of the swarm task.
#[derive(Debug, Default)]
pub(super) struct RelayBook {
    client: HashMap<PeerId, ClientSide>,
    server: Option<ServerSide>,
    /// Relayed connections open now, and the relay each goes through.
    circuits_open: HashMap<ConnectionId, PeerId>,
    /// Bytes through each relay, counted by the transport.
    traffic: RelayTraffic,
    /// Relays whose reservation expiry is to be read, and from when.
    pub(super) expiry_wanted: HashMap<PeerId, std::time::Instant>,
    /// Each peer's direct connections, in the order they were established (the relay
    /// client reserves on the first).
    direct_connections: HashMap<PeerId, Vec<ConnectionId>>,
    /// Relays an expiry probe runs for now.
    pub(super) expiry_in_flight: HashSet<PeerId>,
    /// Where expiry probes report (absent in a book made without a network task).
    pub(super) reports: Option<ExpiryReports>,
}

impl RelayBook {
    pub(super) fn new(
        server: Option<RelayLimits>,
        traffic: RelayTraffic,
        reports: ExpiryReports,
    ) -> Self {
        RelayBook {
            traffic,
            reports: Some(reports),
            server: server.map(|limits| ServerSide {
                holders: HashMap::new(),
                circuits: Vec::new(),
                limits,
                reservations_accepted: 0,
                reservations_renewed: 0,
                reservations_denied: 0,
                circuits_accepted: 0,
                circuits_denied: 0,
            }),
            ..RelayBook::default()
        }
    }

    /// Whether `peer` is a relay we hold, seek or route through, or holds a reservation
    /// or a circuit through us: its connections carry those and must stay open.
    pub(super) fn relays_with(&self, peer: &PeerId) -> bool {
        self.client.contains_key(peer)
            || self.server.as_ref().is_some_and(|server| {
                server.holders.contains_key(peer)
                    || server
                        .circuits
                        .iter()
                        .any(|c| c.src == *peer || c.dst == *peer)
            })
    }

    fn client_mut(&mut self, relay: PeerId) -> Option<&mut ClientSide> {
        if !self.client.contains_key(&relay) && self.client.len() >= MAX_TRACKED_RELAYS {
            return None;
        }
        Some(self.client.entry(relay).or_default())
    }

    /// A connection opened: if it goes through a relay, count it there; if it is
    /// direct, remember its place among the peer's direct connections.
    pub(super) fn on_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        endpoint: &ConnectedPoint,
    ) {
        if !endpoint.is_relayed() {
            // Bounded by the connection limits, like the swarm's own bookkeeping.
            self.direct_connections.entry(peer).or_default().push(id);
        }
        let addr = match endpoint {
            ConnectedPoint::Dialer { address, .. } => address,
            ConnectedPoint::Listener { local_addr, .. } => local_addr,
        };
        if let Some(relay) = relay_of(addr) {
            if let Some(side) = self.client_mut(relay) {
                side.circuits_total += 1;
                self.circuits_open.insert(id, relay);
            }
        }
    }

    pub(super) fn on_connection_closed(&mut self, id: ConnectionId, peer: PeerId) {
        self.circuits_open.remove(&id);
        if let Some(connections) = self.direct_connections.get_mut(&peer) {
            connections.retain(|c| *c != id);
            if connections.is_empty() {
                self.direct_connections.remove(&peer);
            }
        }
    }

    /// The connection our accepted reservation on `relay` lives on: the first direct
    /// connection still open (libp2p's relay client reserves on the first).
    pub(super) fn reservation_connection(&self, relay: &PeerId) -> Option<ConnectionId> {
        if !self.client.get(relay).is_some_and(|side| side.accepted) {
            return None;
        }
        self.direct_connections.get(relay)?.first().copied()
    }

    /// A relay listener closed: the reservation (or its request) ended, for `reason`.
    pub(super) fn on_reservation_ended(&mut self, relay: PeerId, reason: Option<String>) {
        self.expiry_wanted.remove(&relay);
        if let Some(side) = self.client.get_mut(&relay) {
            side.accepted = false;
            side.accepted_at = None;
            side.renewals = 0;
            side.expires_at = None;
            side.expiry_error = None;
            side.error = Some(reason.unwrap_or_else(|| "the reservation ended".to_string()));
        }
    }

    /// An expiry probe ended: the expiry the relay named, or why none was read.
    pub(super) fn on_expiry_read(&mut self, relay: PeerId, expiry: Result<SystemTime, String>) {
        self.expiry_in_flight.remove(&relay);
        let Some(side) = self.client.get_mut(&relay).filter(|side| side.accepted) else {
            return;
        };
        match expiry {
            Ok(at) => {
                side.expires_at = Some(at);
                side.expiry_error = None;
            }
            Err(why) => {
                // An expiry read before this renewal would name too early a time.
                side.expires_at = None;
                side.expiry_error = Some(why);
            }
        }
    }

    /// We ask a relay for a reservation (again).
    pub(super) fn on_reservation_requested(&mut self, relay: PeerId) {
        if let Some(side) = self.client_mut(relay) {
            side.accepted = false;
        }
    }

    pub(super) fn on_client_event(&mut self, event: relay::client::Event) {
        if let relay::client::Event::ReservationReqAccepted {
            relay_peer_id,
            renewal,
            limit,
        } = event
        {
            if !renewal {
                tracing::info!(relay = %relay_peer_id, "relay reservation accepted");
            }
            if let Some(side) = self.client_mut(relay_peer_id) {
                if side.accepted && renewal {
                    side.renewals += 1;
                } else {
                    side.accepted_at = Some(SystemTime::now());
                    side.renewals = 0;
                }
                side.accepted = true;
                side.error = None;
                side.limit = limit.map(|l| CircuitLimit {
                    duration: l.duration(),
                    bytes: l.data_in_bytes(),
                });
            }
        }
    }

    pub(super) fn on_server_event(&mut self, event: relay::Event) {
        tracing::debug!(?event, "relay server");
        let Some(server) = self.server.as_mut() else {
            return;
        };
        match event {
            relay::Event::ReservationReqAccepted {
                src_peer_id,
                renewed,
            } => {
                server.reservations_accepted += 1;
                server.reservations_renewed += u64::from(renewed);
                if server.holders.contains_key(&src_peer_id)
                    || server.holders.len() < server.limits.max_reservations
                {
                    server.holders.insert(src_peer_id, SystemTime::now());
                }
            }
            relay::Event::ReservationReqDenied { .. } => server.reservations_denied += 1,
            relay::Event::ReservationClosed { src_peer_id }
            | relay::Event::ReservationTimedOut { src_peer_id } => {
                server.holders.remove(&src_peer_id);
            }
            relay::Event::CircuitReqAccepted {
                src_peer_id,
                dst_peer_id,
            } => {
                server.circuits_accepted += 1;
                if server.circuits.len() < server.limits.max_circuits {
                    server.circuits.push(CarriedCircuit {
                        src: src_peer_id,
                        dst: dst_peer_id,
                        since: SystemTime::now(),
                    });
                }
            }
            relay::Event::CircuitReqDenied { .. } => server.circuits_denied += 1,
            relay::Event::CircuitClosed {
                src_peer_id,
                dst_peer_id,
                ..
            } => {
                if let Some(i) = server
                    .circuits
                    .iter()
                    .position(|c| c.src == src_peer_id && c.dst == dst_peer_id)
                {
                    server.circuits.remove(i);
                }
            }
            _ => {}
        }
    }
}

/// The reservations a relay node holds, sorted by peer, with the expiry each has
/// unless renewed.
fn held_reservations(holders: &HashMap<PeerId, SystemTime>) -> Vec<HeldReservation> {
    let mut held: Vec<HeldReservation> = (holders.iter())
        .map(|(peer, accepted_at)| HeldReservation {
            peer: *peer,
            accepted_at: *accepted_at,
            expires_at: *accepted_at + RELAY_RESERVATION_DURATION,
        })
        .collect();
    held.sort_by_key(|h| h.peer);
    held
}

/// The relay a relayed address goes through: the peer id just before `/p2p-circuit`.
pub fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut last_peer = None;
    for protocol in addr.iter() {
        match protocol {
            Protocol::P2p(peer) => last_peer = Some(peer),
            Protocol::P2pCircuit => return last_peer,
            _ => {}
        }
    }
    None
}

mod operator;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_that_relay_for_us_or_through_us_are_told_apart_from_others() {
        let (reports, _rx) = tokio::sync::mpsc::channel(1);
        let limits = RelayLimits {
            max_reservations: 8,
            max_circuits: 8,
            max_circuit_duration: Duration::from_secs(120),
            max_circuit_bytes: 0,
        };
        let mut book = RelayBook::new(Some(limits), RelayTraffic::default(), reports.downgrade());
        let [our_relay, holder, src, dst, stranger] = [(); 5].map(|_| PeerId::random());
        for peer in [our_relay, holder, src, dst, stranger] {
            assert!(!book.relays_with(&peer), "nothing relayed yet");
        }
        book.on_reservation_requested(our_relay);
        book.on_server_event(relay::Event::ReservationReqAccepted {
            src_peer_id: holder,
            renewed: false,
        });
        book.on_server_event(relay::Event::CircuitReqAccepted {
            src_peer_id: src,
            dst_peer_id: dst,
        });
        for peer in [our_relay, holder, src, dst] {
            assert!(book.relays_with(&peer));
        }
        assert!(!book.relays_with(&stranger));
        book.on_server_event(relay::Event::ReservationClosed {
            src_peer_id: holder,
        });
        assert!(!book.relays_with(&holder), "its reservation ended");
    }
}
