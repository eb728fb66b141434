//! The transfer engine: what this node does with files and peers. [`Transfers`] is its
//! handle, and its public methods are the engine's operations, on domain types:
//!
//! - files ([`files`]): add (import and announce), list, remove, unpublish, read a
//!   complete file's chunks;
//! - downloads ([`downloads`]): fetch (or attach), start, pause, resume, cancel, list,
//!   each reported as a [`DownloadStatus`];
//! - folders ([`folder`]): add a directory as one CID, fetch a folder into a new one;
//! - peers ([`reputation`]): what this node thinks of each peer, bans, bytes exchanged.
//!
//! The work is done by [`fetch`] (one task per download), [`serve`] (the upload side,
//! with [`choke`] deciding upload slots) and [`rate`] (bandwidth caps). The store and the
//! network handles stay inside this module: callers ask for operations, not handles.

pub mod choke;
pub mod counters;
pub mod downloads;
mod error;
pub mod fetch;
pub mod files;
pub mod folder;
pub mod integrity;
pub mod picker;
pub mod rate;
pub mod reputation;
mod run_queue;
pub mod serve;
mod status;
pub mod stream;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chunk_store::{Store, StoreError};
use dht_proto::Bitfield;
use libp2p::PeerId;

use crate::network::Network;
use crate::tasks::Tasks;
use rate::RateLimiter;
use reputation::{PeerStanding, Reputation};

pub use downloads::{FetchParams, FetchTarget};
pub use error::EngineError;
pub use status::{DownloadState, DownloadStatus, Failure, FailureKind, RunPhase};

/// How long a peer that sent a corrupt chunk is refused.
pub const BAN_DURATION: Duration = Duration::from_secs(3600);

/// A peer's news about one file, passed from the upload side to a running download.
#[derive(Debug, Clone)]
pub enum PeerNews {
    /// The peer sent its whole bitfield.
    Bitfield(PeerId, Bitfield),
    /// The peer verified one more chunk.
    Have(PeerId, u32),
}

/// The engine's handle (cheap to clone).
#[derive(Clone)]
pub struct Transfers {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    net: Network,
    downloads: downloads::Registry,
    /// Folder fetches (`folder/`).
    folders: folder::Registry,
    /// Downloads running at once; the others wait, queued.
    run_queue: Arc<run_queue::RunQueue>,
    upload_limit: RateLimiter,
    download_limit: RateLimiter,
    reputation: Mutex<Reputation>,
    /// Which peers pass on the chunks this node, as a seed, sent them only.
    pass_on: Mutex<reputation::pass_on::PassOn>,
    /// Whether the table is saved to the store's peer ledger.
    persist_reputation: bool,
    /// Held while the table is written, so that an older copy never overwrites a newer.
    reputation_saving: tokio::sync::Mutex<()>,
    /// The daemon's task tree: download engines run in it.
    tasks: Tasks,
    /// Chunks verified and corrupt, for the metrics.
    chunk_counters: counters::ChunkCounters,
    /// Which peers may fetch private (password-shared) files.
    share_gate: Arc<crate::share::Gate>,
}

/// Verified bytes exchanged with one peer since the daemon started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerTraffic {
    /// Verified bytes it sent us.
    pub received: u64,
    /// Bytes we sent it.
    pub sent: u64,
}

/// Global bandwidth caps in bytes per second (`None`: unlimited).
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimits {
    /// Upload cap.
    pub upload: Option<u64>,
    /// Download cap.
    pub download: Option<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs a store operation on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(StoreError::Invalid(format!("store task failed: {e}"))))
}

/// A short name for a transfer-protocol answer, for logs and tests.
pub(crate) fn answer_name(response: &dht_proto::Response) -> &'static str {
    use dht_proto::Response;
    match response {
        Response::Manifest { .. } => "manifest",
        Response::Chunk { .. } => "chunk",
        Response::Bitfield { .. } => "bitfield",
        Response::Chunks { .. } => "chunks",
        Response::Ack => "ack",
        Response::NotFound => "not found",
        Response::Choked => "choked",
        Response::Cancelled => "cancelled",
        Response::Error { .. } => "error",
    }
}

impl Transfers {
    /// The engine over a store and a network. With `persist_reputation`, peer
    /// reputation is loaded from (once, at start: it reads the store) and saved to the
    /// store's peer ledger. Downloads run as tasks of `tasks`.
    pub fn new(
        store: Arc<Store>,
        net: Network,
        limits: RateLimits,
        persist_reputation: bool,
        tasks: Tasks,
    ) -> Self {
        let reputation = if persist_reputation {
            Reputation::load(&store).unwrap_or_else(|e| {
                tracing::warn!("cannot read the peer ledger, starting empty: {e}");
                Reputation::default()
            })
        } else {
            Reputation::default()
        };
        Transfers {
            inner: Arc::new(Inner {
                store,
                net,
                downloads: downloads::Registry::default(),
                folders: folder::Registry::default(),
                run_queue: run_queue::RunQueue::new(downloads::MAX_RUNNING),
                upload_limit: RateLimiter::new(limits.upload),
                download_limit: RateLimiter::new(limits.download),
                reputation: Mutex::new(reputation),
                pass_on: Mutex::default(),
                persist_reputation,
                reputation_saving: tokio::sync::Mutex::new(()),
                tasks,
                chunk_counters: counters::ChunkCounters::default(),
                share_gate: Arc::default(),
            }),
        }
    }

    /// Chunks verified and corrupt since the daemon started.
    pub fn chunk_counts(&self) -> counters::ChunkCounts {
        self.inner.chunk_counters.read()
    }

    fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    fn net(&self) -> &Network {
        &self.inner.net
    }

    /// Whether a download of the file `cid`, or a fetch of the folder `cid`, is queued
    /// or running.
    pub fn is_fetching(&self, cid: &dht_proto::Cid) -> bool {
        self.is_downloading(cid) || self.is_fetching_folder(cid)
    }

    /// Which peers may fetch private files; the upload side asks it about every request.
    pub fn share_gate(&self) -> Arc<crate::share::Gate> {
        self.inner.share_gate.clone()
    }

    fn upload_limit(&self) -> &RateLimiter {
        &self.inner.upload_limit
    }

    fn download_limit(&self) -> &RateLimiter {
        &self.inner.download_limit
    }

    /// Saves the peer records that changed since the last save to the store's ledger,
    /// in one transaction. The table's lock is held only to encode the changed records;
    /// the write runs on a blocking thread, one save at a time. Returns whether
    /// everything changed so far is saved.
    pub async fn save_reputation(&self) -> bool {
        if !self.inner.persist_reputation {
            return false;
        }
        let _one_at_a_time = self.inner.reputation_saving.lock().await;
        let Some(changes) = lock(&self.inner.reputation).changes() else {
            return true;
        };
        let store = self.store().clone();
        let result = tokio::task::spawn_blocking(move || {
            let written = changes.write(&store);
            (changes, written)
        })
        .await;
        match result {
            Ok((_, Ok(()))) => true,
            Ok((changes, Err(e))) => {
                tracing::warn!("cannot save peer reputation: {e}");
                lock(&self.inner.reputation).unsaved(changes);
                false
            }
            Err(e) => {
                tracing::warn!("cannot save peer reputation: {e}");
                false
            }
        }
    }

    /// Moves a `reputation.json` left by an older version into the ledger, then deletes
    /// it once saved.
    pub async fn import_legacy_reputation(&self, path: &Path) {
        if !lock(&self.inner.reputation).import_legacy(path) {
            return;
        }
        if self.save_reputation().await {
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(path = %path.display(), "cannot delete the old reputation file: {e}");
            }
        }
    }

    /// Every peer this node has dealt with, with its score, best first.
    pub fn reputation(&self) -> Vec<PeerStanding> {
        let mut table = lock(&self.inner.reputation).standings();
        reputation::best_first(&mut table);
        table
    }

    /// Counts a failed or timed-out request to a peer.
    fn note_failure(&self, peer: PeerId) {
        lock(&self.inner.reputation).failure(peer);
    }

    /// Counts a chunk a peer advertised and then did not have (which bans it after
    /// [`reputation::MAX_FALSE_HAVES`] of them). Returns whether it is banned now.
    fn note_refusal(&self, peer: PeerId) -> bool {
        let banned = lock(&self.inner.reputation).refusal(peer);
        if banned {
            tracing::warn!(%peer, "peer banned: {}", reputation::REASON_FALSE_HAVE);
            self.save_reputation_soon();
        }
        banned
    }

    /// Counts a chunk request a peer answered `Choked`.
    fn note_choked(&self, peer: PeerId) {
        lock(&self.inner.reputation).choked(peer);
    }

    /// This node's score for a peer and how it takes without giving, if it does (see
    /// [`reputation::rules`]); `(0, Taking::No)` for a peer never seen.
    pub fn peer_judgement(&self, peer: &PeerId) -> (f64, reputation::rules::Taking) {
        let table = lock(&self.inner.reputation);
        table
            .get(peer)
            .map_or((0.0, reputation::rules::Taking::No), |r| {
                (
                    r.score_at(reputation::now_unix()),
                    reputation::rules::taking(r),
                )
            })
    }

    /// Counts catalog entries a peer sent that failed their checks (not signed by it, or
    /// not matching the search): each costs it reputation.
    pub fn note_forged_entries(&self, peer: PeerId, entries: u32) {
        tracing::warn!(%peer, entries, "peer sent catalog entries it did not sign");
        lock(&self.inner.reputation).forged_entries(peer, entries);
    }

    /// Counts verified bytes a peer sent us.
    fn note_received(&self, peer: PeerId, bytes: u64) {
        lock(&self.inner.reputation).received(peer, bytes);
    }

    /// Counts bytes we sent a peer.
    fn note_sent(&self, peer: PeerId, bytes: u64) {
        lock(&self.inner.reputation).sent(peer, bytes);
    }

    /// Bytes exchanged with every peer so far.
    pub fn traffic(&self) -> HashMap<PeerId, PeerTraffic> {
        lock(&self.inner.reputation)
            .iter()
            .map(|(peer, r)| {
                (
                    *peer,
                    PeerTraffic {
                        received: r.received,
                        sent: r.sent,
                    },
                )
            })
            .collect()
    }

    /// Bans a peer that sent corrupt data for [`BAN_DURATION`].
    fn ban(&self, peer: PeerId) {
        tracing::warn!(%peer, "peer banned for sending corrupt data");
        lock(&self.inner.reputation).corrupt(peer, BAN_DURATION);
        self.save_reputation_soon();
    }

    /// Saves the ledger now, in the background: a ban must survive a crash that comes
    /// before the next periodic save.
    fn save_reputation_soon(&self) {
        let transfers = self.clone();
        tokio::spawn(async move {
            transfers.save_reputation().await;
        });
    }

    /// Whether a peer is banned now.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        lock(&self.inner.reputation).is_banned(peer)
    }
}
