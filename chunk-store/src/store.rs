//! [`Store`]: the store's operations. Every method is synchronous and may block on the
//! disk; an async caller runs them on a blocking thread.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use dht_proto::manifest::chunk_size_for;
use dht_proto::{Bitfield, Cid, Codec, Manifest};
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata};

use crate::buffer::{BufferPool, ChunkBuf, PAGE};
use crate::import::{hash_stream, import_error, ImportMode, ImportOutcome};
use crate::tables::{EntryRecord, Location, ENTRIES, MANIFESTS, PARTIAL_HAVE};
use crate::StoreError;

/// Manifests kept decoded in memory, so serving a chunk does not decode one each time.
const MANIFEST_CACHE: usize = 64;

/// Free chunk buffers kept for reuse (see [`BufferPool`]): as many as a busy node has in
/// use at once (its uploads in progress, its downloads' chunks in flight).
const KEPT_BUFFER_BYTES: usize = 32 << 20;

/// The content-addressed store of one data directory.
pub struct Store {
    db: Database,
    root: PathBuf,
    manifests: Mutex<HashMap<[u8; 32], Arc<Manifest>>>,
    buffers: BufferPool,
    /// Whether downloads write whole-page chunks with direct I/O (off once the file
    /// system refuses it, e.g. tmpfs).
    direct_io: AtomicBool,
    /// Chunks written with direct I/O since the store opened.
    direct_writes: AtomicU64,
}

/// Whether a file is whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryState {
    /// Every chunk is present and verified.
    Complete,
    /// A download in progress holding `have` verified chunks.
    Partial {
        /// Verified chunks.
        have: u32,
    },
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
    /// Complete or partial.
    pub state: EntryState,
    /// Where the bytes are.
    pub location: Location,
    /// When it was added (seconds since the Unix epoch).
    pub added_unix: u64,
    /// Whether it is pinned.
    pub pinned: bool,
    /// Whether the node announces it.
    pub published: bool,
}

/// The result of re-hashing a whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Chunks checked.
    pub chunks: u32,
    /// Chunks whose bytes do not match the manifest.
    pub bad_chunks: Vec<u32>,
}

