//! [`Store`]: opening a store, cleaning up after a crash, and what every operation shares
//! (the database handle, paths, entry lookups). The operations themselves live in
//! `import`, `read`, `download`, `entries` and `verify`, one `impl Store` block each.
//!
//! Every method blocks on the disk unless its documentation says otherwise; an async
//! caller runs them on a blocking thread.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use dht_proto::{Bitfield, Cid, Codec};
use redb::{Durability, ReadableTable, ReadableTableMetadata};

use crate::buffer::BufferPool;
use crate::db::Db;
use crate::entry_rows::EntryRows;
use crate::fsutil::hex;
use crate::manifests::ManifestCache;
use crate::tables::{EntryRecord, Location, ENTRIES, MANIFESTS, PARTIAL_HAVE};
use crate::StoreError;

/// Free chunk buffers kept for reuse (see [`BufferPool`]): as many as a busy node has in
/// use at once (its uploads in progress, its downloads' chunks in flight).
const KEPT_BUFFER_BYTES: usize = 32 << 20;

/// What [`Store::watch_entries`] calls after each committed change of an entry.
pub type EntryWatcher = Box<dyn Fn(&Cid) + Send + Sync>;

/// The content-addressed store of one data directory.
pub struct Store {
    pub(crate) db: Db,
    pub(crate) root: PathBuf,
    pub(crate) manifests: Mutex<ManifestCache>,
    pub(crate) buffers: BufferPool,
    /// Whether downloads write whole-page chunks with direct I/O (off once the file
    /// system refuses it, e.g. tmpfs).
    pub(crate) direct_io: AtomicBool,
    /// Chunks written with direct I/O since the store opened.
    pub(crate) direct_writes: AtomicU64,
    /// Told of every committed change of an entry.
    pub(crate) watcher: RwLock<Option<EntryWatcher>>,
    /// Committed changes of entries since the store opened.
    pub(crate) entry_changes: AtomicU64,
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn mtime_ns(meta: &fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Checks that a file CID names a manifest, and returns the key of its rows.
pub(crate) fn file_key(cid: &Cid) -> Result<[u8; 32], StoreError> {
    if cid.codec() != Codec::DagCbor {
        return Err(StoreError::Invalid(format!(
            "{cid} is a chunk CID (raw), not a file CID (dag-cbor)"
        )));
    }
    Ok(*cid.hash())
}

pub(crate) fn cid_of(key: [u8; 32]) -> Cid {
    Cid::new(Codec::DagCbor, key)
}

impl Store {
    /// Opens (or creates) the store in `root`, and removes leftovers of interrupted
    /// imports and orphaned content files. Opening an existing store needs no new space
    /// (see `db`), so it opens on a full disk.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        Self::create_dirs(&root)?;
        let db = Db::open(root.join("store.redb"))?;
        Self::with_db(root, db)
    }

    #[cfg(test)]
    pub(crate) fn open_with(root: PathBuf, open: crate::db::Opener) -> Result<Self, StoreError> {
        Self::create_dirs(&root)?;
        let db = Db::open_with(root.join("store.redb"), open)?;
        Self::with_db(root, db)
    }

    fn create_dirs(root: &Path) -> Result<(), StoreError> {
        for dir in ["blobs", "partial", "tmp"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(|e| StoreError::io("creating", &path, e))?;
        }
        Ok(())
    }

    fn with_db(root: PathBuf, db: Db) -> Result<Self, StoreError> {
        let store = Store {
            db,
            root,
            manifests: Mutex::new(ManifestCache::default()),
            buffers: BufferPool::new(KEPT_BUFFER_BYTES),
            direct_io: AtomicBool::new(cfg!(target_os = "linux")),
            direct_writes: AtomicU64::new(0),
            watcher: RwLock::new(None),
            entry_changes: AtomicU64::new(0),
        };
        store.clean_leftovers()?;
        Ok(store)
    }

    /// Calls `watcher` with a file's CID after every committed change of its entry: added,
    /// imported again, downloaded (begun or completed), a flag changed, found changed on
    /// disk, turned back into a partial download by a repair, or removed. It runs on the
    /// thread that made the change, after the commit, so it must be quick and must not
    /// call the store (e.g. send the CID on a channel). It replaces any earlier watcher.
    /// Does not block.
    pub fn watch_entries(&self, watcher: impl Fn(&Cid) + Send + Sync + 'static) {
        *self.watcher.write().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(watcher));
    }

