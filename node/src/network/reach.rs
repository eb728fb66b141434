//! Being reachable from outside: which peers can relay for us, the relay reservations a
//! node behind NAT keeps (and gives back once it is reachable directly), our circuit
//! addresses, and what DCUtR and the relay client report.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{dcutr, relay, Multiaddr, PeerId};

use super::actor::NetworkActor;
use super::info::{CannotServe, DhtMode, RelayServer};
use super::peers::is_relayed;

/// Relays we keep a reservation on while not publicly reachable.
const MAX_RELAYS: usize = 2;
/// Pause before asking a relay again after a reservation failed or ended.
const RESERVATION_RETRY: Duration = Duration::from_secs(10);
/// Relays found (by identify) that we remember; configured ones (`--relay`) come on top.
pub(super) const MAX_FOUND_RELAYS: usize = 32;

/// Relay candidates, reservations and circuit addresses.
pub(super) struct Reach {
    /// Whether to reserve relay slots when not publicly reachable.
    pub(super) use_relays: bool,
    /// Peers that offer relaying, and a direct address of each: the configured ones and
    /// at most [`MAX_FOUND_RELAYS`] found ones.
    pub(super) relay_candidates: HashMap<PeerId, Multiaddr>,
    /// The configured relays (never forgotten).
    configured_relays: HashSet<PeerId>,
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
        if let Some(known) = self.relay_candidates.get_mut(&peer) {
            *known = addr;
            return;
        }
        let found = self.relay_candidates.len() - self.configured_relays.len();
        if found >= MAX_FOUND_RELAYS {
            let evict = self
                .relay_candidates
                .keys()
                .filter(|p| {
                    !self.configured_relays.contains(p) && !self.reservations.contains_key(p)
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
    /// right after start) gives them back.
    pub(super) fn keep_reservations(&mut self, now: Instant) {
        self.reach.reservation_retry.retain(|_, at| *at > now);
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
                    && !reach.reservation_retry.contains_key(peer)
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
