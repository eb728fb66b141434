//! Placing the verified small files of a folder fetch ([`super::small`]): a batch of up
//! to [`BATCH_FILES`] files goes into the store with one commit and one sync of each
//! directory ([`chunk_store::Store::place_fetched`]) on a blocking thread, while the
//! next files arrive; a placed batch is counted, credited to the peers that sent it,
//! and announced at once.

use std::sync::atomic::Ordering;
use std::time::Instant;

use chunk_store::{Fetched, StoreError};
use libp2p::PeerId;
use tokio::task::JoinHandle;

use super::small::{SmallFetch, Wanted};
use super::tree;
use crate::transfer::status::Failure;

/// Files placed with one commit at most.
const BATCH_FILES: usize = 512;

/// A file ready for the next batch.
pub(super) struct Ready {
    pub(super) wanted: Wanted,
    pub(super) fetched: Fetched,
    /// Who sent it (`None`: it was in place already).
    pub(super) from: Option<PeerId>,
}

/// A file of a batch once placed (or not).
pub(super) struct Placed {
    wanted: Wanted,
    from: Option<PeerId>,
    /// Bytes it held while waiting (0 for a file in place already).
    buffered: u64,
    result: Result<(), String>,
}

/// Verified files waiting to be placed, and the batch being placed now.
#[derive(Default)]
pub(super) struct Batches {
    pub(super) ready: Vec<Ready>,
    /// Bytes received (or asked for) and not placed yet.
    pub(super) buffered: u64,
    flushing: Option<JoinHandle<Flushed>>,
}

/// A placed batch: each file with its result.
pub(super) type Flushed = Result<Vec<Placed>, StoreError>;

impl Batches {
    /// Places up to [`BATCH_FILES`] ready files on a blocking thread.
    pub(super) fn start_flush(&mut self, fetch: &SmallFetch<'_>) {
        let take = self.ready.len().min(BATCH_FILES);
        let batch: Vec<Ready> = self.ready.drain(..take).collect();
        let store = fetch.transfers.store().clone();
        let root = fetch.root.to_path_buf();
        self.flushing = Some(tokio::task::spawn_blocking(move || {
            let began = Instant::now();
            let files = batch.len();
            let mut placed = Vec::with_capacity(batch.len());
            let mut fetched = Vec::with_capacity(batch.len());
            let mut placing = Vec::with_capacity(batch.len());
            for ready in batch {
                // A parent swapped for a link since the fetch began: that file fails.
                let result =
                    tree::check_parents(&root, &ready.wanted.path).map_err(|e| e.to_string());
                if result.is_ok() {
                    placing.push(placed.len());
                }
                placed.push(Placed {
                    buffered: ready.fetched.data.as_ref().map_or(0, |d| d.len() as u64),
                    wanted: ready.wanted,
                    from: ready.from,
                    result,
                });
                fetched.push(ready.fetched);
            }
            let fetched: Vec<Fetched> = fetched
                .into_iter()
                .zip(&placed)
                .filter(|(_, p)| p.result.is_ok())
                .map(|(f, _)| f)
                .collect();
            let outcomes = store.place_fetched(&fetched)?;
            for (at, outcome) in placing.into_iter().zip(outcomes) {
                let file = &mut placed[at];
                file.result = outcome.map_err(|e| e.to_string()).and_then(|()| {
                    tree::check_parents(&root, &file.wanted.path)
                        .and_then(|()| {
                            tree::set_file_mode(&file.wanted.out, file.wanted.executable)
                        })
                        .map_err(|e| e.to_string())
                });
            }
            tracing::debug!(
                files,
                secs = began.elapsed().as_secs_f64(),
                "small files placed"
            );
            Ok(placed)
        }));
    }

    /// Whether a batch is being placed now.
    pub(super) fn is_flushing(&self) -> bool {
        self.flushing.is_some()
    }

    pub(super) async fn wait_flush(&mut self) -> Flushed {
        match self.flushing.as_mut() {
            Some(handle) => handle
                .await
                .unwrap_or_else(|e| Err(StoreError::Invalid(format!("placing files: {e}")))),
            None => std::future::pending().await,
        }
    }

    /// Counts a placed batch and announces its files; a file that failed fails the
    /// folder fetch, as a failed download does.
    pub(super) async fn finish_flush(
        &mut self,
        fetch: &SmallFetch<'_>,
        flushed: Flushed,
    ) -> Result<(), Failure> {
        self.flushing = None;
        let placed = flushed.map_err(Failure::of_store)?;
        let mut announce = Vec::with_capacity(placed.len());
        let mut failure = None;
        for file in placed {
            self.buffered = self.buffered.saturating_sub(file.buffered);
            match file.result {
                Ok(()) => {
                    let size = file.wanted.size;
                    fetch.shared.files_done.fetch_add(1, Ordering::Relaxed);
                    fetch.shared.bytes_done.fetch_add(size, Ordering::Relaxed);
                    if let Some(peer) = file.from {
                        fetch.transfers.inner.chunk_counters.verified();
                        fetch.transfers.note_received(peer, size);
                    }
                    announce.push(file.wanted.cid);
                }
                Err(message) => {
                    failure.get_or_insert_with(|| {
                        Failure::storage(format!("{}: {message}", file.wanted.path))
                    });
                }
            }
        }
        fetch.transfers.net().start_providing_many(announce).await;
        failure.map_or(Ok(()), Err)
    }

    /// Places everything still ready, batch after batch.
    pub(super) async fn flush_all(&mut self, fetch: &SmallFetch<'_>) -> Result<(), Failure> {
        loop {
            if self.flushing.is_some() {
                let flushed = self.wait_flush().await;
                self.finish_flush(fetch, flushed).await?;
            }
            if self.ready.is_empty() {
                return Ok(());
            }
            self.start_flush(fetch);
        }
    }
}
