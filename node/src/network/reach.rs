//! Being reachable from outside: which peers can relay for us, the relay reservations a
//! node behind NAT keeps (and gives back once it is reachable directly), our circuit
//! addresses, and what DCUtR and the relay client report.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{dcutr, kad, Multiaddr, PeerId};

use super::actor::NetworkActor;
use super::info::{CannotServe, DhtMode, RelayServer};
use super::peers::is_relayed;

/// Relays we keep a reservation on while not publicly reachable.
const MAX_RELAYS: usize = 2;
/// Pause before asking a relay again after a reservation failed or ended.
const RESERVATION_RETRY: Duration = Duration::from_secs(10);
/// Relays found (by identify) that we remember; configured ones (`--relay`) come on top.
pub(super) const MAX_FOUND_RELAYS: usize = 32;
/// Relays the owner dropped that we remember (so that identify does not bring them
/// back); the oldest is forgotten first.
const MAX_DROPPED_RELAYS: usize = 64;

/// The order in which relay candidates are asked for a reservation: the owner's added
/// relays first, then the others by their distance from us in Kademlia's keyspace. The
/// choice is stable for one node, and it differs from node to node: ordered by peer id
/// alone, every node behind NAT that knows the same relays picked the same two, and
/// those ran out of circuit slots (300 simulated nodes, 1,000 provider lookups a minute:
/// 188 circuits refused with "resource limit exceeded", 182 of them by one relay).
pub(super) fn reservation_order(
    local: &PeerId,
    automatic: bool,
    relay: &PeerId,
) -> (bool, kad::KBucketDistance) {
    let distance = kad::KBucketKey::from(*local).distance(&kad::KBucketKey::from(*relay));
    (automatic, distance)
}

/// Relay candidates, reservations and circuit addresses.
pub(super) struct Reach {
    /// Whether to reserve relay slots when not publicly reachable.
    pub(super) use_relays: bool,
    /// Peers that offer relaying, and a direct address of each: the configured ones and
    /// at most [`MAX_FOUND_RELAYS`] found ones.
    pub(super) relay_candidates: HashMap<PeerId, Multiaddr>,
    /// The configured relays (forgotten only when the owner drops one).
    configured_relays: HashSet<PeerId>,
    /// Relays the owner added (`p2pd relays add`): held even while reachable directly.
    pub(super) pinned: HashSet<PeerId>,
    /// Relays the owner dropped, oldest first: not picked again until added.
    dropped: VecDeque<PeerId>,
    /// Relay listeners (one per relay we asked for a reservation).
    pub(super) reservations: HashMap<PeerId, ListenerId>,
    /// When a relay may be asked again; entries go when that time has passed.
    pub(super) reservation_retry: HashMap<PeerId, Instant>,
    /// Our circuit addresses, by the listener that got them.
    pub(super) circuit_addrs: HashMap<ListenerId, Vec<Multiaddr>>,
    /// Whether the relay server was asked for.
    pub(super) relay_server: bool,
    /// What we last told the operator about serving (relay, DHT), to log changes only.
    pub(super) told: Option<(RelayServer, Option<CannotServe>)>,
}

impl Reach {
    pub(super) fn new(
        use_relays: bool,
        relay_candidates: HashMap<PeerId, Multiaddr>,
        relay_server: bool,
    ) -> Self {
        Reach {
            use_relays,
            configured_relays: relay_candidates.keys().copied().collect(),
            relay_candidates,
            pinned: HashSet::new(),
            dropped: VecDeque::new(),
            reservations: HashMap::new(),
            reservation_retry: HashMap::new(),
            circuit_addrs: HashMap::new(),
            relay_server,
            told: None,
        }
    }

    /// Remembers a peer that offers relaying. When [`MAX_FOUND_RELAYS`] are known, a
    /// found one we hold no reservation on makes room (the first in peer-id order, so
    /// the choice is stable).
    pub(super) fn add_relay_candidate(&mut self, peer: PeerId, addr: Multiaddr) {
        if self.dropped.contains(&peer) {
            return;
        }
        if let Some(known) = self.relay_candidates.get_mut(&peer) {
            *known = addr;
            return;
        }
        let kept = (self.relay_candidates.keys())
            .filter(|p| self.configured_relays.contains(p) || self.pinned.contains(p))
            .count();
        let found = self.relay_candidates.len() - kept;
        if found >= MAX_FOUND_RELAYS {
            let evict = self
                .relay_candidates
                .keys()
                .filter(|p| {
                    !self.configured_relays.contains(p)
                        && !self.pinned.contains(p)
                        && !self.reservations.contains_key(p)
                })
                .min()
                .copied();
            match evict {
                Some(old) => {
                    self.relay_candidates.remove(&old);
                    self.reservation_retry.remove(&old);
                }
                None => return,
            }
        }
        tracing::debug!(%peer, "peer offers relaying");
        self.relay_candidates.insert(peer, addr);
    }

