//! Folders: a directory tree shared as one CID (a directory manifest, docs/protocol.md
//! §13), added from a local directory and fetched into a new one.
//!
//! - `add.rs`: [`Transfers::add_folder`]: walk, import each file as an ordinary store
//!   entry, build and keep the manifest, announce.
//! - `fetch.rs`: [`Transfers::fetch_folder`]: get the manifest (the store, or a file
//!   download that finds a directory manifest), make the tree's directories, fetch the
//!   distinct files through the download engine, several at once, each straight to its
//!   place, and restore executable bits; resumable.
//! - `small.rs`: the files of one chunk, fetched many to a request (`small_ask.rs`; the
//!   manifest is rebuilt from the bytes) and placed in batches with one commit.
//! - `tree.rs`: writing under the target so that nothing lands outside it.
//! - `manage.rs`: `rm`, `unpublish` and `publish` of a folder and its own files.
//! - `sources.rs`: the folder's providers, given to each of its files as sources so
//!   that a file does not wait for a DHT lookup of its own.
//!
//! The registry here keeps the folder fetches run since the daemon started, each with
//! a [`FolderStatus`] channel, so that a caller can attach to a running fetch.

pub mod add;
pub mod fetch;
mod manage;
mod small;
mod small_ask;
mod small_place;
mod sources;
pub mod tree;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dht_proto::Cid;
use tokio::sync::watch;

use super::status::Failure;

pub use add::{FolderAddEvent, FolderAddOptions, FolderAdded};

/// Folder fetches kept for attaching; past this the ended ones are forgotten, and a new
/// one is refused while all are running.
pub const MAX_FOLDER_FETCHES: usize = 64;

/// Seconds since the Unix epoch.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where a folder fetch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderState {
    /// Getting the directory manifest.
    Finding,
    /// Fetching the files.
    Fetching,
    /// Every file is in place.
    Done,
    /// Gave up; running it again resumes.
    Failed(Failure),
}

/// One file being fetched now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveFile {
    /// Its path in the tree.
    pub path: String,
    /// Its size.
    pub size: u64,
    /// Bytes verified so far.
    pub bytes_done: u64,
    /// Peers sending it now.
    pub peers: usize,
}

/// A snapshot of a folder fetch.
#[derive(Debug, Clone)]
pub struct FolderStatus {
    /// The directory CID.
    pub cid: Cid,
    /// The folder's name, once known.
    pub name: Option<String>,
    /// Where it stands.
    pub state: FolderState,
    /// Files in the tree (0 until the manifest is known).
    pub files_total: u64,
    /// Files in place.
    pub files_done: u64,
    /// Sum of the file sizes.
    pub bytes_total: u64,
    /// Bytes of the files in place, and verified bytes of those being fetched.
    pub bytes_done: u64,
    /// The files being fetched now (at most [`fetch::FILES_AT_ONCE`]).
    pub active: Vec<ActiveFile>,
    /// Time since the fetch started.
    pub elapsed: Duration,
    /// The directory the tree is written to, once known.
    pub output: Option<PathBuf>,
}

impl FolderStatus {
    fn new(cid: Cid) -> Self {
        FolderStatus {
            cid,
            name: None,
            state: FolderState::Finding,
            files_total: 0,
            files_done: 0,
            bytes_total: 0,
            bytes_done: 0,
            active: Vec::new(),
            elapsed: Duration::ZERO,
            output: None,
        }
    }

    /// Whether the fetch has ended.
    pub fn has_ended(&self) -> bool {
        matches!(self.state, FolderState::Done | FolderState::Failed(_))
    }
}

/// The folder fetches run since the daemon started.
#[derive(Default)]
pub(super) struct Registry {
    fetches: Mutex<HashMap<Cid, Running>>,
    /// The peers a folder's manifest came from, and others its lookup found, until
    /// its fetch takes them as its files' sources (see `sources.rs`).
    sources: Mutex<HashMap<Cid, Vec<libp2p::PeerId>>>,
}

/// A folder fetch as the registry keeps it.
struct Running {
    /// Where it writes (`None`: under the folder's name in the directory given).
    output: Option<PathBuf>,
    status: watch::Sender<FolderStatus>,
}

impl super::Transfers {
    /// Every folder the store knows (added, fetched, or with a fetch begun), oldest
    /// first.
    pub async fn folders(&self) -> Result<Vec<chunk_store::FolderInfo>, super::EngineError> {
        let store = self.store().clone();
        Ok(super::blocking(move || store.folders()).await?)
    }

    /// One folder's record and tree, if the store knows it.
    pub async fn folder(
        &self,
        cid: Cid,
    ) -> Result<Option<(chunk_store::FolderInfo, dht_proto::DirManifest)>, super::EngineError> {
        let store = self.store().clone();
        Ok(super::blocking(move || {
            let Some(info) = store.folder(&cid)? else {
                return Ok(None);
            };
            Ok(store.folder_manifest(&cid)?.map(|m| (info, m)))
        })
        .await?)
    }

    /// A complete folder's name and size, for a share ticket (its `chunks` are its
    /// files).
    pub async fn folder_content(
        &self,
        cid: Cid,
    ) -> Result<super::files::Content, super::EngineError> {
        let store = self.store().clone();
        let info = super::blocking(move || store.folder(&cid))
            .await?
            .ok_or(chunk_store::StoreError::NotFound(cid))?;
        if !info.record.complete {
            return Err(super::EngineError::NotComplete(cid));
        }
        Ok(super::files::Content {
            cid,
            name: super::files::safe_file_name(info.record.name.as_deref(), &cid),
            size: info.record.size,
            chunks: u32::try_from(info.record.files).unwrap_or(u32::MAX),
            directory: true,
        })
    }
}

#[cfg(test)]
mod small_tests;
#[cfg(test)]
mod tests;
