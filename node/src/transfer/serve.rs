//! The upload side: answers the transfer-protocol requests that the swarm task hands
//! over. Chunk requests from peers without an upload slot (see `choke.rs`) are answered
//! `Choked`; the others wait for the upload cap, then read on a blocking thread. At most
//! [`READ_BUDGET_MIB`] MiB of chunks are being uploaded at once; a request past that is
//! `Choked`.
//! A `Cancel` from the requester ends a chunk request that has not been answered yet with
//! `Cancelled`, and gives its bytes back to the upload cap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chunk_store::{EntryState, StoreError};
use dht_proto::{Bitfield, Cid, Request, Response};
use serde_bytes::ByteBuf;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::choke::{Choker, RECHOKE_INTERVAL};
use super::{PeerNews, Transfers};
use crate::network::{InboundRequest, Reply};
use libp2p::PeerId;

/// Settings of the upload side.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Peers unchoked at once (upload slots).
    pub upload_slots: usize,
    /// Test-only: corrupt every chunk served (compiled only with the `test-faults` feature).
    pub corrupt_chunks: bool,
}

/// MiB of chunks being uploaded at once, across all unchoked peers: one permit per MiB
/// of chunk, at least one per request, so the memory uploads hold stays the same
/// whatever the chunk size (1 MiB for most files, up to 4 MiB past 512 GiB).
const READ_BUDGET_MIB: usize = 32;

/// Read permits a chunk of `len` bytes takes.
fn read_permits(len: u64) -> u32 {
    len.div_ceil(1 << 20).clamp(1, READ_BUDGET_MIB as u64) as u32
}

/// One peer's request for one chunk of one file.
type UploadKey = (PeerId, Cid, u32);
/// An upload's id and the switch that cancels it.
type UploadSwitch = (u64, oneshot::Sender<()>);

