//! [`EngineError`]: why an engine operation was refused or failed.

use std::path::PathBuf;

use chunk_store::StoreError;
use dht_proto::Cid;

/// Why an engine operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No download of this file was started since the daemon started (or it was
    /// forgotten, past the listing bound).
    #[error("no download of {0}")]
    NoDownload(Cid),
    /// A download of the file runs, to another output path.
    #[error("{cid} is already being downloaded to {}", output.as_ref().map_or("the store".to_string(), |p| p.display().to_string()))]
    DownloadingElsewhere {
        /// The file.
        cid: Cid,
        /// Where the running download writes it.
        output: Option<PathBuf>,
    },
    /// The operation needs the file not to be downloading.
    #[error("{0} is being downloaded")]
    Downloading(Cid),
    /// The download runs (or waits to run), so it cannot be resumed.
    #[error("the download of {0} is running")]
    Running(Cid),
    /// The download has ended without being paused, so it cannot be paused.
    #[error("the download of {0} is not running")]
    NotRunning(Cid),
    /// The download finished: there is nothing to resume.
    #[error("the download of {0} is complete")]
    Complete(Cid),
    /// The download was cancelled and its data deleted: start it again instead.
    #[error("the download of {0} was cancelled; start it again")]
    Cancelled(Cid),
    /// The file is in the store but not complete.
    #[error("{0} is not complete yet: it is still being downloaded")]
    NotComplete(Cid),
    /// Every listed download is unfinished: no room for another.
    #[error("{0} downloads are unfinished; cancel some or wait for them to end")]
    TooManyDownloads(usize),
    /// A download did not stop within the time allowed.
    #[error("the download of {0} did not stop in time")]
    StopTimeout(Cid),
    /// A file being read as it downloads could not be delivered.
    #[error("{0}")]
    StreamFailed(String),
}
