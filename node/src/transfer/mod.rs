//! The transfer engine: what this node does with files and peers. [`Transfers`] is its
//! handle, and its public methods are the engine's operations, on domain types:
//!
//! - files ([`files`]): add (import and announce), list, remove, unpublish, read a
//!   complete file's chunks;
//! - downloads ([`downloads`]): fetch (or attach), start, pause, resume, cancel, list,
//!   each reported as a [`DownloadStatus`];
//! - peers ([`reputation`]): what this node thinks of each peer, bans, bytes exchanged.
//!
//! The work is done by [`fetch`] (one task per download), [`serve`] (the upload side,
//! with [`choke`] deciding upload slots) and [`rate`] (bandwidth caps). The store and the
//! network handles stay inside this module: callers ask for operations, not handles.

pub mod choke;
pub mod downloads;
mod error;
pub mod fetch;
pub mod files;
pub mod picker;
pub mod rate;
pub mod reputation;
pub mod serve;
mod status;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chunk_store::{Store, StoreError};
use dht_proto::Bitfield;
use libp2p::PeerId;
use tokio::sync::Semaphore;

use crate::network::Network;
use crate::tasks::Tasks;
use rate::RateLimiter;
use reputation::{PeerStanding, Reputation};

pub use downloads::FetchParams;
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
    /// Downloads running at once; the others wait, queued.
    run_slots: Arc<Semaphore>,
    upload_limit: RateLimiter,
    download_limit: RateLimiter,
    reputation: Mutex<Reputation>,
    reputation_path: Option<PathBuf>,
    /// Held while the table is written, so that an older copy never overwrites a newer.
    reputation_saving: tokio::sync::Mutex<()>,
    /// The daemon's task tree: download engines run in it.
    tasks: Tasks,
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
        Response::Ack => "ack",
        Response::NotFound => "not found",
        Response::Choked => "choked",
        Response::Cancelled => "cancelled",
        Response::Error { .. } => "error",
    }
}

impl Transfers {
    /// The engine over a store and a network. Peer reputation is loaded from and saved
    /// to `reputation_path` when given. Downloads run as tasks of `tasks`.
    pub fn new(
        store: Arc<Store>,
        net: Network,
        limits: RateLimits,
        reputation_path: Option<PathBuf>,
        tasks: Tasks,
    ) -> Self {
        let reputation = reputation_path
            .as_deref()
            .map(Reputation::load)
            .unwrap_or_default();
        Transfers {
            inner: Arc::new(Inner {
                store,
                net,
                downloads: downloads::Registry::default(),
                run_slots: Arc::new(Semaphore::new(downloads::MAX_RUNNING)),
                upload_limit: RateLimiter::new(limits.upload),
                download_limit: RateLimiter::new(limits.download),
                reputation: Mutex::new(reputation),
                reputation_path,
                reputation_saving: tokio::sync::Mutex::new(()),
                tasks,
            }),
        }
    }

    fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    fn net(&self) -> &Network {
        &self.inner.net
    }

    fn upload_limit(&self) -> &RateLimiter {
        &self.inner.upload_limit
    }

    fn download_limit(&self) -> &RateLimiter {
        &self.inner.download_limit
    }

    /// Saves peer reputation if it changed since the last save. The table's lock is held
    /// only to copy it; encoding and writing run on a blocking thread, one save at a time.
    pub async fn save_reputation(&self) {
        let Some(path) = self.inner.reputation_path.clone() else {
            return;
        };
        let _one_at_a_time = self.inner.reputation_saving.lock().await;
        let Some(changes) = lock(&self.inner.reputation).changes() else {
            return;
        };
        let written = tokio::task::spawn_blocking({
            let path = path.clone();
            move || changes.write(&path)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), "cannot save peer reputation: {e}");
            lock(&self.inner.reputation).unsaved();
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

    /// Counts catalog entries a peer sent that failed their checks (not signed by it, or
    /// not matching the search): each costs it reputation.
    pub fn note_forged_entries(&self, peer: PeerId, entries: u32) {
        tracing::warn!(%peer, entries, "peer sent catalog entries it did not sign");
        lock(&self.inner.reputation).forged_entries(peer, entries);
    }

    /// Counts a request a peer refused.
    fn note_refusal(&self, peer: PeerId) {
        lock(&self.inner.reputation).refusal(peer);
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
    }

    /// Whether a peer is banned now.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        lock(&self.inner.reputation).is_banned(peer)
    }
}
