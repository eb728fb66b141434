//! Kademlia inside the swarm task: when files and keywords are announced (first
//! announcement, re-announcement rounds after address changes and bootstrap
//! connections), provider lookups streamed to their callers, the bootstrap nodes, and
//! whether we are a DHT server or client. How each announcement went is kept in
//! `announce.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::{kad, PeerId};
use tokio::sync::{mpsc, oneshot};

use super::actor::NetworkActor;
use super::announce::{peers_reached, FileAnnouncements, Provided, ProviderKey};
use super::info::DhtMode;

/// Re-announcements are delayed this long after a trigger, so a burst of triggers
/// (several addresses confirmed at once) costs one round of announcements.
const REANNOUNCE_DELAY: Duration = Duration::from_secs(1);
/// A reconnect to a bootstrap node re-announces everything only if the last full round
/// is older than this (Kademlia republishes provider records on its own schedule).
const REANNOUNCE_MIN_INTERVAL: Duration = Duration::from_secs(3600);

/// A provider lookup running: where it sends the providers it finds, and where it counts
/// the DHT requests it sent so far.
pub(super) struct ProviderQuery {
    pub(super) found: mpsc::Sender<PeerId>,
    requests: Arc<AtomicU32>,
}

/// Our part in the DHT.
pub(super) struct Dht {
    pub(super) mode: DhtMode,
    pub(super) bootstrap_peers: HashSet<PeerId>,
    /// Provider lookups running.
    pub(super) provider_queries: HashMap<kad::QueryId, ProviderQuery>,
    pub(super) provided: Provided,
    reannounce_at: Option<Instant>,
    last_announce_all: Option<Instant>,
}

impl Dht {
    pub(super) fn new(mode: DhtMode, bootstrap_peers: HashSet<PeerId>) -> Self {
        Dht {
            mode,
            bootstrap_peers,
            provider_queries: HashMap::new(),
            provided: Provided::default(),
            reannounce_at: None,
            last_announce_all: None,
        }
    }

    pub(super) fn provided_count(&self) -> usize {
        self.provided.file_count()
    }

    pub(super) fn announcements_started(&self) -> u64 {
        self.provided.started
    }
}

impl NetworkActor {
    pub(super) fn start_providing(&mut self, subject: ProviderKey) {
        // Already announced: Kademlia republishes it on its own schedule.
        let key = subject.record_key();
        if self.dht.provided.files.contains_key(&key) {
            return;
        }
        self.dht.provided.files.insert(
            key,
            FileAnnouncements {
                subject: subject.clone(),
                last: None,
                running: false,
                failures: 0,
                retry_at: None,
            },
        );
        tracing::info!(%subject, "announcing as provider");
        self.announce(&subject);
    }

    pub(super) fn stop_providing(&mut self, subject: ProviderKey) {
        let key = subject.record_key();
        self.dht.provided.files.remove(&key);
        self.swarm.behaviour_mut().kad.stop_providing(&key);
    }

    /// Starts a provider lookup; `started` gets its id (to finish it early) and the
    /// counter of DHT requests it sends.
    pub(super) fn find_providers(
        &mut self,
        subject: ProviderKey,
        found: mpsc::Sender<PeerId>,
        started: Option<oneshot::Sender<(kad::QueryId, Arc<AtomicU32>)>>,
    ) {
        let id = self
            .swarm
            .behaviour_mut()
            .kad
            .get_providers(subject.record_key());
        tracing::info!(%subject, "provider lookup started");
        let requests = Arc::new(AtomicU32::new(0));
        if let Some(started) = started {
            let _ = started.send((id, requests.clone()));
        }
        self.dht
            .provider_queries
            .insert(id, ProviderQuery { found, requests });
    }

