//! Being reachable from outside: which peers can relay for us, the relay reservations a
//! node behind NAT keeps (and gives back once it is reachable directly), our circuit
//! addresses, and what DCUtR and the relay client report.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{dcutr, relay, Multiaddr, PeerId};

use super::actor::NetworkActor;
use super::peers::is_relayed;

/// Relays we keep a reservation on while not publicly reachable.
const MAX_RELAYS: usize = 2;
/// Pause before asking a relay again after a reservation failed or ended.
const RESERVATION_RETRY: Duration = Duration::from_secs(10);

/// Relay candidates, reservations and circuit addresses.
pub(super) struct Reach {
    /// Whether to reserve relay slots when not publicly reachable.
    pub(super) use_relays: bool,
    /// Peers that offer relaying, and a direct address of each.
    pub(super) relay_candidates: HashMap<PeerId, Multiaddr>,
    /// Relay listeners (one per relay we asked for a reservation).
    pub(super) reservations: HashMap<PeerId, ListenerId>,
    pub(super) reservation_retry: HashMap<PeerId, Instant>,
    /// Our circuit addresses, by the listener that got them.
    pub(super) circuit_addrs: HashMap<ListenerId, Vec<Multiaddr>>,
}

impl Reach {
    pub(super) fn new(use_relays: bool, relay_candidates: HashMap<PeerId, Multiaddr>) -> Self {
        Reach {
            use_relays,
            relay_candidates,
            reservations: HashMap::new(),
            reservation_retry: HashMap::new(),
            circuit_addrs: HashMap::new(),
        }
    }

    pub(super) fn add_relay_candidate(&mut self, peer: PeerId, addr: Multiaddr) {
        if self.relay_candidates.insert(peer, addr).is_none() {
            tracing::debug!(%peer, "peer offers relaying");
        }
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

    pub(super) fn on_listener_closed<E: std::fmt::Debug>(
        &mut self,
        listener: ListenerId,
        reason: Result<(), E>,
    ) {
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
    }
}

impl NetworkActor {
    /// A node that is not publicly reachable keeps reservations on up to [`MAX_RELAYS`]
    /// relays, so that others can reach it through them (and then hole-punch). One that
    /// turns out to be reachable (reservations are taken while that is still unknown,
    /// right after start) gives them back.
    pub(super) fn keep_reservations(&mut self, now: Instant) {
        if self.is_public() {
            for (relay, listener) in self.reach.reservations.drain() {
                tracing::info!(%relay, "reachable directly: giving back the relay reservation");
                self.swarm.remove_listener(listener);
            }
            return;
        }
        let reach = &mut self.reach;
        if !reach.use_relays || reach.reservations.len() >= MAX_RELAYS {
            return;
        }
        let mut candidates: Vec<(PeerId, Multiaddr)> = reach
            .relay_candidates
            .iter()
            .filter(|(peer, _)| {
                !reach.reservations.contains_key(peer)
                    && reach.reservation_retry.get(peer).is_none_or(|t| *t <= now)
            })
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        candidates.sort_by_key(|(p, _)| *p);
        for (peer, addr) in candidates {
            if reach.reservations.len() >= MAX_RELAYS {
                break;
            }
            let circuit = addr.with(Protocol::P2p(peer)).with(Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(id) => {
                    tracing::info!(relay = %peer, "asking relay for a reservation");
                    reach.reservations.insert(peer, id);
                }
                Err(e) => {
                    tracing::debug!(%circuit, "cannot listen through relay: {e}");
                    reach
                        .reservation_retry
                        .insert(peer, now + RESERVATION_RETRY);
                }
            }
        }
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

pub(super) fn on_relay_client_event(event: relay::client::Event) {
    if let relay::client::Event::ReservationReqAccepted {
        relay_peer_id,
        renewal: false,
        ..
    } = event
    {
        tracing::info!(relay = %relay_peer_id, "relay reservation accepted");
    }
}
