//! Folders: the directory manifests the store knows (docs/protocol.md §13) and what the
//! node decided about each (name, listed, published), and whether it holds every file
//! of the tree.
//!
//! A folder's files are ordinary entries of the store, one per distinct file CID (so
//! identical files are stored once); this table only adds the tree that names them. A
//! folder is *complete* once every one of its files was imported or fetched: only then
//! is it announced and listed. A folder whose manifest was fetched but whose files are
//! not all here yet is kept too, so that a fetch that resumes (after a restart) does
//! not ask the network for the manifest again.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `folders-v1` | directory CID digest | [`FolderRecord`] as CBOR |
//! | `folder-manifests-v1` | directory CID digest | the encoded directory manifest (its BLAKE3 is the key) |

use std::collections::BTreeSet;
use std::path::PathBuf;

use dht_proto::{Cid, DirManifest};
use redb::{Durability, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::store::{cid_of, file_key};
use crate::{Store, StoreError};

/// Folder records by directory CID digest.
pub const FOLDERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("folders-v1");
/// Directory manifests by directory CID digest, exactly as hashed into the CID.
pub const FOLDER_MANIFESTS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("folder-manifests-v1");

/// Largest encoded folder record accepted when decoding.
const MAX_RECORD_LEN: usize = 16 << 10;

/// What the store keeps about one folder besides its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderRecord {
    /// The folder's name (the directory's own name when added, the provider's when
    /// fetched), if any.
    pub name: Option<String>,
    /// When it was added or its manifest fetched, seconds since the Unix epoch.
    pub added_unix: u64,
    /// Whether every file of the tree is in the store (imported or fetched).
    pub complete: bool,
    /// Whether the node announces it (cleared by `unpublish`).
    pub published: bool,
    /// Whether the node's catalog lists it.
    pub listed: bool,
    /// Files in the tree.
    pub files: u64,
    /// Sum of the file sizes.
    pub size: u64,
    /// Where an unfinished fetch writes the tree: a fetch into that directory resumes
    /// (it exists already); cleared when the fetch completes.
    #[serde(default)]
    pub fetch_to: Option<PathBuf>,
}

impl FolderRecord {
    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        dht_proto::codec::decode(bytes, MAX_RECORD_LEN)
            .map_err(|e| StoreError::Db(format!("corrupt folder record: {e}")))
    }
}

/// A folder as the store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderInfo {
    /// The directory CID.
    pub cid: Cid,
    /// What the store keeps about it.
    pub record: FolderRecord,
}

impl Store {
    /// Stores a directory manifest and its record (replacing both if present), after
    /// checking that the bytes are the manifest `cid` names. Returns the decoded tree.
    pub fn put_folder(
        &self,
        cid: &Cid,
        manifest_bytes: &[u8],
        record: &FolderRecord,
    ) -> Result<DirManifest, StoreError> {
        let key = file_key(cid)?;
        let manifest = DirManifest::decode_for(cid, manifest_bytes)
            .map_err(|e| StoreError::Invalid(format!("directory manifest of {cid}: {e}")))?;
        let mut record = record.clone();
        record.files = manifest.files().count() as u64;
        record.size = manifest.total_size();
        let encoded = dht_proto::codec::encode(&record);
        self.db.write(Durability::Immediate, |tx| {
            tx.open_table(FOLDER_MANIFESTS)?
                .insert(key.as_slice(), manifest_bytes)?;
            tx.open_table(FOLDERS)?
                .insert(key.as_slice(), encoded.as_slice())?;
            Ok(())
        })?;
        self.entry_changed(cid);
        Ok(manifest)
    }

    /// The record of a folder, if the store knows it.
    pub fn folder(&self, cid: &Cid) -> Result<Option<FolderInfo>, StoreError> {
        let key = file_key(cid)?;
        let record = self.db.read(|tx| {
            let table = tx.open_table(FOLDERS)?;
            let value = table.get(key.as_slice())?;
            value.map(|v| FolderRecord::decode(v.value())).transpose()
        })?;
        Ok(record.map(|record| FolderInfo { cid: *cid, record }))
    }

