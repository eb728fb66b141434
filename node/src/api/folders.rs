//! The control API's side of folders: the wire types of `/api/folders…` and the
//! facade's operations on them (add a directory, fetch a folder, list folders, show
//! one tree), converting from the engine's domain types at this edge.

use std::path::PathBuf;

use chunk_store::ImportMode;
use dht_proto::dirmanifest::EntryKind;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;

use super::types::{FetchRequest, StreamLine};
use super::{parse_cid, Api, ApiError};
use crate::transfer::folder::{FolderAddEvent, FolderAddOptions, FolderState, FolderStatus};
use crate::transfer::FailureKind;

/// `POST /api/folders`: share a directory on the daemon's machine.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FolderAddRequest {
    /// The directory (absolute).
    #[schema(value_type = String)]
    pub path: PathBuf,
    /// Track the files where they are instead of copying them into the store.
    #[serde(default)]
    pub no_copy: bool,
    /// Keep the folder out of this node's catalog.
    #[serde(default)]
    pub unlisted: bool,
    /// Follow symbolic links instead of skipping them.
    #[serde(default)]
    pub follow_symlinks: bool,
    /// The folder's name (default: the directory's name).
    #[serde(default)]
    pub name: Option<String>,
}

/// Progress of a folder add.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FolderAddProgress {
    /// Files imported so far.
    pub files_done: u64,
    /// Files found.
    pub files: u64,
    /// Bytes read so far.
    pub bytes: u64,
    /// Bytes found.
    pub size: u64,
    /// Something left out of the tree (a symbolic link, a special file), one line.
    #[serde(default)]
    pub skipped: Option<String>,
}

/// An added folder.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FolderAddResponse {
    /// The directory CID.
    pub cid: String,
    /// Its name.
    pub name: Option<String>,
    /// Files in the tree.
    pub files: u64,
    /// Distinct file contents (identical files are stored once).
    pub unique_files: u64,
    /// Empty directories in the tree.
    pub empty_dirs: u64,
    /// Sum of the file sizes.
    pub size: u64,
    /// Whether this node had the folder already.
    pub already_present: bool,
    /// What was left out, one line each.
    pub skipped: Vec<String>,
}

/// The lines of `POST /api/folders`.
pub type FolderAddLine = StreamLine<FolderAddProgress, FolderAddResponse>;

/// Where a folder fetch stands, on the wire.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FolderFetchState {
    /// Getting the directory manifest.
    Finding,
    /// Fetching the files.
    Fetching,
    /// Every file is in place.
    Done,
    /// Gave up; see `error`. Fetching again into the same directory resumes.
    Failed,
}

/// One file being fetched now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FolderFileProgress {
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
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FolderProgress {
    /// The directory CID.
    pub cid: String,
    /// Its name, once known.
    pub name: Option<String>,
    /// Where it stands.
    pub state: FolderFetchState,
    /// Files in the tree.
    pub files_total: u64,
    /// Files in place.
    pub files_done: u64,
    /// Sum of the file sizes.
    pub bytes_total: u64,
    /// Bytes in place or verified.
    pub bytes_done: u64,
    /// The files being fetched now.
    pub active: Vec<FolderFileProgress>,
    /// Seconds since the fetch started.
    pub elapsed_secs: f64,
    /// The directory the tree is written to.
    #[schema(value_type = Option<String>)]
    pub output: Option<PathBuf>,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether the failure was the caller's input (or the manifest's names).
    pub bad_input: bool,
}

