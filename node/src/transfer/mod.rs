//! The transfer engine: downloads ([`fetch`]) and uploads ([`serve`]), and the state they
//! share ([`Transfers`]): live bitfields of downloads in progress, what peers told us
//! they hold, who is banned.

pub mod choke;
pub mod fetch;
pub mod picker;
pub mod rate;
pub mod reputation;
pub mod serve;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chunk_store::Store;
use dht_proto::{Bitfield, Cid};
use libp2p::PeerId;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::network::Network;
use crate::tasks::Tasks;
use rate::RateLimiter;
use reputation::{PeerReputation, Reputation};

/// How long a peer that sent a corrupt chunk is refused.
pub const BAN_DURATION: Duration = Duration::from_secs(3600);

/// Bytes one peer contributed to a download.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PeerBytes {
    /// The peer.
    pub peer_id: String,
    /// Verified bytes received from it.
    pub bytes: u64,
}

/// Where a download stands.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DownloadState {
    /// Looking for providers and the manifest.
    Finding,
    /// Transferring chunks.
    Downloading,
    /// Finished; the file is in place.
    Done,
    /// Gave up; see `error`.
    Failed,
}

/// A snapshot of a download, streamed to the CLI and the web UI.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// The file.
    pub cid: String,
    /// Its name, once known.
    pub name: Option<String>,
    /// Where it stands.
    pub state: DownloadState,
    /// File size (0 until the manifest is known).
    pub size: u64,
    /// Chunks in the file.
    pub chunks_total: u32,
    /// Chunks verified and stored.
    pub chunks_done: u32,
    /// Bytes verified and stored (including any held before this run).
    pub bytes_done: u64,
    /// Verified bytes received over the network in this run.
    pub bytes_received: u64,
    /// Current rate in bytes per second.
    pub rate: f64,
    /// Estimated seconds left.
    pub eta_secs: Option<f64>,
    /// Peers sending to us now.
    pub peers: usize,
    /// Verified bytes per peer in this run.
    pub per_peer: Vec<PeerBytes>,
    /// Seconds since this run started.
    pub elapsed_secs: f64,
    /// Where the file goes.
    pub output: Option<PathBuf>,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether the failure was the caller's input (exit code 2) rather than the network.
    pub bad_input: bool,
}

impl Progress {
    fn new(cid: &Cid) -> Self {
        Progress {
            cid: cid.to_string(),
            name: None,
            state: DownloadState::Finding,
            size: 0,
            chunks_total: 0,
            chunks_done: 0,
            bytes_done: 0,
            bytes_received: 0,
            rate: 0.0,
            eta_secs: None,
            peers: 0,
            per_peer: Vec::new(),
            elapsed_secs: 0.0,
            output: None,
            error: None,
            bad_input: false,
        }
    }

    /// Whether the download has ended.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, DownloadState::Done | DownloadState::Failed)
    }
}

/// A peer's news about one file, passed from the upload side to a running download.
#[derive(Debug, Clone)]
pub enum PeerNews {
    /// The peer sent its whole bitfield.
    Bitfield(PeerId, Bitfield),
    /// The peer verified one more chunk.
    Have(PeerId, u32),
}

struct ActiveDownload {
    progress: watch::Receiver<Progress>,
    have: Arc<Mutex<Bitfield>>,
    news: mpsc::Sender<PeerNews>,
    /// Peers that asked for our bitfield: they want `Have` messages.
    interested: Arc<Mutex<HashSet<PeerId>>>,
    /// Set to `true` to stop the download (its verified chunks stay saved).
    cancel: watch::Sender<bool>,
}

/// State shared by downloads and uploads.
#[derive(Clone)]
pub struct Transfers {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    net: Network,
    active: Mutex<HashMap<Cid, ActiveDownload>>,
    upload_limit: RateLimiter,
    download_limit: RateLimiter,
    reputation: Mutex<Reputation>,
    reputation_path: Option<PathBuf>,
    /// The daemon's task tree: download engines run in it.
    tasks: Tasks,
}

/// Verified bytes exchanged with one peer since the daemon started.
#[derive(Debug, Clone, Copy, Default, Serialize)]
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