    /// Ends a provider lookup now (its caller has what it needs), counting the requests
    /// it sent; `done` is told once the count is final.
    pub(super) fn finish_provider_query(&mut self, id: kad::QueryId, done: oneshot::Sender<()>) {
        if let Some(query) = self.dht.provider_queries.remove(&id) {
            if let Some(mut running) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                query
                    .requests
                    .store(running.stats().num_requests(), Ordering::Relaxed);
                running.finish();
            }
        }
        let _ = done.send(());
    }

    /// The first connection to a bootstrap node fills the routing table from it and
    /// announces what we provide; a reconnect (every few minutes on a flaky link)
    /// re-announces only if the last full round is old.
    pub(super) fn on_first_connection(&mut self, peer: PeerId) {
        if !self.dht.bootstrap_peers.contains(&peer) {
            return;
        }
        let _ = self.swarm.behaviour_mut().kad.bootstrap();
        if self
            .dht
            .last_announce_all
            .is_none_or(|t| t.elapsed() > REANNOUNCE_MIN_INTERVAL)
        {
            self.schedule_reannounce();
        }
    }

    pub(super) fn schedule_reannounce(&mut self) {
        if !self.dht.provided.files.is_empty() && self.dht.reannounce_at.is_none() {
            self.dht.reannounce_at = Some(Instant::now() + REANNOUNCE_DELAY);
        }
    }

    pub(super) fn run_due_announcements(&mut self, now: Instant) {
        if self.dht.reannounce_at.is_some_and(|at| now >= at) {
            self.dht.reannounce_at = None;
            self.announce_all();
        }
        self.retry_failed_announcements(now);
    }

    fn announce_all(&mut self) {
        self.dht.last_announce_all = Some(Instant::now());
        let subjects: Vec<ProviderKey> = (self.dht.provided.files.values())
            .map(|f| f.subject.clone())
            .collect();
        tracing::info!(keys = subjects.len(), "announcing provider records");
        for subject in subjects {
            self.announce(&subject);
        }
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
                })) => {
                    let local = *self.swarm.local_peer_id();
                    if let Some(query) = self.dht.provider_queries.get(&id) {
                        query
                            .requests
                            .store(stats.num_requests(), Ordering::Relaxed);
                        let found = &query.found;
                        for peer in providers.into_iter().filter(|p| *p != local) {
                            tracing::info!(%peer, "provider found");
                            // Dial now: Kademlia knows the provider's addresses only while
                            // the query runs.
                            if !self.swarm.is_connected(&peer) {
                                let _ = self.swarm.dial(peer);
                            }
                            let _ = found.try_send(peer);
                        }
                    }
                }
                kad::QueryResult::GetProviders(Ok(
                    kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. },
                )) => self.provider_query_ended(id, &stats),
                kad::QueryResult::GetProviders(Err(e)) => {
                    tracing::debug!("provider lookup ended: {e}");
                    self.provider_query_ended(id, &stats);
                }
                kad::QueryResult::StartProviding(result)
                | kad::QueryResult::RepublishProvider(result) => {
                    let (key, completed) = match result {
                        Ok(ok) => (ok.key, true),
                        Err(e) => {
                            tracing::debug!("provider announcement timed out: {e}");
                            (e.into_key(), false)
                        }
                    };
                    self.announcement_done(key, peers_reached(&stats, completed));
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

    fn provider_query_ended(&mut self, id: kad::QueryId, stats: &kad::QueryStats) {
        if let Some(query) = self.dht.provider_queries.remove(&id) {
            query
                .requests
                .store(stats.num_requests(), Ordering::Relaxed);
        }
    }

    /// Stops the provider lookups nobody waits for any more (the download ended while
    /// its lookup ran), so they do not go on querying the DHT until their timeout.
    pub(super) fn finish_abandoned_provider_queries(&mut self) {
        let abandoned: Vec<kad::QueryId> = self
            .dht
            .provider_queries
            .iter()
            .filter(|(_, query)| query.found.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in abandoned {
            let (done, _) = oneshot::channel();
            self.finish_provider_query(id, done);
        }
    }
}
