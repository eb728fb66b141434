//! The store's health over the API: `verify` (re-hash everything, optionally repair)
//! with its wire types, and the watch that notices files tracked in place that changed
//! on disk and tells the live views.

use std::time::Duration;

use std::sync::Arc;

use chunk_store::{EntryInfo, FileReport, FolderInfo, Location, Repair};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store_reads::STORE_WAIT;
use super::types::LiveEvent;
use super::{Api, ApiError};

/// How often the daemon checks the files tracked in place for changes (one `stat` per
/// file); a request for one of them checks it at once as well.
pub const CHANGED_FILES_CHECK: Duration = Duration::from_secs(10);

/// `POST /api/verify`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct VerifyRequest {
    /// Drop what is bad so that a later fetch gets it again (files being downloaded
    /// are only checked).
    #[serde(default)]
    pub repair: bool,
}

/// What `POST /api/verify` found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyResponse {
    /// Whether nothing was wrong.
    pub ok: bool,
    /// Files checked.
    pub files_checked: u64,
    /// Chunks whose bytes do not match their hash, over all files.
    pub bad_chunks: u64,
    /// Chunks the store claims but cannot read, over all files.
    pub missing_chunks: u64,
    /// Files tracked in place that changed on disk.
    pub changed_on_disk: u64,
    /// Files a repair changed.
    pub repaired: u64,
    /// The files with something wrong (the others are only counted).
    pub damaged: Vec<VerifiedFile>,
}

/// One damaged file in a [`VerifyResponse`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifiedFile {
    /// The file CID.
    pub cid: String,
    /// Its name.
    pub name: Option<String>,
    /// `store`, `in_place` or `partial`.
    pub location: String,
    /// Chunks read and hashed.
    pub chunks_checked: u32,
    /// Indexes of the chunks whose bytes do not match their hash.
    pub bad_chunks: Vec<u32>,
    /// Indexes of the chunks the store claims but cannot read.
    pub missing_chunks: Vec<u32>,
    /// A file tracked in place changed on disk.
    pub changed_on_disk: bool,
    /// What a repair did: `back_to_partial` (a complete copy became a partial download
    /// of the chunks that verify), `dropped_from_partial` or `marked_changed`; `null`
    /// when nothing was repaired.
    pub repair: Option<String>,
}

impl From<&FileReport> for VerifiedFile {
    fn from(f: &FileReport) -> Self {
        VerifiedFile {
            cid: f.cid.to_string(),
            name: f.name.clone(),
            location: match f.location {
                Location::Blob => "store",
                Location::Reference { .. } => "in_place",
                Location::Partial => "partial",
            }
            .into(),
            chunks_checked: f.chunks_checked,
            bad_chunks: f.bad_chunks.clone(),
            missing_chunks: f.missing_chunks.clone(),
            changed_on_disk: f.changed_on_disk,
            repair: f.repair.as_ref().map(|r| {
                match r {
                    Repair::BackToPartial { .. } => "back_to_partial",
                    Repair::DroppedFromPartial { .. } => "dropped_from_partial",
                    Repair::MarkedChanged => "marked_changed",
                }
                .into()
            }),
        }
    }
}

impl Api {
    /// Re-hashes everything the store holds; with `repair`, drops what is bad.
    pub async fn verify(&self, request: VerifyRequest) -> Result<VerifyResponse, ApiError> {
        let report = self.transfers.verify_store(request.repair).await?;
        let damaged: Vec<VerifiedFile> = report
            .files
            .iter()
            .filter(|f| !f.is_ok())
            .map(VerifiedFile::from)
            .collect();
        for file in damaged.iter().filter(|f| f.repair.is_some()) {
            self.emit(LiveEvent::FileChanged {
                cid: file.cid.clone(),
                change: "repaired".into(),
            });
        }
        Ok(VerifyResponse {
            ok: report.is_ok(),
            files_checked: report.files_checked,
            bad_chunks: report.bad_chunks,
            missing_chunks: report.missing_chunks,
            changed_on_disk: report.changed_on_disk,
            repaired: report.repaired,
            damaged,
        })
    }

    /// The task that checks the files tracked in place every [`CHANGED_FILES_CHECK`]
    /// (and once at start), withdraws those that changed on disk and tells the live
    /// views. Runs until the daemon stops.
    pub fn watch_changed_files(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let api = self.clone();
        async move {
            let mut tick = tokio::time::interval(CHANGED_FILES_CHECK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match api.transfers.withdraw_changed_files().await {
                    Ok(changed) => {
                        for cid in changed {
                            api.emit(LiveEvent::FileChanged {
                                cid: cid.to_string(),
                                change: "changed_on_disk".into(),
                            });
                        }
                    }
                    Err(e) => tracing::warn!("checking files tracked in place: {e}"),
                }
            }
        }
    }
}

/// The store's part of a status answer.
#[derive(Clone, Debug)]
pub(super) struct Summary {
    /// Files the store holds.
    pub(super) files: usize,
    /// CIDs of the files tracked in place that changed on disk.
    pub(super) changed: Vec<String>,
}

/// Every file and folder the store holds, as one read found them.
pub(super) struct Listing {
    pub(super) entries: Vec<EntryInfo>,
    pub(super) folders: Vec<FolderInfo>,
}

impl Api {
    /// The store's part of the status, read with a deadline ([`super::store_reads`]).
    pub(super) async fn store_summary(&self) -> Result<Summary, ApiError> {
        let transfers = self.transfers.clone();
        let read = async move {
            let files = transfers.file_count().await? as usize;
            let changed = transfers
                .changed_files()
                .await?
                .iter()
                .map(ToString::to_string)
                .collect();
            Ok(Summary { files, changed })
        };
        let changes = || self.transfers.entry_changes();
        self.shared
            .summary_reads
            .get(STORE_WAIT, changes, read)
            .await
    }

    /// Every file and folder the store holds, read with a deadline ([`super::store_reads`]).
    pub(super) async fn store_listing(&self) -> Result<Arc<Listing>, ApiError> {
        let transfers = self.transfers.clone();
        let read = async move {
            let entries = transfers.files().await?;
            let folders = transfers.folders().await?;
            Ok(Arc::new(Listing { entries, folders }))
        };
        let changes = || self.transfers.entry_changes();
        self.shared
            .listing_reads
            .get(STORE_WAIT, changes, read)
            .await
    }
}
