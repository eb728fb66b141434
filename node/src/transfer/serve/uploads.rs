//! Chunk uploads in progress: the read budget ([`READ_BUDGET_MIB`] permits, one per
//! started MiB of chunk), the registry of chunk requests accepted and not answered yet
//! ([`PendingUploads`], so that a `Cancel` reaches the one it names), and the task that
//! answers one chunk request (upload cap, read, send).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dht_proto::{Cid, Request, Response};
use libp2p::request_response::ResponseChannel;
use libp2p::PeerId;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::answer::answer;
use crate::network::Reply;
use crate::transfer::choke::Choker;
use crate::transfer::rate::RateLimiter;
use crate::transfer::{lock, Transfers};

/// MiB of chunks being uploaded at once, across all unchoked peers: one permit per MiB
/// of chunk, at least one per request, so the memory uploads hold stays the same
/// whatever the chunk size (1 MiB for most files, up to 4 MiB past 512 GiB).
pub(super) const READ_BUDGET_MIB: usize = 32;

/// Longest an accepted chunk request waits for read permits when the budget is spent;
/// past it, the request is answered `Choked`.
pub(super) const READ_WAIT: Duration = Duration::from_secs(1);

/// Read permits a chunk of `len` bytes takes.
pub(super) fn read_permits(len: u64) -> u32 {
    len.div_ceil(1 << 20).clamp(1, READ_BUDGET_MIB as u64) as u32
}

/// One peer's request for one chunk of one file.
type UploadKey = (PeerId, Cid, u32);
/// An upload's id and the switch that cancels it.
type UploadSwitch = (u64, oneshot::Sender<()>);

/// Chunk requests accepted and not answered yet, each with the switch that cancels it.
#[derive(Clone, Default)]
pub(super) struct PendingUploads {
    inner: Arc<Mutex<HashMap<UploadKey, UploadSwitch>>>,
    next_id: Arc<AtomicU64>,
}

impl PendingUploads {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UploadKey, UploadSwitch>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an upload; the receiver fires if the peer cancels it.
    fn register(&self, key: UploadKey) -> (u64, oneshot::Receiver<()>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(key, (id, tx));
        (id, rx)
    }

    /// Forgets upload `id` once answered.
    fn finish(&self, key: &UploadKey, id: u64) {
        let mut pending = self.lock();
        if pending.get(key).is_some_and(|(current, _)| *current == id) {
            pending.remove(key);
        }
    }

    /// Cancels the peer's request for that chunk, if it is still waiting.
    pub(super) fn cancel(&self, key: &UploadKey) -> bool {
        match self.lock().remove(key) {
            Some((_, tx)) => tx.send(()).is_ok(),
            None => false,
        }
    }
}

