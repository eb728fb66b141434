//! Placing many small fetched files with one commit: [`Store::place_fetched`], what a
//! folder fetch uses for its files of one chunk.
//!
//! A download placed alone creates a pre-sized partial file and commits its entry,
//! then syncs the file, links it to its output, syncs the output's directory and
//! commits again: two durable commits and two syncs per file, which made a folder of
//! 10,000 small files take minutes. A batch writes each file under `partial/` (a name
//! of its own, as two batches may place the same file at once), syncs
//! them together (on several threads, so the file system joins their journal commits),
//! links each to its output, syncs each output directory once, then commits every
//! entry in one transaction. The order of a lone download is kept for the batch as a
//! whole: no entry is durable before the bytes and the name it points to. A crash
//! before the commit leaves files under `partial/` that no entry names (deleted when the
//! store next opens) and outputs in place that no entry names: the caller's next fetch
//! finds them, checks their bytes against the CID and hands them back here as
//! [`Fetched::placed`], to be committed without being written again.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use dht_proto::names::sanitize_file_name;
use dht_proto::Cid;
use redb::Durability;

use crate::download::{link_no_clobber, place_file};
use crate::entry_rows::EntryRows;
use crate::fsutil::{ensure_free_space, sync_dir, temp_beside};
use crate::import::new_record;
use crate::import_batch::sync_all;
use crate::store::{file_key, mtime_ns};
use crate::tables::{Location, MANIFESTS};
use crate::{Store, StoreError};

/// One verified small file for [`Store::place_fetched`].
#[derive(Debug)]
pub struct Fetched {
    /// The file CID.
    pub cid: Cid,
    /// Its manifest, which the caller checked hashes to `cid`.
    pub manifest_bytes: Vec<u8>,
    /// Its bytes, checked against the manifest; `None`: the file is at `output`
    /// already, checked by the caller (a fetch cut short between placing and
    /// committing).
    pub data: Option<Vec<u8>>,
    /// Where it goes. An existing file there is never replaced.
    pub output: PathBuf,
}

impl Fetched {
    /// A file already at `output` (see [`Fetched::data`]).
    pub fn placed(cid: Cid, manifest_bytes: Vec<u8>, output: PathBuf) -> Self {
        Fetched {
            cid,
            manifest_bytes,
            data: None,
            output,
        }
    }
}

/// A file of the batch being placed.
struct Placing {
    key: [u8; 32],
    /// Its name under `partial/` while it is written (`None` for one already placed).
    partial: Option<PathBuf>,
    /// Why it failed, if it did.
    failed: Option<StoreError>,
}

impl Store {
    /// Places the small fetched files of `files` at their outputs and commits their
    /// entries (unlisted, tracked in place) in one transaction (see the module
    /// documentation). Returns each file's result in order: a file fails alone when
    /// its output exists (it is not replaced) or cannot be written; an error of the
    /// whole batch (no room, the commit) fails them all. A file the store already has
    /// an entry for is placed but keeps its entry.
    ///
    /// Blocks: writes and syncs the files, and commits.
    pub fn place_fetched(
        &self,
        files: &[Fetched],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let bytes: u64 = files
            .iter()
            .filter_map(|f| f.data.as_ref())
            .map(|d| d.len() as u64)
            .sum();
        ensure_free_space(&self.root.join("partial"), bytes)?;
        let mut placing = Vec::with_capacity(files.len());
        for file in files {
            let key = file_key(&file.cid)?;
            let mut one = Placing {
                key,
                partial: None,
                failed: None,
            };
            if let Some(data) = &file.data {
                // A name of its own: another batch may place the same file meanwhile,
                // and must not truncate the inode this one links to its output.
                let path = temp_beside(&self.partial_path(&key));
                match write_new(&path, data) {
                    Ok(()) => one.partial = Some(path),
                    Err(e) => one.failed = Some(StoreError::io("writing", &path, e)),
                }
            }
            placing.push(one);
        }
        let result = self.place_and_commit(files, &mut placing);
        // Placed or not, the names under `partial/` are not needed any more: an output
        // holds its own name, and an entry names the output.
        for path in placing.iter().filter_map(|p| p.partial.as_ref()) {
            let _ = fs::remove_file(path);
        }
        result?;
        for (file, one) in files.iter().zip(&placing) {
            if one.failed.is_none() {
                self.entry_changed(&file.cid);
            }
        }
        Ok(placing
            .into_iter()
            .map(|p| p.failed.map_or(Ok(()), Err))
            .collect())
    }

