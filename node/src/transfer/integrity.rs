//! The engine's integrity operations: verifying (and repairing) what the store holds,
//! and noticing files tracked in place (`add --no-copy`) that changed on disk, so that
//! the node stops announcing them without waiting for a peer to ask for one.

use chunk_store::{EntryState, FileReport, Repair, StoreError, StoreReport};
use dht_proto::Cid;

use super::{blocking, EngineError, Transfers};

impl Transfers {
    /// Re-hashes every file the store holds, oldest first. With `repair`, drops what is
    /// bad so that a later fetch gets it again (see [`chunk_store::Store::repair`]),
    /// except in files being downloaded now, which are only checked: their download owns
    /// their bitfield. A file that a repair left without any chunk, or found changed on
    /// disk, is no longer announced.
    pub async fn verify_store(&self, repair: bool) -> Result<StoreReport, EngineError> {
        let mut entries = self.files().await?;
        entries.sort_by_key(|e| e.added_unix);
        let mut report = StoreReport::default();
        for entry in entries {
            let cid = entry.cid;
            let fix = repair && !self.is_downloading(&cid);
            let store = self.store().clone();
            let file = match blocking(move || {
                if fix {
                    store.repair(&cid)
                } else {
                    store.verify(&cid)
                }
            })
            .await
            {
                Ok(file) => file,
                // Removed while the others were checked.
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            if withdraws(&file) {
                self.net().stop_providing(cid).await;
            }
            if !file.is_ok() {
                tracing::warn!(
                    %cid,
                    bad = file.bad_chunks.len(),
                    missing = file.missing_chunks.len(),
                    changed_on_disk = file.changed_on_disk,
                    repair = ?file.repair,
                    "verify: file damaged"
                );
            }
            report.add(file);
        }
        Ok(report)
    }

    /// Marks the files tracked in place whose size or modification time changed since
    /// they were added (one `stat` each, no hashing), and stops announcing them. Returns
    /// the files newly marked.
    pub async fn withdraw_changed_files(&self) -> Result<Vec<Cid>, EngineError> {
        let store = self.store().clone();
        let changed = blocking(move || store.find_changed_in_place_files()).await?;
        for cid in &changed {
            tracing::warn!(%cid, "file changed on disk: no longer served or announced; add it again to share the new content");
            self.net().stop_providing(*cid).await;
        }
        Ok(changed)
    }

    /// The files tracked in place that changed on disk since they were added.
    pub async fn changed_files(&self) -> Result<Vec<Cid>, EngineError> {
        Ok(self
            .files()
            .await?
            .into_iter()
            .filter(|e| e.state == EntryState::ChangedOnDisk)
            .map(|e| e.cid)
            .collect())
    }
}

/// Whether a repair left the file with nothing to serve: it must no longer be announced.
fn withdraws(file: &FileReport) -> bool {
    matches!(
        file.repair,
        Some(Repair::MarkedChanged | Repair::BackToPartial { have: 0 })
    )
}
