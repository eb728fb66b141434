//! Provider lookups of files and keywords, streamed to their callers (a caller may end
//! one early; each counts the DHT requests it sent), and only providers that answer: a
//! provider record outlives the provider (records live for
//! [`PROVIDER_RECORD_TTL`](super::PROVIDER_RECORD_TTL) on the servers that hold them), so
//! every provider the DHT names is dialled at once, in parallel with the others, and
//! handed to the caller only when a connection to it is up. One that cannot be reached
//! is never counted as a source; one whose dial takes longer than
//! [`PROVIDER_DIAL_TIMEOUT`] (plus at most one tick) is reported not reached, and handed
//! out later only if its dial succeeds after all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::swarm::DialError;
use libp2p::{kad, PeerId};
use tokio::sync::{mpsc, oneshot};

use super::actor::NetworkActor;
use super::announce::ProviderKey;

/// How long a named provider may take to be connected before it is reported not
/// reached. With the actor's 500 ms tick, a dead provider is gone within 2 s.
pub(super) const PROVIDER_DIAL_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a dial that outlived [`PROVIDER_DIAL_TIMEOUT`] is still waited for: a
/// provider reached only through a relay over long round trips, or on a busy machine,
/// can take longer than that to connect, and is a source once it does (a dead one never
/// connects, so it is never handed out).
const LATE_PROVIDER_LIMIT: Duration = Duration::from_secs(15);
/// Providers being dialled at once, over all lookups; past this, further ones are
/// dropped until dials end (a lookup that names so many has plenty to use).
const MAX_PROVIDER_DIALS: usize = 256;
/// Lookups waiting for one provider's dial.
const MAX_WAITING_PER_DIAL: usize = 32;

/// Provider lookups running, and the providers they named that are being dialled.
#[derive(Default)]
pub(super) struct ProviderLookups {
    /// Running lookups.
    pub(super) queries: HashMap<kad::QueryId, ProviderQuery>,
    /// Providers being dialled, by peer.
    pub(super) dialling: HashMap<PeerId, Dialling>,
    /// Lookups started since the daemon started.
    pub(super) started: u64,
}

/// A provider lookup running: where it sends the providers it finds, and where it counts
/// the DHT requests it sent so far.
pub(super) struct ProviderQuery {
    pub(super) found: mpsc::Sender<PeerId>,
    requests: Arc<AtomicU32>,
}

impl ProviderQuery {
    fn count_requests(&self, stats: &kad::QueryStats) {
        self.requests.store(stats.num_requests(), Ordering::Relaxed);
    }
}

/// A provider being dialled before it is handed to the lookups that named it.
pub(super) struct Dialling {
    waiting: Vec<mpsc::Sender<PeerId>>,
    started: Instant,
    /// Past [`PROVIDER_DIAL_TIMEOUT`]: reported not reached, handed out only if it
    /// connects after all.
    late: bool,
}

impl ProviderLookups {
    /// A connection to `peer` is up: the lookups waiting for it get it.
    pub(super) fn on_connected(&mut self, peer: PeerId) {
        if let Some(dialling) = self.dialling.remove(&peer) {
            tracing::info!(%peer, "provider reachable");
            for found in dialling.waiting {
                let _ = found.try_send(peer);
            }
        }
    }

    /// A dial of `peer` failed and no connection to it is up: it is not a source.
    pub(super) fn on_unreachable(&mut self, peer: PeerId) {
        if self.dialling.remove(&peer).is_some() {
            tracing::info!(%peer, "provider unreachable: not counted");
        }
    }

    /// Whether `peer` is no longer counted on as a source by the lookups that named it:
    /// not being dialled, or its dial outlived [`PROVIDER_DIAL_TIMEOUT`].
    #[cfg(test)]
    pub(super) fn not_counted(&self, peer: &PeerId) -> bool {
        self.dialling.get(peer).is_none_or(|d| d.late)
    }

