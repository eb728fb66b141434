//! The operator's side of the relays: the report `p2pd relays` prints (the relays in
//! use and a relay node's load) and the owner's choices (`relays add` / `relays drop`).

use std::collections::HashSet;

use libp2p::PeerId;

use super::*;
use crate::network::actor::NetworkActor;

impl NetworkActor {
    /// The relays in use and the relay server's load.
    pub(in crate::network) fn relays_report(&self) -> RelaysReport {
        let reach = &self.reach;
        let book = &self.relays;
        let mut peers: HashSet<PeerId> = reach.relay_candidates.keys().copied().collect();
        peers.extend(reach.reservations.keys().copied());
        peers.extend(book.circuits_open.values().copied());
        peers.extend(
            (book.client.iter())
                .filter(|(_, side)| side.error.is_some() || side.circuits_total > 0)
                .map(|(peer, _)| *peer),
        );
        let mut relays: Vec<RelayUse> = peers
            .into_iter()
            .map(|peer| {
                let side = book.client.get(&peer).cloned().unwrap_or_default();
                let reserved = reach.reservations.get(&peer);
                let reservation = match reserved {
                    Some(_) if side.accepted => ReservationState::Accepted,
                    Some(_) => ReservationState::Requested,
                    None if reach.reservation_retry.contains_key(&peer) => ReservationState::Failed,
                    None => ReservationState::Idle,
                };
                let origin = if reach.pinned.contains(&peer) {
                    RelayOrigin::Added
                } else if reach.is_configured(&peer) {
                    RelayOrigin::Configured
                } else if reach.relay_candidates.contains_key(&peer) {
                    RelayOrigin::Found
                } else {
                    RelayOrigin::Other
                };
                let mut circuit_addrs: Vec<Multiaddr> = reserved
                    .and_then(|listener| reach.circuit_addrs.get(listener))
                    .cloned()
                    .unwrap_or_default();
                circuit_addrs.sort();
                let (bytes_sent, bytes_received) = book.traffic.of(&peer);
                RelayUse {
                    peer,
                    bytes_sent,
                    bytes_received,
                    addr: reach.relay_candidates.get(&peer).cloned(),
                    origin,
                    reservation,
                    error: side
                        .error
                        .filter(|_| reservation != ReservationState::Accepted),
                    accepted_at: side.accepted_at.filter(|_| side.accepted),
                    renewals: side.renewals,
                    expires_at: side.expires_at.filter(|_| side.accepted),
                    expiry_error: side.expiry_error.filter(|_| side.accepted),
                    circuit_limit: side.limit,
                    circuit_addrs,
                    circuits_open: book.circuits_open.values().filter(|r| **r == peer).count(),
                    circuits_total: side.circuits_total,
                }
            })
            .collect();
        relays.sort_by_key(|r| r.peer);
        let server = book.server.as_ref().map(|s| RelayLoad {
            state: self.relay_server_status(),
            reservations: s.holders.len(),
            held: held_reservations(&s.holders),
            reservation_duration: RELAY_RESERVATION_DURATION,
            max_reservations: s.limits.max_reservations,
            circuits: s.circuits.clone(),
            max_circuits: s.limits.max_circuits,
            max_circuit_duration: s.limits.max_circuit_duration,
            max_circuit_bytes: s.limits.max_circuit_bytes,
            reservations_accepted: s.reservations_accepted,
            reservations_renewed: s.reservations_renewed,
            reservations_denied: s.reservations_denied,
            circuits_accepted: s.circuits_accepted,
            circuits_denied: s.circuits_denied,
        });
        RelaysReport { relays, server }
    }

    /// The owner adds a relay: it is held from now on (reserved at the next tick), even
    /// while this node is reachable directly, until dropped.
    pub(in crate::network) fn add_relay(
        &mut self,
        peer: PeerId,
        addr: Multiaddr,
    ) -> Result<(), RelayChoiceError> {
        if peer == *self.swarm.local_peer_id() {
            return Err(RelayChoiceError::Ourselves);
        }
        if !self.reach.pinned.contains(&peer) && self.reach.pinned.len() >= MAX_ADDED_RELAYS {
            return Err(RelayChoiceError::TooMany);
        }
        self.reach.pin_relay(peer, addr);
        if let Some(side) = self.relays.client_mut(peer) {
            side.error = None;
        }
        self.keep_reservations(std::time::Instant::now());
        Ok(())
    }

    /// The owner drops a relay: its reservation is given back and it is not picked
    /// again until added.
    pub(in crate::network) fn drop_relay(&mut self, peer: PeerId) -> Result<(), RelayChoiceError> {
        let known = self.reach.forget_relay(&peer);
        if let Some(listener) = self.reach.reservations.remove(&peer) {
            tracing::info!(relay = %peer, "relay dropped by the owner: giving back the reservation");
            self.swarm.remove_listener(listener);
        } else if !known {
            return Err(RelayChoiceError::Unknown);
        }
        self.relays.expiry_wanted.remove(&peer);
        if let Some(side) = self.relays.client.get_mut(&peer) {
            side.accepted = false;
            side.accepted_at = None;
            side.expires_at = None;
            side.expiry_error = None;
            side.error = None;
        }
        Ok(())
    }
}