impl Transfers {
    /// Shared state over a store and a network. Peer reputation is loaded from and
    /// saved to `reputation_path` when given. Downloads run as tasks of `tasks`.
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
                active: Mutex::new(HashMap::new()),
                upload_limit: RateLimiter::new(limits.upload),
                download_limit: RateLimiter::new(limits.download),
                reputation: Mutex::new(reputation),
                reputation_path,
                tasks,
            }),
        }
    }

    /// Saves peer reputation if it changed since the last save.
    pub fn save_reputation(&self) {
        if let Some(path) = &self.inner.reputation_path {
            if let Err(e) = lock(&self.inner.reputation).save(path) {
                tracing::warn!(path = %path.display(), "cannot save peer reputation: {e}");
            }
        }
    }

    /// Every peer this node has dealt with, with its score, best first.
    pub fn reputation(&self) -> Vec<PeerReputation> {
        lock(&self.inner.reputation).table()
    }

    /// Counts a failed or timed-out request to a peer.
    pub fn note_failure(&self, peer: PeerId) {
        lock(&self.inner.reputation).failure(peer);
    }

    /// Counts catalog entries a peer sent that failed their checks (not signed by it, or
    /// not matching the search): each costs it reputation.
    pub fn note_forged_entries(&self, peer: PeerId, entries: u32) {
        tracing::warn!(%peer, entries, "peer sent catalog entries it did not sign");
        lock(&self.inner.reputation).forged_entries(peer, entries);
    }

    /// Counts a request a peer refused.
    pub fn note_refusal(&self, peer: PeerId) {
        lock(&self.inner.reputation).refusal(peer);
    }

    /// The upload cap.
    pub fn upload_limit(&self) -> &RateLimiter {
        &self.inner.upload_limit
    }

    /// The download cap.
    pub fn download_limit(&self) -> &RateLimiter {
        &self.inner.download_limit
    }

    /// Counts verified bytes a peer sent us.
    pub fn note_received(&self, peer: PeerId, bytes: u64) {
        lock(&self.inner.reputation).received(peer, bytes);
    }

    /// Counts bytes we sent a peer.
    pub fn note_sent(&self, peer: PeerId, bytes: u64) {
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

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// The network.
    pub fn net(&self) -> &Network {
        &self.inner.net
    }

    /// Bans a peer that sent corrupt data for [`BAN_DURATION`].
    pub fn ban(&self, peer: PeerId) {
        tracing::warn!(%peer, "peer banned for sending corrupt data");
        lock(&self.inner.reputation).corrupt(peer, BAN_DURATION);
    }

    /// Whether a peer is banned now.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        lock(&self.inner.reputation).is_banned(peer)
    }

    /// The live bitfield of a download in progress that knows its manifest. Finished
    /// downloads answer from the store instead.
    pub fn live_have(&self, cid: &Cid) -> Option<Bitfield> {
        let active = lock(&self.inner.active);
        let download = active.get(cid)?;
        if download.progress.borrow().is_finished() {
            return None;
        }
        let have = lock(&download.have).clone();
        (!have.is_empty()).then_some(have)
    }

    /// Passes a peer's news to the download of `cid`, if one runs; remembers that a peer
    /// that sent its bitfield wants our `Have` messages.
    pub fn peer_news(&self, cid: &Cid, news: PeerNews) {
        let active = lock(&self.inner.active);
        if let Some(d) = active.get(cid) {
            if let PeerNews::Bitfield(peer, _) = &news {
                lock(&d.interested).insert(*peer);
            }
            let _ = d.news.try_send(news);
        }
    }

    /// Progress of every download this daemon has run since it started.
    pub fn downloads(&self) -> Vec<Progress> {
        lock(&self.inner.active)
            .values()
            .map(|d| d.progress.borrow().clone())
            .collect()
    }

    /// Stops the running download of `cid`: it saves what it verified and ends as
    /// failed ("stopped"), so a later fetch resumes it. Returns whether one was running.
    pub fn cancel(&self, cid: &Cid) -> bool {
        let active = lock(&self.inner.active);
        match active.get(cid) {
            Some(d) if !d.progress.borrow().is_finished() => {
                let _ = d.cancel.send(true);
                true
            }
            _ => false,
        }
    }

    /// Progress of one download.
    pub fn download(&self, cid: &Cid) -> Option<watch::Receiver<Progress>> {
        lock(&self.inner.active)
            .get(cid)
            .map(|d| d.progress.clone())
    }
}
