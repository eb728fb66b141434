//! Counters of the engine's chunk traffic since the daemon started, for the metrics
//! endpoint: chunks verified and stored, and chunks that failed verification.

use std::sync::atomic::{AtomicU64, Ordering};

/// Chunk counts since the daemon started.
#[derive(Debug, Default)]
pub struct ChunkCounters {
    verified: AtomicU64,
    corrupt: AtomicU64,
}

/// A reading of [`ChunkCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkCounts {
    /// Chunks received, verified against the manifest and stored.
    pub verified: u64,
    /// Chunks received that failed verification.
    pub corrupt: u64,
}

impl ChunkCounters {
    pub(super) fn verified(&self) {
        self.verified.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn corrupt(&self) {
        self.corrupt.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn read(&self) -> ChunkCounts {
        ChunkCounts {
            verified: self.verified.load(Ordering::Relaxed),
            corrupt: self.corrupt.load(Ordering::Relaxed),
        }
    }
}
