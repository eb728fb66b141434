//! `rm`, `unpublish` and `publish` of a folder, which the file operations of the same
//! names hand a folder's CID to. The folder's own files (those of no other share, see
//! [`chunk_store::Store::files_only_in_folder`]) follow the folder; files another folder
//! has, or that were shared on their own, keep their state. Listing goes through the
//! store's `set_listed`, which switches the folder's catalog entry.

use dht_proto::Cid;

use crate::transfer::{blocking, lock, EngineError, Transfers};

impl Transfers {
    /// Whether the store knows `cid` as a folder.
    pub(crate) async fn is_folder(&self, cid: Cid) -> Result<bool, EngineError> {
        let store = self.store().clone();
        Ok(blocking(move || store.folder(&cid)).await?.is_some())
    }

    /// The folder's own files: those of no other folder and not shared on their own
    /// (they follow the folder when it is removed, unpublished or made private).
    pub(crate) async fn folder_own_files(&self, cid: Cid) -> Result<Vec<Cid>, EngineError> {
        let store = self.store().clone();
        Ok(blocking(move || store.files_only_in_folder(&cid)).await?)
    }

    /// Whether a fetch of the folder `cid` runs now.
    pub(crate) fn is_fetching_folder(&self, cid: &Cid) -> bool {
        lock(&self.inner.folders.fetches)
            .get(cid)
            .is_some_and(|f| !f.status.borrow().has_ended())
    }

    /// Stops announcing a folder and its own files; everything stays in the store, and
    /// the choice survives a restart.
    pub(crate) async fn unpublish_folder(&self, cid: Cid) -> Result<(), EngineError> {
        let files = self.set_folder_published(cid, false).await?;
        self.net().stop_providing(cid).await;
        for file in &files {
            self.withhold_announcements(file);
            self.net().stop_providing(*file).await;
        }
        tracing::info!(%cid, files = files.len(), "folder unpublished");
        Ok(())
    }

    /// Announces a folder and its own files again after `unpublish`.
    pub(crate) async fn publish_folder(&self, cid: Cid) -> Result<(), EngineError> {
        let files = self.set_folder_published(cid, true).await?;
        for file in &files {
            self.net().start_providing(*file).await;
        }
        self.net().start_providing(cid).await;
        tracing::info!(%cid, files = files.len(), "folder published again");
        Ok(())
    }

    /// Records `published` on the folder and on its own files; returns those files.
    async fn set_folder_published(
        &self,
        cid: Cid,
        published: bool,
    ) -> Result<Vec<Cid>, EngineError> {
        let store = self.store().clone();
        Ok(blocking(move || {
            let files = store.files_only_in_folder(&cid)?;
            store.update_folder(&cid, |r| r.published = published)?;
            for file in &files {
                store.set_published(file, published)?;
            }
            Ok(files)
        })
        .await?)
    }

    /// Stops announcing a folder, forgets it, and removes its own files as `rm` removes
    /// a file (the store's copies go; files tracked in place, such as a fetched tree,
    /// stay where they are). Refused while the folder is being fetched.
    pub(crate) async fn remove_folder(&self, cid: Cid) -> Result<(), EngineError> {
        if self.is_fetching_folder(&cid) {
            return Err(EngineError::Downloading(cid));
        }
        let files = self.folder_own_files(cid).await?;
        if let Some(busy) = files.iter().find(|f| self.is_downloading(f)) {
            return Err(EngineError::Downloading(*busy));
        }
        self.net().stop_providing(cid).await;
        for file in &files {
            self.net().stop_providing(*file).await;
        }
        let store = self.store().clone();
        let removed = files.len();
        blocking(move || {
            // The folder first: a failure half-way leaves files without their folder,
            // never a folder without its files.
            store.remove_folder(&cid)?;
            for file in &files {
                store.remove(file)?;
            }
            Ok(())
        })
        .await?;
        tracing::info!(%cid, files = removed, "folder removed");
        Ok(())
    }
}
