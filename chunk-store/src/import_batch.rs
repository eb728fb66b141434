//! Importing many files with one commit: [`ImportBatch`], what a folder add uses.
//!
//! A lone import syncs its copy, syncs `blobs/` and commits its entry durably: three
//! waits on the disk per file, which made a folder of 10,000 small files take minutes.
//! A batch copies each file and gives it its name under `blobs/` at once, but syncs the
//! copies together (on several threads, so the file system joins their journal
//! commits), then `blobs/` once, then commits every entry in one transaction, every
//! [`MAX_BATCH_FILES`] files or [`MAX_BATCH_BYTES`] bytes and at
//! [`ImportBatch::finish`]. The order of a lone import is kept for the batch as a
//! whole: no entry is durable before the bytes and the name it points to. A crash
//! before a commit leaves blobs no entry names; the store deletes them when it next
//! opens, as it does for a lone import cut short.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use dht_proto::Cid;
use redb::Durability;

use crate::entry_rows::EntryRows;
use crate::fsutil::sync_dir;
use crate::import::{new_record, Settled};
use crate::tables::{EntryRecord, Location, MANIFESTS};
use crate::{ImportMode, ImportOutcome, Store, StoreError};

/// Entries a batch commits at most at once.
pub const MAX_BATCH_FILES: usize = 512;
/// Bytes copied into the store that a batch syncs and commits at most at once.
pub const MAX_BATCH_BYTES: u64 = 256 << 20;
/// Threads that sync a batch's copies together.
const SYNC_THREADS: usize = 16;

/// One imported file waiting for the batch's commit.
struct Pending {
    cid: Cid,
    manifest_bytes: Vec<u8>,
    record: EntryRecord,
    /// Entries the import replaces, forgotten once it is committed.
    replaced: Vec<Cid>,
}

/// Imports whose entries are committed together; see the module documentation. Until
/// [`ImportBatch::finish`] (or an automatic commit) returns, the files imported so far
/// are not in the store: a batch dropped before then deletes their copies.
pub struct ImportBatch<'a> {
    store: &'a Store,
    pending: Vec<Pending>,
    /// The position in `pending` of each key, so identical files are stored once.
    keys: HashMap<[u8; 32], usize>,
    /// Bytes of the copies waiting to be synced.
    copied: u64,
    /// Imports committed by this batch so far.
    committed: u64,
}

impl Store {
    /// Starts a batch of imports committed together (see [`ImportBatch`]).
    pub fn import_batch(&self) -> ImportBatch<'_> {
        ImportBatch {
            store: self,
            pending: Vec::new(),
            keys: HashMap::new(),
            copied: 0,
            committed: 0,
        }
    }
}

