//! Reads: serving verified chunks, exporting a whole file, and noticing that a file tracked
//! in place changed on disk (which stops it being served until it is added again).

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use dht_proto::Cid;
use redb::Durability;

use crate::buffer::ChunkBuf;
use crate::download::link_no_clobber;
use crate::entry_rows::EntryRows;
use crate::fsutil::{ensure_free_space, sync_parent, temp_beside};
use crate::platform::{read_exact_at, set_output_mode};
use crate::store::{cid_of, file_key, mtime_ns};
use crate::tables::{EntryRecord, Location};
use crate::{Store, StoreError};

/// Whether a file tracked in place still has the size and modification time it had when
/// it was added.
pub(crate) fn unchanged_on_disk(location: &Location) -> bool {
    match location {
        Location::Reference {
            path,
            size,
            mtime_ns: mtime,
        } => fs::metadata(path)
            .is_ok_and(|m| m.is_file() && m.len() == *size && mtime_ns(&m) == *mtime),
        _ => true,
    }
}

impl Store {
    /// Reads and returns chunk `index` of a file, in a buffer of [`Store::buffers`].
    /// Bytes from a partial download or from a file tracked in place are verified
    /// against the manifest first. A file tracked in place that changed (size, mtime,
    /// or bytes that no longer hash right) is marked changed on disk, persistently, and
    /// every read of it answers [`StoreError::Changed`] until it is added again.
    pub fn read_chunk(&self, cid: &Cid, index: u32) -> Result<ChunkBuf, StoreError> {
        let key = file_key(cid)?;
        let record = self.entry(&key)?.ok_or(StoreError::NotFound(*cid))?;
        let manifest = self.manifest(cid)?.ok_or(StoreError::NotFound(*cid))?;
        if index >= manifest.chunk_count() {
            return Err(StoreError::ChunkUnavailable { cid: *cid, index });
        }
        let path = match &record.location {
            Location::Blob => self.blob_path(&key),
            Location::Partial => self.partial_path(&key),
            Location::Reference { path, .. } => {
                if record.changed_on_disk {
                    return Err(StoreError::Changed(path.clone()));
                }
                if !unchanged_on_disk(&record.location) {
                    return Err(self.changed(key, &record.location, path));
                }
                path.clone()
            }
        };
        let mut data = self.buffers.get(manifest.chunk_len(index) as usize);
        let read = File::open(&path)
            .and_then(|f| read_exact_at(&f, &mut data, manifest.chunk_offset(index)));
        if let Err(e) = read {
            let gone = matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::UnexpectedEof
            );
            return Err(match record.location {
                Location::Reference { .. } if gone => self.changed(key, &record.location, &path),
                // A crash can lose a partial file; its chunks are simply not held.
                Location::Partial if gone => StoreError::ChunkUnavailable { cid: *cid, index },
                _ => StoreError::io("reading", &path, e),
            });
        }
        // A blob was verified when it was written and is not re-hashed on every read.
        if record.location != Location::Blob && !manifest.verify_chunk(index, &data) {
            return Err(match record.location {
                Location::Partial => StoreError::ChunkUnavailable { cid: *cid, index },
                _ => self.changed(key, &record.location, &path),
            });
        }
        Ok(data)
    }

    /// Marks a file tracked in place as changed on disk (if it is still tracked at
    /// `location`) and returns the error to answer. A failure to record it is logged:
    /// the read is refused either way.
    fn changed(&self, key: [u8; 32], location: &Location, path: &Path) -> StoreError {
        match self.mark_changed(key, location) {
            Ok(true) => tracing::warn!(
                cid = %cid_of(key),
                path = %path.display(),
                "file changed on disk since it was added; no longer served"
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!(cid = %cid_of(key), "cannot record a change on disk: {e}"),
        }
        StoreError::Changed(path.to_path_buf())
    }

    /// Sets `changed_on_disk` on the entry if it is still tracked at `location`. Returns
    /// whether it was newly set.
    pub(crate) fn mark_changed(
        &self,
        key: [u8; 32],
        location: &Location,
    ) -> Result<bool, StoreError> {
        self.db
            .write(Durability::Immediate, |tx| {
                let mut entries = EntryRows::open(tx)?;
                let Some(record) = entries.get(&key)? else {
                    return Ok(false);
                };
                if record.changed_on_disk || record.location != *location {
                    return Ok(false);
                }
                let record = EntryRecord {
                    changed_on_disk: true,
                    ..record
                };
                entries.insert(&key, &record)?;
                Ok(true)
            })
            .inspect(|&newly| {
                if newly {
                    self.entry_changed(&cid_of(key));
                }
            })
    }

    /// Checks the size and modification time of every file tracked in place and marks
    /// those that changed; returns the CIDs newly marked (the node stops announcing
    /// them). Cheap (one `stat` per such file, no hashing); a node runs it at start and
    /// from time to time.
    pub fn find_changed_in_place_files(&self) -> Result<Vec<Cid>, StoreError> {
        let mut newly = Vec::new();
        for (key, record) in self.entries()? {
            if record.changed_on_disk || unchanged_on_disk(&record.location) {
                continue;
            }
            if self.mark_changed(key, &record.location)? {
                newly.push(cid_of(key));
            }
        }
        Ok(newly)
    }

    /// Writes a complete file to `output` (a new file; an existing one is never
    /// overwritten), reading every chunk through [`Store::read_chunk`] so that only
    /// verified bytes leave the store, and linking it into place only at the end. It
    /// gets the user's modes ([`crate::platform::set_output_mode`]).
    /// Blocks: copies the whole file and syncs it.
    pub fn export(&self, cid: &Cid, output: &Path) -> Result<(), StoreError> {
        let manifest = self.manifest(cid)?.ok_or(StoreError::NotFound(*cid))?;
        if output.exists() {
            return Err(StoreError::Invalid(format!(
                "{} already exists",
                output.display()
            )));
        }
        let dir = output.parent().unwrap_or(Path::new("."));
        ensure_free_space(dir, manifest.size())?;
        let tmp = temp_beside(output);
        let result = (|| {
            let file = File::create(&tmp).map_err(|e| StoreError::io("creating", &tmp, e))?;
            let mut writer = std::io::BufWriter::with_capacity(1 << 20, &file);
            for index in 0..manifest.chunk_count() {
                let data = self.read_chunk(cid, index)?;
                writer
                    .write_all(&data)
                    .map_err(|e| StoreError::io("writing", &tmp, e))?;
            }
            writer
                .flush()
                .map_err(|e| StoreError::io("writing", &tmp, e))?;
            drop(writer);
            file.sync_all()
                .map_err(|e| StoreError::io("syncing", &tmp, e))?;
            // The user's own modes, not the daemon's private ones (before the link, so
            // the file never appears at `output` with the wrong ones).
            set_output_mode(&tmp, false)
                .map_err(|e| StoreError::io("setting the mode of", &tmp, e))?;
            link_no_clobber(&tmp, output)?;
            sync_parent(output).map_err(|e| StoreError::io("syncing", output, e))
        })();
        let _ = fs::remove_file(&tmp);
        result
    }
}
