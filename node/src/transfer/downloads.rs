//! The engine's downloads: the [`Registry`] of every download run since the daemon
//! started, and the operations on them (fetch or attach, start, pause, resume, cancel,
//! list). Each download runs as one task ([`super::fetch`]); the registry keeps what is
//! needed to watch it, stop it, restart it with the same parameters, and link it to the
//! upload side (its live bitfield, the peers that want its `Have`s, peers' news).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chunk_store::EntryState;
use dht_proto::{Bitfield, Cid};
use libp2p::PeerId;
use tokio::sync::{mpsc, watch};

use super::status::{DownloadState, DownloadStatus};
use super::{blocking, lock, EngineError, PeerNews, Transfers};

mod saved;

/// Downloads running at once; more wait in [`DownloadState::Queued`].
pub const MAX_RUNNING: usize = 16;
/// Downloads kept for listing; past this, the ended ones are forgotten, and a new one is
/// refused while all are unfinished.
pub const MAX_LISTED: usize = 256;
/// Peer news queued for one download (bitfields and `Have`s); more are dropped.
const NEWS_QUEUE: usize = 1024;
/// Peers one download sends its `Have`s to; past this, a peer that sends its bitfield
/// still gets ours, but no `Have`s.
pub const MAX_INTERESTED: usize = 256;
/// How long pause and cancel wait for a download to save what it holds and stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the caller asked for, of a file or a folder: which one, where to write it and
/// how long to wait for progress.
#[derive(Debug, Clone)]
pub struct FetchTarget {
    /// The file or folder.
    pub cid: Cid,
    /// Where to write it. A file: `None` keeps it in the store only. A folder: the
    /// directory to create for its tree (it must not exist, unless an unfinished fetch
    /// of this folder writes there: then it resumes).
    pub output: Option<PathBuf>,
    /// A directory to write it in under the name the provider gives (used when `output`
    /// is `None`).
    pub output_dir: Option<PathBuf>,
    /// Give up after this long without progress (a folder: each of its files).
    pub timeout: Duration,
}

/// One file download as the engine runs it: the caller's target, and how a folder
/// fetch runs its files.
#[derive(Debug, Clone)]
pub struct FetchParams {
    /// The file, where to write it, how long to wait.
    pub target: FetchTarget,
    /// A file of a folder fetch: not listed in the catalog on its own (the folder is),
    /// and not saved for the daemon to resume by itself at start (the folder fetch
    /// resumes it, after checking its target again).
    pub in_folder: bool,
    /// Peers likely to hold the file (a folder's providers, for its files): asked at
    /// once, and while there are some the download makes no DHT lookup before it
    /// starts (later ones may still add sources).
    pub sources: Vec<PeerId>,
}

impl From<FetchTarget> for FetchParams {
    /// A download of its own (not a folder's file), with no known sources.
    fn from(target: FetchTarget) -> Self {
        FetchParams {
            target,
            in_folder: false,
            sources: Vec::new(),
        }
    }
}

/// How the owner stops a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// Keep the verified chunks; `resume` continues.
    Pause,
    /// Delete what was fetched.
    Cancel,
    /// The daemon stops: as a pause, but the download stays saved as unfinished, so
    /// that the next start resumes it.
    Shutdown,
}

/// What a download's task shares with the rest of the engine.
pub(super) struct DownloadShared {
    /// The verified chunks (empty until the manifest is known).
    pub have: Mutex<Bitfield>,
    /// Peers that asked for our bitfield: they want our `Have`s.
    pub interested: Mutex<HashSet<PeerId>>,
    /// Whether the file may be announced (cleared by `unpublish`).
    pub published: AtomicBool,
    /// Chunks a reader of the file waits for: fetched before any other (see `stream`).
    pub urgent: Mutex<Vec<u32>>,
}

impl DownloadShared {
    fn new() -> Self {
        DownloadShared {
            have: Mutex::new(Bitfield::new(0)),
            interested: Mutex::new(HashSet::new()),
            published: AtomicBool::new(true),
            urgent: Mutex::new(Vec::new()),
        }
    }

    /// Remembers that `peer` wants our `Have`s, if there is room. Returns whether it
    /// will get them.
    fn note_interested(&self, peer: PeerId) -> bool {
        let mut interested = lock(&self.interested);
        if interested.len() >= MAX_INTERESTED && !interested.contains(&peer) {
            return false;
        }
        interested.insert(peer);
        true
    }
}