impl ImportBatch<'_> {
    /// [`Store::import_listed`] inside the batch: the same checks and outcome, but the
    /// entry is committed with the batch's others. Bytes already in the store, or
    /// already in this batch, are not copied again.
    ///
    /// Blocks: reads and hashes the file, and commits when the batch is full.
    pub fn import(
        &mut self,
        path: &Path,
        mode: ImportMode,
        name: Option<String>,
        listed: bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportOutcome, StoreError> {
        let mut prepared = self.store.prepare_import(path, mode, name, progress)?;
        if let Some(&at) = self.keys.get(&prepared.key) {
            // The bytes are in this batch already (the temporary copy is dropped).
            let earlier = &mut self.pending[at];
            earlier.record.listed |= listed;
            earlier.replaced.extend(prepared.replaced.iter().copied());
            return Ok(prepared.outcome(earlier.record.name.clone(), true));
        }
        let pinned = match self.store.settle_existing(&prepared, listed, false)? {
            Settled::Present(outcome) => return Ok(outcome),
            Settled::New { pinned } => pinned,
        };
        if let Some(tmp_path) = prepared.tmp.0.take() {
            self.store.place_blob(&tmp_path, &prepared.key, false)?;
            self.copied += prepared.size;
        }
        let outcome = prepared.outcome(prepared.name.clone(), false);
        self.keys.insert(prepared.key, self.pending.len());
        self.pending.push(Pending {
            cid: prepared.cid,
            manifest_bytes: prepared.manifest_bytes,
            record: new_record(prepared.name, prepared.location, listed, pinned, false),
            replaced: prepared.replaced,
        });
        if self.pending.len() >= MAX_BATCH_FILES || self.copied >= MAX_BATCH_BYTES {
            self.commit()?;
        }
        Ok(outcome)
    }

    /// Commits what the batch holds; returns how many imports it committed in all.
    /// Blocks: syncs the copies and commits.
    pub fn finish(mut self) -> Result<u64, StoreError> {
        self.commit()?;
        Ok(self.committed)
    }

    /// Syncs the copies, then `blobs/`, then commits every pending entry in one
    /// transaction.
    fn commit(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let blobs: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|p| p.record.location == Location::Blob)
            .map(|p| self.store.blob_path(p.cid.hash()))
            .collect();
        if !blobs.is_empty() {
            sync_all(&blobs)?;
            let dir = self.store.root.join("blobs");
            sync_dir(&dir).map_err(|e| StoreError::io("syncing", &dir, e))?;
        }
        let pending = &self.pending;
        self.store.db.write(Durability::Immediate, |tx| {
            let mut manifests = tx.open_table(MANIFESTS)?;
            let mut entries = EntryRows::open(tx)?;
            for p in pending {
                let key = p.cid.hash();
                manifests.insert(key.as_slice(), p.manifest_bytes.as_slice())?;
                entries.insert(key, &p.record)?;
            }
            Ok(())
        })?;
        self.committed += self.pending.len() as u64;
        self.copied = 0;
        self.keys.clear();
        for p in std::mem::take(&mut self.pending) {
            self.store.entry_changed(&p.cid);
            let replaced: Vec<Cid> = p.replaced.into_iter().filter(|c| *c != p.cid).collect();
            self.store.forget_all(&replaced)?;
        }
        Ok(())
    }
}

impl Drop for ImportBatch<'_> {
    /// Deletes the copies of imports never committed (an error, or no `finish`), unless
    /// an entry meanwhile names those bytes.
    fn drop(&mut self) {
        for p in &self.pending {
            if p.record.location != Location::Blob {
                continue;
            }
            if let Ok(None) = self.store.entry(p.cid.hash()) {
                let _ = fs::remove_file(self.store.blob_path(p.cid.hash()));
            }
        }
    }
}

