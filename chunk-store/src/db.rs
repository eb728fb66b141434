//! The metadata database: one redb file, reopened by itself after an I/O error.
//!
//! After a failed write (a full disk, an I/O error) redb refuses every later transaction
//! ("Previous I/O error occurred. Please close and re-open the database."). [`Db`] holds
//! the `Database` behind a lock: an operation that meets an I/O error closes it and opens
//! it again (redb repairs the file if the failure left it needing that), so the store
//! works again as soon as the cause is gone, without a restart. An operation that failed
//! only because an earlier one had is tried once more on the reopened database.
//!
//! Opening writes nothing the file does not already have room for: the tables are
//! created only if they are missing, so a store opens on a full disk. (The exception is
//! the first opening of a database from before the in-place index: the index is built
//! then, see `entry_rows`.)

use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use redb::{
    Database, Durability, MultimapTableHandle, ReadTransaction, TableHandle, WriteTransaction,
};

use crate::entry_rows::{build_missing_index, IN_PLACE_PATHS};
use crate::folders::{FOLDERS, FOLDER_MANIFESTS};
use crate::tables::{DOWNLOADS, ENTRIES, MANIFESTS, PARTIAL_HAVE};
use crate::StoreError;

/// Opens the database file; tests substitute one that fails on demand.
pub(crate) type Opener = Box<dyn Fn(&Path) -> Result<Database, StoreError> + Send + Sync>;

/// The store's database handle.
pub(crate) struct Db {
    path: PathBuf,
    open: Opener,
    state: RwLock<State>,
}

struct State {
    /// `None` after a reopen failed; the next operation tries again.
    db: Option<Database>,
    /// Counts the openings, so concurrent failures reopen once.
    generation: u64,
}

impl Db {
    /// Opens (or creates) the database at `path` and makes sure every table exists.
    pub(crate) fn open(path: PathBuf) -> Result<Self, StoreError> {
        Self::open_with(path, Box::new(|path| Ok(Database::create(path)?)))
    }

    pub(crate) fn open_with(path: PathBuf, open: Opener) -> Result<Self, StoreError> {
        let db = open(&path)?;
        create_missing_tables(&db)?;
        Ok(Db {
            path,
            open,
            state: RwLock::new(State {
                db: Some(db),
                generation: 1,
            }),
        })
    }

    /// How many times the database was opened (1 until an I/O error forced a reopen).
    pub(crate) fn generation(&self) -> u64 {
        self.read_state().generation
    }

