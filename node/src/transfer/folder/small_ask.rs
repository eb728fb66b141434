//! The requests of the small-file fetch (`small.rs`): a batch (`Chunks`, the whole of
//! up to [`FILES_PER_BATCH`] files in one exchange) to each provider that answers them,
//! and one `Chunk` request per file to a provider that does not (a peer of an earlier
//! revision fails the batch without an answer, docs/protocol.md §8). Every file's bytes
//! are checked the same way: the manifest rebuilt from them must hash to its CID.

use std::collections::VecDeque;

use dht_proto::message::{BatchAnswer, MAX_BATCH_DATA};
use dht_proto::{Cid, Request, Response};
use libp2p::PeerId;

use super::small::{check, Answer, Wanted};
use crate::network::{Network, Reply, RequestError};

/// Files asked for in one batch at most (the protocol allows `MAX_BATCH_FILES`): enough
/// that the exchange's fixed cost is small beside the files', few enough that a
/// provider's several batches in flight keep its disk and our hashing busy at once.
pub(super) const FILES_PER_BATCH: usize = 64;
/// Batches in flight to one provider. Each takes one of the responder's 32 read
/// permits (docs/protocol.md §5).
pub(super) const BATCHES_PER_PEER: usize = 4;
/// Files of the queue looked at to fill one batch: past them, a batch goes out with
/// what it has.
const SCAN: usize = 4 * FILES_PER_BATCH;

/// What came back for one request to one provider.
pub(super) enum Asked {
    /// An answer per file.
    Files(Vec<(Wanted, Answer)>),
    /// The provider does not answer batches: these files are to be asked again, one
    /// request each.
    NoBatches(Vec<Wanted>),
}

/// Takes from `queue` the files of the next batch for provider `at`: those it was not
/// asked for yet, in queue order, up to [`FILES_PER_BATCH`] files and
/// [`MAX_BATCH_DATA`] bytes.
pub(super) fn take_batch(queue: &mut VecDeque<Wanted>, at: usize) -> Vec<Wanted> {
    let mut picked = Vec::new();
    let mut bytes = 0u64;
    let mut i = 0;
    while i < queue.len().min(SCAN + picked.len()) && picked.len() < FILES_PER_BATCH {
        let file = &queue[i];
        if file.tried & (1 << at) != 0 || bytes + file.size > MAX_BATCH_DATA as u64 {
            i += 1;
            continue;
        }
        bytes += file.size;
        if let Some(file) = queue.remove(i) {
            picked.push(file);
        }
    }
    picked
}

/// Asks `peer` for the whole of each of `files` in one batch and checks each file's
/// bytes. The empty files need no request: their manifest is known.
pub(super) async fn ask_batch(net: Network, peer: PeerId, files: Vec<Wanted>) -> Asked {
    let cids: Vec<Cid> = files.iter().filter(|f| f.size > 0).map(|f| f.cid).collect();
    let asked = cids.len();
    let answers = if cids.is_empty() {
        Vec::new()
    } else {
        match net.request(peer, Request::Chunks { cids }).await {
            Ok(Reply::Message(Response::Chunks { answers })) if answers.len() == asked => answers,
            Ok(Reply::Message(Response::Choked))
            | Err(RequestError::ConnectionClosed | RequestError::Overloaded) => {
                return Asked::Files(files.into_iter().map(|f| (f, Answer::Later)).collect())
            }
            Err(e @ (RequestError::Dial(_) | RequestError::Timeout | RequestError::Stopped)) => {
                // As a failed `Chunk` request: the files go elsewhere, and the batch
                // counts as one failure of the peer, not one per file.
                let mut blame = e.blames_peer();
                return Asked::Files(
                    files
                        .into_iter()
                        .map(|f| {
                            (
                                f,
                                Answer::NotHere {
                                    blame: std::mem::take(&mut blame),
                                },
                            )
                        })
                        .collect(),
                );
            }
            // No answer (a peer that does not know batches ends the stream without
            // one), an error, or an answer of another kind or count: ask it one file at
            // a time.
            Ok(_) | Err(RequestError::Other(_)) => return Asked::NoBatches(files),
        }
    };
    let mut answers = answers.into_iter();
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let answer = if file.size == 0 {
            check(&file, Vec::new()).await
        } else {
            match answers.next() {
                Some(BatchAnswer::Data(data)) => check(&file, data.into_vec()).await,
                Some(BatchAnswer::NotFound) => Answer::NotHere { blame: false },
                // Not answered now (no room in the response): as `Choked`.
                Some(BatchAnswer::Choked) | None => Answer::Later,
            }
        };
        out.push((file, answer));
    }
    Asked::Files(out)
}

/// Asks `peer` for chunk 0 of `file` alone and checks what comes back.
pub(super) async fn ask_one(net: Network, peer: PeerId, file: Wanted) -> Asked {
    let answer = if file.size == 0 {
        // Nothing to ask: the empty file's manifest is known.
        check(&file, Vec::new()).await
    } else {
        let request = Request::Chunk {
            cid: file.cid,
            index: 0,
        };
        match net.request(peer, request).await {
            Ok(Reply::Chunk(data)) => check(&file, data.to_vec()).await,
            Ok(Reply::Message(Response::Choked)) => Answer::Later,
            Ok(_) => Answer::NotHere { blame: false },
            Err(RequestError::ConnectionClosed | RequestError::Overloaded) => Answer::Later,
            Err(e) => Answer::NotHere {
                blame: e.blames_peer(),
            },
        }
    };
    Asked::Files(vec![(file, answer)])
}