    /// The encoded manifest of a folder, if the store knows it.
    pub fn folder_manifest_bytes(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        let key = file_key(cid)?;
        self.db.read(|tx| {
            let table = tx.open_table(FOLDER_MANIFESTS)?;
            let value = table.get(key.as_slice())?;
            Ok(value.map(|v| v.value().to_vec()))
        })
    }

    /// The decoded manifest of a folder, if the store knows it. Blocks: decoding a tree
    /// of 10,000 files takes milliseconds.
    pub fn folder_manifest(&self, cid: &Cid) -> Result<Option<DirManifest>, StoreError> {
        let Some(bytes) = self.folder_manifest_bytes(cid)? else {
            return Ok(None);
        };
        DirManifest::decode_for(cid, &bytes)
            .map(Some)
            .map_err(|e| StoreError::Db(format!("corrupt directory manifest {cid}: {e}")))
    }

    /// Every folder the store knows, oldest first.
    pub fn folders(&self) -> Result<Vec<FolderInfo>, StoreError> {
        let mut out = self.db.read(|tx| {
            let table = tx.open_table(FOLDERS)?;
            let mut out = Vec::new();
            for item in table.iter()? {
                let (key, value) = item?;
                let Ok(key) = <[u8; 32]>::try_from(key.value()) else {
                    continue;
                };
                out.push(FolderInfo {
                    cid: cid_of(key),
                    record: FolderRecord::decode(value.value())?,
                });
            }
            Ok(out)
        })?;
        out.sort_by_key(|f| (f.record.added_unix, f.cid));
        Ok(out)
    }

    /// Changes a folder's record. Fails with [`StoreError::NotFound`] if there is none.
    pub fn update_folder(
        &self,
        cid: &Cid,
        change: impl Fn(&mut FolderRecord),
    ) -> Result<(), StoreError> {
        let key = file_key(cid)?;
        self.db.write(Durability::Immediate, |tx| {
            let mut table = tx.open_table(FOLDERS)?;
            let mut record = match table.get(key.as_slice())? {
                Some(v) => FolderRecord::decode(v.value())?,
                None => return Err(StoreError::NotFound(*cid)),
            };
            change(&mut record);
            table.insert(key.as_slice(), dht_proto::codec::encode(&record).as_slice())?;
            Ok(())
        })?;
        self.entry_changed(cid);
        Ok(())
    }

    /// The files of a folder that belong to no other share: in no other folder the
    /// store knows, not listed, and not added or fetched on their own
    /// ([`EntryRecord::alone`](crate::tables::EntryRecord::alone): `add --unlisted` of a
    /// file makes an unlisted share of its own).
    /// These go with the folder when it is removed or unpublished. Files the store does
    /// not hold are left out. Fails with [`StoreError::NotFound`] if there is no such
    /// folder.
    pub fn files_only_in_folder(&self, cid: &Cid) -> Result<Vec<Cid>, StoreError> {
        let manifest = self
            .folder_manifest(cid)?
            .ok_or(StoreError::NotFound(*cid))?;
        let mut mine: BTreeSet<Cid> = manifest.files().map(|(_, file, _, _)| *file).collect();
        for other in self.folders()? {
            if other.cid == *cid || mine.is_empty() {
                continue;
            }
            if let Some(tree) = self.folder_manifest(&other.cid)? {
                for (_, file, _, _) in tree.files() {
                    mine.remove(file);
                }
            }
        }
        let mut alone = Vec::with_capacity(mine.len());
        for file in mine {
            if self
                .entry(&file_key(&file)?)?
                .is_some_and(|e| !e.listed && !e.alone)
            {
                alone.push(file);
            }
        }
        Ok(alone)
    }