impl From<&FolderStatus> for FolderProgress {
    fn from(s: &FolderStatus) -> Self {
        let (state, error, bad_input) = match &s.state {
            FolderState::Finding => (FolderFetchState::Finding, None, false),
            FolderState::Fetching => (FolderFetchState::Fetching, None, false),
            FolderState::Done => (FolderFetchState::Done, None, false),
            FolderState::Failed(f) => (
                FolderFetchState::Failed,
                Some(f.message.clone()),
                f.kind == FailureKind::BadInput,
            ),
        };
        FolderProgress {
            cid: s.cid.to_string(),
            name: s.name.clone(),
            state,
            files_total: s.files_total,
            files_done: s.files_done,
            bytes_total: s.bytes_total,
            bytes_done: s.bytes_done,
            active: s
                .active
                .iter()
                .map(|a| FolderFileProgress {
                    path: a.path.clone(),
                    size: a.size,
                    bytes_done: a.bytes_done,
                    peers: a.peers,
                })
                .collect(),
            elapsed_secs: s.elapsed.as_secs_f64(),
            output: s.output.clone(),
            error,
            bad_input,
        }
    }
}

impl FolderProgress {
    /// Whether the fetch has ended.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.state,
            FolderFetchState::Done | FolderFetchState::Failed
        )
    }
}

/// The lines of `POST /api/folders/fetch`.
pub type FolderFetchLine = StreamLine<FolderProgress, FolderProgress>;

/// A folder the node knows, as `GET /api/folders` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FolderSummary {
    /// The directory CID.
    pub cid: String,
    /// Its name.
    pub name: Option<String>,
    /// Files in the tree.
    pub files: u64,
    /// Sum of the file sizes.
    pub size: u64,
    /// Whether every file is here (added, or fetched to the end).
    pub complete: bool,
    /// Whether it is marked listed.
    pub listed: bool,
    /// Whether it is in the catalog now.
    pub in_catalog: bool,
    /// When it was added or its fetch began (seconds since the Unix epoch).
    pub added_unix: u64,
}

/// One entry of a folder's tree.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FolderEntryInfo {
    /// Its path, components joined with `/`.
    pub path: String,
    /// The file's CID (`null` for an empty directory).
    pub cid: Option<String>,
    /// The file's size.
    pub size: u64,
    /// Whether the file is executable.
    pub executable: bool,
}

/// `GET /api/folders/{cid}`: a folder and its tree.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FolderListing {
    /// The folder.
    pub folder: FolderSummary,
    /// Every file and empty directory, sorted by path.
    pub entries: Vec<FolderEntryInfo>,
}

/// A folder's progress as it changes.
pub struct FolderWatch(watch::Receiver<FolderStatus>);

impl FolderWatch {
    /// The latest snapshot (marked as seen).
    pub fn latest(&mut self) -> FolderProgress {
        FolderProgress::from(&*self.0.borrow_and_update())
    }

    /// Waits for a newer snapshot; fails when the fetch is gone.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.0.changed().await
    }
}

impl Api {
    /// Adds a directory as one folder; `progress` is told how it goes.
    pub async fn add_folder(
        &self,
        request: FolderAddRequest,
        mut progress: impl FnMut(FolderAddProgress) + Send + 'static,
    ) -> Result<FolderAddResponse, ApiError> {
        super::input::check_absolute(&request.path)?;
        let options = FolderAddOptions {
            mode: if request.no_copy {
                ImportMode::Reference
            } else {
                ImportMode::Copy
            },
            listed: !request.unlisted,
            follow_symlinks: request.follow_symlinks,
            name: request.name,
        };
        let added = self
            .transfers
            .add_folder(request.path, options, move |event| {
                progress(match event {
                    FolderAddEvent::Progress {
                        files_done,
                        files,
                        bytes,
                        size,
                    } => FolderAddProgress {
                        files_done,
                        files,
                        bytes,
                        size,
                        skipped: None,
                    },
                    FolderAddEvent::Skipped(line) => FolderAddProgress {
                        files_done: 0,
                        files: 0,
                        bytes: 0,
                        size: 0,
                        skipped: Some(line),
                    },
                })
            })
            .await?;
        Ok(FolderAddResponse {
            cid: added.cid.to_string(),
            name: added.name,
            files: added.files,
            unique_files: added.unique_files,
            empty_dirs: added.empty_dirs,
            size: added.size,
            already_present: added.already_present,
            skipped: added.skipped,
        })
    }