/// Chunk requests accepted and not answered yet, each with the switch that cancels it.
#[derive(Clone, Default)]
struct PendingUploads {
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
    fn cancel(&self, key: &UploadKey) -> bool {
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

/// Answers inbound requests until the channel closes.
pub async fn run(
    transfers: Transfers,
    config: ServeConfig,
    mut inbound: mpsc::Receiver<InboundRequest>,
) {
    let reads = Arc::new(Semaphore::new(READ_BUDGET_MIB));
    // Requests that are not chunk reads are cheap but still bounded.
    let others = Arc::new(Semaphore::new(64));
    let mut choker = Choker::new(config.upload_slots);
    let mut rechoke = tokio::time::interval(RECHOKE_INTERVAL);
    let uploads = PendingUploads::default();
    loop {
        let InboundRequest {
            peer,
            request,
            channel,
        } = tokio::select! {
            next = inbound.recv() => match next {
                Some(next) => next,
                None => return,
            },
            _ = rechoke.tick() => {
                choker.rechoke(Instant::now(), &received_totals(&transfers));
                continue;
            }
        };
        let net = transfers.net().clone();
        if let Request::Cancel { cid, index } = request {
            if uploads.cancel(&(peer, cid, index)) {
                tracing::debug!(%peer, %cid, index, "chunk request cancelled by the peer");
            }
            net.respond(channel, Response::Ack).await;
            continue;
        }
        if transfers.is_banned(&peer) {
            net.respond(channel, Response::Choked).await;
            continue;
        }
        let is_chunk = matches!(request, Request::Chunk { .. });
        if is_chunk && !choker.allow(peer, Instant::now()) {
            net.respond(channel, Response::Choked).await;
            continue;
        }
        let semaphore = if is_chunk { &reads } else { &others };
        let Ok(permit) = semaphore.clone().try_acquire_owned() else {
            net.respond(channel, Response::Choked).await;
            continue;
        };
        let transfers = transfers.clone();
        let corrupt = config.corrupt_chunks;
        let uploads = uploads.clone();
        let reads = reads.clone();
        tokio::spawn(async move {
            let Request::Chunk { cid, index } = request else {
                let response = answer(&transfers, peer, request, corrupt).await;
                net.respond(channel, response).await;
                drop(permit);
                return;
            };
            // One permit is held already; a chunk over 1 MiB needs more.
            let len = chunk_len(&transfers, &cid, index).await;
            let extra = read_permits(len) - 1;
            let more = match extra {
                0 => None,
                n => match reads.try_acquire_many_owned(n) {
                    Ok(more) => Some(more),
                    Err(_) => {
                        net.respond(channel, Response::Choked).await;
                        return;
                    }
                },
            };
            let key = (peer, cid, index);
            let (id, switch) = uploads.register(key);
            let len = if transfers.upload_limit().is_limited() {
                len
            } else {
                0
            };
            let upload = async {
                // Wait for the upload cap before reading, so a capped node never holds
                // more chunks in memory than it has read permits.
                transfers.upload_limit().acquire(len).await;
                answer(&transfers, peer, request, corrupt).await
            };
            let response = tokio::select! {
                response = upload => response,
                () = cancelled(switch) => {
                    transfers.upload_limit().refund(len);
                    Reply::Message(Response::Cancelled)
                }
            };
            uploads.finish(&key, id);
            if let Reply::Chunk(data) = &response {
                transfers.note_sent(peer, data.len() as u64);
            }
            net.respond(channel, response).await;
            drop((permit, more));
        });
    }
}

/// The length of a chunk we may serve (0 if we do not know the file).
async fn chunk_len(transfers: &Transfers, cid: &Cid, index: u32) -> u64 {
    if let Some(manifest) = transfers.store().cached_manifest(cid) {
        return u64::from(manifest.chunk_len(index));
    }
    let store = transfers.store().clone();
    let cid = *cid;
    tokio::task::spawn_blocking(move || store.manifest(&cid))
        .await
        .ok()
        .and_then(|m| m.ok().flatten())
        .map_or(0, |m| u64::from(m.chunk_len(index)))
}

fn received_totals(transfers: &Transfers) -> HashMap<PeerId, u64> {
    transfers
        .traffic()
        .into_iter()
        .map(|(peer, t)| (peer, t.received))
        .collect()
}

async fn answer(
    transfers: &Transfers,
    peer: libp2p::PeerId,
    request: Request,
    corrupt: bool,
) -> Reply {
    let store = transfers.store().clone();
    match request {
        Request::Manifest { cid } => {
            let result = tokio::task::spawn_blocking(move || {
                // A file changed on disk is answered as not held, like its chunks.
                let Some(info) = store.info(&cid)? else {
                    return Ok(None);
                };
                if info.state == EntryState::ChangedOnDisk {
                    return Ok(None);
                }
                let bytes = store.manifest_bytes(&cid)?;
                Ok::<_, StoreError>(bytes.map(|b| (b, info.name)))
            })
            .await;
            Reply::Message(match result {
                Ok(Ok(Some((bytes, name)))) => Response::Manifest {
                    manifest: ByteBuf::from(bytes),
                    name: name.and_then(|n| dht_proto::names::sanitize_file_name(&n)),
                },
                Ok(Ok(None)) | Ok(Err(StoreError::Invalid(_))) => Response::NotFound,
                Ok(Err(e)) => error_response(e),
                Err(_) => internal(),
            })
        }
        Request::Chunk { cid, index } => {
            let result = tokio::task::spawn_blocking(move || store.read_chunk(&cid, index)).await;
            match result {
                Ok(Ok(mut data)) => {
                    if corrupt && cfg!(feature = "test-faults") {
                        if let Some(b) = data.first_mut() {
                            *b ^= 0xff;
                        }
                    }
                    tracing::trace!(%peer, %cid, index, "served chunk");
                    Reply::Chunk(data)
                }
                Ok(Err(
                    StoreError::NotFound(_)
                    | StoreError::ChunkUnavailable { .. }
                    | StoreError::Changed(_)
                    | StoreError::Invalid(_),
                )) => Reply::Message(Response::NotFound),
                Ok(Err(e)) => Reply::Message(error_response(e)),
                Err(_) => Reply::Message(internal()),
            }
        }
        Request::Bitfield { cid, have } => {
            transfers.peer_news(&cid, PeerNews::Bitfield(peer, have));
            Reply::Message(match our_bitfield(transfers, cid).await {
                Some(have) => Response::Bitfield { have },
                None => Response::NotFound,
            })
        }
        Request::Have { cid, index } => {
            transfers.peer_news(&cid, PeerNews::Have(peer, index));
            Reply::Message(Response::Ack)
        }
        // Handled before an upload starts (see `run`).
        Request::Cancel { .. } => Reply::Message(Response::Ack),
    }
}

/// What we hold of a file: the live bitfield of a running download, else the store's.
pub async fn our_bitfield(transfers: &Transfers, cid: Cid) -> Option<Bitfield> {
    if let Some(live) = transfers.live_have(&cid) {
        return Some(live);
    }
    let store = transfers.store().clone();
    tokio::task::spawn_blocking(move || {
        let info = store.info(&cid).ok()??;
        match info.state {
            EntryState::Complete => Some(Bitfield::full(info.chunk_count)),
            EntryState::Partial { .. } => store.partial_have(&cid).ok()?,
            EntryState::ChangedOnDisk => None,
        }
    })
    .await
    .ok()?
}

fn error_response(e: StoreError) -> Response {
    let message = match e {
        StoreError::Corrupt { .. } => "stored chunk is corrupt".to_string(),
        _ => "provider storage error".to_string(),
    };
    Response::Error { message }
}

fn internal() -> Response {
    Response::Error {
        message: "internal error".into(),
    }
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
