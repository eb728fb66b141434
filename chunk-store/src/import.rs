//! Import: read a regular file once, cut it into chunks, hash them, and either copy the
//! bytes into the store or track the file where it is (the reading itself, on several
//! threads for a large file, is `import_read`).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use dht_proto::manifest::chunk_size_for;
use dht_proto::names::sanitize_file_name;
use dht_proto::{Cid, Manifest};

use crate::entry_rows::keys_tracking;
use crate::fsutil::{ensure_free_space, sync_dir};
use crate::import_read::{read_chunks, CopyTarget};
use crate::store::{mtime_ns, now_unix};
use crate::tables::{EntryRecord, Location};
use crate::{Store, StoreError};

/// How an imported file's bytes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Copy the bytes into the store.
    Copy,
    /// Track the file in place (`--no-copy`); it is re-verified whenever it is served.
    Reference,
}

/// What an import produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    /// The file CID.
    pub cid: Cid,
    /// File size in bytes.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u32,
    /// The name the store keeps for it.
    pub name: Option<String>,
    /// Whether the store already had these bytes (same CID), servable, before this import.
    pub already_present: bool,
    /// Other files tracked in place at this same path: its content changed since they
    /// were added, so this import replaced them (the store forgot them; the caller stops
    /// announcing them).
    pub replaced: Vec<Cid>,
}

/// Removes a temporary copy on every early return.
pub(crate) struct TempFile(pub(crate) Option<PathBuf>);

/// A file read and hashed (and, in copy mode, copied under `tmp/`), not yet in the store.
pub(crate) struct Prepared {
    pub(crate) cid: Cid,
    pub(crate) key: [u8; 32],
    pub(crate) size: u64,
    pub(crate) chunks: u32,
    pub(crate) name: Option<String>,
    pub(crate) manifest_bytes: Vec<u8>,
    /// Entries tracking this path in place that the import replaces.
    pub(crate) replaced: Vec<Cid>,
    /// Where the bytes will be: [`Location::Blob`] for a copy (under `tmp`'s name for
    /// now), the file itself otherwise.
    pub(crate) location: Location,
    pub(crate) tmp: TempFile,
}

impl Prepared {
    pub(crate) fn outcome(&self, name: Option<String>, already_present: bool) -> ImportOutcome {
        ImportOutcome {
            cid: self.cid,
            size: self.size,
            chunks: self.chunks,
            name,
            already_present,
            replaced: self.replaced.clone(),
        }
    }
}

/// What the store held of a prepared import.
pub(crate) enum Settled {
    /// The bytes were there already: the import is done.
    Present(ImportOutcome),
    /// The import goes on; the new entry keeps the pin of the one it replaces.
    New { pinned: bool },
}