    /// Forgets a folder (its files stay, as the entries they are). Returns whether the
    /// store knew it.
    pub fn remove_folder(&self, cid: &Cid) -> Result<bool, StoreError> {
        let key = file_key(cid)?;
        let existed = self.db.write(Durability::Immediate, |tx| {
            tx.open_table(FOLDER_MANIFESTS)?.remove(key.as_slice())?;
            let existed = tx.open_table(FOLDERS)?.remove(key.as_slice())?.is_some();
            Ok(existed)
        })?;
        if existed {
            self.entry_changed(cid);
        }
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dht_proto::dirmanifest::{DirEntry, EntryKind};
    use dht_proto::RelPath;

    fn tree(store: &Store, dir: &std::path::Path) -> DirManifest {
        let file = dir.join("a.txt");
        std::fs::write(&file, b"hello folder").unwrap();
        let outcome = store
            .import(&file, crate::ImportMode::Copy, None, &mut |_| {})
            .unwrap();
        DirManifest::new(vec![
            DirEntry {
                path: RelPath::parse("docs/a.txt").unwrap(),
                kind: EntryKind::File {
                    cid: outcome.cid,
                    size: outcome.size,
                    executable: true,
                },
            },
            DirEntry {
                path: RelPath::parse("empty").unwrap(),
                kind: EntryKind::EmptyDir,
            },
        ])
        .unwrap()
    }

    fn record() -> FolderRecord {
        FolderRecord {
            name: Some("tree".into()),
            added_unix: 1,
            complete: true,
            published: true,
            listed: true,
            files: 0,
            size: 0,
            fetch_to: None,
        }
    }

    #[test]
    fn a_folder_is_stored_listed_changed_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let manifest = tree(&store, dir.path());
        let cid = manifest.cid();
        store
            .put_folder(&cid, &manifest.encode(), &record())
            .unwrap();
        let info = store.folder(&cid).unwrap().unwrap();
        assert_eq!(info.record.files, 1);
        assert_eq!(info.record.size, 12);
        assert_eq!(store.folder_manifest(&cid).unwrap().unwrap(), manifest);
        assert_eq!(store.folders().unwrap().len(), 1);
        store.update_folder(&cid, |r| r.listed = false).unwrap();
        assert!(!store.folder(&cid).unwrap().unwrap().record.listed);
        // The folder is not a file entry.
        assert!(store.info(&cid).unwrap().is_none());
        assert!(store.remove_folder(&cid).unwrap());
        assert!(store.folder(&cid).unwrap().is_none());
        assert!(!store.remove_folder(&cid).unwrap());
    }

    fn folder_of(store: &Store, files: &[(&str, Cid)]) -> Cid {
        let manifest = DirManifest::new(
            files
                .iter()
                .map(|(path, cid)| DirEntry {
                    path: RelPath::parse(path).unwrap(),
                    kind: EntryKind::File {
                        cid: *cid,
                        size: 1,
                        executable: false,
                    },
                })
                .collect(),
        )
        .unwrap();
        let cid = manifest.cid();
        store
            .put_folder(&cid, &manifest.encode(), &record())
            .unwrap();
        cid
    }

    #[test]
    fn a_folder_owns_the_files_no_other_share_has_and_is_listed_like_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let only_here = in_folder(&store, dir.path(), "only");
        let in_two_folders = in_folder(&store, dir.path(), "two");
        let shared_alone = alone(&store, dir.path(), "alone", true);
        // `add --unlisted` of a file the folder has too: unlisted, but a share of its own.
        let unlisted_alone = alone(&store, dir.path(), "hidden", false);
        let first = folder_of(
            &store,
            &[
                ("a", only_here),
                ("b", in_two_folders),
                ("c", shared_alone),
                ("d", DirManifest::new(vec![]).unwrap().cid()),
                ("e", unlisted_alone),
            ],
        );
        folder_of(&store, &[("b", in_two_folders)]);
        assert_eq!(store.files_only_in_folder(&first).unwrap(), vec![only_here]);
        assert!(matches!(
            store.files_only_in_folder(&only_here),
            Err(StoreError::NotFound(_))
        ));