    /// Whether a relay came from `--relay`.
    pub(super) fn is_configured(&self, peer: &PeerId) -> bool {
        self.configured_relays.contains(peer)
    }

    /// The owner adds a relay: held from now on, even while reachable directly.
    pub(super) fn pin_relay(&mut self, peer: PeerId, addr: Multiaddr) {
        self.dropped.retain(|p| *p != peer);
        self.reservation_retry.remove(&peer);
        self.pinned.insert(peer);
        self.relay_candidates.insert(peer, addr);
    }

    /// The owner drops a relay: forgotten, and not picked again until added. Says
    /// whether it was known.
    pub(super) fn forget_relay(&mut self, peer: &PeerId) -> bool {
        let known = self.relay_candidates.remove(peer).is_some()
            | self.pinned.remove(peer)
            | self.configured_relays.remove(peer);
        self.reservation_retry.remove(peer);
        self.dropped.retain(|p| p != peer);
        if self.dropped.len() >= MAX_DROPPED_RELAYS {
            self.dropped.pop_front();
        }
        self.dropped.push_back(*peer);
        known
    }

    /// Our `/p2p-circuit` addresses, sorted.
    pub(super) fn circuit_addrs(&self) -> Vec<Multiaddr> {
        let mut addrs: Vec<Multiaddr> = self.circuit_addrs.values().flatten().cloned().collect();
        addrs.sort();
        addrs
    }

    pub(super) fn on_new_listen_addr(&mut self, listener: ListenerId, address: Multiaddr) {
        if is_relayed(&address) {
            self.circuit_addrs
                .entry(listener)
                .or_default()
                .push(address);
        }
    }

    pub(super) fn on_expired_listen_addr(&mut self, listener: ListenerId, address: &Multiaddr) {
        if let Some(addrs) = self.circuit_addrs.get_mut(&listener) {
            addrs.retain(|a| a != address);
        }
    }

    /// A listener closed; returns the relay whose reservation it was, if any.
    pub(super) fn on_listener_closed<E: std::fmt::Debug>(
        &mut self,
        listener: ListenerId,
        reason: &Result<(), E>,
    ) -> Option<PeerId> {
        self.circuit_addrs.remove(&listener);
        let relay = self
            .reservations
            .iter()
            .find(|(_, id)| **id == listener)
            .map(|(p, _)| *p);
        if let Some(relay) = relay {
            tracing::info!(%relay, ?reason, "relay reservation ended");
            self.reservations.remove(&relay);
            self.reservation_retry
                .insert(relay, Instant::now() + RESERVATION_RETRY);
        }
        relay
    }
}

impl NetworkActor {
    /// The relay server's state as libp2p runs it: enabled while any external address is
    /// confirmed.
    pub(super) fn relay_server_status(&self) -> RelayServer {
        if !self.reach.relay_server {
            RelayServer::Off
        } else if self.swarm.external_addresses().next().is_some() {
            RelayServer::Serving
        } else {
            RelayServer::Disabled(CannotServe::NoConfirmedPublicAddress)
        }
    }

    /// Why we are a DHT client, if we are one.
    pub(super) fn dht_client_reason(&self) -> Option<CannotServe> {
        if self.swarm.behaviour().kad.mode() == libp2p::kad::Mode::Server {
            return None;
        }
        Some(match self.dht.mode {
            DhtMode::Client => CannotServe::ClientModeChosen,
            _ => CannotServe::NoConfirmedPublicAddress,
        })
    }