/// The entry of a file just imported.
pub(crate) fn new_record(
    name: Option<String>,
    location: Location,
    listed: bool,
    pinned: bool,
    alone: bool,
) -> EntryRecord {
    EntryRecord {
        name,
        location,
        added_unix: now_unix(),
        pinned,
        published: true,
        changed_on_disk: false,
        listed,
        alone,
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

impl Store {
    /// Imports the file at `path`. With [`ImportMode::Copy`] the bytes are copied into the
    /// store (after checking there is room for them); with [`ImportMode::Reference`] they
    /// stay where they are. `progress` is told the bytes read so far. Anything but a
    /// regular file (a FIFO, a device, a directory) is refused before it is opened.
    ///
    /// Importing bytes the store already has returns their CID with `already_present`
    /// set and changes nothing, except that a file tracked in place that had changed on
    /// disk is tracked (or copied) anew. `name`, if given, must be a plain file name.
    ///
    /// Blocks: reads and hashes the whole file.
    pub fn import(
        &self,
        path: &Path,
        mode: ImportMode,
        name: Option<String>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportOutcome, StoreError> {
        self.import_listed(path, mode, name, true, progress)
    }

    /// [`Store::import`], choosing whether the node's catalog lists the file: `listed`
    /// is committed with the entry, so an unlisted file is never listed, not even for a
    /// moment. Importing bytes already present sets their listing to `listed` too (and
    /// `published`, as `import` does). Either way the file is a share of its own
    /// ([`EntryRecord::alone`]): removing a folder that also holds it keeps it.
    pub fn import_listed(
        &self,
        path: &Path,
        mode: ImportMode,
        name: Option<String>,
        listed: bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportOutcome, StoreError> {
        let prepared = self.prepare_import(path, mode, name, progress)?;
        let pinned = match self.settle_existing(&prepared, listed, true)? {
            Settled::Present(outcome) => return Ok(outcome),
            Settled::New { pinned } => pinned,
        };
        let Prepared {
            cid,
            key,
            size,
            chunks,
            name,
            manifest_bytes,
            replaced,
            location,
            mut tmp,
        } = prepared;
        let location = match (location, tmp.0.take()) {
            (Location::Blob, Some(tmp_path)) => {
                let blob = self.place_blob(&tmp_path, &key, true)?;
                // The entry must never be durable before the name of its bytes is.
                sync_dir(&self.root.join("blobs"))
                    .map_err(|e| StoreError::io("syncing", &blob, e))?;
                Location::Blob
            }
            (location, _) => location,
        };
        let record = new_record(name.clone(), location, listed, pinned, true);
        self.insert_entry(&key, &manifest_bytes, &record, None)?;
        self.forget_all(&replaced)?;
        tracing::debug!(%cid, size, chunks, "imported");
        Ok(ImportOutcome {
            cid,
            size,
            chunks,
            name,
            already_present: false,
            replaced,
        })
    }

    /// Reads and hashes the file at `path` and, in copy mode, copies it to a temporary
    /// file under `tmp/` (not synced): everything an import does before it decides
    /// anything, shared by [`Store::import_listed`] and the batch of `import_batch`.
    pub(crate) fn prepare_import(
        &self,
        path: &Path,
        mode: ImportMode,
        name: Option<String>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Prepared, StoreError> {
        if let Some(name) = &name {
            if sanitize_file_name(name).as_deref() != Some(name.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "invalid name {name:?}: a name is one plain file name (no path parts, \
                     control characters or leading dot, at most 255 bytes)"
                )));
            }
        }
        let (path, input, meta_before) = open_regular_file(path)?;
        let size = meta_before.len();
        let chunk_size = chunk_size_for(size).ok_or_else(|| {
            StoreError::Invalid(format!("{} is too large ({size} bytes)", path.display()))
        })?;
        let name = name.or_else(|| {
            path.file_name()
                .and_then(|n| sanitize_file_name(&n.to_string_lossy()))
        });

        let mut tmp = TempFile(None);
        let mut copy = None;
        if mode == ImportMode::Copy {
            ensure_free_space(&self.tmp_dir(), size)?;
            let tmp_path = self
                .tmp_dir()
                .join(format!("import-{:016x}", rand::random::<u64>()));
            File::create(&tmp_path).map_err(|e| StoreError::io("creating", &tmp_path, e))?;
            tmp.0 = Some(tmp_path.clone());
            copy = Some(
                CopyTarget::open(self, &tmp_path, size)
                    .map_err(|e| StoreError::io("creating", &tmp_path, e))?,
            );
        }

        let hashes = read_chunks(self, &input, size, chunk_size, copy.as_ref(), progress)
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
        let replaced = self.stale_references_at(&path, &key)?;
        let location = match mode {
            ImportMode::Copy => Location::Blob,
            ImportMode::Reference => Location::Reference {
                path: path.clone(),
                size,
                mtime_ns: mtime_ns(&meta_before),
            },
        };
        Ok(Prepared {
            cid,
            key,
            size,
            chunks: manifest.chunk_count(),
            name,
            manifest_bytes,
            replaced,
            location,
            tmp,
        })
    }

    /// What the store already holds of a prepared import: a download of these bytes in
    /// progress is dropped (the import completes it); bytes already present and servable
    /// are kept, their listing set to `listed` (and marked [`EntryRecord::alone`] when
    /// `alone`), and the import ends there (the outcome is returned). A file tracked in
    /// place that changed since is imported anew.
    pub(crate) fn settle_existing(
        &self,
        prepared: &Prepared,
        listed: bool,
        alone: bool,
    ) -> Result<Settled, StoreError> {
        let Some(existing) = self.entry(&prepared.key)? else {
            return Ok(Settled::New { pinned: false });
        };
        let pinned = existing.pinned;
        match existing.location {
            Location::Partial => {
                self.remove(&prepared.cid)?;
                Ok(Settled::New { pinned })
            }
            _ if !existing.changed_on_disk => {
                if !existing.published || existing.listed != listed || (alone && !existing.alone) {
                    self.update_entry(&prepared.cid, |record| {
                        record.published = true;
                        record.listed = listed;
                        record.alone |= alone;
                    })?;
                }
                self.forget_all(&prepared.replaced)?;
                Ok(Settled::Present(prepared.outcome(existing.name, true)))
            }
            // Tracked in place and changed since: track (or copy) these bytes anew.
            _ => Ok(Settled::New { pinned }),
        }
    }

    /// Gives a copied file its name under `blobs/`, synced first when `sync` (a batch
    /// syncs its files together before it commits). The caller syncs `blobs/`.
    pub(crate) fn place_blob(
        &self,
        tmp_path: &Path,
        key: &[u8; 32],
        sync: bool,
    ) -> Result<PathBuf, StoreError> {
        if sync {
            File::open(tmp_path)
                .and_then(|f| f.sync_all())
                .map_err(|e| StoreError::io("syncing", tmp_path, e))?;
        }
        let blob = self.blob_path(key);
        fs::rename(tmp_path, &blob).map_err(|e| StoreError::io("renaming", &blob, e))?;
        Ok(blob)
    }

    /// Entries other than `key` tracking `path` in place: the file there now hashes to
    /// `key`, so they describe content that is gone, noticed or not.
    /// Looks them up in the index of in-place paths: import costs the same however many
    /// files the store holds.
    fn stale_references_at(&self, path: &Path, key: &[u8; 32]) -> Result<Vec<Cid>, StoreError> {
        let candidates = self.db.read(|tx| keys_tracking(tx, path))?;
        let mut stale = Vec::new();
        for other in candidates.into_iter().filter(|k| k != key) {
            // The index is kept with the entries; checking the entry itself costs one
            // lookup and keeps a wrong index row from forgetting an unrelated file.
            let tracks_path = self.entry(&other)?.is_some_and(|record| {
                matches!(&record.location, Location::Reference { path: p, .. } if p == path)
            });
            if tracks_path {
                stale.push(crate::store::cid_of(other));
            }
        }
        Ok(stale)
    }

    pub(crate) fn forget_all(&self, cids: &[Cid]) -> Result<(), StoreError> {
        for cid in cids {
            self.remove(cid)?;
        }
        Ok(())
    }
}

/// Resolves `path` and opens it for reading, refusing anything but a regular file before
/// opening it (opening a FIFO for reading blocks until a writer comes). The path could
/// be swapped between the check and the open, so the open does not block either
/// (`O_NONBLOCK`) and the opened file is checked again.
pub(crate) fn open_regular_file(path: &Path) -> Result<(PathBuf, File, fs::Metadata), StoreError> {
    let path = fs::canonicalize(path).map_err(|e| StoreError::io("opening", path, e))?;
    let meta = fs::metadata(&path).map_err(|e| StoreError::io("reading metadata of", &path, e))?;
    if !meta.is_file() {
        return Err(not_regular(&path));
    }
    let (file, meta) = open_checked(&path)?;
    Ok((path, file, meta))
}

fn open_checked(path: &Path) -> Result<(File, fs::Metadata), StoreError> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // No effect on a regular file's reads; keeps a FIFO or device from blocking here.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options
        .open(path)
        .map_err(|e| StoreError::io("opening", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| StoreError::io("reading metadata of", path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path));
    }
    Ok((file, meta))
}

fn not_regular(path: &Path) -> StoreError {
    StoreError::Invalid(format!("{} is not a regular file", path.display()))
}

/// Converts an I/O error during import into a store error naming the file.
fn import_error(path: &Path, e: std::io::Error) -> StoreError {
    // A file that shrank or grew while it was read changed under us: the caller's file
    // is at fault, not the store.
    if matches!(
        e.kind(),
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::FileTooLarge
    ) {
        StoreError::Changed(path.to_path_buf())
    } else {
        StoreError::io("reading", path, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The second line of defence: a path swapped for a FIFO after the check is opened
    /// without blocking and refused.
    #[test]
    fn a_fifo_reaching_the_open_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = done_tx.send(open_checked(&path).map(|_| ()));
        });
        let result = done_rx.recv_timeout(std::time::Duration::from_secs(10));
        if result.is_err() {
            // Unblock the stuck open before failing.
            let _ = OpenOptions::new().write(true).open(&fifo);
        }
        let result = result.expect("opening a FIFO blocked");
        assert!(matches!(result, Err(StoreError::Invalid(m)) if m.contains("not a regular file")));
    }
}