    fn place_and_commit(
        &self,
        files: &[Fetched],
        placing: &mut [Placing],
    ) -> Result<(), StoreError> {
        // The bytes, then the outputs' names, then the entries.
        let written: Vec<PathBuf> = placing.iter().filter_map(|p| p.partial.clone()).collect();
        let placed_before: Vec<PathBuf> = files
            .iter()
            .zip(placing.iter())
            .filter(|(f, p)| f.data.is_none() && p.failed.is_none())
            .map(|(f, _)| f.output.clone())
            .collect();
        sync_all(&written)?;
        sync_all(&placed_before)?;
        let mut dirs = BTreeSet::new();
        for (file, one) in files.iter().zip(placing.iter_mut()) {
            let (Some(partial), None) = (&one.partial, &one.failed) else {
                continue;
            };
            match link_no_clobber(partial, &file.output) {
                Ok(()) => {}
                // Another file system: copied and synced beside the output instead.
                Err(StoreError::Io { .. }) => {
                    if let Err(e) = place_file(partial, &file.output, file_len(file)) {
                        one.failed = Some(e);
                        continue;
                    }
                }
                Err(e) => {
                    one.failed = Some(e);
                    continue;
                }
            }
            if let Some(dir) = file.output.parent() {
                dirs.insert(dir.to_path_buf());
            }
        }
        for dir in &dirs {
            sync_dir(dir).map_err(|e| StoreError::io("syncing", dir, e))?;
        }
        let mut rows = Vec::with_capacity(files.len());
        for (file, one) in files.iter().zip(placing.iter_mut()) {
            if one.failed.is_some() {
                continue;
            }
            match fs::metadata(&file.output) {
                Ok(meta) => rows.push((
                    one.key,
                    file,
                    Location::Reference {
                        path: file.output.clone(),
                        size: meta.len(),
                        mtime_ns: mtime_ns(&meta),
                    },
                )),
                Err(e) => {
                    one.failed = Some(StoreError::io("reading metadata of", &file.output, e));
                }
            }
        }
        self.db.write(Durability::Immediate, |tx| {
            let mut manifests = tx.open_table(MANIFESTS)?;
            let mut entries = EntryRows::open(tx)?;
            for (key, file, location) in &rows {
                if entries.get(key)?.is_some() {
                    continue;
                }
                let name = file
                    .output
                    .file_name()
                    .and_then(|n| sanitize_file_name(&n.to_string_lossy()));
                manifests.insert(key.as_slice(), file.manifest_bytes.as_slice())?;
                entries.insert(
                    key,
                    &new_record(name, location.clone(), false, false, false),
                )?;
            }
            Ok(())
        })
    }
}

fn file_len(file: &Fetched) -> u64 {
    file.data.as_ref().map_or(0, |d| d.len() as u64)
}

/// Creates `path` with `data`.
fn write_new(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut out = File::create_new(path)?;
    out.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::COMMITS;
    use dht_proto::Manifest;

    fn small(i: usize) -> (Cid, Vec<u8>, Vec<u8>) {
        let data = format!("small file {i}").repeat(50).into_bytes();
        let manifest = Manifest::new(
            data.len() as u64,
            dht_proto::manifest::DEFAULT_CHUNK_SIZE,
            vec![*blake3::hash(&data).as_bytes()],
        )
        .unwrap();
        let bytes = manifest.encode();
        (Cid::for_manifest_bytes(&bytes), bytes, data)
    }

    fn commits() -> u64 {
        COMMITS.with(|n| n.get())
    }

    #[test]
    fn a_batch_of_fetched_files_is_placed_with_one_commit_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let out = dir.path().join("out");
        fs::create_dir_all(out.join("a")).unwrap();
        fs::create_dir_all(out.join("b")).unwrap();
        let made: Vec<_> = (0..300).map(small).collect();
        let files: Vec<Fetched> = made
            .iter()
            .enumerate()
            .map(|(i, (cid, manifest, data))| Fetched {
                cid: *cid,
                manifest_bytes: manifest.clone(),
                data: Some(data.clone()),
                output: out
                    .join(if i % 2 == 0 { "a" } else { "b" })
                    .join(format!("f{i}")),
            })
            .collect();
        // One output is taken already: that file fails alone, and the file there stays.
        fs::write(&files[7].output, b"mine").unwrap();
        let before = commits();
        let results = store.place_fetched(&files).unwrap();
        assert_eq!(commits() - before, 1, "one transaction for 300 files");
        for (i, (result, file)) in results.iter().zip(&files).enumerate() {
            if i == 7 {
                assert!(result.is_err());
                assert_eq!(fs::read(&file.output).unwrap(), b"mine");
                assert!(store.info(&file.cid).unwrap().is_none());
                continue;
            }
            result.as_ref().unwrap();
            assert_eq!(fs::read(&file.output).unwrap(), made[i].2);
            let info = store.info(&file.cid).unwrap().unwrap();
            assert_eq!(info.state, crate::EntryState::Complete);
            assert!(!info.listed);
            assert_eq!(store.read_chunk(&file.cid, 0).unwrap().as_ref(), made[i].2);
        }
        // Nothing is left under `partial/`.
        assert_eq!(
            fs::read_dir(store.root().join("partial")).unwrap().count(),
            0
        );
        assert_eq!(store.len().unwrap(), 299);
    }

    /// A fetch cut short after placing its files but before the commit: the files are at
    /// their outputs, the store knows none of them; the next batch commits them as they
    /// are.
    #[test]
    fn files_placed_before_a_crash_are_committed_without_being_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let (cid, manifest, data) = small(1);
        let output = dir.path().join("f1");
        {
            let store = Store::open(&root).unwrap();
            // What the crash left: the file in place, and a name under `partial/`.
            fs::write(&output, &data).unwrap();
            fs::write(store.partial_path(cid.hash()), &data).unwrap();
        }
        let store = Store::open(&root).unwrap();
        assert_eq!(fs::read_dir(root.join("partial")).unwrap().count(), 0);
        assert!(store.info(&cid).unwrap().is_none());
        let results = store
            .place_fetched(&[Fetched::placed(cid, manifest, output.clone())])
            .unwrap();
        results[0].as_ref().unwrap();
        assert_eq!(
            store.info(&cid).unwrap().unwrap().state,
            crate::EntryState::Complete
        );
        assert_eq!(store.read_chunk(&cid, 0).unwrap().as_ref(), data);
    }
}
