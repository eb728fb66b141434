//! The store's error type, and how redb's errors map onto it.

use std::path::PathBuf;

use dht_proto::Cid;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What the store was doing.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The database could not use its file (a full disk, an I/O error). The store opens
    /// the database again by itself, so a later operation succeeds once the cause is gone.
    #[error("database: {0}")]
    DbIo(std::io::Error),
    /// The database refused the operation for another reason (a corrupt record…).
    #[error("database: {0}")]
    Db(String),
    /// Not enough free space for what was asked.
    #[error("needs {} MiB, {} MiB free on {}", mib_up(*.needed), .free >> 20, .path.display())]
    NoSpace {
        /// Bytes the operation would write.
        needed: u64,
        /// Bytes free for this user on that file system.
        free: u64,
        /// Where.
        path: PathBuf,
    },
    /// The store has no file with this CID.
    #[error("{0} is not in the store")]
    NotFound(Cid),
    /// The chunk index does not exist in the file, or the store does not hold it yet.
    #[error("chunk {index} of {cid} is not available")]
    ChunkUnavailable {
        /// The file.
        cid: Cid,
        /// The chunk.
        index: u32,
    },
    /// A file tracked in place changed after it was added (or while it was being
    /// imported); it is no longer served, and adding it again re-imports it.
    #[error("{0} changed since it was added; add it again to share the new content")]
    Changed(PathBuf),
    /// Stored bytes no longer match their hash.
    #[error("chunk {index} of {cid} is corrupt on disk")]
    Corrupt {
        /// The file.
        cid: Cid,
        /// The chunk.
        index: u32,
    },
    /// Bytes offered for a chunk do not match its hash.
    #[error("chunk {index} does not match its hash")]
    BadChunk {
        /// The chunk.
        index: u32,
    },
    /// The input cannot be stored (not a regular file, too large, bad manifest, a name
    /// with path parts…).
    #[error("{0}")]
    Invalid(String),
    /// The file is already complete in the store.
    #[error("{0} is already complete in the store")]
    AlreadyComplete(Cid),
}

fn mib_up(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

impl StoreError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Whether the disk (or the user's quota) is full: freeing space and trying again
    /// may succeed.
    pub fn is_disk_full(&self) -> bool {
        let source = match self {
            StoreError::NoSpace { .. } => return true,
            StoreError::Io { source, .. } | StoreError::DbIo(source) => source,
            _ => return false,
        };
        source.kind() == std::io::ErrorKind::StorageFull
            || source.kind() == std::io::ErrorKind::QuotaExceeded
    }

    /// An operation refused because an earlier I/O error left the database closed.
    pub(crate) fn earlier_io_failure() -> Self {
        StoreError::DbIo(std::io::Error::other(EarlierIoFailure))
    }

    /// Whether the database file failed (now or before): the database must be reopened.
    pub(crate) fn is_db_io(&self) -> bool {
        matches!(self, StoreError::DbIo(_))
    }

    /// Whether this operation failed only because an earlier one had: it may succeed on
    /// a reopened database.
    pub(crate) fn is_earlier_io_failure(&self) -> bool {
        matches!(self, StoreError::DbIo(e)
            if e.get_ref().is_some_and(|inner| inner.is::<EarlierIoFailure>()))
    }
}

/// redb's `PreviousIo`: it refuses every transaction after one I/O error.
#[derive(Debug)]
struct EarlierIoFailure;

impl std::fmt::Display for EarlierIoFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an earlier I/O error closed the database")
    }
}

impl std::error::Error for EarlierIoFailure {}

impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> Self {
        match e {
            redb::StorageError::Io(e) => StoreError::DbIo(e),
            redb::StorageError::PreviousIo => StoreError::earlier_io_failure(),
            other => StoreError::Db(other.to_string()),
        }
    }
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Io(e) => StoreError::DbIo(e),
            redb::Error::PreviousIo => StoreError::earlier_io_failure(),
            other => StoreError::Db(other.to_string()),
        }
    }
}

macro_rules! from_db {
    ($($t:ident),*) => {$(
        impl From<redb::$t> for StoreError {
            fn from(e: redb::$t) -> Self {
                match e {
                    redb::$t::Storage(e) => e.into(),
                    other => StoreError::Db(other.to_string()),
                }
            }
        }
    )*};
}
from_db!(DatabaseError, TransactionError, TableError, CommitError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_space_names_both_figures_in_mib() {
        let e = StoreError::NoSpace {
            needed: 812 << 20,
            free: (64 << 20) + 5,
            path: "/data".into(),
        };
        assert_eq!(e.to_string(), "needs 812 MiB, 64 MiB free on /data");
        assert!(e.is_disk_full());
    }

    #[test]
    fn redb_io_errors_are_told_apart() {
        let earlier: StoreError = redb::StorageError::PreviousIo.into();
        assert!(earlier.is_db_io() && earlier.is_earlier_io_failure());
        let now: StoreError = redb::CommitError::Storage(redb::StorageError::Io(
            std::io::Error::from(std::io::ErrorKind::StorageFull),
        ))
        .into();
        assert!(now.is_db_io() && !now.is_earlier_io_failure() && now.is_disk_full());
        let other: StoreError = redb::TableError::TableDoesNotExist("x".into()).into();
        assert!(!other.is_db_io());
    }
}
