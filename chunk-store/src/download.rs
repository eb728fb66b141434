//! Downloads: the partial file of a download in progress, its saved bitfield, resume,
//! chunk writes (direct I/O where possible) and completion, which places the finished
//! file without ever overwriting one.

use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use dht_proto::names::sanitize_file_name;
use dht_proto::{Bitfield, Cid, Manifest};
use redb::Durability;

use crate::buffer::PAGE;
use crate::entry_rows::EntryRows;
use crate::fsutil::{ensure_free_space, sync_dir, sync_parent, temp_beside};
use crate::hashing::{check_chunks, ChunkCheck};
use crate::platform::{self, allocated_bytes, refuses_direct_io, write_all_at};
use crate::read::unchanged_on_disk;
use crate::store::{file_key, mtime_ns, now_unix};
use crate::tables::{EntryRecord, Location, PARTIAL_HAVE};
use crate::{Store, StoreError};

impl Store {
    /// Starts or resumes the download of a file whose manifest bytes were fetched (and
    /// are checked here against `cid`: the one time they are hashed; the decoded
    /// manifest is cached). Fails with [`StoreError::NoSpace`] before anything is written
    /// unless the file system has room for the bytes still missing.
    ///
    /// Creates the pre-sized partial file on first use; on resume, re-hashes every chunk
    /// of the partial file and rebuilds the bitfield from what verifies (the saved one may
    /// be behind or ahead of the disk), so chunks written after the last
    /// [`Store::save_progress`] are not fetched again and lost ones are. A file tracked
    /// in place that changed on disk is downloaded again (into the store; the changed
    /// file is left alone). `name` (from a peer) is kept only in its safe form. Returns
    /// the manifest and the verified chunks.
    ///
    /// Blocks: a resume reads and hashes the whole partial file.
    pub fn begin_download(
        &self,
        cid: &Cid,
        manifest_bytes: &[u8],
        name: Option<String>,
    ) -> Result<(Arc<Manifest>, Bitfield), StoreError> {
        self.begin_download_listed(cid, manifest_bytes, name, true)
    }

    /// [`Store::begin_download`], choosing whether a new entry is listed (a file of a
    /// folder is not: the folder is); committed with the entry, so it costs no second
    /// write. An entry that exists keeps its own choice.
    pub fn begin_download_listed(
        &self,
        cid: &Cid,
        manifest_bytes: &[u8],
        name: Option<String>,
        listed: bool,
    ) -> Result<(Arc<Manifest>, Bitfield), StoreError> {
        let key = file_key(cid)?;
        let existing = self.entry(&key)?;
        match &existing {
            Some(record) if record.location == Location::Partial => {
                let manifest = self.manifest(cid)?.ok_or(StoreError::NotFound(*cid))?;
                let have = self.resume(cid, &key, &manifest)?;
                return Ok((manifest, have));
            }
            Some(record) if !record.changed_on_disk && unchanged_on_disk(&record.location) => {
                return Err(StoreError::AlreadyComplete(*cid));
            }
            _ => {}
        }
        let manifest = Manifest::decode_for(cid, manifest_bytes)
            .map_err(|e| StoreError::Invalid(format!("manifest of {cid}: {e}")))?;
        let path = self.partial_path(&key);
        ensure_free_space(&self.root.join("partial"), manifest.size())?;
        let file = File::create(&path).map_err(|e| StoreError::io("creating", &path, e))?;
        file.set_len(manifest.size())
            .map_err(|e| StoreError::io("sizing", &path, e))?;
        let have = Bitfield::new(manifest.chunk_count());
        let record = EntryRecord {
            name: existing
                .as_ref()
                .and_then(|r| r.name.clone())
                .or_else(|| name.and_then(|n| sanitize_file_name(&n))),
            location: Location::Partial,
            added_unix: now_unix(),
            pinned: existing.as_ref().is_some_and(|r| r.pinned),
            published: true,
            changed_on_disk: false,
            listed: existing.as_ref().map_or(listed, |r| r.listed),
            // Fetched by itself, or as a file of a folder (which fetches them unlisted).
            alone: existing.as_ref().map_or(listed, |r| r.alone),
        };
        self.insert_entry(&key, manifest_bytes, &record, Some(&have))?;
        let manifest = Arc::new(manifest);
        self.cache_manifest(key, manifest.clone());
        Ok((manifest, have))
    }