/// Syncs `files` on up to [`SYNC_THREADS`] threads at once: the file system commits the
/// syncs that wait together as one.
pub(crate) fn sync_all(files: &[PathBuf]) -> Result<(), StoreError> {
    let per_thread = files.len().div_ceil(SYNC_THREADS).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(per_thread)
            .map(|group| {
                scope.spawn(move || {
                    for path in group {
                        File::open(path)
                            .and_then(|f| f.sync_all())
                            .map_err(|e| StoreError::io("syncing", path, e))?;
                    }
                    Ok::<(), StoreError>(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| StoreError::Db("a syncing thread panicked".into()))??;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::COMMITS;

    fn files(dir: &Path, n: usize) -> Vec<PathBuf> {
        (0..n)
            .map(|i| {
                let path = dir.join(format!("f{i}"));
                fs::write(&path, format!("file number {i}").repeat(300)).unwrap();
                path
            })
            .collect()
    }

    fn blob_count(store: &Store) -> usize {
        fs::read_dir(store.root().join("blobs")).unwrap().count()
    }

    fn commits() -> u64 {
        COMMITS.with(|n| n.get())
    }

    #[test]
    fn a_batch_commits_its_files_once_and_they_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let sources = files(dir.path(), 200);
        for mode in [ImportMode::Copy, ImportMode::Reference] {
            let before = commits();
            let mut batch = store.import_batch();
            let mut cids = Vec::new();
            for path in &sources {
                let outcome = batch.import(path, mode, None, false, &mut |_| {}).unwrap();
                assert_eq!(outcome.already_present, mode == ImportMode::Reference);
                cids.push(outcome.cid);
            }
            // Nothing is in the store before the commit.
            if mode == ImportMode::Copy {
                assert!(store.is_empty().unwrap());
            }
            assert_eq!(
                batch.finish().unwrap(),
                u64::from(mode == ImportMode::Copy) * 200
            );
            if mode == ImportMode::Copy {
                assert_eq!(commits() - before, 1, "one transaction for 200 files");
            }
            for (cid, path) in cids.iter().zip(&sources) {
                let info = store.info(cid).unwrap().unwrap();
                assert_eq!(info.state, crate::EntryState::Complete);
                assert!(!info.listed);
                let out = dir.path().join(format!("out-{cid}"));
                store.export(cid, &out).unwrap();
                assert_eq!(fs::read(&out).unwrap(), fs::read(path).unwrap());
                fs::remove_file(&out).unwrap();
            }
        }
        assert_eq!(store.len().unwrap(), 200);
        assert_eq!(blob_count(&store), 200);
    }

    #[test]
    fn a_full_batch_commits_by_itself_and_identical_files_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let sources = files(dir.path(), MAX_BATCH_FILES + 3);
        let twin = dir.path().join("twin");
        fs::copy(&sources[0], &twin).unwrap();
        let before = commits();
        let mut batch = store.import_batch();
        let first = batch
            .import(&sources[0], ImportMode::Copy, None, false, &mut |_| {})
            .unwrap();
        let again = batch
            .import(&twin, ImportMode::Copy, None, true, &mut |_| {})
            .unwrap();
        assert_eq!(again.cid, first.cid);
        assert!(again.already_present);
        for path in &sources[1..] {
            batch
                .import(path, ImportMode::Copy, None, false, &mut |_| {})
                .unwrap();
        }
        // The batch filled up once and committed then; the rest waits for `finish`.
        assert_eq!(store.len().unwrap(), MAX_BATCH_FILES as u64);
        assert_eq!(batch.finish().unwrap(), sources.len() as u64);
        assert_eq!(commits() - before, 2);
        assert_eq!(store.len().unwrap(), sources.len() as u64);
        assert_eq!(blob_count(&store), sources.len());
        // Listed by its second path, which asked for it.
        assert!(store.info(&first.cid).unwrap().unwrap().listed);
    }

    /// What a kill mid-batch leaves: copies under `blobs/` that no entry names. The
    /// store opens without them and with none of the batch's entries.
    #[test]
    fn a_batch_cut_short_leaves_nothing_once_the_store_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let sources = files(dir.path(), 20);
        {
            let store = Store::open(&root).unwrap();
            let kept = store
                .import(&sources[0], ImportMode::Copy, None, &mut |_| {})
                .unwrap();
            let mut batch = store.import_batch();
            for path in &sources[1..] {
                batch
                    .import(path, ImportMode::Copy, None, false, &mut |_| {})
                    .unwrap();
            }
            assert_eq!(blob_count(&store), 20);
            // No drop, no commit: as if the process died here.
            std::mem::forget(batch);
            assert!(store.info(&kept.cid).unwrap().is_some());
        }
        let store = Store::open(&root).unwrap();
        assert_eq!(store.len().unwrap(), 1);
        assert_eq!(blob_count(&store), 1);
        assert!(store.verify_store(false, &mut |_| {}).unwrap().is_ok());

        // A batch dropped without `finish` (an error on the way) deletes its copies.
        let mut batch = store.import_batch();
        for path in &sources[1..] {
            batch
                .import(path, ImportMode::Copy, None, false, &mut |_| {})
                .unwrap();
        }
        drop(batch);
        assert_eq!(blob_count(&store), 1);
        assert_eq!(store.len().unwrap(), 1);
    }
}
