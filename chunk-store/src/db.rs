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
//! the first opening of a database from before the in-place index or the `alone` flag:
//! the index is built, and the flag set, then; see `entry_rows`.)

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use redb::{
    Database, Durability, MultimapTableHandle, ReadTransaction, TableHandle, WriteTransaction,
};

use crate::entry_rows::{build_missing_index, mark_files_alone, IN_PLACE_PATHS};
use crate::folders::{FOLDERS, FOLDER_MANIFESTS};
use crate::tables::{ALONE_FLAG, DOWNLOADS, ENTRIES, MANIFESTS, MIGRATIONS, PARTIAL_HAVE};
use crate::StoreError;

/// Opens the database file; tests substitute one that fails on demand.
pub(crate) type Opener = Box<dyn Fn(&Path) -> Result<Database, StoreError> + Send + Sync>;

#[cfg(test)]
thread_local! {
    /// Write transactions committed on this thread, for tests that bound how many an
    /// operation makes.
    pub(crate) static COMMITS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Syncs of the group commit made on this thread.
    pub(crate) static SYNCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The store's database handle.
pub(crate) struct Db {
    path: PathBuf,
    open: Opener,
    state: RwLock<State>,
    syncs: GroupSync,
}

/// The group commit of [`Db::write`]. Every durable write commits without a sync and
/// takes a number; a sync (an empty durable commit: redb then writes every earlier
/// commit to disk) covers every number taken before it began.
///
/// A write whose commit an I/O error lost never sees its number covered: the failed
/// sync is reported to whoever made it, and the writers waiting behind it meet the
/// error redb keeps reporting after a failure ("earlier I/O failure"), so `Db::run`
/// reopens the database and makes their writes again. They hold the database's read
/// guard while they wait, so no reopen happens under them.
#[derive(Default)]
struct GroupSync {
    /// Numbers taken so far (the last write committed without a sync).
    committed: AtomicU64,
    /// Every number up to this one is on disk.
    durable: AtomicU64,
    /// One sync at a time; the writers behind it find their number covered.
    syncing: Mutex<()>,
}

impl GroupSync {
    fn wait_durable(&self, db: &Database, mine: u64) -> Result<(), StoreError> {
        let _one_at_a_time = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        if self.durable.load(Ordering::Acquire) >= mine {
            return Ok(());
        }
        let covers = self.committed.load(Ordering::Acquire);
        let mut tx = db.begin_write()?;
        tx.set_durability(Durability::Immediate);
        tx.commit()?;
        #[cfg(test)]
        SYNCS.with(|n| n.set(n.get() + 1));
        self.durable.fetch_max(covers, Ordering::AcqRel);
        Ok(())
    }
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
            syncs: GroupSync::default(),
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

    /// Runs `op` in a write transaction and commits it with `durability`. An
    /// [`Durability::Immediate`] write returns once its change is on disk, but shares
    /// the disk's sync with the writes made at the same time (group commit): it commits
    /// without a sync, then waits for one sync that covers it, made by whichever of
    /// those writers comes first. Sixteen downloads finishing together pay one sync.
    pub(crate) fn write<T>(
        &self,
        durability: Durability,
        op: impl Fn(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let grouped = matches!(durability, Durability::Immediate);
        self.run(|db| {
            let mut tx = db.begin_write()?;
            tx.set_durability(if grouped {
                Durability::None
            } else {
                durability
            });
            let value = op(&tx)?;
            tx.commit()?;
            #[cfg(test)]
            COMMITS.with(|n| n.set(n.get() + 1));
            if grouped {
                let mine = self.syncs.committed.fetch_add(1, Ordering::AcqRel) + 1;
                self.syncs.wait_durable(db, mine)?;
            }
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
    // The table is created with the migrations it records, in one transaction.
    let migrated = present.iter().any(|p| p == MIGRATIONS.name());
    drop(read);
    if has_index && migrated && wanted.iter().all(|w| present.iter().any(|p| p == w)) {
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
    if !migrated {
        let marked = mark_files_alone(&tx)?;
        if marked > 0 {
            tracing::info!(marked, "marked the files added or fetched on their own");
        }
        tx.open_table(MIGRATIONS)?
            .insert(ALONE_FLAG, crate::store::now_unix())?;
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

    /// Durable writes made at the same time share syncs, and every one of them is
    /// there after the database is closed and opened again.
    #[test]
    fn concurrent_durable_writes_share_syncs() {
        use redb::ReadableTableMetadata;
        const U: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("u");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let db = Db::open(path.clone()).unwrap();
        let (threads, each) = (16u64, 20u64);
        let barrier = std::sync::Barrier::new(threads as usize);
        let syncs: u64 = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (db, barrier) = (&db, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        for i in 0..each {
                            db.write(Durability::Immediate, |tx| {
                                tx.open_table(U)?.insert(t * each + i, i)?;
                                Ok(())
                            })
                            .unwrap();
                        }
                        SYNCS.with(|n| n.get())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        let writes = threads * each;
        assert!(
            syncs >= 1 && syncs < writes,
            "{syncs} syncs for {writes} writes"
        );
        drop(db);
        let db = Db::open(path).unwrap();
        let rows = db.read(|tx| Ok(tx.open_table(U)?.len()?)).unwrap();
        assert_eq!(rows, writes);
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