/// The ends a download's task holds.
pub(super) struct TaskLink {
    pub status: watch::Sender<DownloadStatus>,
    pub stop: watch::Receiver<Option<Stop>>,
    pub news: mpsc::Receiver<PeerNews>,
    pub shared: Arc<DownloadShared>,
}

/// One download, as the registry keeps it.
struct Download {
    /// Kept so that `resume` continues with the same output.
    params: FetchParams,
    status: watch::Sender<DownloadStatus>,
    stop: watch::Sender<Option<Stop>>,
    news: mpsc::Sender<PeerNews>,
    shared: Arc<DownloadShared>,
}

impl Download {
    fn state(&self) -> DownloadState {
        self.status.borrow().state.clone()
    }
}

/// Every download run since the daemon started (at most [`MAX_LISTED`]).
#[derive(Default)]
pub(super) struct Registry {
    downloads: Mutex<HashMap<Cid, Download>>,
}

impl Transfers {
    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<Cid, Download>> {
        lock(&self.inner.downloads.downloads)
    }

    /// Starts downloading a file, or attaches to its running download; returns its
    /// status, updated as it goes. A running download to another output is refused.
    pub fn fetch(
        &self,
        params: FetchParams,
    ) -> Result<watch::Receiver<DownloadStatus>, EngineError> {
        let mut downloads = self.registry();
        let target = &params.target;
        if let Some(existing) = downloads.get(&target.cid) {
            let status = existing.status.borrow();
            if !status.state.has_ended() {
                if target.output.is_some() && status.output != target.output {
                    return Err(EngineError::DownloadingElsewhere {
                        cid: target.cid,
                        output: status.output.clone(),
                    });
                }
                return Ok(existing.status.subscribe());
            }
            if finished_at(&status, target.output.as_deref()) {
                // The same fetch again, after this download (resumed by itself after a
                // restart, say) put the file there: it is done.
                return Ok(existing.status.subscribe());
            }
        }
        self.launch(&mut downloads, params)
    }

    /// Whether a download of `cid` is writing to `output` now, or finished there and the
    /// file is still in place: fetching `cid` to `output` again is then no conflict.
    pub fn is_download_output(&self, cid: &Cid, output: &Path) -> bool {
        self.registry().get(cid).is_some_and(|d| {
            let status = d.status.borrow();
            status.output.as_deref() == Some(output)
                && (!status.state.has_ended() || finished_at(&status, Some(output)))
        })
    }

    /// Starts downloading a file into the store, or attaches to its running download.
    /// A paused or failed download continues with the output it had; `timeout` replaces
    /// its timeout when given.
    pub fn start(
        &self,
        cid: Cid,
        timeout: Duration,
    ) -> Result<watch::Receiver<DownloadStatus>, EngineError> {
        let mut downloads = self.registry();
        let mut params = FetchParams::from(FetchTarget {
            cid,
            output: None,
            output_dir: None,
            timeout,
        });
        if let Some(existing) = downloads.get(&cid) {
            match existing.state() {
                DownloadState::Paused | DownloadState::Failed(_) => {
                    params = existing.params.clone();
                    params.target.timeout = timeout;
                }
                DownloadState::Done | DownloadState::Cancelled => {}
                _ => return Ok(existing.status.subscribe()),
            }
        }
        self.launch(&mut downloads, params)
    }

    /// Registers a new run of a download and spawns its task.
    fn launch(
        &self,
        downloads: &mut HashMap<Cid, Download>,
        params: FetchParams,
    ) -> Result<watch::Receiver<DownloadStatus>, EngineError> {
        let cid = params.target.cid;
        if downloads.len() >= MAX_LISTED && !downloads.contains_key(&cid) {
            // Ended downloads stay listed for the API and UI, but not without bound.
            downloads.retain(|_, d| !d.state().has_ended());
            if downloads.len() >= MAX_LISTED {
                return Err(EngineError::TooManyDownloads(downloads.len()));
            }
        }
        let mut initial = DownloadStatus::new(cid, DownloadState::Queued);
        // A restarted download shows what it held until it knows more.
        if let Some(previous) = downloads.get(&cid) {
            let before = previous.status.borrow();
            initial.name = before.name.clone();
            initial.size = before.size;
            initial.chunks_total = before.chunks_total;
            initial.chunks_done = before.chunks_done;
            initial.bytes_done = before.bytes_done;
        }
        initial.output = params.target.output.clone();
        let (status, status_rx) = watch::channel(initial);
        let (stop, stop_rx) = watch::channel(None);
        let (news, news_rx) = mpsc::channel(NEWS_QUEUE);
        let shared = Arc::new(DownloadShared::new());
        downloads.insert(
            cid,
            Download {
                params: params.clone(),
                status: status.clone(),
                stop,
                news,
                shared: shared.clone(),
            },
        );
        super::fetch::spawn(
            self.clone(),
            params,
            TaskLink {
                status,
                stop: stop_rx,
                news: news_rx,
                shared,
            },
        );
        Ok(status_rx)
    }

