//! p2pd's content-addressed store. No networking: the node calls it, it owns the disk.
//!
//! # Layout
//! - [`store`]: [`Store`], the entry point: opening, crash cleanup, shared lookups.
//! - `import`: [`Store::import`], streaming import (chunk, hash, copy or reference in
//!   place); refuses anything but a regular file before opening it.
//! - `import_read`: reading, hashing and copying the chunks of a file being imported,
//!   on several threads for a large file, the copy written with direct I/O.
//! - `import_batch`: [`ImportBatch`], many imports synced and committed together (a
//!   folder add): one transaction per batch instead of one per file.
//! - `fetched_batch`: [`Store::place_fetched`], the small files of a folder fetch placed
//!   at their outputs and committed together, the same way.
//! - `read`: [`Store::read_chunk`] and [`Store::export`]; noticing that a file tracked in
//!   place changed on disk.
//! - `download`: partial downloads: [`Store::begin_download`] (with its free-space
//!   check and resume), [`Store::write_chunk`], [`Store::complete_download`].
//! - `saved_downloads`: the node's daemon-managed downloads and their state
//!   ([`Store::save_download`], [`Store::saved_downloads`]), kept across restarts.
//! - [`folders`]: directory manifests and their records ([`Store::put_folder`],
//!   [`Store::folder`], [`Store::folders`]); a folder's files are ordinary entries.
//! - `entries`: [`Store::list`], [`Store::info`], flags, [`Store::remove`].
//! - `entry_rows`: the one way entries are written or removed, keeping the index of
//!   files tracked in place (path → entries) in the same transaction.
//! - `verify`: [`Store::verify`], [`Store::repair`], [`Store::verify_store`] and their
//!   reports.
//! - [`ledger`]: the peer ledger, the node's reputation records, saved crash-safe.
//! - `manifests`: stored manifests and the cache of decoded ones.
//! - [`known_peers`]: the peers the node knew (its routing table), to rejoin without a
//!   bootstrap node.
//! - `hashing`: BLAKE3 chunk hashing on several threads, shared by import, resume and
//!   verify.
//! - `db`: the redb database, reopened by itself after an I/O error.
//! - [`tables`]: the redb tables, their versions, and the records kept in them.
//! - [`fsutil`]: durable atomic writes (also for the node's own files), directory syncs,
//!   free space.
//! - [`platform`]: what differs between operating systems (positioned I/O, free space,
//!   direct I/O) and the modes of the files placed for the user.
//! - [`buffer`]: page-aligned chunk buffers and the pool that reuses them.
//! - [`error`]: the error type, [`StoreError`].
//!
//! # Design
//! The data directory holds one redb database (`store.redb`) for all metadata and plain
//! files for content:
//!
//! ```text
//! store.redb          manifests, entries, partial-download bitfields, downloads, peer ledger, known peers (tables.rs)
//! blobs/<hex>         the bytes of a file imported by copy (immutable once named)
//! partial/<hex>       a download in progress, pre-sized; verified chunks written in place
//! tmp/                imports in progress; emptied whenever the store opens
//! ```
//!
//! Content bytes live outside redb so that a 1 GiB file is written once, sequentially,
//! and served with positioned reads, instead of being copied through B-tree pages.
//!
//! Crash safety: a file becomes visible only through its row in the `entries` table, and
//! that row is written in the same transaction as its manifest, after its bytes are on
//! disk and renamed into place (file and directory synced). A crash before that commit
//! leaves a file under `tmp/` or an orphan under `blobs/`; both are deleted when the
//! store next opens. A partial download's bitfield is committed from time to time, for
//! listings; when a download resumes, every chunk of the partial file is re-hashed and
//! the bitfield rebuilt from what verifies, so chunks written after the last commit are
//! recovered, and a chunk whose bytes did not reach the disk (or a partial file lost in
//! a crash) fails its hash and is simply fetched again. Chunks read from a partial file
//! or from a file tracked in place (`--no-copy`) are verified against the manifest on
//! every read, so a reader never sees unverified bytes; a file tracked in place that
//! fails that check is marked changed on disk, persistently, and no longer served.
//!
//! Disk full: opening an existing store needs no new space (redb rewrites its header in
//! place; tables are created only when missing), so the store opens on a full disk; after an I/O error the database is reopened by itself (see `db`);
//! [`Store::remove`] frees a file's space even when the database has no room left; a copy
//! or a download checks for room before it writes ([`StoreError::NoSpace`]).
//!
//! # Blocking
//! Every [`Store`] method blocks on the disk, and an async caller runs it on a blocking
//! thread, except those documented "Does not block" ([`Store::cached_manifest`],
//! [`Store::watch_entries`],
//! [`Store::buffers`], [`Store::root`], [`Store::direct_writes`],
//! [`Store::set_direct_io`], [`Store::database_reopens`]). The slow ones read or hash
//! whole files: [`Store::import`], [`Store::export`], [`Store::begin_download`] when it
//! resumes, [`Store::complete_download`] (a sync, or a copy across file systems), and
//! the verify family.
#![deny(missing_docs)]

pub mod buffer;
mod db;
mod download;
mod entries;
mod entry_rows;
pub mod error;
mod fetched_batch;
pub mod folders;
pub mod fsutil;
mod hashing;
mod import;
mod import_batch;
mod import_read;
pub mod known_peers;
pub mod ledger;
mod manifests;
pub mod platform;
mod read;
mod saved_downloads;
pub mod store;
pub mod tables;
mod verify;

pub use buffer::{BufferPool, ChunkBuf};
pub use entries::{EntryInfo, EntryState};
pub use error::StoreError;
pub use fetched_batch::Fetched;
pub use folders::{FolderInfo, FolderRecord};
pub use import::{ImportMode, ImportOutcome};
pub use import_batch::{ImportBatch, MAX_BATCH_BYTES, MAX_BATCH_FILES};
pub use known_peers::KnownPeer;
pub use ledger::LedgerChanges;
pub use saved_downloads::{SavedDownload, SavedState, MAX_HISTORY};
pub use store::Store;
pub use tables::Location;
pub use verify::{FileReport, Repair, StoreReport};
