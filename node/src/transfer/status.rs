//! What the engine reports about a download: its [`DownloadState`] and a
//! [`DownloadStatus`] snapshot. Domain types only (ids, durations, paths); the API turns
//! them into its wire types.

use std::path::PathBuf;
use std::time::Duration;

use dht_proto::Cid;
use libp2p::PeerId;

/// Where a download stands. Paused, done, failed and cancelled downloads have ended: no
/// task runs for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadState {
    /// Accepted, waiting for one of the engine's run slots.
    Queued,
    /// Its task runs.
    Running(RunPhase),
    /// Re-hashing the chunks a partial file holds before resuming it (nothing stored
    /// earlier is trusted).
    Verifying,
    /// Stopped by the owner with its verified chunks kept; `resume` continues it.
    Paused,
    /// Finished: the file is complete in the store (and at its output path, if any).
    Done,
    /// Gave up; resumable with what it verified.
    Failed(Failure),
    /// Stopped by the owner and its partial data deleted.
    Cancelled,
}

/// What a running download is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    /// Looking for providers and the manifest.
    Finding,
    /// The manifest is known: transferring chunks.
    Transferring,
}

/// Why a download failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Whose fault it was.
    pub kind: FailureKind,
    /// One line.
    pub message: String,
}

/// Whose fault a failure was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The caller's input (an output path that exists, for example).
    BadInput,
    /// The network: no provider, or no progress within the timeout.
    Network,
    /// This node's storage.
    Storage,
    /// This node's disk is full: freeing space (`rm`, `cancel`) and trying again may
    /// succeed.
    NoSpace,
    /// The CID names a folder, not a file: its directory manifest is in the store now,
    /// and the folder fetch (`transfer/folder_fetch.rs`) takes over. Nothing was written.
    Folder,
}

impl Failure {
    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Failure {
            kind: FailureKind::BadInput,
            message: message.into(),
        }
    }

    pub(crate) fn network(message: impl Into<String>) -> Self {
        Failure {
            kind: FailureKind::Network,
            message: message.into(),
        }
    }

    /// A failure of the store: [`FailureKind::NoSpace`] when the disk is full, else
    /// [`FailureKind::Storage`].
    pub(crate) fn of_store(e: chunk_store::StoreError) -> Self {
        Failure {
            kind: if e.is_disk_full() {
                FailureKind::NoSpace
            } else {
                FailureKind::Storage
            },
            message: e.to_string(),
        }
    }

    pub(crate) fn folder(cid: &Cid) -> Self {
        Failure {
            kind: FailureKind::Folder,
            message: format!("{cid} names a folder, not a file"),
        }
    }

    pub(crate) fn storage(message: impl Into<String>) -> Self {
        Failure {
            kind: FailureKind::Storage,
            message: message.into(),
        }
    }
}

impl DownloadState {
    /// Whether the download has ended (no task runs for it).
    pub fn has_ended(&self) -> bool {
        matches!(
            self,
            DownloadState::Paused
                | DownloadState::Done
                | DownloadState::Failed(_)
                | DownloadState::Cancelled
        )
    }
}

/// A snapshot of one download.
#[derive(Debug, Clone)]
pub struct DownloadStatus {
    /// The file.
    pub cid: Cid,
    /// Its name, once known.
    pub name: Option<String>,
    /// Where it stands.
    pub state: DownloadState,
    /// File size (0 until the manifest is known).
    pub size: u64,
    /// Chunks in the file (0 until the manifest is known).
    pub chunks_total: u32,
    /// Chunks verified and stored.
    pub chunks_done: u32,
    /// Bytes verified and stored (including any held before this run).
    pub bytes_done: u64,
    /// Verified bytes received over the network in this run.
    pub bytes_received: u64,
    /// Current rate in bytes per second (over the last 3 s).
    pub rate: f64,
    /// Estimated time left at that rate.
    pub eta: Option<Duration>,
    /// Peers with requests in flight now.
    pub peers: usize,
    /// Verified bytes each peer sent in this run, most first.
    pub per_peer: Vec<(PeerId, u64)>,
    /// Time since this run started.
    pub elapsed: Duration,
    /// Where the file goes (`None`: it stays in the store).
    pub output: Option<PathBuf>,
}

impl DownloadStatus {
    /// The status of a download nothing is known of yet.
    pub(crate) fn new(cid: Cid, state: DownloadState) -> Self {
        DownloadStatus {
            cid,
            name: None,
            state,
            size: 0,
            chunks_total: 0,
            chunks_done: 0,
            bytes_done: 0,
            bytes_received: 0,
            rate: 0.0,
            eta: None,
            peers: 0,
            per_peer: Vec::new(),
            elapsed: Duration::ZERO,
            output: None,
        }
    }
}
