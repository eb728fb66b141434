//! Verification and repair: re-hash what the store claims to hold, report per file what is
//! wrong, and on request drop what is bad so that it is fetched again. Each file is opened
//! once and hashed a batch at a time on several threads.

use std::fs::{self, File, OpenOptions};

use dht_proto::{Bitfield, Cid, Manifest};
use redb::Durability;

use crate::download::link_durably;
use crate::entry_rows::EntryRows;
use crate::hashing::{check_chunks, ChunkCheck};
use crate::read::unchanged_on_disk;
use crate::store::{cid_of, file_key};
use crate::tables::{EntryRecord, Location, PARTIAL_HAVE};
use crate::{Store, StoreError};

/// What verifying one file found, and what a repair did about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The file.
    pub cid: Cid,
    /// Its name in the store.
    pub name: Option<String>,
    /// Where its bytes are (before any repair).
    pub location: Location,
    /// Chunks read and hashed: every chunk of a complete file, the saved verified chunks
    /// of a partial download.
    pub chunks_checked: u32,
    /// Chunks whose bytes do not match their hash.
    pub bad_chunks: Vec<u32>,
    /// Chunks the store claims but cannot read (its file is gone or too short).
    pub missing_chunks: Vec<u32>,
    /// A file tracked in place changed on disk (size, mtime or bytes), or was already
    /// known to have.
    pub changed_on_disk: bool,
    /// What the repair did, when one was asked for and needed.
    pub repair: Option<Repair>,
}

impl FileReport {
    /// Whether nothing is wrong with the file.
    pub fn is_ok(&self) -> bool {
        self.bad_chunks.is_empty() && self.missing_chunks.is_empty() && !self.changed_on_disk
    }
}

/// What a repair did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// A complete copy in the store became a partial download again, holding the chunks
    /// that verified; a download fetches the others.
    BackToPartial {
        /// Chunks kept.
        have: u32,
    },
    /// Bad or missing chunks were dropped from a partial download's saved bitfield.
    DroppedFromPartial {
        /// Chunks dropped.
        dropped: u32,
    },
    /// A file tracked in place was marked changed on disk: it is no longer served, and
    /// adding it again re-imports it.
    MarkedChanged,
}

/// What verifying the whole store found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreReport {
    /// Files checked.
    pub files_checked: u64,
    /// Bad chunks, over all files.
    pub bad_chunks: u64,
    /// Missing chunks, over all files.
    pub missing_chunks: u64,
    /// Files tracked in place that changed on disk.
    pub changed_on_disk: u64,
    /// Files a repair changed.
    pub repaired: u64,
    /// Every file, oldest first.
    pub files: Vec<FileReport>,
}

impl StoreReport {
    /// Counts one more file's report in.
    pub fn add(&mut self, file: FileReport) {
        self.files_checked += 1;
        self.bad_chunks += file.bad_chunks.len() as u64;
        self.missing_chunks += file.missing_chunks.len() as u64;
        self.changed_on_disk += u64::from(file.changed_on_disk);
        self.repaired += u64::from(file.repair.is_some());
        self.files.push(file);
    }

    /// Whether nothing is wrong in the store.
    pub fn is_ok(&self) -> bool {
        self.files.iter().all(FileReport::is_ok)
    }
}

impl Store {
    /// Re-hashes what the store holds of one file and reports what is wrong. Changes
    /// nothing. Blocks: reads and hashes the whole file.
    pub fn verify(&self, cid: &Cid) -> Result<FileReport, StoreError> {
        self.verify_one(cid, false)
    }

    /// [`Store::verify`], then drops what is bad so that it is fetched again: a complete
    /// copy with bad or missing chunks becomes a partial download of the chunks that
    /// verify, a partial download forgets its bad chunks, and a file tracked in place
    /// that changed is marked so and no longer served. Run it while the file is not
    /// being downloaded (a running download saves its own bitfield over the repaired
    /// one). Blocks: reads and hashes the whole file.
    pub fn repair(&self, cid: &Cid) -> Result<FileReport, StoreError> {
        self.verify_one(cid, true)
    }