    /// How many committed changes of entries (those [`Store::watch_entries`] is told of)
    /// the store has made since it opened: a list read before the count moved may be
    /// out of date, one read after it was taken is not. Does not block.
    pub fn entry_changes(&self) -> u64 {
        self.entry_changes.load(Ordering::Acquire)
    }

    pub(crate) fn entry_changed(&self, cid: &Cid) {
        self.entry_changes.fetch_add(1, Ordering::AcqRel);
        if let Some(watcher) = self
            .watcher
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            watcher(cid);
        }
    }

    /// The directory the store lives in. Does not block.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Turns direct I/O for downloaded chunks on or off (on by default on Linux; turned
    /// off by itself where the file system refuses it). Does not block.
    pub fn set_direct_io(&self, on: bool) {
        self.direct_io
            .store(on && cfg!(target_os = "linux"), Ordering::Relaxed);
    }

    /// How many chunks [`Store::write_chunk`] wrote with direct I/O since the store
    /// opened (0 where the file system does not support it). Does not block.
    pub fn direct_writes(&self) -> u64 {
        self.direct_writes.load(Ordering::Relaxed)
    }

    /// How many times the database had to be reopened after an I/O error since the
    /// store opened. Does not block.
    pub fn database_reopens(&self) -> u64 {
        self.db.generation() - 1
    }

    /// The pool chunk buffers come from: [`Store::read_chunk`] reads into it, and a
    /// network layer receiving chunks for [`Store::write_chunk`] should take its buffers
    /// from it too (page-aligned, so they can be written with direct I/O). Does not block.
    pub fn buffers(&self) -> &BufferPool {
        &self.buffers
    }

    pub(crate) fn blob_path(&self, key: &[u8; 32]) -> PathBuf {
        self.root.join("blobs").join(hex(key))
    }

    pub(crate) fn partial_path(&self, key: &[u8; 32]) -> PathBuf {
        self.root.join("partial").join(hex(key))
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// What a crash leaves behind: imports in progress under `tmp/`, and content files
    /// whose entry was never committed (or was removed before the file was).
    fn clean_leftovers(&self) -> Result<(), StoreError> {
        if let Ok(dir) = fs::read_dir(self.tmp_dir()) {
            for item in dir.flatten() {
                let _ = fs::remove_file(item.path());
            }
        }
        let known: HashMap<String, Location> = self
            .entries()?
            .into_iter()
            .map(|(key, record)| (hex(&key), record.location))
            .collect();
        for (dir, wanted) in [("blobs", Location::Blob), ("partial", Location::Partial)] {
            let path = self.root.join(dir);
            let Ok(listing) = fs::read_dir(&path) else {
                continue;
            };
            for item in listing.flatten() {
                let name = item.file_name().to_string_lossy().into_owned();
                if known.get(&name) != Some(&wanted) {
                    tracing::info!(file = %item.path().display(), "removing orphaned store file");
                    let _ = fs::remove_file(item.path());
                }
            }
        }
        Ok(())
    }

    pub(crate) fn entries(&self) -> Result<Vec<([u8; 32], EntryRecord)>, StoreError> {
        self.db.read(|tx| {
            let table = tx.open_table(ENTRIES)?;
            let mut out = Vec::new();
            for item in table.iter()? {
                let (key, value) = item?;
                let Ok(key) = <[u8; 32]>::try_from(key.value()) else {
                    continue;
                };
                out.push((key, EntryRecord::decode(value.value())?));
            }
            Ok(out)
        })
    }

    pub(crate) fn entry(&self, key: &[u8; 32]) -> Result<Option<EntryRecord>, StoreError> {
        self.db.read(|tx| {
            let table = tx.open_table(ENTRIES)?;
            let value = table.get(key.as_slice())?;
            value.map(|v| EntryRecord::decode(v.value())).transpose()
        })
    }

    /// Makes a file visible: its manifest, its entry and, for a partial download, its
    /// bitfield, in one transaction.
    pub(crate) fn insert_entry(
        &self,
        key: &[u8; 32],
        manifest_bytes: &[u8],
        record: &EntryRecord,
        partial_have: Option<&Bitfield>,
    ) -> Result<(), StoreError> {
        self.db.write(Durability::Immediate, |tx| {
            tx.open_table(MANIFESTS)?
                .insert(key.as_slice(), manifest_bytes)?;
            EntryRows::open(tx)?.insert(key, record)?;
            if let Some(have) = partial_have {
                tx.open_table(PARTIAL_HAVE)?
                    .insert(key.as_slice(), have.as_bytes())?;
            }
            Ok(())
        })?;
        self.entry_changed(&cid_of(*key));
        Ok(())
    }

    /// The number of files the store knows (complete or partial).
    pub fn len(&self) -> Result<u64, StoreError> {
        self.db.read(|tx| Ok(tx.open_table(ENTRIES)?.len()?))
    }

    /// Whether the store knows no file at all.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::faults::FailWrites;
    use crate::{EntryState, ImportMode};

    #[test]
    fn entry_changes_count_the_committed_changes_of_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let file = dir.path().join("a.bin");
        fs::write(&file, vec![3u8; 100_000]).unwrap();
        assert_eq!(store.entry_changes(), 0);
        let added = store
            .import(&file, ImportMode::Copy, None, &mut |_| {})
            .unwrap();
        let after_add = store.entry_changes();
        assert!(after_add >= 1);
        store.list().unwrap();
        assert_eq!(store.entry_changes(), after_add, "a read changes nothing");
        store.set_published(&added.cid, false).unwrap();
        assert!(store.entry_changes() > after_add);
        let after_flag = store.entry_changes();
        assert!(store.remove(&added.cid).unwrap());
        assert!(store.entry_changes() > after_flag);
    }

    /// What issue 11 saw after ENOSPC: every later store write failed until a restart,
    /// `rm` included. Now the failing write is reported and the next ones work.
    #[test]
    fn a_store_keeps_working_after_its_database_fails_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let fail = FailWrites::default();
        let store = Store::open_with(dir.path().join("store"), fail.opener()).unwrap();
        let file = dir.path().join("a.bin");
        fs::write(&file, vec![7u8; 100_000]).unwrap();
        let added = store
            .import(&file, ImportMode::Copy, None, &mut |_| {})
            .unwrap();

        fail.next(1);
        let e = store.set_published(&added.cid, false).unwrap_err();
        assert!(e.is_disk_full(), "{e}");
        assert_eq!(store.database_reopens(), 1);

        // Reads, writes and removal all work again, without reopening the store.
        let info = store.info(&added.cid).unwrap().unwrap();
        assert_eq!(info.state, EntryState::Complete);
        assert!(info.published, "the failed write changed nothing");
        store.set_published(&added.cid, false).unwrap();
        assert!(!store.info(&added.cid).unwrap().unwrap().published);
        assert!(store.remove(&added.cid).unwrap());
        assert!(store.is_empty().unwrap());
    }

    #[test]
    fn remove_frees_the_bytes_even_when_the_database_cannot_record_it_at_first() {
        let dir = tempfile::tempdir().unwrap();
        let fail = FailWrites::default();
        let root = dir.path().join("store");
        let store = Store::open_with(root.clone(), fail.opener()).unwrap();
        let file = dir.path().join("a.bin");
        fs::write(&file, vec![9u8; 100_000]).unwrap();
        let added = store
            .import(&file, ImportMode::Copy, None, &mut |_| {})
            .unwrap();
        let blob = store.blob_path(added.cid.hash());
        assert!(blob.exists());
        // The first attempt fails as on a full disk; the bytes go, then the retry commits.
        fail.next(1);
        assert!(store.remove(&added.cid).unwrap());
        assert!(!blob.exists());
        assert!(store.info(&added.cid).unwrap().is_none());
    }
}
