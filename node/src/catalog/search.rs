//! Keyword search across the network: [`Catalog::search`].
//!
//! All words must match, so every file that matches is listed by peers that provide the
//! key of *each* of its words, and asking the providers of a single word would do. But
//! which word is unknown in advance: a DHT server keeps at most 20 providers per key, so
//! a common word's provider list is cut short (a rare word's is not), and a word past
//! the 16th of a long name is not announced at all. So the search looks up the keys of
//! all its words at once (at most 8) and asks each distinct provider once, as soon as it
//! is found: the first answers come from whichever lookup is fastest, and a file is
//! missed only if none of its words' provider lists names its publisher.
//!
//! Each provider is asked over the catalog protocol ("your entries matching these
//! words"), at most [`CONCURRENCY`] at a time and [`MAX_PEERS_ASKED`] in all. Every
//! entry must be signed by the peer that sent it and match the words; entries that fail
//! are dropped and cost the sender reputation. Results are merged by CID and streamed
//! as they change ([`SearchEvent::Hit`]); the search ends when every lookup ended and
//! every provider answered or failed, or at its deadline, whichever comes first: a slow
//! or silent peer is simply not waited for past it.

use std::collections::{HashSet, VecDeque};
use std::task::Poll;
use std::time::Duration;

use dht_proto::catalog::{CatalogError, CatalogRequest, CatalogResponse};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use libp2p::PeerId;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::results::{Results, SearchHit};
use super::Catalog;
use crate::network::{ProviderKey, ProviderLookup, RequestError};

/// Catalog requests of one search in flight at once.
pub const CONCURRENCY: usize = 16;
/// Distinct peers one search asks at most.
pub const MAX_PEERS_ASKED: usize = 256;
/// Distinct providers one search keeps count of at most.
const MAX_PEERS_FOUND: usize = 4 * MAX_PEERS_ASKED;
/// Longest a search may be asked to run.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// Events waiting for a slow reader of one search.
const EVENT_QUEUE: usize = 64;

/// What a running search reports.
#[derive(Debug, Clone)]
pub enum SearchEvent {
    /// A file found, or a file that gained a publisher (the whole result, updated).
    Hit(SearchHit),
    /// The search ended.
    Done(SearchSummary),
}

/// How a search went.
#[derive(Debug, Clone, Default)]
pub struct SearchSummary {
    /// The words searched for.
    pub words: Vec<String>,
    /// Every result, best first.
    pub results: Vec<SearchHit>,
    /// Distinct providers the DHT lookups found.
    pub peers_found: usize,
    /// Providers asked (at most [`MAX_PEERS_ASKED`]; banned peers are not asked).
    pub peers_asked: usize,
    /// Providers that answered with results.
    pub peers_answered: usize,
    /// Providers whose request failed, or that refused (busy, error).
    pub peers_failed: usize,
    /// Entries dropped for a bad signature, another signer, or not matching.
    pub rejected_entries: usize,
    /// Entries of files past the cap on results, dropped.
    pub dropped_entries: usize,
    /// DHT requests the provider lookups sent.
    pub dht_requests: u32,
    /// Catalog requests sent.
    pub catalog_requests: u32,
    /// When the first result arrived, after the start.
    pub first_result: Option<Duration>,
    /// When the last new file or publisher arrived, after the start.
    pub last_result: Option<Duration>,
    /// How long the search ran.
    pub elapsed: Duration,
    /// Whether it ended at its deadline with lookups or requests still running.
    pub timed_out: bool,
}

impl Catalog {
    /// Starts a search for the words of `text` (split and lower-cased as names are) that
    /// runs at most `timeout`; events arrive on the returned channel, the last one
    /// [`SearchEvent::Done`]. Dropping the receiver ends the search.
    pub fn search(
        &self,
        text: &str,
        timeout: Duration,
    ) -> Result<mpsc::Receiver<SearchEvent>, CatalogError> {
        let request = CatalogRequest::search(text)?;
        let (events, receiver) = mpsc::channel(EVENT_QUEUE);
        let timeout = timeout.min(MAX_TIMEOUT);
        (self.inner.tasks).spawn_until_stop(self.clone().run_search(request, timeout, events));
        Ok(receiver)
    }

