//! Verified chunks of one download: each received chunk is checked against the manifest
//! and written into the partial file on a blocking thread; a corrupt one gets its
//! sender banned. What is verified is saved ([`Saver`]: the bitfield at most every
//! [`SAVE_INTERVAL`], the written bytes flushed in the background), told to the peers
//! that want our `Have`s, and finally placed at the output path.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chunk_store::{ChunkBuf, StoreError};
use dht_proto::Request;
use libp2p::PeerId;

use super::{Engine, Outcome};
use crate::transfer::status::Failure;
use crate::transfer::{blocking, lock};

/// Save the verified-chunk bitfield at least this often.
const SAVE_INTERVAL: Duration = Duration::from_millis(500);

/// When the download's progress was last saved, and whether a flush runs.
pub(super) struct Saver {
    last_save: Instant,
    /// Chunks were verified since the last save.
    dirty: bool,
    /// Whether a background flush of the partial file runs now.
    syncing: Arc<AtomicBool>,
}

impl Default for Saver {
    fn default() -> Self {
        Saver {
            last_save: Instant::now(),
            dirty: false,
            syncing: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Engine {
    /// Verifies and writes a received chunk on a blocking thread; the result comes back
    /// as [`Outcome::Written`].
    pub(super) fn write_chunk(&mut self, peer: PeerId, index: u32, data: ChunkBuf) {
        self.picker.start_verifying(index);
        let store = self.transfers.store().clone();
        let cid = self.params.target.cid;
        let manifest = self.file.manifest.clone();
        self.pending.push(Box::pin(async move {
            let len = data.len() as u64;
            let result = match manifest {
                Some(m) => blocking(move || store.write_chunk(&cid, &m, index, &data)).await,
                None => Err(StoreError::Invalid("no manifest".into())),
            };
            Outcome::Written(peer, index, len, result)
        }));
    }

    /// A chunk was verified and written, or failed. Returns whether it was progress.
    pub(super) async fn on_written(
        &mut self,
        peer: PeerId,
        index: u32,
        len: u64,
        result: Result<(), StoreError>,
    ) -> Result<bool, Failure> {
        // Endgame duplicates of a stored chunk still out at other peers.
        let losers: Vec<PeerId> = if result.is_ok() {
            self.picker
                .requesters(index)
                .iter()
                .copied()
                .filter(|p| *p != peer)
                .collect()
        } else {
            Vec::new()
        };
        // A chunk that was not stored (corrupt) can be picked again.
        self.picker.finish_verifying(index, result.is_ok());
        self.cancel_requests(index, &losers);
        match result {
            Ok(()) => {
                self.transfers.inner.chunk_counters.verified();
                self.file.have.set(index);
                lock(&self.link.shared.have).set(index);
                self.saver.dirty = true;
                self.meter.received(len);
                if let Some(slot) = self.peers.slots.get_mut(&peer) {
                    slot.bytes += len;
                    slot.failures = 0;
                    slot.last_delivery = Some(std::time::Instant::now());
                }
                self.transfers.note_received(peer, len);
                if self.file.have.count() == 1 {
                    // Holding verified chunks makes us a provider too.
                    self.transfers
                        .announce_download(self.params.target.cid, &self.link.shared)
                        .await;
                }
                self.announce_have(index);
                self.publish(false);
                Ok(true)
            }
            Err(StoreError::BadChunk { .. }) => {
                tracing::warn!(%peer, index, "corrupt chunk received");
                self.transfers.inner.chunk_counters.corrupt();
                // Chunks verified at once with the first bad one count once: the ban.
                if !self.transfers.is_banned(&peer) {
                    self.transfers.ban(peer);
                }
                self.drop_peer(peer);
                Ok(false)
            }
            Err(e) => {
                let failure = Failure::of_store(e);
                Err(Failure {
                    message: format!("cannot store chunk {index}: {}", failure.message),
                    ..failure
                })
            }
        }
    }

    /// Tells the peers that asked for our bitfield that we hold one more chunk, except
    /// those known to hold it already (the peer that sent it, a peer further on) and
    /// banned ones. A seed (a peer known to hold the whole file) is told too: that is
    /// how it sees who passes its chunks on (`reputation/pass_on.rs`). A peer that
    /// cannot be reached is forgotten: it asks again if it returns.
    fn announce_have(&self, index: u32) {
        let peers: Vec<PeerId> = lock(&self.link.shared.interested).iter().copied().collect();
        for peer in peers {
            if self
                .picker
                .peer_have(&peer)
                .is_some_and(|h| h.get(index) && !h.is_complete())
                || self.transfers.is_banned(&peer)
            {
                continue;
            }
            let net = self.transfers.net().clone();
            let cid = self.params.target.cid;
            let shared = self.link.shared.clone();
            tokio::spawn(async move {
                // A peer that cannot be reached is forgotten; one a limit of ours kept
                // us from telling is not.
                if net
                    .request(peer, Request::Have { cid, index })
                    .await
                    .is_err_and(|e| e.blames_peer())
                {
                    lock(&shared.interested).remove(&peer);
                }
            });
        }
    }

    /// Saves the verified-chunk bitfield if chunks were verified since the last save and
    /// [`SAVE_INTERVAL`] has passed (or `force`), and starts a background flush.
    pub(super) async fn maybe_save(&mut self, force: bool) {
        if !self.saver.dirty || (!force && self.saver.last_save.elapsed() < SAVE_INTERVAL) {
            return;
        }
        self.saver.dirty = false;
        self.saver.last_save = Instant::now();
        let store = self.transfers.store().clone();
        let cid = self.params.target.cid;
        let have = self.file.have.clone();
        if let Err(e) = blocking(move || store.save_progress(&cid, &have)).await {
            tracing::warn!(%cid, "cannot save download progress: {e}");
        }
        // Flush written chunks in the background, one flush at a time, so the final sync
        // does not stall the end of the download.
        if !force && !self.saver.syncing.swap(true, Ordering::AcqRel) {
            let store = self.transfers.store().clone();
            let syncing = self.saver.syncing.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = store.sync_download(&cid) {
                    tracing::debug!(%cid, "background sync: {e}");
                }
                syncing.store(false, Ordering::Release);
            });
        }
    }

    /// Where the file goes: `-o PATH`, or the output directory joined with the
    /// provider's name made safe; `None` keeps it in the store.
    pub(super) fn output_path(&self) -> Option<PathBuf> {
        if let Some(output) = &self.params.target.output {
            return Some(output.clone());
        }
        let dir = self.params.target.output_dir.as_ref()?;
        Some(dir.join(crate::transfer::files::safe_file_name(
            self.file.name.as_deref(),
            &self.params.target.cid,
        )))
    }

    /// Every chunk is verified: the store places the file, and it is announced.
    pub(super) async fn complete(&mut self) -> Result<(), Failure> {
        let store = self.transfers.store().clone();
        let cid = self.params.target.cid;
        let have = self.file.have.clone();
        let output = self.output_path();
        if let Some(out) = &output {
            if out.exists() {
                return Err(Failure::bad_input(format!(
                    "{} already exists; the download is kept and resumes into another path",
                    out.display()
                )));
            }
        }
        blocking(move || store.complete_download(&cid, &have, output.as_deref()))
            .await
            .map_err(|e| Failure::storage(format!("cannot finish {cid}: {e}")))?;
        self.transfers
            .announce_download(cid, &self.link.shared)
            .await;
        self.publish(true);
        Ok(())
    }
}
