//! Entries: what the store lists (files and their state), their flags, and removal, which
//! frees the space of the store's copy even on a full disk.

use std::fs;

use dht_proto::Cid;
use redb::Durability;

use crate::entry_rows::EntryRows;
use crate::read::unchanged_on_disk;
use crate::store::{cid_of, file_key};
use crate::tables::{EntryRecord, Location, MANIFESTS, PARTIAL_HAVE};
use crate::{Store, StoreError};

/// Whether a file can be served whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryState {
    /// Every chunk is present and verified.
    Complete,
    /// A download in progress holding `have` verified chunks.
    Partial {
        /// Verified chunks.
        have: u32,
    },
    /// A file tracked in place changed (or vanished) after it was added: none of its
    /// chunks are served until it is added again. A node answers as if it did not have
    /// the file, and stops announcing it.
    ChangedOnDisk,
}

/// A file as the store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// The file CID.
    pub cid: Cid,
    /// The name it was added or fetched under.
    pub name: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// Number of chunks.
    pub chunk_count: u32,
    /// Complete, partial, or changed on disk.
    pub state: EntryState,
    /// Where the bytes are.
    pub location: Location,
    /// When it was added (seconds since the Unix epoch).
    pub added_unix: u64,
    /// Whether it is pinned.
    pub pinned: bool,
    /// Whether the node announces it.
    pub published: bool,
    /// Whether the node's catalog lists it.
    pub listed: bool,
}

impl Store {
    /// Describes one file, if the store knows it. A file tracked in place is reported
    /// [`EntryState::ChangedOnDisk`] as soon as its size or mtime differ (one `stat`),
    /// even before a read noticed it.
    pub fn info(&self, cid: &Cid) -> Result<Option<EntryInfo>, StoreError> {
        let key = file_key(cid)?;
        let Some(record) = self.entry(&key)? else {
            return Ok(None);
        };
        self.describe(key, record).map(Some)
    }

    fn describe(&self, key: [u8; 32], record: EntryRecord) -> Result<EntryInfo, StoreError> {
        let cid = cid_of(key);
        // Listing every file must not push the manifests of files being served out of
        // the cache.
        let manifest = self.manifest_uncached(&cid)?;
        let state = match record.location {
            Location::Partial => EntryState::Partial {
                have: self.partial_have(&cid)?.map(|b| b.count()).unwrap_or(0),
            },
            _ if record.changed_on_disk || !unchanged_on_disk(&record.location) => {
                EntryState::ChangedOnDisk
            }
            _ => EntryState::Complete,
        };
        Ok(EntryInfo {
            cid,
            name: record.name,
            size: manifest.size(),
            chunk_size: manifest.chunk_size(),
            chunk_count: manifest.chunk_count(),
            state,
            location: record.location,
            added_unix: record.added_unix,
            pinned: record.pinned,
            published: record.published,
            listed: record.listed,
        })
    }

    /// Every file the store knows, oldest first.
    pub fn list(&self) -> Result<Vec<EntryInfo>, StoreError> {
        let mut out = Vec::new();
        for (key, record) in self.entries()? {
            out.push(self.describe(key, record)?);
        }
        out.sort_by_key(|e| (e.added_unix, e.cid));
        Ok(out)
    }

    /// The CIDs of every complete file that can be served (what the node provides): not
    /// partial downloads, not files changed on disk.
    pub fn complete_cids(&self) -> Result<Vec<Cid>, StoreError> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|(_, r)| {
                r.location != Location::Partial
                    && !r.changed_on_disk
                    && unchanged_on_disk(&r.location)
            })
            .map(|(key, _)| cid_of(key))
            .collect())
    }

    /// Forgets a file and deletes the store's copy of its bytes (a blob, or the partial
    /// file of a download: cancelling a download frees its space). A file tracked in
    /// place is never deleted. Returns whether the store knew the file.
    ///
    /// On a full disk the database may lack the room even to record a deletion: then the
    /// store's copy is deleted first, to make that room, and the deletion tried again.
    /// Should that fail too, the entry stays without its bytes: a partial download
    /// fetches them again, and [`Store::verify`] reports a blob's chunks missing.
    pub fn remove(&self, cid: &Cid) -> Result<bool, StoreError> {
        let key = file_key(cid)?;
        let Some(record) = self.entry(&key)? else {
            return Ok(false);
        };
        let content = match record.location {
            Location::Blob => Some(self.blob_path(&key)),
            Location::Partial => Some(self.partial_path(&key)),
            Location::Reference { .. } => None,
        };
        let forget = || {
            self.db.write(Durability::Immediate, |tx| {
                let existed = EntryRows::open(tx)?.remove(&key)?;
                tx.open_table(MANIFESTS)?.remove(key.as_slice())?;
                tx.open_table(PARTIAL_HAVE)?.remove(key.as_slice())?;
                Ok(existed)
            })
        };
        let existed = match forget() {
            Ok(existed) => existed,
            Err(e) if e.is_disk_full() => {
                tracing::warn!(%cid, "no room to record a removal ({e}); deleting the bytes first");
                if let Some(file) = &content {
                    let _ = fs::remove_file(file);
                }
                forget()?
            }
            Err(e) => return Err(e),
        };
        self.lock_cache().remove(&key);
        if let Some(file) = content {
            let _ = fs::remove_file(file);
        }
        if existed {
            self.entry_changed(cid);
        }
        Ok(existed)
    }

    /// Sets or clears the pin of a file.
    pub fn set_pinned(&self, cid: &Cid, pinned: bool) -> Result<(), StoreError> {
        self.update_entry(cid, |record| record.pinned = pinned)
    }

    /// Records whether the node announces a file, so `unpublish` survives a restart.
    pub fn set_published(&self, cid: &Cid, published: bool) -> Result<(), StoreError> {
        self.update_entry(cid, |record| record.published = published)
    }

    /// Records whether the node's catalog lists a file or a folder (`list` / `unlist`);
    /// a folder's own files keep their choice (they are unlisted: the folder is listed).
    pub fn set_listed(&self, cid: &Cid, listed: bool) -> Result<(), StoreError> {
        if self.folder(cid)?.is_some() {
            return self.update_folder(cid, |record| record.listed = listed);
        }
        self.update_entry(cid, |record| record.listed = listed)
    }

    pub(crate) fn update_entry(
        &self,
        cid: &Cid,
        change: impl Fn(&mut EntryRecord),
    ) -> Result<(), StoreError> {
        let key = file_key(cid)?;
        self.db.write(Durability::Immediate, |tx| {
            let mut entries = EntryRows::open(tx)?;
            let Some(mut record) = entries.get(&key)? else {
                return Err(StoreError::NotFound(*cid));
            };
            change(&mut record);
            entries.insert(&key, &record)?;
            Ok(())
        })?;
        self.entry_changed(cid);
        Ok(())
    }
}