    /// Forgets an ended download (a fetch that found a folder: it is no download).
    pub(super) fn forget_ended(&self, cid: &Cid) {
        let mut downloads = self.registry();
        if downloads.get(cid).is_some_and(|d| d.state().has_ended()) {
            downloads.remove(cid);
        }
    }

    /// Every download run since the daemon started, the most recently started first.
    pub fn downloads(&self) -> Vec<DownloadStatus> {
        let mut list: Vec<DownloadStatus> = self
            .registry()
            .values()
            .map(|d| d.status.borrow().clone())
            .collect();
        list.sort_by_key(|d| d.elapsed);
        list
    }

    /// One download's status now.
    pub fn download(&self, cid: &Cid) -> Option<DownloadStatus> {
        self.registry().get(cid).map(|d| d.status.borrow().clone())
    }

    /// One download's status, updated as it goes.
    pub fn watch_download(&self, cid: &Cid) -> Option<watch::Receiver<DownloadStatus>> {
        self.registry().get(cid).map(|d| d.status.subscribe())
    }

    /// Pauses a download: it withdraws its requests, saves its verified chunks and
    /// stops; [`Transfers::resume`] continues it. Pausing a paused download changes
    /// nothing.
    pub async fn pause(&self, cid: &Cid) -> Result<DownloadStatus, EngineError> {
        let mut status = {
            let downloads = self.registry();
            let download = downloads.get(cid).ok_or(EngineError::NoDownload(*cid))?;
            match download.state() {
                DownloadState::Paused => return Ok(download.status.borrow().clone()),
                state if state.has_ended() => return Err(EngineError::NotRunning(*cid)),
                _ => {}
            }
            download.stop.send_replace(Some(Stop::Pause));
            download.status.subscribe()
        };
        let ended = wait_until_ended(cid, &mut status).await?;
        tracing::info!(%cid, "download paused");
        Ok(ended)
    }

    /// Tells every download that is queued or running to stop as a pause does (withdraw
    /// its requests, save what it verified), without waiting: the daemon stops.
    pub fn stop_downloads(&self) {
        for download in self.registry().values() {
            if !download.state().has_ended() {
                download.stop.send_replace(Some(Stop::Shutdown));
            }
        }
    }

    /// Continues a paused or failed download where it stopped, with the output it had.
    pub fn resume(&self, cid: &Cid) -> Result<DownloadStatus, EngineError> {
        let mut downloads = self.registry();
        let download = downloads.get(cid).ok_or(EngineError::NoDownload(*cid))?;
        let params = match download.state() {
            DownloadState::Paused | DownloadState::Failed(_) => download.params.clone(),
            DownloadState::Done => return Err(EngineError::Complete(*cid)),
            DownloadState::Cancelled => return Err(EngineError::Cancelled(*cid)),
            _ => return Err(EngineError::Running(*cid)),
        };
        let status = self.launch(&mut downloads, params)?;
        let now = status.borrow().clone();
        Ok(now)
    }

    /// Cancels a download: stops it if it runs and deletes what it fetched. A finished
    /// download is left as it is (its file stays).
    pub async fn cancel(&self, cid: &Cid) -> Result<DownloadStatus, EngineError> {
        let mut status = {
            let downloads = self.registry();
            let download = downloads.get(cid).ok_or(EngineError::NoDownload(*cid))?;
            match download.state() {
                DownloadState::Done | DownloadState::Cancelled => {
                    return Ok(download.status.borrow().clone())
                }
                // Ended: nothing runs, so the data can be deleted here.
                DownloadState::Paused | DownloadState::Failed(_) => None,
                _ => {
                    download.stop.send_replace(Some(Stop::Cancel));
                    Some(download.status.subscribe())
                }
            }
        };
        let ended = match &mut status {
            // The task deletes the data itself, once it has stopped writing.
            Some(status) => wait_until_ended(cid, status).await?,
            None => {
                self.delete_partial(*cid).await?;
                let (params, now) = {
                    let downloads = self.registry();
                    let download = downloads.get(cid).ok_or(EngineError::NoDownload(*cid))?;
                    download
                        .status
                        .send_modify(|s| s.state = DownloadState::Cancelled);
                    let now = download.status.borrow().clone();
                    (download.params.clone(), now)
                };
                self.save_download(&params, &now).await;
                now
            }
        };
        tracing::info!(%cid, "download cancelled");
        Ok(ended)
    }

