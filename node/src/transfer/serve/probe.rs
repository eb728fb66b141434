//! Probes by the upload side. A download probes the peers it gave data to and that
//! never gave any back, among its sources (`fetch/requests.rs`); a node that finished,
//! or the first seeder, downloads nothing, and a download may never count among its
//! sources a peer that asks it for chunks: either would serve a freeloader in full,
//! never having asked it anything. So the upload side asks such a peer
//! ([`rules::is_worth_probing`](crate::transfer::reputation::rules::is_worth_probing))
//! for a chunk it announced (a `Have`, or its bitfield) of a file this node holds whole
//! or downloads, even one this node holds: an answer that matches the manifest counts
//! as given (the peer is not asked again), a `Choked` as a refusal, and after a few
//! refusals the peer is a taker here too. A `NotFound` proves no lie: the peer may have
//! deleted the file since it announced the chunk (a `Have` is not a promise to keep
//! it), so the announcement is forgotten and the peer is not probed again until it
//! announces another chunk.
//!
//! Bounded: [`MAX_KNOWN`] peers remembered, [`MAX_PROBES`] probes at once, one per peer
//! every [`PROBE_EVERY`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dht_proto::{Bitfield, Cid, Request, Response};
use libp2p::PeerId;

use crate::network::Reply;
use crate::transfer::{lock, Transfers};

/// Peers whose last announced chunk is remembered; past this, new peers are not.
pub const MAX_KNOWN: usize = 1024;
/// Probes in flight at once.
pub const MAX_PROBES: usize = 2;
/// A peer is probed at most this often: its refusals are spread over a few of its
/// rechokes, so that an honest peer whose slots were taken when first asked has unchoked
/// us (we give it the most) before it is judged.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct Inner {
    /// A chunk each peer announced holding.
    held: HashMap<PeerId, (Cid, u32)>,
    in_flight: HashSet<PeerId>,
    last: HashMap<PeerId, Instant>,
}

/// The seed's probes (cheap to clone).
#[derive(Debug, Clone, Default)]
pub(super) struct SeedProbes {
    inner: Arc<Mutex<Inner>>,
}

impl SeedProbes {
    /// `peer` announced holding chunk `index` of `cid`.
    pub(super) fn announced(&self, peer: PeerId, cid: Cid, index: u32) {
        let mut inner = lock(&self.inner);
        if inner.held.len() < MAX_KNOWN || inner.held.contains_key(&peer) {
            inner.held.insert(peer, (cid, index));
        }
    }

    /// `peer` sent its bitfield of `cid`.
    pub(super) fn bitfield(&self, peer: PeerId, cid: Cid, have: &Bitfield) {
        if let Some(index) = have.iter_set().next() {
            self.announced(peer, cid, index);
        }
    }

    /// `peer` disconnected.
    pub(super) fn left(&self, peer: &PeerId) {
        let mut inner = lock(&self.inner);
        inner.held.remove(peer);
        inner.last.remove(peer);
    }

    /// Starts the probes that are due: peers worth probing, holding a chunk of a file
    /// this node holds or downloads (`ours`), not probed within [`PROBE_EVERY`].
    pub(super) fn start_due(&self, transfers: &Transfers, ours: impl Fn(&Cid) -> bool) {
        let now = Instant::now();
        let due: Vec<(PeerId, Cid, u32)> = {
            let inner = lock(&self.inner);
            if inner.in_flight.len() >= MAX_PROBES {
                return;
            }
            inner
                .held
                .iter()
                .filter(|(peer, _)| {
                    !inner.in_flight.contains(*peer)
                        && inner
                            .last
                            .get(*peer)
                            .is_none_or(|t| now.saturating_duration_since(*t) >= PROBE_EVERY)
                })
                .map(|(peer, (cid, index))| (*peer, *cid, *index))
                .collect()
        };
        let mut free = MAX_PROBES.saturating_sub(lock(&self.inner).in_flight.len());
        for (peer, cid, index) in due {
            if free == 0 {
                break;
            }
            if !transfers.worth_probing(&peer) || !ours(&cid) {
                continue;
            }
            free -= 1;
            {
                let mut inner = lock(&self.inner);
                inner.in_flight.insert(peer);
                inner.last.insert(peer, now);
            }
            let probes = self.clone();
            let transfers = transfers.clone();
            tokio::spawn(async move {
                let still_held = probe(&transfers, peer, cid, index).await;
                let mut inner = lock(&probes.inner);
                inner.in_flight.remove(&peer);
                if !still_held && inner.held.get(&peer) == Some(&(cid, index)) {
                    inner.held.remove(&peer);
                }
            });
        }
    }
}

/// Asks `peer` for a chunk this node holds and counts what it answers; returns `false`
/// when the peer says it no longer holds the chunk.
async fn probe(transfers: &Transfers, peer: PeerId, cid: Cid, index: u32) -> bool {
    tracing::debug!(%peer, %cid, index, "seed probing a peer that never gave us anything");
    let answer = transfers
        .net()
        .request(peer, Request::Chunk { cid, index })
        .await;
    match answer {
        Ok(Reply::Chunk(data)) => {
            let store = transfers.store().clone();
            let manifest = tokio::task::spawn_blocking(move || store.manifest(&cid)).await;
            match manifest {
                Ok(Ok(Some(m))) if m.verify_chunk(index, data.as_slice()) => {
                    transfers.note_received(peer, data.len() as u64);
                }
                // Not the chunk (or no manifest to check it with): no credit.
                _ => tracing::debug!(%peer, index, "probe answered with other bytes"),
            }
        }
        Ok(Reply::Message(Response::Choked)) => transfers.note_choked(peer),
        Ok(Reply::Message(Response::NotFound)) => return false,
        Ok(Reply::Message(_)) | Err(_) => {}
    }
    true
}
