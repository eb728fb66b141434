//! Downloads that outlive the daemon: each run saves its download in the store when it
//! starts (unfinished) and when it ends (paused, done, failed, cancelled), so that the
//! next daemon resumes the unfinished ones by itself, even after a SIGKILL, and lists
//! the ended ones as a history (bounded by the store, cleared on request). A run stopped
//! because the daemon stops stays saved as unfinished: it resumes on the next start.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chunk_store::{EntryState, SavedDownload, SavedState};
use dht_proto::Cid;
use tokio::sync::{mpsc, watch};

use super::{Download, DownloadShared, FetchParams, FetchTarget};
use crate::transfer::status::{DownloadState, DownloadStatus, Failure};
use crate::transfer::{blocking, EngineError, Transfers};

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The saved form of a download's state.
fn saved_state(state: &DownloadState) -> SavedState {
    match state {
        DownloadState::Queued | DownloadState::Running(_) | DownloadState::Verifying => {
            SavedState::Unfinished
        }
        DownloadState::Paused => SavedState::Paused,
        DownloadState::Done => SavedState::Done,
        DownloadState::Failed(failure) => SavedState::Failed(failure.message.clone()),
        DownloadState::Cancelled => SavedState::Cancelled,
    }
}

impl Transfers {
    /// Saves a download's parameters and state. A failure to save is logged, not
    /// fatal: the download itself goes on.
    pub(in crate::transfer) async fn save_download(
        &self,
        params: &FetchParams,
        status: &DownloadStatus,
    ) {
        let record = SavedDownload {
            cid: None,
            state: saved_state(&status.state),
            output: params.target.output.clone(),
            output_dir: params.target.output_dir.clone(),
            timeout_secs: params.target.timeout.as_secs(),
            name: status.name.clone(),
            size: status.size,
            saved_unix: now_unix(),
        };
        let store = self.store().clone();
        let cid = params.target.cid;
        if let Err(e) = blocking(move || store.save_download(&cid, &record)).await {
            tracing::warn!(%cid, "could not save the download's state: {e}");
        }
    }

    /// Forgets the saved record of a download (a fetch that found a folder).
    pub(in crate::transfer) async fn forget_saved_download(&self, cid: Cid) {
        let store = self.store().clone();
        if let Err(e) = blocking(move || store.forget_download(&cid)).await {
            tracing::warn!(%cid, "could not forget the saved download: {e}");
        }
    }

    /// Brings back the saved downloads when the daemon starts: the unfinished ones run
    /// again, the others are listed as they ended. Returns how many were resumed.
    pub async fn restore_downloads(&self) -> Result<usize, EngineError> {
        let store = self.store().clone();
        let saved = blocking(move || store.saved_downloads()).await?;
        let mut resumed = 0;
        for record in saved {
            let Some(cid) = record.cid else { continue };
            let params = FetchParams::from(FetchTarget {
                cid,
                output: record.output.clone(),
                output_dir: record.output_dir.clone(),
                timeout: Duration::from_secs(record.timeout_secs.max(1)),
            });
            if record.state == SavedState::Unfinished {
                let mut downloads = self.registry();
                if downloads.contains_key(&cid) {
                    continue;
                }
                match self.launch(&mut downloads, params) {
                    Ok(_) => resumed += 1,
                    Err(e) => tracing::warn!(%cid, "could not resume a saved download: {e}"),
                }
                continue;
            }
            let status = self.ended_status(&record, cid).await;
            let mut downloads = self.registry();
            if downloads.len() < super::MAX_LISTED && !downloads.contains_key(&cid) {
                downloads.insert(cid, ended_download(params, status));
            }
        }
        if resumed > 0 {
            tracing::info!(resumed, "unfinished downloads resumed");
        }
        Ok(resumed)
    }

    /// The status an ended saved download is listed with, its progress read from the
    /// store.
    async fn ended_status(&self, record: &SavedDownload, cid: Cid) -> DownloadStatus {
        let state = match &record.state {
            SavedState::Paused => DownloadState::Paused,
            SavedState::Done => DownloadState::Done,
            SavedState::Cancelled => DownloadState::Cancelled,
            SavedState::Failed(message) => DownloadState::Failed(Failure::network(message)),
            SavedState::Unfinished => DownloadState::Queued,
        };
        let mut status = DownloadStatus::new(cid, state);
        status.name = record.name.clone();
        status.size = record.size;
        status.output = record.output.clone();
        let store = self.store().clone();
        if let Ok(Some(info)) = blocking(move || store.info(&cid)).await {
            status.size = info.size;
            status.chunks_total = info.chunk_count;
            status.chunks_done = match info.state {
                EntryState::Complete => info.chunk_count,
                EntryState::Partial { have } => have,
                EntryState::ChangedOnDisk => 0,
            };
            status.bytes_done =
                (u64::from(status.chunks_done) * u64::from(info.chunk_size)).min(info.size);
        }
        status
    }

    /// Forgets the ended downloads (done, failed, cancelled), in the list and in the
    /// store. Paused ones stay. Returns how many were forgotten.
    pub async fn clear_download_history(&self) -> Result<usize, EngineError> {
        let ended: Vec<Cid> = {
            let mut downloads = self.registry();
            let ended: Vec<Cid> = downloads
                .iter()
                .filter(|(_, d)| d.state().has_ended() && d.state() != DownloadState::Paused)
                .map(|(cid, _)| *cid)
                .collect();
            for cid in &ended {
                downloads.remove(cid);
            }
            ended
        };
        let store = self.store().clone();
        let saved_history: Vec<Cid> = blocking(move || {
            let mut forgotten = Vec::new();
            for record in store.saved_downloads()? {
                if let Some(cid) = record.cid.filter(|_| record.state.has_ended()) {
                    store.forget_download(&cid)?;
                    forgotten.push(cid);
                }
            }
            Ok(forgotten)
        })
        .await?;
        let mut all = ended;
        for cid in saved_history {
            if !all.contains(&cid) {
                all.push(cid);
            }
        }
        Ok(all.len())
    }
}

/// A registry entry for a download no task runs for.
fn ended_download(params: FetchParams, status: DownloadStatus) -> Download {
    let (status, _) = watch::channel(status);
    let (stop, _) = watch::channel(None);
    let (news, _) = mpsc::channel(1);
    Download {
        params,
        status,
        stop,
        news,
        shared: std::sync::Arc::new(DownloadShared::new()),
    }
}