fn hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn mtime_ns(meta: &fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Checks that a file CID names a manifest.
fn file_key(cid: &Cid) -> Result<[u8; 32], StoreError> {
    if cid.codec() != Codec::DagCbor {
        return Err(StoreError::Invalid(format!(
            "{cid} is a chunk CID (raw), not a file CID (dag-cbor)"
        )));
    }
    Ok(*cid.hash())
}

impl Store {
    /// Opens (or creates) the store in `root`, and removes leftovers of interrupted
    /// imports and orphaned content files.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        for dir in ["blobs", "partial", "tmp"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(|e| StoreError::io("creating", &path, e))?;
        }
        let db_path = root.join("store.redb");
        let db = Database::create(&db_path)?;
        {
            let tx = db.begin_write()?;
            tx.open_table(MANIFESTS)?;
            tx.open_table(ENTRIES)?;
            tx.open_table(PARTIAL_HAVE)?;
            tx.commit()?;
        }
        let store = Store {
            db,
            root,
            manifests: Mutex::new(HashMap::new()),
            buffers: BufferPool::new(KEPT_BUFFER_BYTES),
            direct_io: AtomicBool::new(cfg!(target_os = "linux")),
            direct_writes: AtomicU64::new(0),
        };
        store.clean_leftovers()?;
        Ok(store)
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Turns direct I/O for downloaded chunks on or off (on by default on Linux; turned
    /// off by itself where the file system refuses it).
    pub fn set_direct_io(&self, on: bool) {
        self.direct_io
            .store(on && cfg!(target_os = "linux"), Ordering::Relaxed);
    }

    /// How many chunks [`Store::write_chunk`] wrote with direct I/O since the store
    /// opened (0 where the file system does not support it).
    pub fn direct_writes(&self) -> u64 {
        self.direct_writes.load(Ordering::Relaxed)
    }

    /// The pool chunk buffers come from: [`Store::read_chunk`] reads into it, and a
    /// network layer receiving chunks for [`Store::write_chunk`] should take its buffers
    /// from it too (page-aligned, so they can be written with direct I/O).
    pub fn buffers(&self) -> &BufferPool {
        &self.buffers
    }

    fn blob_path(&self, key: &[u8; 32]) -> PathBuf {
        self.root.join("blobs").join(hex(key))
    }

    fn partial_path(&self, key: &[u8; 32]) -> PathBuf {
        self.root.join("partial").join(hex(key))
    }

    fn clean_leftovers(&self) -> Result<(), StoreError> {
        let tmp = self.root.join("tmp");
        if let Ok(dir) = fs::read_dir(&tmp) {
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

    fn entries(&self) -> Result<Vec<([u8; 32], EntryRecord)>, StoreError> {
        let tx = self.db.begin_read()?;
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
    }

    fn entry(&self, key: &[u8; 32]) -> Result<Option<EntryRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ENTRIES)?;
        let value = table.get(key.as_slice())?;
        value.map(|v| EntryRecord::decode(v.value())).transpose()
    }

    /// The number of files the store knows (complete or partial).
    pub fn len(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(ENTRIES)?.len()?)
    }

    /// Whether the store knows no file at all.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Imports the file at `path`. With [`ImportMode::Copy`] the bytes are copied into the
    /// store; with [`ImportMode::Reference`] they stay where they are. `progress` is told
    /// the bytes read so far. Importing bytes the store already has returns their CID
    /// with `already_present` set and changes nothing.
    pub fn import(
        &self,
        path: &Path,
        mode: ImportMode,
        name: Option<String>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportOutcome, StoreError> {
        let path = fs::canonicalize(path).map_err(|e| StoreError::io("opening", path, e))?;
        let mut input = File::open(&path).map_err(|e| StoreError::io("opening", &path, e))?;
        let meta_before = input
            .metadata()
            .map_err(|e| StoreError::io("reading metadata of", &path, e))?;
        if !meta_before.is_file() {
            return Err(StoreError::Invalid(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        let size = meta_before.len();
        let chunk_size = chunk_size_for(size).ok_or_else(|| {
            StoreError::Invalid(format!("{} is too large ({size} bytes)", path.display()))
        })?;
        let name = name.or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()));

        let mut tmp = None;
        if mode == ImportMode::Copy {
            let tmp_path = self
                .root
                .join("tmp")
                .join(format!("import-{:016x}", rand::random::<u64>()));
            let file =
                File::create(&tmp_path).map_err(|e| StoreError::io("creating", &tmp_path, e))?;
            tmp = Some((tmp_path, file));
        }
        // Remove the temporary copy on every early return.
        struct Cleanup(Option<PathBuf>);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                if let Some(p) = self.0.take() {
                    let _ = fs::remove_file(p);
                }
            }
        }
        let mut cleanup = Cleanup(tmp.as_ref().map(|(p, _)| p.clone()));

        let hashes = hash_stream(
            &mut input,
            size,
            chunk_size,
            tmp.as_mut().map(|(_, f)| f),
            progress,
        )
        .map_err(|e| import_error(&path, e))?;
        let meta_after =
            fs::metadata(&path).map_err(|e| StoreError::io("reading metadata of", &path, e))?;
        if meta_after.len() != size || mtime_ns(&meta_after) != mtime_ns(&meta_before) {
            return Err(StoreError::Changed(path));
        }
        let manifest = Manifest::new(size, chunk_size, hashes)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let manifest_bytes = manifest.encode();
        let cid = Cid::for_manifest_bytes(&manifest_bytes);
        let key = *cid.hash();
        let chunks = manifest.chunk_count();

        if let Some(existing) = self.entry(&key)? {
            if existing.location != Location::Partial {
                if !existing.published {
                    self.set_published(&cid, true)?;
                }
                return Ok(ImportOutcome {
                    cid,
                    size,
                    chunks,
                    name: existing.name,
                    already_present: true,
                });
            }
            // A download of these bytes was in progress: the import completes it.
            self.remove(&cid)?;
        }

        let location = match tmp {
            Some((tmp_path, file)) => {
                file.sync_all()
                    .map_err(|e| StoreError::io("syncing", &tmp_path, e))?;
                let blob = self.blob_path(&key);
                fs::rename(&tmp_path, &blob).map_err(|e| StoreError::io("renaming", &blob, e))?;
                cleanup.0 = None;
                Location::Blob
            }
            None => Location::Reference {
                path: path.clone(),
                size,
                mtime_ns: mtime_ns(&meta_before),
            },
        };
        let record = EntryRecord {
            name: name.clone(),
            location,
            added_unix: now_unix(),
            pinned: false,
            published: true,
        };
        let tx = self.db.begin_write()?;
        {
            tx.open_table(MANIFESTS)?
                .insert(key.as_slice(), manifest_bytes.as_slice())?;
            tx.open_table(ENTRIES)?
                .insert(key.as_slice(), record.encode().as_slice())?;
        }
        tx.commit()?;
        tracing::debug!(%cid, size, chunks, "imported");
        Ok(ImportOutcome {
            cid,
            size,
            chunks,
            name,
            already_present: false,
        })
    }

    /// The encoded manifest of a file the store knows (complete or partial).
    pub fn manifest_bytes(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        let key = file_key(cid)?;
        let tx = self.db.begin_read()?;
        let table = tx.open_table(MANIFESTS)?;
        let value = table.get(key.as_slice())?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// The manifest of a file if it is in the in-memory cache: no disk access, so an
    /// async task may call it.
    pub fn cached_manifest(&self, cid: &Cid) -> Option<Arc<Manifest>> {
        let key = file_key(cid).ok()?;
        self.lock_cache().get(&key).cloned()
    }

    /// The decoded manifest of a file the store knows.
    pub fn manifest(&self, cid: &Cid) -> Result<Option<Arc<Manifest>>, StoreError> {
        if let Some(m) = self.cached_manifest(cid) {
            return Ok(Some(m));
        }
        let Some(manifest) = self.decode_stored_manifest(cid)? else {
            return Ok(None);
        };
        let manifest = Arc::new(manifest);
        let mut cache = self.lock_cache();
        if cache.len() >= MANIFEST_CACHE {
            // Make room by evicting one, not all: the others may be serving uploads.
            if let Some(evicted) = cache.keys().next().copied() {
                cache.remove(&evicted);
            }
        }
        cache.insert(file_key(cid)?, manifest.clone());
        Ok(Some(manifest))
    }

    fn decode_stored_manifest(&self, cid: &Cid) -> Result<Option<Manifest>, StoreError> {
        let Some(bytes) = self.manifest_bytes(cid)? else {
            return Ok(None);
        };
        Manifest::decode(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Db(format!("stored manifest of {cid}: {e}")))
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<Manifest>>> {
        self.manifests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Describes one file, if the store knows it.
    pub fn info(&self, cid: &Cid) -> Result<Option<EntryInfo>, StoreError> {
        let key = file_key(cid)?;
        let Some(record) = self.entry(&key)? else {
            return Ok(None);
        };
        self.describe(key, record).map(Some)
    }

    fn describe(&self, key: [u8; 32], record: EntryRecord) -> Result<EntryInfo, StoreError> {
        let cid = Cid::new(Codec::DagCbor, key);
        // Listing every file must not push the manifests of files being served out of
        // the cache: use it when it has the manifest, decode without caching otherwise.
        let manifest = match self.cached_manifest(&cid) {
            Some(m) => m,
            None => Arc::new(
                self.decode_stored_manifest(&cid)?
                    .ok_or(StoreError::NotFound(cid))?,
            ),
        };
        let state = match record.location {
            Location::Partial => EntryState::Partial {
                have: self.partial_have(&cid)?.map(|b| b.count()).unwrap_or(0),
            },
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

    /// The CIDs of every complete file (what the node provides).
    pub fn complete_cids(&self) -> Result<Vec<Cid>, StoreError> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|(_, r)| r.location != Location::Partial)
            .map(|(key, _)| Cid::new(Codec::DagCbor, key))
            .collect())
    }

    /// Reads and returns chunk `index` of a file, in a buffer of [`Store::buffers`]. Bytes from a partial download or from a
    /// file tracked in place are verified against the manifest first; a changed
    /// in-place file is refused with [`StoreError::Changed`].
    pub fn read_chunk(&self, cid: &Cid, index: u32) -> Result<ChunkBuf, StoreError> {
        let key = file_key(cid)?;
        let record = self.entry(&key)?.ok_or(StoreError::NotFound(*cid))?;
        let manifest = self.manifest(cid)?.ok_or(StoreError::NotFound(*cid))?;
        if index >= manifest.chunk_count() {
            return Err(StoreError::ChunkUnavailable { cid: *cid, index });
        }
        let (path, verify) = match &record.location {
            Location::Blob => (self.blob_path(&key), false),
            Location::Partial => (self.partial_path(&key), true),
            Location::Reference {
                path,
                size,
                mtime_ns: mtime,
            } => {
                let meta = fs::metadata(path).map_err(|_| StoreError::Changed(path.clone()))?;
                if meta.len() != *size || mtime_ns(&meta) != *mtime {
                    return Err(StoreError::Changed(path.clone()));
                }
                (path.clone(), true)
            }
        };
        let file = File::open(&path).map_err(|e| StoreError::io("opening", &path, e))?;
        let mut data = self.buffers.get(manifest.chunk_len(index) as usize);
        if let Err(e) = file.read_exact_at(&mut data, manifest.chunk_offset(index)) {
            return Err(match (record.location, e.kind()) {
                (Location::Reference { path, .. }, std::io::ErrorKind::UnexpectedEof) => {
                    StoreError::Changed(path)
                }
                _ => StoreError::io("reading", &path, e),
            });
        }
        if verify && !manifest.verify_chunk(index, &data) {
            return Err(match record.location {
                Location::Partial => StoreError::ChunkUnavailable { cid: *cid, index },
                Location::Reference { path, .. } => StoreError::Changed(path),
                Location::Blob => StoreError::Corrupt { cid: *cid, index },
            });
        }
        Ok(data)
    }

    /// Writes a complete file to `output` (a new file; an existing one is never
    /// overwritten), reading every chunk through [`Store::read_chunk`] so that only
    /// verified bytes leave the store, and renaming into place only at the end.
    pub fn export(&self, cid: &Cid, output: &Path) -> Result<(), StoreError> {
        let manifest = self.manifest(cid)?.ok_or(StoreError::NotFound(*cid))?;
        if output.exists() {
            return Err(StoreError::Invalid(format!(
                "{} already exists",
                output.display()
            )));
        }
        let tmp = temp_beside(output);
        let result = (|| {
            let file = File::create(&tmp).map_err(|e| StoreError::io("creating", &tmp, e))?;
            let mut writer = std::io::BufWriter::with_capacity(1 << 20, &file);
            for index in 0..manifest.chunk_count() {
                let data = self.read_chunk(cid, index)?;
                std::io::Write::write_all(&mut writer, &data)
                    .map_err(|e| StoreError::io("writing", &tmp, e))?;
            }
            std::io::Write::flush(&mut writer).map_err(|e| StoreError::io("writing", &tmp, e))?;
            drop(writer);
            file.sync_all()
                .map_err(|e| StoreError::io("syncing", &tmp, e))?;
            link_no_clobber(&tmp, output)
        })();
        let _ = fs::remove_file(&tmp);
        result
    }

    /// Re-hashes every chunk of a complete file.
    pub fn verify(&self, cid: &Cid) -> Result<VerifyReport, StoreError> {
        let manifest = self.manifest(cid)?.ok_or(StoreError::NotFound(*cid))?;
        let mut bad_chunks = Vec::new();
        for index in 0..manifest.chunk_count() {
            let ok = match self.read_chunk(cid, index) {
                Ok(data) => manifest.verify_chunk(index, &data),
                Err(StoreError::Io { .. }) | Err(StoreError::Changed(_)) => false,
                Err(StoreError::ChunkUnavailable { .. }) | Err(StoreError::Corrupt { .. }) => false,
                Err(e) => return Err(e),
            };
            if !ok {
                bad_chunks.push(index);
            }
        }
        Ok(VerifyReport {
            chunks: manifest.chunk_count(),
            bad_chunks,
        })
    }

    /// Forgets a file and deletes the store's copy of its bytes (never a file tracked in
    /// place). Returns whether the store knew it.
    pub fn remove(&self, cid: &Cid) -> Result<bool, StoreError> {
        let key = file_key(cid)?;
        let tx = self.db.begin_write()?;
        let record = {
            let mut entries = tx.open_table(ENTRIES)?;
            let removed = entries.remove(key.as_slice())?;
            removed
                .map(|v| EntryRecord::decode(v.value()))
                .transpose()?
        };
        tx.open_table(MANIFESTS)?.remove(key.as_slice())?;
        tx.open_table(PARTIAL_HAVE)?.remove(key.as_slice())?;
        tx.commit()?;
        self.lock_cache().remove(&key);
        let Some(record) = record else {
            return Ok(false);
        };
        let file = match record.location {
            Location::Blob => Some(self.blob_path(&key)),
            Location::Partial => Some(self.partial_path(&key)),
            Location::Reference { .. } => None,
        };
        if let Some(file) = file {
            let _ = fs::remove_file(file);
        }
        Ok(true)
    }

    /// Sets or clears the pin of a file.
    pub fn set_pinned(&self, cid: &Cid, pinned: bool) -> Result<(), StoreError> {
        self.update_entry(cid, |record| record.pinned = pinned)
    }

    /// Records whether the node announces a file, so `unpublish` survives a restart.
    pub fn set_published(&self, cid: &Cid, published: bool) -> Result<(), StoreError> {
        self.update_entry(cid, |record| record.published = published)
    }

    fn update_entry(
        &self,
        cid: &Cid,
        change: impl FnOnce(&mut EntryRecord),
    ) -> Result<(), StoreError> {
        let key = file_key(cid)?;
        let tx = self.db.begin_write()?;
        {
            let mut entries = tx.open_table(ENTRIES)?;
            let mut record = match entries.get(key.as_slice())? {
                Some(v) => EntryRecord::decode(v.value())?,
                None => return Err(StoreError::NotFound(*cid)),
            };
            change(&mut record);
            entries.insert(key.as_slice(), record.encode().as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    // ----- partial downloads -----

    /// Starts or resumes the download of a file whose manifest bytes were fetched (and
    /// are checked here against `cid`). Creates the pre-sized partial file on first use;
    /// on resume, re-hashes every chunk of the partial file and rebuilds the bitfield from
    /// what verifies (the saved one may be behind or ahead of the disk), so chunks written
    /// after the last [`Store::save_progress`] are not fetched again and lost ones are.
    /// Returns the manifest and the verified chunks.
    pub fn begin_download(
        &self,
        cid: &Cid,
        manifest_bytes: &[u8],
        name: Option<String>,
    ) -> Result<(Arc<Manifest>, Bitfield), StoreError> {
        let key = file_key(cid)?;
        let manifest = Manifest::decode_for(cid, manifest_bytes)
            .map_err(|e| StoreError::Invalid(format!("manifest of {cid}: {e}")))?;
        match self.entry(&key)? {
            Some(record) if record.location != Location::Partial => {
                return Err(StoreError::AlreadyComplete(*cid));
            }
            Some(_) => {
                let manifest = self.manifest(cid)?.ok_or(StoreError::NotFound(*cid))?;
                let path = self.partial_path(&key);
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .map_err(|e| StoreError::io("opening", &path, e))?;
                file.set_len(manifest.size())
                    .map_err(|e| StoreError::io("sizing", &path, e))?;
                // The saved bitfield may be behind the file (saves are periodic) or
                // ahead of it (a crash lost unsynced bytes, or the file itself): trust
                // neither, hash every chunk.
                let mut have = Bitfield::new(manifest.chunk_count());
                let mut buf = Vec::new();
                for index in 0..manifest.chunk_count() {
                    buf.resize(manifest.chunk_len(index) as usize, 0);
                    if file
                        .read_exact_at(&mut buf, manifest.chunk_offset(index))
                        .is_ok()
                        && manifest.verify_chunk(index, &buf)
                    {
                        have.set(index);
                    }
                }
                self.save_progress(cid, &have)?;
                return Ok((manifest, have));
            }
            None => {}
        }
        let path = self.partial_path(&key);
        let file = File::create(&path).map_err(|e| StoreError::io("creating", &path, e))?;
        file.set_len(manifest.size())
            .map_err(|e| StoreError::io("sizing", &path, e))?;
        let have = Bitfield::new(manifest.chunk_count());
        let record = EntryRecord {
            name,
            location: Location::Partial,
            added_unix: now_unix(),
            pinned: false,
            published: true,
        };
        let tx = self.db.begin_write()?;
        {
            tx.open_table(MANIFESTS)?
                .insert(key.as_slice(), manifest_bytes)?;
            tx.open_table(ENTRIES)?
                .insert(key.as_slice(), record.encode().as_slice())?;
            tx.open_table(PARTIAL_HAVE)?
                .insert(key.as_slice(), have.as_bytes())?;
        }
        tx.commit()?;
        Ok((Arc::new(manifest), have))
    }

    /// The saved bitfield of a partial download.
    pub fn partial_have(&self, cid: &Cid) -> Result<Option<Bitfield>, StoreError> {
        let key = file_key(cid)?;
        let Some(manifest) = self.manifest(cid)? else {
            return Ok(None);
        };
        let tx = self.db.begin_read()?;
        let table = tx.open_table(PARTIAL_HAVE)?;
        let value = table.get(key.as_slice())?;
        Ok(value.and_then(|v| Bitfield::from_parts(manifest.chunk_count(), v.value().to_vec())))
    }

    /// Verifies `data` as chunk `index` and writes it into the partial file. Nothing is
    /// written if it does not match the manifest. A chunk of whole pages in a page-aligned
    /// buffer (one from [`Store::buffers`]) is written with direct I/O where the file
    /// system allows it: the bytes go to the disk without a copy into the page cache,
    /// which saves the CPU of that copy and leaves little for the final sync.
    pub fn write_chunk(
        &self,
        cid: &Cid,
        manifest: &Manifest,
        index: u32,
        data: &[u8],
    ) -> Result<(), StoreError> {
        if !manifest.verify_chunk(index, data) {
            return Err(StoreError::BadChunk { index });
        }
        let path = self.partial_path(&file_key(cid)?);
        let offset = manifest.chunk_offset(index);
        let whole_pages = (data.as_ptr() as usize).is_multiple_of(PAGE)
            && data.len().is_multiple_of(PAGE)
            && offset.is_multiple_of(PAGE as u64);
        if whole_pages && self.direct_io.load(Ordering::Relaxed) {
            match write_direct(&path, data, offset) {
                Ok(()) => {
                    self.direct_writes.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    tracing::debug!(path = %path.display(), "no direct I/O here: {e}");
                    self.direct_io.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(StoreError::io("writing", &path, e)),
            }
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io("opening", &path, e))?;
        file.write_all_at(data, offset)
            .map_err(|e| StoreError::io("writing", &path, e))
    }

    /// Flushes the chunks written so far of a partial download to disk, so that the sync
    /// when it completes has little left to do. Runs beside the transfer.
    pub fn sync_download(&self, cid: &Cid) -> Result<(), StoreError> {
        let path = self.partial_path(&file_key(cid)?);
        let file = File::open(&path).map_err(|e| StoreError::io("opening", &path, e))?;
        file.sync_data()
            .map_err(|e| StoreError::io("syncing", &path, e))
    }

    /// Saves which chunks of a partial download are verified. Cheap enough to call every
    /// few chunks: it does not wait for the disk (a lost save is repaired by the re-hash
    /// in [`Store::begin_download`]).
    pub fn save_progress(&self, cid: &Cid, have: &Bitfield) -> Result<(), StoreError> {
        let key = file_key(cid)?;
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Eventual);
        tx.open_table(PARTIAL_HAVE)?
            .insert(key.as_slice(), have.as_bytes())?;
        tx.commit()?;
        Ok(())
    }

    /// Finishes a download whose every chunk is verified: the bytes are synced to disk and
    /// the file moves to `output` (hard-linked, or copied across file systems), where the
    /// store tracks it in place; with no `output` it stays in the store as a blob. An
    /// existing file at `output` is never overwritten.
    pub fn complete_download(
        &self,
        cid: &Cid,
        have: &Bitfield,
        output: Option<&Path>,
    ) -> Result<Location, StoreError> {
        let key = file_key(cid)?;
        let manifest = self.manifest(cid)?.ok_or(StoreError::NotFound(*cid))?;
        if !have.is_complete() || have.len() != manifest.chunk_count() {
            return Err(StoreError::Invalid(format!(
                "download of {cid} is not complete ({}/{} chunks)",
                have.count(),
                manifest.chunk_count()
            )));
        }
        let mut record = self.entry(&key)?.ok_or(StoreError::NotFound(*cid))?;
        if record.location != Location::Partial {
            return Err(StoreError::AlreadyComplete(*cid));
        }
        let partial = self.partial_path(&key);
        let file = OpenOptions::new()
            .write(true)
            .open(&partial)
            .map_err(|e| StoreError::io("opening", &partial, e))?;
        file.sync_all()
            .map_err(|e| StoreError::io("syncing", &partial, e))?;
        drop(file);
        let location = match output {
            Some(output) => {
                place_file(&partial, output)?;
                let meta = fs::metadata(output)
                    .map_err(|e| StoreError::io("reading metadata of", output, e))?;
                Location::Reference {
                    path: output.to_path_buf(),
                    size: meta.len(),
                    mtime_ns: mtime_ns(&meta),
                }
            }
            None => {
                let blob = self.blob_path(&key);
                fs::rename(&partial, &blob).map_err(|e| StoreError::io("renaming", &blob, e))?;
                Location::Blob
            }
        };
        record.location = location.clone();
        let tx = self.db.begin_write()?;
        {
            tx.open_table(ENTRIES)?
                .insert(key.as_slice(), record.encode().as_slice())?;
            tx.open_table(PARTIAL_HAVE)?.remove(key.as_slice())?;
        }
        tx.commit()?;
        Ok(location)
    }
}

/// Writes `data` at `offset` of `path` with `O_DIRECT` (Linux); `data`, its length and
/// `offset` must be page-aligned. Fails with `EINVAL` where direct I/O is not supported.
#[cfg(target_os = "linux")]
fn write_direct(path: &Path, data: &[u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)?;
    file.write_all_at(data, offset)
}

#[cfg(not(target_os = "linux"))]
fn write_direct(_: &Path, _: &[u8], _: u64) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::EINVAL))
}

/// Moves a finished download to `output` without ever exposing a partial file there and
/// without overwriting an existing file: link it there when on the same file system,
/// otherwise copy to a temporary name beside `output`, sync, and link that.
fn place_file(from: &Path, output: &Path) -> Result<(), StoreError> {
    match link_no_clobber(from, output) {
        Ok(()) => {
            let _ = fs::remove_file(from);
            return Ok(());
        }
        Err(StoreError::Invalid(m)) => return Err(StoreError::Invalid(m)),
        Err(_) => {} // another file system: copy below
    }
    let tmp = temp_beside(output);
    let result = fs::copy(from, &tmp)
        .and_then(|_| File::open(&tmp)?.sync_all())
        .map_err(|e| StoreError::io("writing", output, e))
        .and_then(|()| link_no_clobber(&tmp, output));
    let _ = fs::remove_file(&tmp);
    if result.is_ok() {
        let _ = fs::remove_file(from);
    }
    result
}

/// Gives the finished file `from` the name `output` without ever replacing an existing
/// file, even one created a moment ago: a hard link fails if `output` exists. On file
/// systems without hard links it falls back to checking, then renaming (racy only there).
/// `from` keeps its own name; the caller removes it.
fn link_no_clobber(from: &Path, output: &Path) -> Result<(), StoreError> {
    let exists = || StoreError::Invalid(format!("{} already exists", output.display()));
    match fs::hard_link(from, output) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(exists()),
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            Err(StoreError::io("linking", output, e))
        }
        Err(_) => {
            // No hard links here (FAT, some network file systems).
            if output.exists() {
                return Err(exists());
            }
            let copy = temp_beside(from);
            fs::copy(from, &copy)
                .and_then(|_| fs::rename(&copy, output))
                .map_err(|e| {
                    let _ = fs::remove_file(&copy);
                    StoreError::io("writing", output, e)
                })
        }
    }
}

/// A hidden temporary name in the same directory as `output`, so a final rename is atomic.
fn temp_beside(output: &Path) -> PathBuf {
    let dir = output.parent().unwrap_or(Path::new("."));
    dir.join(format!(
        ".{}.p2pd-{:08x}",
        output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        rand::random::<u32>()
    ))
}