    /// [`Store::verify`] (or, with `repair`, [`Store::repair`]) of every file, oldest
    /// first, telling `progress` about each as it is done. Blocks: reads and hashes
    /// everything the store holds.
    pub fn verify_store(
        &self,
        repair: bool,
        progress: &mut dyn FnMut(&FileReport),
    ) -> Result<StoreReport, StoreError> {
        let mut entries = self.entries()?;
        entries.sort_by_key(|(key, record)| (record.added_unix, *key));
        let mut report = StoreReport::default();
        for (key, _) in entries {
            let file = match self.verify_one(&cid_of(key), repair) {
                Ok(file) => file,
                // Removed while the others were checked.
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            progress(&file);
            report.add(file);
        }
        Ok(report)
    }

    fn verify_one(&self, cid: &Cid, repair: bool) -> Result<FileReport, StoreError> {
        let key = file_key(cid)?;
        let manifest = self.manifest_uncached(cid)?;
        let mut record = self.entry(&key)?.ok_or(StoreError::NotFound(*cid))?;
        let mut report = self.check(cid, &key, &record, &manifest)?;
        // A download that finished while it was checked moved its bytes from `partial/`
        // to their final place: what was missing there is judged again where the entry
        // now points (a few times at most; a file moves once per download).
        for _ in 0..3 {
            if report.is_ok() {
                break;
            }
            let now = self.entry(&key)?.ok_or(StoreError::NotFound(*cid))?;
            if now.location == record.location {
                break;
            }
            record = now;
            report = self.check(cid, &key, &record, &manifest)?;
        }
        if repair && !report.is_ok() {
            report.repair = self.fix(&key, &record, &manifest, &report)?;
        }
        Ok(report)
    }

    fn check(
        &self,
        cid: &Cid,
        key: &[u8; 32],
        record: &EntryRecord,
        manifest: &Manifest,
    ) -> Result<FileReport, StoreError> {
        let mut report = FileReport {
            cid: *cid,
            name: record.name.clone(),
            location: record.location.clone(),
            chunks_checked: 0,
            bad_chunks: Vec::new(),
            missing_chunks: Vec::new(),
            changed_on_disk: false,
            repair: None,
        };
        let (path, claimed): (_, Vec<u32>) = match &record.location {
            Location::Reference { path, .. } => {
                if record.changed_on_disk || !unchanged_on_disk(&record.location) {
                    report.changed_on_disk = true;
                    return Ok(report);
                }
                (path.clone(), (0..manifest.chunk_count()).collect())
            }
            Location::Blob => (self.blob_path(key), (0..manifest.chunk_count()).collect()),
            Location::Partial => {
                let have = self
                    .partial_have(cid)?
                    .unwrap_or_else(|| Bitfield::new(manifest.chunk_count()));
                (self.partial_path(key), have.iter_set().collect())
            }
        };
        match File::open(&path) {
            Ok(file) => check_chunks(&file, manifest, claimed, &mut |index, check| {
                report.chunks_checked += 1;
                match check {
                    ChunkCheck::Good => {}
                    ChunkCheck::Bad => report.bad_chunks.push(index),
                    ChunkCheck::Unreadable => report.missing_chunks.push(index),
                }
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => report.missing_chunks = claimed,
            Err(e) => return Err(StoreError::io("opening", &path, e)),
        }
        if matches!(record.location, Location::Reference { .. }) {
            report.changed_on_disk = !report.is_ok();
        }
        Ok(report)
    }

    fn fix(
        &self,
        key: &[u8; 32],
        record: &EntryRecord,
        manifest: &Manifest,
        report: &FileReport,
    ) -> Result<Option<Repair>, StoreError> {
        let dropped = || report.bad_chunks.iter().chain(&report.missing_chunks);
        match &record.location {
            Location::Reference { .. } => Ok(self
                .mark_changed(*key, &record.location)?
                .then_some(Repair::MarkedChanged)),
            Location::Partial => {
                let Some(mut have) = self.partial_have(&report.cid)? else {
                    return Ok(None);
                };
                for &index in dropped() {
                    have.clear(index);
                }
                self.save_progress(&report.cid, &have)?;
                Ok(Some(Repair::DroppedFromPartial {
                    dropped: dropped().count() as u32,
                }))
            }
            Location::Blob => {
                let mut have = Bitfield::full(manifest.chunk_count());
                for &index in dropped() {
                    have.clear(index);
                }
                self.blob_back_to_partial(key, manifest, &have)?;
                Ok(Some(Repair::BackToPartial { have: have.count() }))
            }
        }
    }

    /// Turns a complete copy into a partial download holding `have`. The blob's bytes get
    /// a second name under `partial/` before the entry says `partial`, and lose the old
    /// one after: a crash in between leaves the entry with its file, and the other name
    /// an orphan that the next open deletes.
    fn blob_back_to_partial(
        &self,
        key: &[u8; 32],
        manifest: &Manifest,
        have: &Bitfield,
    ) -> Result<(), StoreError> {
        let blob = self.blob_path(key);
        let partial = self.partial_path(key);
        let _ = fs::remove_file(&partial);
        if blob.exists() {
            link_durably(&blob, &partial)?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&partial)
            .map_err(|e| StoreError::io("opening", &partial, e))?;
        file.set_len(manifest.size())
            .map_err(|e| StoreError::io("sizing", &partial, e))?;
        let committed = self.db.write(Durability::Immediate, |tx| {
            let mut entries = EntryRows::open(tx)?;
            let Some(record) = entries.get(key)? else {
                return Ok(false);
            };
            if record.location != Location::Blob {
                return Ok(false);
            }
            let record = EntryRecord {
                location: Location::Partial,
                ..record
            };
            entries.insert(key, &record)?;
            tx.open_table(PARTIAL_HAVE)?
                .insert(key.as_slice(), have.as_bytes())?;
            Ok(true)
        })?;
        if committed {
            let _ = fs::remove_file(&blob);
            self.entry_changed(&crate::store::cid_of(*key));
        } else {
            // Removed or changed meanwhile: leave it as it is now.
            let _ = fs::remove_file(&partial);
        }
        Ok(())
    }
}