/// Resolves when `switch` fires; never if it is dropped unfired.
async fn cancelled(switch: oneshot::Receiver<()>) {
    if switch.await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// One accepted chunk request, with the read permits it took when it was read.
pub(super) struct Upload {
    pub transfers: Transfers,
    pub peer: PeerId,
    pub cid: Cid,
    pub index: u32,
    pub channel: ResponseChannel<Reply>,
    /// The permits taken; when the chunk's length was not known then (its file's
    /// manifest was not in memory), one. None: the budget was spent, and the upload
    /// waits for them up to [`READ_WAIT`].
    pub permits: Option<OwnedSemaphorePermit>,
    /// The chunk's length, if it was known when the request was read.
    pub len: Option<u64>,
    pub reads: Arc<Semaphore>,
    pub uploads: PendingUploads,
    pub choker: Arc<Mutex<Choker>>,
    /// The share of the upload cap that uploads to throttled peers wait for, if the
    /// peer is one (`choke/`).
    pub throttled_share: Option<Arc<RateLimiter>>,
    /// What each peer was sent, to tell those that ask again ([`super::repeats`]).
    pub repeats: Arc<Mutex<super::repeats::Repeats>>,
    /// Whether this node holds the whole file: what it sends is evidence of who passes
    /// data on (`reputation/pass_on.rs`).
    pub seeding: bool,
    /// Whether another peer downloads the file from this node too: only then could the
    /// recipient pass the chunk on.
    pub others_want: bool,
    pub faults: super::faults::Faults,
}

impl Upload {
    /// Answers the request: waits for the upload cap, reads the chunk on a blocking
    /// thread, and sends it, unless the peer cancels it first. The permits are given
    /// back, and the peer's upload counted as ended, once the answer is handed to the
    /// network task.
    pub(super) async fn run(self) {
        let Upload {
            transfers,
            peer,
            cid,
            index,
            channel,
            permits,
            len,
            reads,
            uploads,
            choker,
            throttled_share,
            repeats,
            seeding,
            others_want,
            faults,
        } = self;
        let net = transfers.net().clone();
        let permits = match permits {
            Some(permits) => permits,
            None => {
                let needed = read_permits(len.unwrap_or(0));
                match tokio::time::timeout(READ_WAIT, reads.clone().acquire_many_owned(needed))
                    .await
                {
                    Ok(Ok(permits)) => permits,
                    _ => {
                        net.respond(channel, Response::Choked).await;
                        lock(&choker).finished(peer, 0, Instant::now());
                        return;
                    }
                }
            }
        };
        let (len, more) = match len {
            Some(len) => (len, None),
            // The manifest was read from disk just now: the permits past the first.
            None => {
                let len = chunk_len(&transfers, &cid, index).await;
                match read_permits(len) - 1 {
                    0 => (len, None),
                    extra => match reads.try_acquire_many_owned(extra) {
                        Ok(more) => (len, Some(more)),
                        Err(_) => {
                            net.respond(channel, Response::Choked).await;
                            lock(&choker).finished(peer, 0, Instant::now());
                            return;
                        }
                    },
                }
            }
        };
        let key = (peer, cid, index);
        let (id, switch) = uploads.register(key);
        let capped = if transfers.upload_limit().is_limited() {
            len
        } else {
            0
        };
        let upload = async {
            // Wait for the upload cap before reading, so a capped node never holds more
            // chunks in memory than it has read permits.
            // A throttled peer waits for its share first, so that it books none of the
            // cap others could use meanwhile.
            if let Some(share) = &throttled_share {
                share.acquire(len).await;
            }
            transfers.upload_limit().acquire(capped).await;
            answer(&transfers, peer, Request::Chunk { cid, index }, faults).await
        };
        let response = tokio::select! {
            response = upload => response,
            () = cancelled(switch) => {
                transfers.upload_limit().refund(capped);
                Reply::Message(Response::Cancelled)
            }
        };
        uploads.finish(&key, id);
        if let Reply::Chunk(data) = &response {
            transfers.note_sent(peer, data.len() as u64);
            lock(&repeats).sent(peer, cid, index, Instant::now());
            if seeding {
                transfers.note_seeded(peer, cid, index, data.len() as u64, others_want);
            }
        }
        let bytes = match &response {
            Reply::Chunk(data) => data.len() as u64,
            _ => 0,
        };
        net.respond(channel, response).await;
        lock(&choker).finished(peer, bytes, Instant::now());
        drop((permits, more));
    }
}

/// The length of a chunk of a file whose manifest is in memory (0 for an index past
/// the end); `None` when the manifest is not in memory.
pub(super) fn cached_chunk_len(transfers: &Transfers, cid: &Cid, index: u32) -> Option<u64> {
    transfers
        .store()
        .cached_manifest(cid)
        .map(|m| u64::from(m.chunk_len(index)))
}

/// The length of a chunk we may serve (0 if we do not know the file), reading its
/// manifest from disk if need be.
async fn chunk_len(transfers: &Transfers, cid: &Cid, index: u32) -> u64 {
    if let Some(len) = cached_chunk_len(transfers, cid, index) {
        return len;
    }
    let store = transfers.store().clone();
    let cid = *cid;
    tokio::task::spawn_blocking(move || store.manifest(&cid))
        .await
        .ok()
        .and_then(|m| m.ok().flatten())
        .map_or(0, |m| u64::from(m.chunk_len(index)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn uploads_take_read_permits_by_size() {
        assert_eq!(read_permits(0), 1);
        assert_eq!(read_permits(16 << 10), 1);
        assert_eq!(read_permits(1 << 20), 1);
        assert_eq!(read_permits((1 << 20) + 1), 2);
        assert_eq!(read_permits(4 << 20), 4);
        // 32 MiB of budget: at most 32 chunks of 1 MiB, or 8 of 4 MiB, at once.
        assert_eq!(READ_BUDGET_MIB as u32 / read_permits(4 << 20), 8);
        assert_eq!(read_permits(u64::MAX), READ_BUDGET_MIB as u32);
    }

    #[tokio::test]
    async fn a_cancel_reaches_only_the_upload_it_names() {
        let uploads = PendingUploads::default();
        let peer = PeerId::random();
        let cid = Cid::for_manifest_bytes(b"m");
        let (id_a, a) = uploads.register((peer, cid, 1));
        let (_, b) = uploads.register((peer, cid, 2));
        assert!(uploads.cancel(&(peer, cid, 1)));
        // Already fired, or never registered: nothing to cancel.
        assert!(!uploads.cancel(&(peer, cid, 1)));
        assert!(!uploads.cancel(&(PeerId::random(), cid, 2)));
        tokio::time::timeout(Duration::from_secs(1), cancelled(a))
            .await
            .expect("the cancelled upload is told");
        // The other upload is not.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), cancelled(b))
                .await
                .is_err()
        );
        // A finished upload is forgotten; finishing an old id leaves a newer one alone.
        let (id_c, _c) = uploads.register((peer, cid, 3));
        uploads.finish(&(peer, cid, 3), id_a);
        assert!(uploads.lock().contains_key(&(peer, cid, 3)));
        uploads.finish(&(peer, cid, 3), id_c);
        assert!(!uploads.lock().contains_key(&(peer, cid, 3)));
    }
}
