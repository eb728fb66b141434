//! p2pd's content-addressed store. No networking: the node calls it, it owns the disk.
//!
//! # Layout
//! - [`store`]: [`Store`], the entry point: import, read chunks, list, remove, verify,
//!   partial downloads.
//! - [`tables`]: the redb tables and the records kept in them.
//! - [`import`]: streaming import (chunk, hash, copy or reference in place).
//! - [`buffer`]: page-aligned chunk buffers and the pool that reuses them.
//! - [`error`]: the error type, [`StoreError`].
//!
//! # Design
//! The data directory holds one redb database (`store.redb`) for all metadata and plain
//! files for content:
//!
//! ```text
//! store.redb          manifests, entries, partial-download bitfields (see tables.rs)
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
//! disk and renamed into place. A crash before that commit leaves a file under `tmp/` or
//! an orphan under `blobs/`; both are deleted when the store next opens. A partial
//! download's bitfield is committed from time to time, for listings; when a download
//! resumes, every chunk of the partial file is re-hashed and the bitfield rebuilt from
//! what verifies, so chunks written after the last commit are recovered, and a chunk
//! whose bytes did not reach the disk (or a partial file lost in a crash) fails its hash
//! and is simply fetched again. Chunks read from a partial file or from a file
//! tracked in place (`--no-copy`) are verified against the manifest on every read, so a
//! reader never sees unverified bytes.
#![deny(missing_docs)]

pub mod buffer;
pub mod error;
pub mod import;
pub mod store;
pub mod tables;

pub use buffer::{BufferPool, ChunkBuf};
pub use error::StoreError;
pub use import::{ImportMode, ImportOutcome};
pub use store::{EntryInfo, EntryState, Store, VerifyReport};
pub use tables::Location;