    /// Reopens (or recreates, if a crash lost it) the partial file of a download and
    /// finds which of its chunks verify.
    fn resume(
        &self,
        cid: &Cid,
        key: &[u8; 32],
        manifest: &Manifest,
    ) -> Result<Bitfield, StoreError> {
        let path = self.partial_path(key);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::io("opening", &path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| StoreError::io("reading metadata of", &path, e))?;
        // Blocks already allocated to the (sparse) partial file need no new space.
        let allocated = allocated_bytes(&meta);
        ensure_free_space(
            &self.root.join("partial"),
            manifest.size().saturating_sub(allocated),
        )?;
        file.set_len(manifest.size())
            .map_err(|e| StoreError::io("sizing", &path, e))?;
        // The saved bitfield may be behind the file (saves are periodic) or ahead of it
        // (a crash lost unsynced bytes, or the file itself): trust neither, hash it all.
        let mut have = Bitfield::new(manifest.chunk_count());
        check_chunks(
            &file,
            manifest,
            0..manifest.chunk_count(),
            &mut |index, check| {
                if check == ChunkCheck::Good {
                    have.set(index);
                }
            },
        );
        self.save_progress(cid, &have)?;
        Ok(have)
    }

    /// The saved bitfield of a partial download.
    pub fn partial_have(&self, cid: &Cid) -> Result<Option<Bitfield>, StoreError> {
        let key = file_key(cid)?;
        let Some(manifest) = self.manifest(cid)? else {
            return Ok(None);
        };
        let saved = self.db.read(|tx| {
            let table = tx.open_table(PARTIAL_HAVE)?;
            let value = table.get(key.as_slice())?;
            Ok(value.map(|v| v.value().to_vec()))
        })?;
        Ok(saved.and_then(|bytes| Bitfield::from_parts(manifest.chunk_count(), bytes)))
    }

    /// Verifies `data` as chunk `index` and writes it into the partial file. Nothing is
    /// written if it does not match the manifest. A chunk of whole pages in a page-aligned
    /// buffer (one from [`Store::buffers`]) is written with direct I/O where the file
    /// system allows it: the bytes go to the disk without a copy into the page cache,
    /// which saves the CPU of that copy and leaves little for the final sync.
    /// Blocks: hashes the chunk and writes it.
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
                Err(e) if refuses_direct_io(&e) => {
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
        write_all_at(&file, data, offset).map_err(|e| StoreError::io("writing", &path, e))
    }

    /// Flushes the chunks written so far of a partial download to disk, so that the sync
    /// when it completes has little left to do. Runs beside the transfer. Blocks.
    pub fn sync_download(&self, cid: &Cid) -> Result<(), StoreError> {
        let path = self.partial_path(&file_key(cid)?);
        let file = File::open(&path).map_err(|e| StoreError::io("opening", &path, e))?;
        file.sync_data()
            .map_err(|e| StoreError::io("syncing", &path, e))
    }

    /// Saves which chunks of a partial download are verified. Cheap enough to call every
    /// few chunks: it does not wait for the disk (a lost save is repaired by the re-hash
    /// in [`Store::begin_download`]); the next durable write of the store takes it to
    /// disk. (redb's `Eventual` syncs as `Immediate` does on Linux, hence `None`.)
    pub fn save_progress(&self, cid: &Cid, have: &Bitfield) -> Result<(), StoreError> {
        let key = file_key(cid)?;
        self.db.write(Durability::None, |tx| {
            tx.open_table(PARTIAL_HAVE)?
                .insert(key.as_slice(), have.as_bytes())?;
            Ok(())
        })
    }

    /// Finishes a download whose every chunk is verified: the bytes are synced to disk and
    /// the file moves to `output` (hard-linked, or copied across file systems), where the
    /// store tracks it in place; with no `output` it stays in the store as a blob. An
    /// existing file at `output` is never overwritten. A file placed at `output` gets
    /// the user's modes ([`crate::platform::set_output_mode`]). Blocks: syncs the
    /// file, and copies it when `output` is on another file system.
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
        let record = self.entry(&key)?.ok_or(StoreError::NotFound(*cid))?;
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
                place_file(&partial, output, manifest.size())?;
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
                name_blob(&partial, &blob)?;
                sync_parent(&blob).map_err(|e| StoreError::io("syncing", &blob, e))?;
                Location::Blob
            }
        };
        let record = EntryRecord {
            location: location.clone(),
            ..record
        };
        self.db.write(Durability::Immediate, |tx| {
            EntryRows::open(tx)?.insert(&key, &record)?;
            tx.open_table(PARTIAL_HAVE)?.remove(key.as_slice())?;
            Ok(())
        })?;
        // Only now that the entry names the file's new place does the partial file lose
        // its name: until then a reader (or a crash) that finds the entry saying `partial`
        // finds the partial file too. A crash before this leaves an orphan that the next
        // open deletes.
        let _ = fs::remove_file(&partial);
        self.entry_changed(cid);
        Ok(location)
    }
}

