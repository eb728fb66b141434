//! What the upload side answers to each request, from the store: the manifest, a chunk,
//! our bitfield, `Ack` to a `Have`. A file this node does not hold (a `raw` CID
//! included) is `NotFound`; so is a file tracked in place that changed on disk, which
//! is also withdrawn from the DHT as soon as a request reveals the change. A storage
//! failure is `Error` with a fixed message: local paths never reach a peer.

use chunk_store::{EntryState, StoreError};
use dht_proto::{Bitfield, Cid, Request, Response};
use libp2p::PeerId;
use serde_bytes::ByteBuf;

use super::faults::Faults;
use crate::network::Reply;
use crate::transfer::{PeerNews, Transfers};

/// The answer to one request (a `Cancel` is answered before this, see `run`).
pub(super) async fn answer(
    transfers: &Transfers,
    peer: PeerId,
    request: Request,
    faults: Faults,
) -> Reply {
    let store = transfers.store().clone();
    match request {
        Request::Manifest { cid } => {
            let result = tokio::task::spawn_blocking(move || {
                let Some(info) = store.info(&cid)? else {
                    // A folder's manifest is served like a file's; its files are asked
                    // for by their own CIDs.
                    let Some(folder) = store.folder(&cid)? else {
                        return Ok(Held::No);
                    };
                    return Ok(match store.folder_manifest_bytes(&cid)? {
                        Some(bytes) => Held::Yes((bytes, folder.record.name)),
                        None => Held::No,
                    });
                };
                if info.state == EntryState::ChangedOnDisk {
                    return Ok(Held::Changed);
                }
                let bytes = store.manifest_bytes(&cid)?;
                Ok::<_, StoreError>(match bytes {
                    Some(bytes) => Held::Yes((bytes, info.name)),
                    None => Held::No,
                })
            })
            .await;
            Reply::Message(match flatten(result) {
                Ok(Held::Yes((bytes, name))) => Response::Manifest {
                    manifest: ByteBuf::from(bytes),
                    name: name.and_then(|n| dht_proto::names::sanitize_file_name(&n)),
                },
                Ok(Held::No) => Response::NotFound,
                Ok(Held::Changed) => withdraw(transfers, cid).await,
                Err(e) => error_response(e),
            })
        }
        Request::Chunk { cid, index } => {
            let result = tokio::task::spawn_blocking(move || store.read_chunk(&cid, index)).await;
            match flatten(result) {
                Ok(mut data) => {
                    faults.maybe_corrupt(&mut data);
                    tracing::trace!(%peer, %cid, index, "served chunk");
                    Reply::Chunk(data)
                }
                Err(StoreError::Changed(_)) => Reply::Message(withdraw(transfers, cid).await),
                Err(e) => Reply::Message(error_response(e)),
            }
        }
        Request::Bitfield { cid, have } => {
            transfers.peer_news(&cid, PeerNews::Bitfield(peer, have));
            Reply::Message(match our_bitfield(transfers, cid).await {
                Ok(Held::Yes(have)) => Response::Bitfield {
                    have: faults.advertised(have),
                },
                Ok(Held::No) => Response::NotFound,
                Ok(Held::Changed) => withdraw(transfers, cid).await,
                Err(e) => error_response(e),
            })
        }
        Request::Have { cid, index } => {
            transfers.note_announced(peer, cid, index);
            transfers.peer_news(&cid, PeerNews::Have(peer, index));
            Reply::Message(Response::Ack)
        }
        Request::Cancel { .. } => Reply::Message(Response::Ack),
        // Answered by `batch` before this.
        Request::Chunks { .. } => Reply::Message(Response::Choked),
    }
}

/// Whether this node holds a file.
pub(super) enum Held<T> {
    Yes(T),
    No,
    /// Tracked in place, and changed on disk since it was added.
    Changed,
}

/// What we hold of a file: the live bitfield of a running download, else the store's.
pub(super) async fn our_bitfield(
    transfers: &Transfers,
    cid: Cid,
) -> Result<Held<Bitfield>, StoreError> {
    if let Some(live) = transfers.live_have(&cid) {
        return Ok(Held::Yes(live));
    }
    let store = transfers.store().clone();
    let result = tokio::task::spawn_blocking(move || {
        let Some(info) = store.info(&cid)? else {
            return Ok(Held::No);
        };
        Ok(match info.state {
            EntryState::Complete => Held::Yes(Bitfield::full(info.chunk_count)),
            EntryState::Partial { .. } => match store.partial_have(&cid)? {
                Some(have) => Held::Yes(have),
                None => Held::No,
            },
            EntryState::ChangedOnDisk => Held::Changed,
        })
    })
    .await;
    flatten(result)
}

/// A store call's result from its blocking thread.
fn flatten<T>(
    result: Result<Result<T, StoreError>, tokio::task::JoinError>,
) -> Result<T, StoreError> {
    result.unwrap_or_else(|e| Err(StoreError::Db(format!("store task failed: {e}"))))
}

/// A file tracked in place changed on disk: it is answered as not held and no longer
/// announced, until the owner adds it again.
pub(super) async fn withdraw(transfers: &Transfers, cid: Cid) -> Response {
    tracing::info!(%cid, "file changed on disk: no longer served or announced");
    transfers.net().stop_providing(cid).await;
    Response::NotFound
}

/// The answer to a failed store call. A file the store cannot even name (a `raw` CID),
/// a chunk it does not hold, or a lost partial file is not held: `NotFound`.
fn error_response(e: StoreError) -> Response {
    let message = match e {
        StoreError::NotFound(_)
        | StoreError::ChunkUnavailable { .. }
        | StoreError::Invalid(_)
        | StoreError::Changed(_) => return Response::NotFound,
        StoreError::Corrupt { .. } => "stored chunk is corrupt",
        _ => "provider storage error",
    };
    Response::Error {
        message: message.into(),
    }
}