    /// Deletes a partial download's data and stops announcing it (a complete file is
    /// left alone). Returns whether there was one.
    pub(super) async fn delete_partial(&self, cid: Cid) -> Result<bool, EngineError> {
        let store = self.store().clone();
        let partial = blocking(move || {
            Ok(store
                .info(&cid)?
                .is_some_and(|e| matches!(e.state, EntryState::Partial { .. })))
        })
        .await?;
        if partial {
            self.net().stop_providing(cid).await;
            let store = self.store().clone();
            blocking(move || store.remove(&cid)).await?;
        }
        Ok(partial)
    }

    /// Whether a download of `cid` is queued or running.
    pub(super) fn is_downloading(&self, cid: &Cid) -> bool {
        self.registry()
            .get(cid)
            .is_some_and(|d| !d.state().has_ended())
    }

    /// Forbids a download of `cid` that is queued or running to announce the file.
    /// Returns whether there was one.
    pub(super) fn withhold_announcements(&self, cid: &Cid) -> bool {
        match self.registry().get(cid) {
            Some(d) if !d.state().has_ended() => {
                d.shared.published.store(false, Ordering::SeqCst);
                true
            }
            _ => false,
        }
    }

    /// What a running download of `cid` shares with the engine.
    pub(super) fn download_shared(&self, cid: &Cid) -> Option<Arc<DownloadShared>> {
        let downloads = self.registry();
        let download = downloads.get(cid)?;
        (!download.state().has_ended()).then(|| download.shared.clone())
    }

    /// The live bitfield of a running download that knows its manifest. Finished
    /// downloads answer from the store instead.
    pub(super) fn live_have(&self, cid: &Cid) -> Option<Bitfield> {
        let downloads = self.registry();
        let download = downloads.get(cid)?;
        if download.state().has_ended() {
            return None;
        }
        let have = lock(&download.shared.have).clone();
        (!have.is_empty()).then_some(have)
    }

    /// Passes a peer's news to the running download of `cid`, if there is one. A
    /// bitfield is passed, and its sender then gets the download's `Have`s, only if it
    /// covers the file's chunks (the download knows its manifest and `len` is its chunk
    /// count); any other is ignored.
    pub(super) fn peer_news(&self, cid: &Cid, news: PeerNews) {
        let downloads = self.registry();
        let Some(d) = downloads.get(cid) else {
            return;
        };
        if d.state().has_ended() {
            return;
        }
        if let PeerNews::Bitfield(peer, have) = &news {
            let chunks = lock(&d.shared.have).len();
            if chunks == 0 || have.len() != chunks {
                return;
            }
            d.shared.note_interested(*peer);
        }
        let _ = d.news.try_send(news);
    }
}

/// Waits until a download has ended, at most [`STOP_TIMEOUT`].
async fn wait_until_ended(
    cid: &Cid,
    status: &mut watch::Receiver<DownloadStatus>,
) -> Result<DownloadStatus, EngineError> {
    match tokio::time::timeout(STOP_TIMEOUT, status.wait_for(|s| s.state.has_ended())).await {
        Ok(Ok(ended)) => Ok(ended.clone()),
        // The sender is kept by the registry, so the channel stays open.
        Ok(Err(_)) | Err(_) => Err(EngineError::StopTimeout(*cid)),
    }
}

/// A download that finished with its file at `output`, still there.
fn finished_at(status: &DownloadStatus, output: Option<&Path>) -> bool {
    matches!(status.state, DownloadState::Done)
        && output.is_some_and(|o| status.output.as_deref() == Some(o) && o.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousand_interested_peers_coming_and_going_keep_the_set_bounded() {
        let shared = DownloadShared::new();
        let first = PeerId::random();
        assert!(shared.note_interested(first));
        for _ in 0..10_000 {
            let peer = PeerId::random();
            shared.note_interested(peer);
            // A peer that cannot be reached is forgotten (see `announce_have`): half
            // of them leave.
            if rand::random::<bool>() {
                lock(&shared.interested).remove(&peer);
            }
            assert!(lock(&shared.interested).len() <= MAX_INTERESTED);
        }
        assert_eq!(lock(&shared.interested).len(), MAX_INTERESTED);
        // A peer already in keeps its place.
        assert!(shared.note_interested(first));
        assert!(!shared.note_interested(PeerId::random()));
    }
}
