//! Kademlia inside the swarm task: when everything we provide is announced again (a
//! new confirmed address, the first bootstrap connection) and when only what reached
//! nobody is (a bootstrap node connected again), the bootstrap nodes, and whether we
//! are a DHT server or client. Provider lookups are `providers.rs`'s.
//! Announcing itself is the batched reprovider's (`providing.rs`, `reprovide/`); how
//! each announcement went is kept in `announce.rs`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::request_response::OutboundRequestId;
use libp2p::{kad, Multiaddr, PeerId};

use super::actor::NetworkActor;
use super::info::DhtMode;
use super::reprovide::Reprovider;

/// Re-announcements are delayed this long after a trigger, so a burst of triggers
/// (several addresses confirmed at once) costs one round of announcements.
const REANNOUNCE_DELAY: Duration = Duration::from_secs(1);
/// Confirmed external addresses remembered as carried by our records (a node has a few).
const MAX_RECORD_ADDRS_KNOWN: usize = 64;

/// Our part in the DHT.
pub(super) struct Dht {
    pub(super) mode: DhtMode,
    pub(super) bootstrap_peers: HashSet<PeerId>,
    /// What we provide, and the rounds announcing it.
    pub(super) reprovider: Reprovider,
    /// The reprovider's lookups and batches in flight, by libp2p's ids.
    pub(super) reprovide_lookups: HashMap<kad::QueryId, u64>,
    pub(super) reprovide_batches: HashMap<OutboundRequestId, u64>,
    /// When everything is announced again (a trigger came less than
    /// [`REANNOUNCE_DELAY`] ago).
    pub(super) reannounce_at: Option<Instant>,
    /// Whether a bootstrap node (or a saved peer) was connected since the start.
    joined: bool,
    /// The confirmed external addresses our records carry: confirming one of them again
    /// changes nothing in the records.
    record_addrs: HashSet<Multiaddr>,
}

impl Dht {
    pub(super) fn new(
        mode: DhtMode,
        bootstrap_peers: HashSet<PeerId>,
        reprovider: Reprovider,
        external: &[Multiaddr],
    ) -> Self {
        Dht {
            mode,
            bootstrap_peers,
            reprovider,
            reprovide_lookups: HashMap::new(),
            reprovide_batches: HashMap::new(),
            reannounce_at: None,
            joined: false,
            record_addrs: external
                .iter()
                .take(MAX_RECORD_ADDRS_KNOWN)
                .cloned()
                .collect(),
        }
    }

    pub(super) fn provided_count(&self) -> usize {
        self.reprovider.provided.file_count()
    }

    pub(super) fn announcements_started(&self) -> u64 {
        self.reprovider.provided.started
    }
}

impl NetworkActor {
    /// A connection to a bootstrap node fills the routing table from it, unless a
    /// bootstrap (the walk to our own id and a refresh of every farther bucket) is
    /// running already: one walk through the network is enough, and the peer just
    /// connected is in the routing table for it and every later query. A node joining
    /// through several bootstrap nodes (or restarting through up to 20 saved peers)
    /// connects to them at once and used to walk once for each.
    ///
    /// The first such connection since the start announces everything we provide (what
    /// was announced before it reached only the peers we had); a later one (every few
    /// minutes on a flaky link, or once the idle connection closed) announces only the
    /// keys whose last round reached nobody: the others keep their turn in the
    /// reprovide timetable.
    pub(super) fn on_first_connection(&mut self, peer: PeerId) {
        if !self.dht.bootstrap_peers.contains(&peer) {
            return;
        }
        let kademlia = &mut self.swarm.behaviour_mut().kad;
        if kademlia
            .iter_queries()
            .any(|q| matches!(q.info(), kad::QueryInfo::Bootstrap { .. }))
        {
            tracing::debug!(%peer, "bootstrap node connected while a bootstrap runs");
        } else {
            let _ = kademlia.bootstrap();
        }
        if !self.dht.joined {
            self.dht.joined = true;
            self.schedule_reannounce();
            return;
        }
        let now = Instant::now();
        let keys = self.dht.reprovider.announce_unannounced(now);
        if keys > 0 {
            tracing::info!(keys, "announcing the provider records that reached nobody");
            self.drive_reprovider(now);
        }
    }

    /// Provider records carry our confirmed addresses: a new one is worth announcing
    /// everything again. AutoNAT, UPnP and the relay client may confirm an address we
    /// have already; that changes nothing in the records and announces nothing.
    pub(super) fn on_address_confirmed(&mut self, address: Multiaddr) {
        if self.dht.record_addrs.contains(&address) {
            return;
        }
        if self.dht.record_addrs.len() < MAX_RECORD_ADDRS_KNOWN {
            self.dht.record_addrs.insert(address);
        }
        self.schedule_reannounce();
    }

    /// Records announced from now on lack `address`; confirming it again is news.
    pub(super) fn on_address_expired(&mut self, address: &Multiaddr) {
        self.dht.record_addrs.remove(address);
    }

    pub(super) fn schedule_reannounce(&mut self) {
        if !self.dht.reprovider.provided.keys.is_empty() && self.dht.reannounce_at.is_none() {
            self.dht.reannounce_at = Some(Instant::now() + REANNOUNCE_DELAY);
        }
    }

    pub(super) fn run_due_announcements(&mut self, now: Instant) {
        if self.dht.reannounce_at.is_some_and(|at| now >= at) {
            self.dht.reannounce_at = None;
            self.announce_all();
        }
        self.drive_reprovider(now);
    }

    /// Kademlia server mode only on a confirmed address that is not relayed: a relay
    /// reservation must not turn a node behind NAT into a DHT server.
    pub(super) fn update_dht_mode(&mut self) {
        let mode = match self.dht.mode {
            DhtMode::Server => kad::Mode::Server,
            DhtMode::Client => kad::Mode::Client,
            DhtMode::Auto if self.is_public() => kad::Mode::Server,
            DhtMode::Auto => kad::Mode::Client,
        };
        if self.swarm.behaviour().kad.mode() != mode {
            tracing::info!(?mode, "DHT mode changed");
        }
        // Always explicit: libp2p-kad left in its automatic mode turns server by itself
        // on any confirmed address, relayed ones included, before this runs.
        self.swarm.behaviour_mut().kad.set_mode(Some(mode));
    }

    pub(super) fn on_kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::OutboundQueryProgressed {
                id,
                result,
                step,
                stats,
            } => match result {
                kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                    providers,
                    ..
                })) => self.on_providers_found(id, providers, &stats),
                kad::QueryResult::GetProviders(Ok(
                    kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. },
                )) => self.on_provider_lookup_end(id, &stats),
                kad::QueryResult::GetProviders(Err(e)) => {
                    tracing::debug!("provider lookup ended: {e}");
                    self.on_provider_lookup_end(id, &stats);
                }
                kad::QueryResult::GetClosestPeers(result) if self.is_reprovide_lookup(&id) => {
                    let found = match result {
                        Ok(ok) => ok.peers,
                        Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                    };
                    self.on_reprovide_lookup(id, found, &stats);
                }
                kad::QueryResult::Bootstrap(Ok(_)) if step.last => {
                    tracing::debug!("DHT bootstrap finished");
                }
                _ => {}
            },
            kad::Event::RoutingUpdated {
                peer,
                is_new_peer: true,
                ..
            } => {
                tracing::debug!(%peer, "added to the routing table");
            }
            _ => {}
        }
    }
}
