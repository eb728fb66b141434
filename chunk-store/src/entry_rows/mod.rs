//! The rows of the `entries` table together with their index of in-place paths.
//!
//! Import must find the entries tracking a path in place (the file there changed, so
//! they are stale); scanning every entry for that made adding n files cost n²/2 record
//! decodes. The `in-place-paths-v1` multimap table maps each tracked path to the keys of
//! the entries tracking it, and [`EntryRows`] is the only way the store writes or removes
//! an entry, so the index changes in the same write transaction as the entry. A database
//! written before the index existed gets it built from its entries when it is opened
//! ([`build_missing_index`]).
//!
//! Records from before [`EntryRecord::alone`] get that flag once, the same way: when a
//! database without the `migrations-v1` table opens ([`mark_files_alone`]).

use std::collections::HashSet;
use std::path::Path;

use dht_proto::DirManifest;

use redb::{
    MultimapTable, MultimapTableDefinition, ReadTransaction, ReadableTable, Table, WriteTransaction,
};

use crate::folders::FOLDER_MANIFESTS;
use crate::store::cid_of;
use crate::tables::{EntryRecord, Location, ENTRIES};
use crate::StoreError;

/// In-place path (its OS bytes) → the keys of the entries tracking the file there.
pub const IN_PLACE_PATHS: MultimapTableDefinition<&[u8], &[u8]> =
    MultimapTableDefinition::new("in-place-paths-v1");

/// The `entries` table opened for writing, keeping the in-place index in step.
pub(crate) struct EntryRows<'tx> {
    entries: Table<'tx, &'static [u8], &'static [u8]>,
    paths: MultimapTable<'tx, &'static [u8], &'static [u8]>,
}

impl<'tx> EntryRows<'tx> {
    pub(crate) fn open(tx: &'tx WriteTransaction) -> Result<Self, StoreError> {
        Ok(EntryRows {
            entries: tx.open_table(ENTRIES)?,
            paths: tx.open_multimap_table(IN_PLACE_PATHS)?,
        })
    }

    pub(crate) fn get(&self, key: &[u8; 32]) -> Result<Option<EntryRecord>, StoreError> {
        let value = self.entries.get(key.as_slice())?;
        value.map(|v| EntryRecord::decode(v.value())).transpose()
    }

    /// Writes `record` as the entry of `key`, moving its index row if its place changed.
    pub(crate) fn insert(
        &mut self,
        key: &[u8; 32],
        record: &EntryRecord,
    ) -> Result<(), StoreError> {
        let old = self
            .entries
            .insert(key.as_slice(), record.encode().as_slice())?
            .map(|v| EntryRecord::decode(v.value()))
            .transpose()?;
        let old_path = old.as_ref().and_then(|r| in_place_path(&r.location));
        let new_path = in_place_path(&record.location);
        if old_path != new_path {
            if let Some(path) = old_path {
                self.paths.remove(path_key(path), key.as_slice())?;
            }
            if let Some(path) = new_path {
                self.paths.insert(path_key(path), key.as_slice())?;
            }
        }
        Ok(())
    }

    /// Removes the entry of `key` and its index row; returns whether there was one.
    pub(crate) fn remove(&mut self, key: &[u8; 32]) -> Result<bool, StoreError> {
        let Some(old) = self.entries.remove(key.as_slice())? else {
            return Ok(false);
        };
        // An undecodable row has no index row to find: it goes all the same.
        if let Ok(record) = EntryRecord::decode(old.value()) {
            if let Some(path) = in_place_path(&record.location) {
                self.paths.remove(path_key(path), key.as_slice())?;
            }
        }
        Ok(true)
    }
}

/// The keys of the entries the index says track `path` in place.
pub(crate) fn keys_tracking(
    tx: &ReadTransaction,
    path: &Path,
) -> Result<Vec<[u8; 32]>, StoreError> {
    let paths = tx.open_multimap_table(IN_PLACE_PATHS)?;
    let mut keys = Vec::new();
    for value in paths.get(path_key(path))? {
        if let Ok(key) = <[u8; 32]>::try_from(value?.value()) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// Gives every entry of a database from before [`EntryRecord::alone`] existed that flag:
/// a listed file, or one in no folder, was added or fetched on its own. (An unlisted
/// file that is also in a folder cannot be told apart from the folder's own; it stays
/// the folder's, as it was before the flag.) Returns how many entries it marked.
pub(crate) fn mark_files_alone(tx: &WriteTransaction) -> Result<u64, StoreError> {
    let mut in_folders: HashSet<[u8; 32]> = HashSet::new();
    {
        let manifests = tx.open_table(FOLDER_MANIFESTS)?;
        for item in manifests.iter()? {
            let (key, value) = item?;
            let Ok(key) = <[u8; 32]>::try_from(key.value()) else {
                continue;
            };
            // A manifest the store cannot read is reported where it is read.
            let Ok(tree) = DirManifest::decode_for(&cid_of(key), value.value()) else {
                continue;
            };
            in_folders.extend(tree.files().map(|(_, cid, _, _)| *cid.hash()));
        }
    }
    let mut marked = Vec::new();
    {
        let entries = tx.open_table(ENTRIES)?;
        for item in entries.iter()? {
            let (key, value) = item?;
            let Ok(key) = <[u8; 32]>::try_from(key.value()) else {
                continue;
            };
            let Ok(mut record) = EntryRecord::decode(value.value()) else {
                continue;
            };
            if !record.alone && (record.listed || !in_folders.contains(&key)) {
                record.alone = true;
                marked.push((key, record));
            }
        }
    }
    let mut rows = EntryRows::open(tx)?;
    for (key, record) in &marked {
        rows.insert(key, record)?;
    }
    Ok(marked.len() as u64)
}

/// Fills a newly created index from the entries (a database from before the index).
pub(crate) fn build_missing_index(tx: &WriteTransaction) -> Result<u64, StoreError> {
    let entries = tx.open_table(ENTRIES)?;
    let mut paths = tx.open_multimap_table(IN_PLACE_PATHS)?;
    let mut indexed = 0;
    for item in entries.iter()? {
        let (key, value) = item?;
        // A row the store cannot read is reported where it is read, not here.
        let Ok(record) = EntryRecord::decode(value.value()) else {
            continue;
        };
        if let Some(path) = in_place_path(&record.location) {
            paths.insert(path_key(path), key.value())?;
            indexed += 1;
        }
    }
    Ok(indexed)
}

fn in_place_path(location: &Location) -> Option<&Path> {
    match location {
        Location::Reference { path, .. } => Some(path),
        _ => None,
    }
}

fn path_key(path: &Path) -> &[u8] {
    path.as_os_str().as_encoded_bytes()
}

#[cfg(test)]
mod tests;