        // `set_listed` on a folder switches the folder, not its files.
        store.set_listed(&first, false).unwrap();
        assert!(!store.folder(&first).unwrap().unwrap().record.listed);
        assert!(store.info(&shared_alone).unwrap().unwrap().listed);
        store.set_listed(&first, true).unwrap();
        assert!(store.folder(&first).unwrap().unwrap().record.listed);
        assert!(!store.info(&only_here).unwrap().unwrap().listed);
    }

    /// A file imported as a folder's (unlisted, in a batch), as `add <dir>` does.
    fn in_folder(store: &Store, dir: &std::path::Path, name: &str) -> Cid {
        let path = dir.join(name);
        std::fs::write(&path, name.as_bytes()).unwrap();
        let mut batch = store.import_batch();
        let cid = batch
            .import(&path, crate::ImportMode::Copy, None, false, &mut |_| {})
            .unwrap()
            .cid;
        batch.finish().unwrap();
        cid
    }

    /// A file added on its own (`add FILE`, or `add --unlisted FILE`).
    fn alone(store: &Store, dir: &std::path::Path, name: &str, listed: bool) -> Cid {
        let path = dir.join(name);
        std::fs::write(&path, name.as_bytes()).unwrap();
        store
            .import_listed(&path, crate::ImportMode::Copy, None, listed, &mut |_| {})
            .unwrap()
            .cid
    }

    #[test]
    fn a_file_of_a_folder_added_again_on_its_own_and_unlisted_stays_with_its_own_share() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let file = in_folder(&store, dir.path(), "song");
        let folder = folder_of(&store, &[("song", file)]);
        assert_eq!(store.files_only_in_folder(&folder).unwrap(), vec![file]);
        // Added on its own afterwards, unlisted: the folder no longer owns it.
        assert_eq!(alone(&store, dir.path(), "song", false), file);
        assert!(!store.info(&file).unwrap().unwrap().listed);
        assert!(store.files_only_in_folder(&folder).unwrap().is_empty());
        // The folder imported again does not take it back.
        assert_eq!(in_folder(&store, dir.path(), "song"), file);
        assert!(store.files_only_in_folder(&folder).unwrap().is_empty());
    }

    /// A database from before the flag: its entries get it once, when it opens. Listed
    /// files and files in no folder were shares of their own; an unlisted file of a
    /// folder stays the folder's.
    #[test]
    fn a_database_from_before_the_alone_flag_gets_it_when_opened() {
        use crate::entry_rows::EntryRows;
        use crate::tables::{ALONE_FLAG, MIGRATIONS};
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let (listed, folders_own, unlisted_alone, folder);
        {
            let store = Store::open(&root).unwrap();
            listed = alone(&store, dir.path(), "listed", true);
            folders_own = in_folder(&store, dir.path(), "own");
            unlisted_alone = alone(&store, dir.path(), "hidden", false);
            folder = folder_of(&store, &[("a", listed), ("b", folders_own)]);
            // What an older binary left: no flag on any entry, no migrations table.
            store
                .db
                .write(Durability::Immediate, |tx| {
                    let mut rows = EntryRows::open(tx)?;
                    for cid in [listed, folders_own, unlisted_alone] {
                        let mut record = rows.get(cid.hash())?.unwrap();
                        record.alone = false;
                        rows.insert(cid.hash(), &record)?;
                    }
                    drop(rows);
                    assert!(tx.delete_table(MIGRATIONS)?);
                    Ok(())
                })
                .unwrap();
            assert_eq!(
                store.files_only_in_folder(&folder).unwrap(),
                vec![folders_own]
            );
        }
        let store = Store::open(&root).unwrap();
        let flag = |cid: &Cid| store.entry(cid.hash()).unwrap().unwrap().alone;
        assert!(flag(&listed));
        assert!(!flag(&folders_own));
        assert!(flag(&unlisted_alone));
        assert_eq!(
            store.files_only_in_folder(&folder).unwrap(),
            vec![folders_own]
        );
        let done = store
            .db
            .read(|tx| Ok(tx.open_table(MIGRATIONS)?.get(ALONE_FLAG)?.is_some()))
            .unwrap();
        assert!(done);
    }

    #[test]
    fn bytes_that_are_not_the_named_manifest_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let manifest = tree(&store, dir.path());
        let other = DirManifest::new(vec![]).unwrap();
        let refused = store.put_folder(&other.cid(), &manifest.encode(), &record());
        assert!(matches!(refused, Err(StoreError::Invalid(_))));
        assert!(store.folder(&other.cid()).unwrap().is_none());
    }
}