    /// Starts fetching a folder, or attaches to its running fetch.
    pub async fn fetch_folder(&self, request: FetchRequest) -> Result<FolderWatch, ApiError> {
        let target = super::input::fetch_target(request)?;
        let (output, output_dir) = (target.output.clone(), target.output_dir.clone());
        super::input::off_runtime(move || match (output, output_dir) {
            (Some(output), _) => match output.parent() {
                Some(dir) if dir.is_dir() => Ok(()),
                _ => Err(ApiError::bad_request(format!(
                    "directory of {} does not exist",
                    output.display()
                ))),
            },
            (None, Some(dir)) if !dir.is_dir() => Err(ApiError::bad_request(format!(
                "{} is not a directory",
                dir.display()
            ))),
            (None, Some(_)) => Ok(()),
            (None, None) => Err(ApiError::bad_request(
                "give `output` or `output_dir`: a folder is written to a directory",
            )),
        })
        .await?;
        let status = self.transfers.fetch_folder(target)?;
        Ok(FolderWatch(status))
    }

    /// The answer `/api/fetch` gives at once for a CID the store knows as a folder.
    pub async fn known_folder(&self, cid: &str) -> Option<super::transfers::Progress> {
        let cid = parse_cid(cid).ok()?;
        match self.transfers.folder(cid).await {
            Ok(Some(_)) => Some(super::transfers::Progress::of_folder(cid)),
            _ => None,
        }
    }

    /// Every folder the node knows, oldest first.
    pub async fn folders(&self) -> Result<Vec<FolderSummary>, ApiError> {
        Ok(self
            .store_listing()
            .await?
            .folders
            .iter()
            .map(|f| self.summary(f))
            .collect())
    }

    /// One folder and its tree.
    pub async fn folder(&self, cid: &str) -> Result<FolderListing, ApiError> {
        let cid = parse_cid(cid)?;
        let (info, manifest) = self
            .transfers
            .folder(cid)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no folder {cid} here")))?;
        Ok(FolderListing {
            folder: self.summary(&info),
            entries: manifest
                .entries()
                .iter()
                .map(|e| match e.kind {
                    EntryKind::File {
                        cid,
                        size,
                        executable,
                    } => FolderEntryInfo {
                        path: e.path.to_string(),
                        cid: Some(cid.to_string()),
                        size,
                        executable,
                    },
                    EntryKind::EmptyDir => FolderEntryInfo {
                        path: e.path.to_string(),
                        cid: None,
                        size: 0,
                        executable: false,
                    },
                })
                .collect(),
        })
    }

    /// A folder as `GET /api/files` lists it, beside the files.
    pub(super) fn folder_file_info(
        &self,
        f: &chunk_store::FolderInfo,
        announced: &mut std::collections::HashMap<dht_proto::Cid, crate::network::Announcement>,
    ) -> super::types::FileInfo {
        let files = u32::try_from(f.record.files).unwrap_or(u32::MAX);
        super::types::FileInfo {
            cid: f.cid.to_string(),
            name: f.record.name.clone(),
            size: f.record.size,
            chunks: files,
            have_chunks: if f.record.complete { files } else { 0 },
            state: if f.record.complete {
                "complete"
            } else {
                "partial"
            }
            .into(),
            location: "folder".into(),
            path: None,
            pinned: false,
            added_unix: f.record.added_unix,
            published: f.record.published,
            announcement: announced.remove(&f.cid).map(Into::into),
            listed: f.record.listed,
            in_catalog: self.in_catalog(&f.cid),
            folder: true,
        }
    }

    fn summary(&self, f: &chunk_store::FolderInfo) -> FolderSummary {
        FolderSummary {
            cid: f.cid.to_string(),
            name: f.record.name.clone(),
            files: f.record.files,
            size: f.record.size,
            complete: f.record.complete,
            listed: f.record.listed,
            in_catalog: self.in_catalog(&f.cid),
            added_unix: f.record.added_unix,
        }
    }
}
