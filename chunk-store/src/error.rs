//! The store's error type.

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
    /// The database failed.
    #[error("database: {0}")]
    Db(String),
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
    /// A file tracked in place changed after it was added; it is no longer served.
    #[error("{0} changed since it was added; re-add it to share the new content")]
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
    /// The input cannot be stored (not a regular file, too large, bad manifest…).
    #[error("{0}")]
    Invalid(String),
    /// The file is already complete in the store.
    #[error("{0} is already complete in the store")]
    AlreadyComplete(Cid),
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
}

macro_rules! from_db {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
from_db!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
