//! The redb tables of the store and the records kept in them.
//!
//! Every table name carries a format version (`-v1`). A record may gain a field that
//! old records lack, with a default (old binaries ignore fields they do not know); any
//! other change of a key or value format adds a table with the next version, and
//! `Store::open` migrates the old table into it, rather than reinterpreting old bytes.
//! Every key of the file tables is the 32-byte BLAKE3 digest of a file CID, which is also the `<hex>` of
//! the file's content file.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `manifests-v1` | file hash | encoded manifest (its BLAKE3 is the key) |
//! | `entries-v1` | file hash | [`EntryRecord`] as CBOR |
//! | `in-place-paths-v1` (multimap) | path of a file tracked in place | the hashes of the entries tracking it (kept by `entry_rows`) |
//! | `partial-have-v1` | file hash | [`Bitfield`](dht_proto::Bitfield) bytes of the verified chunks of a partial download |
//! | `downloads-v1` | file hash | [`SavedDownload`](crate::SavedDownload) as CBOR: a daemon-managed download and its state |
//! | `folders-v1`, `folder-manifests-v1` | directory CID digest | a folder's record and its directory manifest (see [`folders`](crate::folders)) |
//! | `peer-ledger-v1` | a peer's identity bytes | the node's record of that peer (opaque here; see `ledger`) |
//! | `known-peers-v1` | peer id bytes | [`KnownPeer`](crate::KnownPeer) as CBOR (`known_peers.rs`) |
//! | `migrations-v1` | a migration's name | when it ran (seconds since the Unix epoch): the one-time rewrites of old records (`entry_rows`) |

use std::path::PathBuf;

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

/// Manifests by file hash: the canonical manifest encoding, exactly as hashed into the
/// CID. Written with the entry; removed with it.
pub const MANIFESTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("manifests-v1");
/// Entries (what the store holds and where) by file hash; a file exists for the store
/// exactly when it has a row here.
pub const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries-v1");
/// The verified chunks of partial downloads by file hash, saved from time to time (a
/// hint for listings and peers; a resume re-hashes the partial file).
pub const PARTIAL_HAVE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("partial-have-v1");
/// The node's daemon-managed downloads by file hash (see `saved_downloads`).
pub const DOWNLOADS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("downloads-v1");
/// The peer ledger (see `ledger`): keyed by peer identity bytes rather than file hash,
/// created by its first save.
pub const PEER_LEDGER: TableDefinition<&[u8], &[u8]> = TableDefinition::new("peer-ledger-v1");

/// The one-time rewrites of old records done so far: name → when (Unix seconds). The
/// table is created together with the migrations it lists.
pub const MIGRATIONS: TableDefinition<&str, u64> = TableDefinition::new("migrations-v1");
/// The migration that gave old entries [`EntryRecord::alone`].
pub(crate) const ALONE_FLAG: &str = "entry-alone-flag";

/// Largest encoded entry record accepted when decoding.
const MAX_RECORD_LEN: usize = 64 << 10;

/// Where a file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// Copied into `blobs/<hex>`.
    Blob,
    /// Tracked in place; served only while size and modification time are unchanged and
    /// the bytes still hash right.
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
    /// A file tracked in place was found changed (size, mtime or bytes): it is not served
    /// until it is added again. Absent in records written before this field existed.
    #[serde(default)]
    pub changed_on_disk: bool,
    /// Whether the node's catalog lists it (searchable by its name's words, shown to peers
    /// that browse the node). Cleared by `add --unlisted` or `unlist`; absent in records
    /// written before this field existed, which read as listed.
    #[serde(default = "yes")]
    pub listed: bool,
    /// Whether the file was added or fetched on its own, not only as a file of a folder
    /// (`add --unlisted` makes an unlisted file that is its own share): removing or
    /// unpublishing a folder leaves it alone. Records written before this field existed
    /// read as `false` and are given it once, when the store opens (see `entry_rows`).
    #[serde(default)]
    pub alone: bool,
}

#[cfg(test)]
thread_local! {
    /// Entry records decoded on this thread, for tests that bound what an operation
    /// reads (a store operation decodes on its caller's thread).
    pub(crate) static DECODED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn yes() -> bool {
    true
}

impl EntryRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        dht_proto::codec::encode(self)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, crate::StoreError> {
        #[cfg(test)]
        DECODED.with(|n| n.set(n.get() + 1));
        dht_proto::codec::decode(bytes, MAX_RECORD_LEN)
            .map_err(|e| crate::StoreError::Db(format!("corrupt entry record: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_written_before_the_changed_flag_read_as_unchanged() {
        #[derive(Serialize)]
        struct Old {
            name: Option<String>,
            location: Location,
            added_unix: u64,
            pinned: bool,
        }
        let old = dht_proto::codec::encode(&Old {
            name: Some("a".into()),
            location: Location::Blob,
            added_unix: 7,
            pinned: false,
        });
        let record = EntryRecord::decode(&old).unwrap();
        assert!(record.published);
        assert!(!record.changed_on_disk);
        assert!(record.listed);
        assert!(!record.alone, "set by the migration, not by decoding");
        assert_eq!(record.added_unix, 7);
    }
}