    /// Tells the operator, once per change, when the node cannot serve as a relay or a
    /// DHT server, and why; and when that is over.
    pub(super) fn report_serving(&mut self) {
        let now = (self.relay_server_status(), self.dht_client_reason());
        if self.reach.told == Some(now) {
            return;
        }
        let before = self.reach.told.replace(now);
        match now.0 {
            RelayServer::Disabled(reason) => tracing::warn!(
                "relay server disabled: {}; pass --external-addr with this node's public address",
                describe(reason)
            ),
            RelayServer::Serving if before.is_some_and(|b| b.0 != RelayServer::Serving) => {
                tracing::info!("relay server enabled")
            }
            _ => {}
        }
        match now.1 {
            Some(CannotServe::NoConfirmedPublicAddress) => tracing::warn!(
                "DHT client mode: {}; others cannot query this node (a public node needs \
                 --external-addr or --dht-mode server)",
                describe(CannotServe::NoConfirmedPublicAddress)
            ),
            Some(CannotServe::ClientModeChosen) if before.is_none() => {
                tracing::info!("DHT client mode, as --dht-mode client asks")
            }
            None if before.is_some_and(|b| b.1.is_some()) => {
                tracing::info!("DHT server mode: others can query this node")
            }
            _ => {}
        }
    }

    /// A node that is not publicly reachable keeps reservations on up to [`MAX_RELAYS`]
    /// relays, so that others can reach it through them (and then hole-punch). One that
    /// turns out to be reachable (reservations are taken while that is still unknown,
    /// right after start) gives them back. Relays the owner added are held either way.
    pub(super) fn keep_reservations(&mut self, now: Instant) {
        self.reach.reservation_retry.retain(|_, at| *at > now);
        let public = self.is_public();
        if public {
            let reach = &mut self.reach;
            let automatic: Vec<PeerId> = (reach.reservations.keys())
                .filter(|p| !reach.pinned.contains(p))
                .copied()
                .collect();
            for relay in automatic {
                if let Some(listener) = reach.reservations.remove(&relay) {
                    tracing::info!(%relay, "reachable directly: giving back the relay reservation");
                    self.swarm.remove_listener(listener);
                }
            }
        }
        let local = *self.swarm.local_peer_id();
        let reach = &mut self.reach;
        let automatic = reach.use_relays && !public;
        let mut held = (reach.reservations.keys())
            .filter(|p| !reach.pinned.contains(p))
            .count();
        let mut candidates: Vec<(bool, PeerId, Multiaddr)> = reach
            .relay_candidates
            .iter()
            .filter(|(peer, _)| {
                !reach.reservations.contains_key(peer)
                    && !reach.reservation_retry.contains_key(peer)
                    && (automatic || reach.pinned.contains(peer))
            })
            .map(|(p, a)| (!reach.pinned.contains(p), *p, a.clone()))
            .collect();
        candidates.sort_by_key(|(automatic, p, _)| reservation_order(&local, *automatic, p));
        for (automatic, peer, addr) in candidates {
            if automatic && held >= MAX_RELAYS {
                break;
            }
            let circuit = addr.with(Protocol::P2p(peer)).with(Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(id) => {
                    tracing::info!(relay = %peer, "asking relay for a reservation");
                    reach.reservations.insert(peer, id);
                    self.relays.on_reservation_requested(peer);
                    held += usize::from(automatic);
                }
                Err(e) => {
                    tracing::debug!(%circuit, "cannot listen through relay: {e}");
                    // Some transport errors display as nothing: say which one it was.
                    let why = match e.to_string() {
                        text if text.is_empty() => format!("{e:?}"),
                        text => text,
                    };
                    self.relays.on_reservation_ended(
                        peer,
                        Some(format!("cannot listen through it: {why}")),
                    );
                    reach
                        .reservation_retry
                        .insert(peer, now + RESERVATION_RETRY);
                }
            }
        }
    }
}

/// The reason in words, for logs.
pub fn describe(reason: CannotServe) -> &'static str {
    match reason {
        CannotServe::NoConfirmedPublicAddress => "no confirmed public address",
        CannotServe::ClientModeChosen => "client mode chosen with --dht-mode client",
    }
}

pub(super) fn on_dcutr_event(event: dcutr::Event) {
    match event.result {
        Ok(_) => {
            tracing::info!(peer = %event.remote_peer_id, "hole punch succeeded: direct connection")
        }
        Err(e) => tracing::info!(peer = %event.remote_peer_id, "hole punch failed: {e}"),
    }
}