    /// Reports the providers whose dial takes too long, and forgets those whose dial
    /// has not ended long after.
    fn give_up_late_dials(&mut self, now: Instant) {
        self.dialling.retain(|peer, dialling| {
            let age = now.saturating_duration_since(dialling.started);
            if !dialling.late && age >= PROVIDER_DIAL_TIMEOUT {
                dialling.late = true;
                tracing::info!(%peer, "provider not reached in time: not counted unless it connects");
            }
            age < LATE_PROVIDER_LIMIT && dialling.waiting.iter().any(|w| !w.is_closed())
        });
    }
}

impl NetworkActor {
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
        self.providers.started += 1;
        let requests = Arc::new(AtomicU32::new(0));
        if let Some(started) = started {
            let _ = started.send((id, requests.clone()));
        }
        self.providers
            .queries
            .insert(id, ProviderQuery { found, requests });
    }

    /// Ends a provider lookup now (its caller has what it needs), counting the requests
    /// it sent; `done` is told once the count is final.
    pub(super) fn finish_provider_query(&mut self, id: kad::QueryId, done: oneshot::Sender<()>) {
        if let Some(query) = self.providers.queries.remove(&id) {
            if let Some(mut running) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                query.count_requests(running.stats());
                running.finish();
            }
        }
        let _ = done.send(());
    }

    /// Providers a lookup named: those connected go to its caller now, the others once
    /// their dial succeeds.
    pub(super) fn on_providers_found(
        &mut self,
        id: kad::QueryId,
        providers: impl IntoIterator<Item = PeerId>,
        stats: &kad::QueryStats,
    ) {
        let Some(query) = self.providers.queries.get(&id) else {
            return;
        };
        query.count_requests(stats);
        let found = query.found.clone();
        let local = *self.swarm.local_peer_id();
        let now = Instant::now();
        for peer in providers.into_iter().filter(|p| *p != local) {
            tracing::info!(%peer, "provider found");
            if self.swarm.is_connected(&peer) {
                let _ = found.try_send(peer);
                continue;
            }
            if let Some(dialling) = self.providers.dialling.get_mut(&peer) {
                if dialling.waiting.len() < MAX_WAITING_PER_DIAL {
                    dialling.waiting.push(found.clone());
                }
                continue;
            }
            if self.providers.dialling.len() >= MAX_PROVIDER_DIALS {
                tracing::debug!(%peer, "too many providers being dialled: skipped");
                continue;
            }
            // Dial now: Kademlia knows the provider's addresses only while the query runs.
            match self.swarm.dial(peer) {
                // A dial of it already runs (Kademlia's, or the engine's): wait for that.
                Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => {}
                Err(e) => {
                    tracing::info!(%peer, "provider not dialled: {e}");
                    continue;
                }
            }
            self.providers.dialling.insert(
                peer,
                Dialling {
                    waiting: vec![found.clone()],
                    started: now,
                    late: false,
                },
            );
        }
    }

    pub(super) fn on_provider_lookup_end(&mut self, id: kad::QueryId, stats: &kad::QueryStats) {
        if let Some(query) = self.providers.queries.remove(&id) {
            query.count_requests(stats);
        }
    }

    pub(super) fn on_provider_dial_failed(&mut self, peer: PeerId) {
        if !self.swarm.is_connected(&peer) {
            self.providers.on_unreachable(peer);
        }
    }

    /// Stops the provider lookups nobody waits for any more (the download ended while
    /// its lookup ran), so they do not go on querying the DHT until their timeout, and
    /// gives up on providers not reached in time.
    pub(super) fn tend_provider_lookups(&mut self, now: Instant) {
        let abandoned: Vec<kad::QueryId> = self
            .providers
            .queries
            .iter()
            .filter(|(_, query)| query.found.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in abandoned {
            let (done, _) = oneshot::channel();
            self.finish_provider_query(id, done);
        }
        self.providers.give_up_late_dials(now);
    }
}