/// Gives a finished partial file its name under `blobs/` as a second name (hard link);
/// the partial name is removed once the entry says `blob`. A leftover file under that
/// name belongs to no entry (the entry says `partial`) and is replaced. Where the file
/// system has no hard links, the file is renamed instead.
fn name_blob(partial: &Path, blob: &Path) -> Result<(), StoreError> {
    let linked = match fs::hard_link(partial, blob) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            fs::remove_file(blob).map_err(|e| StoreError::io("removing", blob, e))?;
            fs::hard_link(partial, blob)
        }
        other => other,
    };
    if linked.is_err() {
        fs::rename(partial, blob).map_err(|e| StoreError::io("renaming", blob, e))?;
    }
    Ok(())
}

/// Writes `data` at `offset` of `path` with direct I/O (`O_DIRECT`, Linux); `data`, its
/// length and `offset` must be page-aligned. Fails with an error that
/// [`refuses_direct_io`] recognises where direct I/O is not supported.
fn write_direct(path: &Path, data: &[u8], offset: u64) -> std::io::Result<()> {
    write_all_at(&platform::open_direct(path)?, data, offset)
}

/// Gives a finished download of `size` bytes the name `output` without ever exposing a
/// partial file there and without overwriting an existing file: link it there when on
/// the same file system, otherwise (after checking for room) copy to a temporary name
/// beside `output`, sync, and link that. The placed file then gets the user's modes.
/// `from` keeps its name; the caller removes it once the entry names `output`.
pub(crate) fn place_file(from: &Path, output: &Path, size: u64) -> Result<(), StoreError> {
    match link_no_clobber(from, output) {
        Ok(()) => {
            give_user_modes(output);
            return sync_parent(output).map_err(|e| StoreError::io("syncing", output, e));
        }
        Err(StoreError::Invalid(m)) => return Err(StoreError::Invalid(m)),
        Err(_) => {} // another file system: copy below
    }
    ensure_free_space(output.parent().unwrap_or(Path::new(".")), size)?;
    let tmp = temp_beside(output);
    let result = fs::copy(from, &tmp)
        .and_then(|_| File::open(&tmp)?.sync_all())
        .map_err(|e| StoreError::io("writing", output, e))
        .and_then(|()| link_no_clobber(&tmp, output))
        .and_then(|()| sync_parent(output).map_err(|e| StoreError::io("syncing", output, e)));
    let _ = fs::remove_file(&tmp);
    if result.is_ok() {
        give_user_modes(output);
    }
    result
}

/// The daemon's private umask made the file 0600; the user gets the modes their own
/// umask gives. Not a reason to fail a download whose bytes are in place: a failure is
/// logged. (Set after the link, so a partial file left in the store by a failed link
/// stays private; the file is at `output` with mode 0600 for a moment.)
fn give_user_modes(output: &Path) {
    if let Err(e) = platform::set_output_mode(output, false) {
        tracing::warn!(path = %output.display(), "cannot set the mode of a downloaded file: {e}");
    }
}

/// Gives the finished file `from` the name `output` without ever replacing an existing
/// file, even one created a moment ago: a hard link fails if `output` exists. On file
/// systems without hard links it falls back to checking, then renaming (racy only there).
/// `from` keeps its own name; the caller removes it.
pub(crate) fn link_no_clobber(from: &Path, output: &Path) -> Result<(), StoreError> {
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

/// Links `from` to `to` (replacing nothing) and syncs `to`'s directory: how the store
/// moves a content file between `blobs/` and `partial/` while keeping the old name until
/// the entry that names the new one is committed.
pub(crate) fn link_durably(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::hard_link(from, to).map_err(|e| StoreError::io("linking", to, e))?;
    let dir = to.parent().unwrap_or(Path::new("."));
    sync_dir(dir).map_err(|e| StoreError::io("syncing", dir, e))
}
