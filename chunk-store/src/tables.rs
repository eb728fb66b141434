//! The redb tables of the store and the records kept in them. Table names carry a
//! version; a format change adds a new table and a migration rather than reinterpreting
//! old bytes.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `manifests-v1` | file hash (32 bytes) | encoded manifest (its BLAKE3 is the key) |
//! | `entries-v1` | file hash | [`EntryRecord`] as CBOR |
//! | `partial-have-v1` | file hash | bitfield of verified chunks of a partial download |

use std::path::PathBuf;

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

/// Manifests by file hash.
pub const MANIFESTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("manifests-v1");
/// Entries (what the store holds and where) by file hash.
pub const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries-v1");
/// Partial-download bitfields by file hash.
pub const PARTIAL_HAVE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("partial-have-v1");

/// Where a file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// Copied into `blobs/<hex>`.
    Blob,
    /// Tracked in place; served only while size and modification time are unchanged.
    Reference {
        /// Absolute path of the file.
        path: PathBuf,
        /// Size when added.
        size: u64,
        /// Modification time when added, nanoseconds since the Unix epoch.
        mtime_ns: u128,
    },
    /// A download in progress in `partial/<hex>`.
    Partial,
}

/// One file the store knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRecord {
    /// A name for the file (the first one it was added or fetched under).
    pub name: Option<String>,
    /// Where the bytes are.
    pub location: Location,
    /// When it was added, seconds since the Unix epoch.
    pub added_unix: u64,
    /// Whether garbage collection must keep it.
    pub pinned: bool,
    /// Whether the node announces it (cleared by `unpublish`, set again by `add`).
    #[serde(default = "yes")]
    pub published: bool,
}

fn yes() -> bool {
    true
}

impl EntryRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        dht_proto::codec::encode(self)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, crate::StoreError> {
        dht_proto::codec::decode(bytes, 64 << 10)
            .map_err(|e| crate::StoreError::Db(format!("corrupt entry record: {e}")))
    }
}