    /// Runs `op` in a read transaction.
    pub(crate) fn read<T>(
        &self,
        op: impl Fn(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.run(|db| op(&db.begin_read()?))
    }

    /// Runs `op` in a write transaction and commits it with `durability`.
    pub(crate) fn write<T>(
        &self,
        durability: Durability,
        op: impl Fn(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.run(|db| {
            let mut tx = db.begin_write()?;
            tx.set_durability(durability);
            let value = op(&tx)?;
            tx.commit()?;
            Ok(value)
        })
    }

    fn run<T>(&self, op: impl Fn(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut tried_again = false;
        loop {
            // The read guard is held while `op` runs: a reopen waits for every
            // transaction on the old database to end (redb locks its file).
            let (generation, result) = {
                let state = self.read_state();
                let result = match &state.db {
                    Some(db) => op(db),
                    None => Err(StoreError::earlier_io_failure()),
                };
                (state.generation, result)
            };
            let error = match result {
                Err(e) if e.is_db_io() => e,
                other => return other,
            };
            if let Err(reopen) = self.reopen(generation) {
                tracing::warn!(
                    path = %self.path.display(),
                    "database failed ({error}) and could not be reopened: {reopen}"
                );
                return Err(error);
            }
            // An error of this very operation (say, the disk is full) would happen again:
            // report it. One caused by an earlier operation may not.
            if tried_again || !error.is_earlier_io_failure() {
                return Err(error);
            }
            tried_again = true;
        }
    }

    /// Closes and reopens the database, unless another thread did since `seen`.
    fn reopen(&self, seen: u64) -> Result<(), StoreError> {
        let mut state = self.write_state();
        if state.generation != seen && state.db.is_some() {
            return Ok(());
        }
        // Close first: redb holds a lock on its file while a Database is open.
        state.db = None;
        state.generation += 1;
        let db = (self.open)(&self.path)?;
        create_missing_tables(&db)?;
        state.db = Some(db);
        tracing::warn!(path = %self.path.display(), "database reopened after an I/O error");
        Ok(())
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        // A panic inside an operation leaves nothing half-changed here.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Creates the tables a new database lacks, in one transaction; writes nothing when they
/// all exist. An index missing from a database that has entries is built from them.
fn create_missing_tables(db: &Database) -> Result<(), StoreError> {
    let wanted = [
        MANIFESTS.name(),
        ENTRIES.name(),
        PARTIAL_HAVE.name(),
        DOWNLOADS.name(),
        FOLDERS.name(),
        FOLDER_MANIFESTS.name(),
    ];
    let read = db.begin_read()?;
    let present: Vec<String> = read.list_tables()?.map(|t| t.name().to_string()).collect();
    let has_index = read
        .list_multimap_tables()?
        .any(|t| t.name() == IN_PLACE_PATHS.name());
    drop(read);
    if has_index && wanted.iter().all(|w| present.iter().any(|p| p == w)) {
        return Ok(());
    }
    let tx = db.begin_write()?;
    tx.open_table(MANIFESTS)?;
    tx.open_table(ENTRIES)?;
    tx.open_table(PARTIAL_HAVE)?;
    tx.open_table(DOWNLOADS)?;
    tx.open_table(FOLDERS)?;
    tx.open_table(FOLDER_MANIFESTS)?;
    if !has_index {
        let indexed = build_missing_index(&tx)?;
        if indexed > 0 {
            tracing::info!(indexed, "built the index of files tracked in place");
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod faults {
    //! A database file whose writes fail on demand, as on a disk that just filled up.

    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use redb::backends::FileBackend;
    use redb::StorageBackend;

    use super::*;

    /// Shared switch: the next `n` writes (or syncs, or resizes) of the database file
    /// fail with ENOSPC.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct FailWrites(Arc<AtomicU64>);

    impl FailWrites {
        pub(crate) fn next(&self, n: u64) {
            self.0.store(n, Ordering::SeqCst);
        }

        /// An opener whose files obey this switch.
        pub(crate) fn opener(&self) -> Opener {
            let switch = self.clone();
            Box::new(move |path| {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
                    .map_err(|e| StoreError::io("opening", path, e))?;
                let backend = Faulty {
                    inner: FileBackend::new(file)?,
                    fail: switch.clone(),
                };
                Ok(redb::Builder::new().create_with_backend(backend)?)
            })
        }
    }

    #[derive(Debug)]
    struct Faulty {
        inner: FileBackend,
        fail: FailWrites,
    }

    impl Faulty {
        fn check(&self) -> std::io::Result<()> {
            let failing = self
                .fail
                .0
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failing {
                Err(std::io::Error::from(std::io::ErrorKind::StorageFull))
            } else {
                Ok(())
            }
        }
    }

    impl StorageBackend for Faulty {
        fn len(&self) -> std::io::Result<u64> {
            self.inner.len()
        }
        fn read(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
            self.inner.read(offset, len)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.check()?;
            self.inner.set_len(len)
        }
        fn sync_data(&self, eventual: bool) -> std::io::Result<()> {
            self.check()?;
            self.inner.sync_data(eventual)
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.check()?;
            self.inner.write(offset, data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::faults::FailWrites;
    use super::*;

    const T: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("t");

    fn put(db: &Db, value: u64) -> Result<(), StoreError> {
        db.write(Durability::Immediate, |tx| {
            tx.open_table(T)?.insert("k", value)?;
            Ok(())
        })
    }

    fn get(db: &Db) -> Result<Option<u64>, StoreError> {
        db.read(|tx| Ok(tx.open_table(T)?.get("k")?.map(|v| v.value())))
    }

    #[test]
    fn an_io_error_is_reported_then_the_database_works_again_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let fail = FailWrites::default();
        let db = Db::open_with(dir.path().join("db.redb"), fail.opener()).unwrap();
        put(&db, 1).unwrap();
        assert_eq!(db.generation(), 1);

        fail.next(1);
        let e = put(&db, 2).unwrap_err();
        assert!(e.is_disk_full(), "{e}");
        // redb refuses everything after that error; Db reopened it, so the next
        // operations work and see the last committed value.
        assert_eq!(db.generation(), 2);
        assert_eq!(get(&db).unwrap(), Some(1));
        put(&db, 3).unwrap();
        assert_eq!(get(&db).unwrap(), Some(3));
    }

    #[test]
    fn a_failed_reopen_is_tried_again_by_the_next_operation() {
        let dir = tempfile::tempdir().unwrap();
        let fail = FailWrites::default();
        let db = Db::open_with(dir.path().join("db.redb"), fail.opener()).unwrap();
        put(&db, 1).unwrap();
        // The write fails, and so does the reopen that follows it (opening writes the
        // header): the database stays closed for now.
        fail.next(2);
        assert!(put(&db, 2).unwrap_err().is_disk_full());
        assert!(db.read_state().db.is_none());
        assert_eq!(get(&db).unwrap(), Some(1));
        put(&db, 5).unwrap();
        assert_eq!(get(&db).unwrap(), Some(5));
    }

    #[test]
    fn an_operation_failing_only_because_an_earlier_one_did_is_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        let fail = FailWrites::default();
        let db = Db::open_with(dir.path().join("db.redb"), fail.opener()).unwrap();
        put(&db, 1).unwrap();
        // Poison redb's handle behind Db's back, as a concurrent failed write would.
        {
            let state = db.read_state();
            let redb = state.db.as_ref().unwrap();
            let tx = redb.begin_write().unwrap();
            tx.open_table(T).unwrap().insert("k", 9).unwrap();
            fail.next(1);
            assert!(tx.commit().is_err());
            assert!(
                redb.begin_write().is_err(),
                "redb refuses writes after an I/O error"
            );
        }
        put(&db, 4).unwrap();
        assert_eq!(get(&db).unwrap(), Some(4));
        assert_eq!(db.generation(), 2);
    }
}