    async fn run_search(
        self,
        request: CatalogRequest,
        timeout: Duration,
        events: mpsc::Sender<SearchEvent>,
    ) {
        let started = Instant::now();
        let deadline = started + timeout;
        let CatalogRequest::Search { words } = &request else {
            return;
        };
        let words = words.clone();
        tracing::info!(
            ?words,
            timeout_secs = timeout.as_secs_f64(),
            "search started"
        );
        let net = self.inner.net.clone();
        let local = net.local_peer_id();
        let mut lookups = Vec::with_capacity(words.len());
        for word in &words {
            lookups.push(Some(
                net.find_providers_of(ProviderKey::Keyword(word.clone()))
                    .await,
            ));
        }
        let mut summary = SearchSummary {
            words: words.clone(),
            ..SearchSummary::default()
        };
        let mut results = Results::new(words.clone());
        let mut found: HashSet<PeerId> = HashSet::new();
        let mut queue: VecDeque<PeerId> = VecDeque::new();
        let mut asking = FuturesUnordered::new();
        let mut ended = Vec::with_capacity(lookups.len());
        loop {
            while asking.len() < CONCURRENCY {
                let Some(peer) = queue.pop_front() else { break };
                summary.peers_asked += 1;
                summary.catalog_requests += 1;
                let net = net.clone();
                let request = request.clone();
                asking
                    .push(async move { (peer, net.catalog_request(peer, request, vec![]).await) });
            }
            let searching = lookups.iter().any(Option::is_some);
            if !searching && asking.is_empty() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    summary.timed_out = true;
                    break;
                }
                () = events.closed() => {
                    tracing::debug!("search abandoned by its caller");
                    break;
                }
                provider = next_provider(&mut lookups, &mut ended), if searching => {
                    let Some(peer) = provider else { continue };
                    if peer == local || found.contains(&peer) || found.len() >= MAX_PEERS_FOUND {
                        continue;
                    }
                    found.insert(peer);
                    let asked_or_queued = summary.peers_asked + queue.len();
                    if asked_or_queued < MAX_PEERS_ASKED && !self.inner.transfers.is_banned(&peer) {
                        queue.push_back(peer);
                    }
                }
                Some((peer, answer)) = asking.next(), if !asking.is_empty() => {
                    let hits = self.take_answer(peer, answer, &words, &mut results, &mut summary);
                    for hit in hits {
                        let now = started.elapsed();
                        summary.first_result.get_or_insert(now);
                        summary.last_result = Some(now);
                        if tokio::time::timeout_at(deadline, events.send(SearchEvent::Hit(hit)))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        }
        drop(asking);
        ended.extend(lookups.into_iter().flatten());
        for lookup in ended {
            summary.dht_requests += lookup.finish().await;
        }
        summary.peers_found = found.len();
        summary.dropped_entries = results.dropped;
        summary.results = results.ranked();
        summary.elapsed = started.elapsed();
        tracing::info!(
            ?words,
            results = summary.results.len(),
            peers_asked = summary.peers_asked,
            peers_failed = summary.peers_failed,
            rejected = summary.rejected_entries,
            first_ms = summary.first_result.map(|d| d.as_millis() as u64),
            elapsed_ms = summary.elapsed.as_millis() as u64,
            timed_out = summary.timed_out,
            "search ended"
        );
        let _ = events.send(SearchEvent::Done(summary)).await;
    }

    /// Takes one provider's answer into the results; returns the results that changed.
    fn take_answer(
        &self,
        peer: PeerId,
        answer: Result<CatalogResponse, RequestError>,
        words: &[String],
        results: &mut Results,
        summary: &mut SearchSummary,
    ) -> Vec<SearchHit> {
        let response = match answer {
            Ok(response @ CatalogResponse::Results { .. }) => response,
            Ok(other) => {
                tracing::debug!(%peer, ?other, "search not answered");
                summary.peers_failed += 1;
                return Vec::new();
            }
            Err(e) => {
                tracing::debug!(%peer, "search request failed: {e}");
                summary.peers_failed += 1;
                return Vec::new();
            }
        };
        summary.peers_answered += 1;
        let checked = response.into_checked_entries(&peer.to_bytes(), Some(words));
        if checked.rejected > 0 {
            summary.rejected_entries += checked.rejected;
            self.inner
                .transfers
                .note_forged_entries(peer, u32::try_from(checked.rejected).unwrap_or(u32::MAX));
        }
        checked
            .entries
            .iter()
            .filter_map(|entry| results.add(peer, entry))
            .collect()
    }
}

/// The next provider any running lookup finds; `None` when one of them ended (it is
/// moved to `ended`, to be counted).
async fn next_provider(
    lookups: &mut [Option<ProviderLookup>],
    ended: &mut Vec<ProviderLookup>,
) -> Option<PeerId> {
    std::future::poll_fn(|cx| {
        for slot in lookups.iter_mut() {
            let Some(lookup) = slot else { continue };
            match lookup.found.poll_recv(cx) {
                Poll::Ready(Some(peer)) => return Poll::Ready(Some(peer)),
                Poll::Ready(None) => {
                    if let Some(done) = slot.take() {
                        ended.push(done);
                    }
                    return Poll::Ready(None);
                }
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
}
