//! Reading a file while it downloads, for `GET /api/files/{cid}/content` with a Range:
//! [`Transfers::open_stream`] waits for a starting download's manifest (and resumes a
//! partial file nothing downloads), and [`Transfers::chunk_when_ready`] tells the download
//! which chunks the reader needs next, so that the picker asks for them before any
//! other, then waits until each is verified and reads it.

use std::time::{Duration, Instant};

use chunk_store::{ChunkBuf, EntryState, StoreError};
use dht_proto::Cid;

use super::files::safe_file_name;
use super::{blocking, lock, EngineError, Transfers};

/// Longest a reader waits for a starting download's manifest.
const MANIFEST_WAIT: Duration = Duration::from_secs(10);
/// How often a reader waiting for a chunk looks again.
const POLL: Duration = Duration::from_millis(50);
/// Chunks a reader asks to have first: those of its range, from the one it waits for.
pub const MAX_URGENT: usize = 64;

/// A file as a reader sees it.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// The file.
    pub cid: Cid,
    /// A name safe to save it under.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Bytes per chunk (the last may be shorter).
    pub chunk_size: u32,
    /// Whether every chunk is held (nothing to wait for).
    pub complete: bool,
}

impl Transfers {
    /// Opens a file for reading: one the store holds, complete or partly downloaded
    /// (its download resumes if nothing runs), or one whose download just started, once
    /// the download has its manifest (waiting at most `timeout`). A file neither held
    /// nor downloading is not found.
    pub async fn open_stream(
        &self,
        cid: Cid,
        timeout: Duration,
    ) -> Result<StreamInfo, EngineError> {
        // A reader waits for a manifest briefly: an HTTP client does not wait a fetch's
        // whole timeout for its first byte; the download itself goes on.
        let deadline = Instant::now() + timeout.min(MANIFEST_WAIT);
        loop {
            let store = self.store().clone();
            if let Some(info) = blocking(move || store.info(&cid)).await? {
                let complete = match info.state {
                    EntryState::Complete => true,
                    EntryState::Partial { .. } => false,
                    EntryState::ChangedOnDisk => {
                        return Err(StoreError::ChunkUnavailable { cid, index: 0 }.into())
                    }
                };
                if !complete && !self.is_downloading(&cid) {
                    // Nothing would bring the reader's chunks otherwise.
                    self.start(cid, timeout)?;
                }
                return Ok(StreamInfo {
                    cid,
                    name: safe_file_name(info.name.as_deref(), &cid),
                    size: info.size,
                    chunk_size: info.chunk_size,
                    complete,
                });
            }
            if !self.is_downloading(&cid) {
                return Err(StoreError::NotFound(cid).into());
            }
            if Instant::now() >= deadline {
                return Err(EngineError::StreamFailed(format!(
                    "no provider of {cid} sent its manifest within {}s",
                    timeout.min(MANIFEST_WAIT).as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Chunk `index` of a file, once it is verified. While it is missing, the running
    /// download is told to fetch `wanted` (the reader's next chunks, from `index`) before
    /// anything else. Gives up after `timeout` without the chunk.
    pub async fn chunk_when_ready(
        &self,
        cid: Cid,
        index: u32,
        wanted: std::ops::Range<u32>,
        timeout: Duration,
    ) -> Result<ChunkBuf, EngineError> {
        let deadline = Instant::now() + timeout;
        let mut asked = false;
        loop {
            // The running download's bitfield says when to read; without one the file is
            // complete (or the download ended, and the store answers).
            let held = match self.live_have(&cid) {
                Some(have) => have.get(index),
                None => !self.is_downloading(&cid),
            };
            if held {
                match self.read_chunk(cid, index).await {
                    Err(EngineError::Store(StoreError::ChunkUnavailable { .. }))
                        if self.is_downloading(&cid) => {}
                    other => return other,
                }
            }
            if !asked {
                asked = self.want_first(&cid, wanted.clone());
            }
            if Instant::now() >= deadline {
                return Err(EngineError::StreamFailed(format!(
                    "chunk {index} of {cid} did not arrive within {}s",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Tells the running download of `cid` to fetch `chunks` (at most [`MAX_URGENT`] of
    /// them) before any other. Returns whether one runs.
    fn want_first(&self, cid: &Cid, chunks: std::ops::Range<u32>) -> bool {
        let Some(shared) = self.download_shared(cid) else {
            return false;
        };
        *lock(&shared.urgent) = chunks.take(MAX_URGENT).collect();
        true
    }
}
