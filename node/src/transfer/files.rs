//! The engine's file operations: add (import into the store and announce), list,
//! remove, unpublish, publish again, and reading a file's verified chunks. Store calls run on blocking
//! threads; announcements go to the network task.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use chunk_store::{ChunkBuf, EntryInfo, EntryState, ImportMode, ImportOutcome};
use dht_proto::Cid;

use super::{blocking, EngineError, Transfers};

/// What a complete file is, for whoever reads or shares it.
#[derive(Debug, Clone)]
pub struct Content {
    /// The file.
    pub cid: Cid,
    /// A name safe to save it under (see [`safe_file_name`]).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Number of chunks (of a folder: its files).
    pub chunks: u32,
    /// Whether the CID names a folder.
    pub directory: bool,
}

impl Transfers {
    /// Imports a file (copied into the store, or tracked in place) and announces it;
    /// `listed` chooses whether the node's catalog lists it. `progress` is told the
    /// bytes read so far.
    pub async fn add(
        &self,
        path: PathBuf,
        mode: ImportMode,
        name: Option<String>,
        listed: bool,
        mut progress: impl FnMut(u64) + Send + 'static,
    ) -> Result<ImportOutcome, EngineError> {
        let store = self.store().clone();
        let outcome =
            blocking(move || store.import_listed(&path, mode, name, listed, &mut progress)).await?;
        tracing::info!(cid = %outcome.cid, size = outcome.size, "file added");
        self.net().start_providing(outcome.cid).await;
        Ok(outcome)
    }

    /// Every file the store holds, complete or partial, oldest first.
    pub async fn files(&self) -> Result<Vec<EntryInfo>, EngineError> {
        let store = self.store().clone();
        Ok(blocking(move || store.list()).await?)
    }

    /// How many files the store holds.
    pub async fn file_count(&self) -> Result<u64, EngineError> {
        let store = self.store().clone();
        Ok(blocking(move || store.len()).await?)
    }

    /// Committed changes of the store's entries since the daemon started (see
    /// [`chunk_store::Store::entry_changes`]). Does not block.
    pub fn entry_changes(&self) -> u64 {
        self.store().entry_changes()
    }

    /// Stops announcing a file (or a folder: see `folder/manage.rs`); it stays in the
    /// store. A download of it running now finishes without announcing it, and the
    /// choice survives a restart.
    pub async fn unpublish(&self, cid: Cid) -> Result<(), EngineError> {
        if self.is_folder(cid).await? {
            return self.unpublish_folder(cid).await;
        }
        // First, so that a download cannot announce the file after the withdrawal
        // below (it checks the flag again after each announcement).
        let downloading = self.withhold_announcements(&cid);
        let store = self.store().clone();
        match blocking(move || store.set_published(&cid, false)).await {
            Ok(()) => {}
            // A download that has no manifest yet has no entry: it records the choice
            // when it creates one.
            Err(chunk_store::StoreError::NotFound(_)) if downloading => {}
            Err(e) => return Err(e.into()),
        }
        self.net().stop_providing(cid).await;
        tracing::info!(%cid, "file unpublished");
        Ok(())
    }

    /// Announces a file (or a folder) again after `unpublish`; the choice survives a
    /// restart.
    pub async fn publish(&self, cid: Cid) -> Result<(), EngineError> {
        if self.is_folder(cid).await? {
            return self.publish_folder(cid).await;
        }
        let store = self.store().clone();
        blocking(move || store.set_published(&cid, true)).await?;
        self.net().start_providing(cid).await;
        tracing::info!(%cid, "file published again");
        Ok(())
    }

    /// Stops announcing a file and deletes the store's copy (a file tracked in place is
    /// left where it is), or does so for a folder and its own files. Refused while the
    /// file or folder downloads.
    pub async fn remove(&self, cid: Cid) -> Result<(), EngineError> {
        if self.is_folder(cid).await? {
            return self.remove_folder(cid).await;
        }
        if self.is_downloading(&cid) {
            return Err(EngineError::Downloading(cid));
        }
        self.net().stop_providing(cid).await;
        let store = self.store().clone();
        if !blocking(move || store.remove(&cid)).await? {
            return Err(chunk_store::StoreError::NotFound(cid).into());
        }
        tracing::info!(%cid, "file removed");
        Ok(())
    }

    /// A complete file's name, size and chunk count (what a share ticket carries).
    pub async fn content(&self, cid: Cid) -> Result<Content, EngineError> {
        let store = self.store().clone();
        let info = blocking(move || store.info(&cid))
            .await?
            .ok_or(chunk_store::StoreError::NotFound(cid))?;
        if !matches!(info.state, EntryState::Complete) {
            return Err(EngineError::NotComplete(cid));
        }
        Ok(Content {
            cid,
            name: safe_file_name(info.name.as_deref(), &cid),
            size: info.size,
            chunks: info.chunk_count,
            directory: false,
        })
    }

    /// One verified chunk of a file.
    pub async fn read_chunk(&self, cid: Cid, index: u32) -> Result<ChunkBuf, EngineError> {
        let store = self.store().clone();
        Ok(blocking(move || store.read_chunk(&cid, index)).await?)
    }

    /// Announces a file a download holds chunks of, unless the owner unpublished it. The
    /// flag is checked again afterwards: an `unpublish` that ran meanwhile may have
    /// withdrawn the file before this announcement reached the network task.
    pub(super) async fn announce_download(
        &self,
        cid: Cid,
        shared: &super::downloads::DownloadShared,
    ) {
        if !shared.published.load(Ordering::SeqCst) {
            return;
        }
        self.net().start_providing(cid).await;
        if !shared.published.load(Ordering::SeqCst) {
            self.net().stop_providing(cid).await;
        }
    }
}

/// A file name from a peer, made safe to create in a directory
/// ([`dht_proto::names::sanitize_file_name`]); the CID when nothing usable is left.
pub fn safe_file_name(name: Option<&str>, cid: &Cid) -> String {
    name.and_then(dht_proto::names::sanitize_file_name)
        .unwrap_or_else(|| cid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_from_peers_are_made_safe() {
        let cid = Cid::for_manifest_bytes(b"x");
        assert_eq!(safe_file_name(Some("report.pdf"), &cid), "report.pdf");
        assert_eq!(safe_file_name(Some("../../etc/passwd"), &cid), "passwd");
        assert_eq!(safe_file_name(Some(".."), &cid), cid.to_string());
        assert_eq!(safe_file_name(Some(".bashrc"), &cid), cid.to_string());
        assert_eq!(safe_file_name(Some("a\nb"), &cid), "ab");
        assert_eq!(safe_file_name(None, &cid), cid.to_string());
        assert_eq!(safe_file_name(Some(""), &cid), cid.to_string());
    }
}
