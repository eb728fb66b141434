//! Answers `Chunks` requests: the whole of many files of one chunk in one response
//! (docs/protocol.md §5). A batch passes the gates a `Chunk` request passes, as one
//! request: freeloading (test fault) and the upload slot ([`Choker::allow`]) refuse the
//! whole batch `Choked`, and it takes one read permit (a batch carries at most
//! [`MAX_BATCH_DATA`], one MiB) or is `Choked`. Then each file on its own: one the peer
//! may not see (the private-share gate), one not held, one of more than one chunk, or
//! one whose read failed is `NotFound`; one that no longer fits the response's data
//! limit is `Choked` (ask again). The bytes wait for the upload cap (and a throttled
//! peer's share) as a whole before they are sent, and count as sent to the peer. Each
//! file asked counts for [`Repeats`] as a request for its chunk 0, and a refusal to a
//! repeater is held back ([`Tarpit`]) as for a chunk request.
//!
//! A file of one chunk is never subscribed to (`run`), so no other downloader of it is
//! known: a batch gives no pass-on evidence, as a lone chunk of such a file gives none.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chunk_store::StoreError;
use dht_proto::message::{BatchAnswer, MAX_BATCH_DATA};
use dht_proto::{Cid, Response};
use libp2p::request_response::ResponseChannel;
use libp2p::PeerId;
use serde_bytes::ByteBuf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::answer::withdraw;
use super::faults::Faults;
use super::repeats::Repeats;
use super::tarpit::Tarpit;
use super::uploads::read_permits;
use crate::network::Reply;
use crate::transfer::choke::Choker;
use crate::transfer::rate::RateLimiter;
use crate::transfer::reputation::rules::Taking;
use crate::transfer::{lock, Transfers};

/// What answering a batch needs from the upload server.
pub(super) struct BatchServer<'a> {
    pub transfers: &'a Transfers,
    pub choker: &'a Arc<Mutex<Choker>>,
    pub reads: &'a Arc<Semaphore>,
    pub repeats: &'a Arc<Mutex<Repeats>>,
    /// The share of the upload cap for throttled peers (`choke/`).
    pub throttled_share: &'a Arc<RateLimiter>,
    pub tarpit: &'a Tarpit,
    pub faults: Faults,
}

impl BatchServer<'_> {
    /// Takes a batch request from a peer that is not banned: refuses it at once, or
    /// starts the task that answers it.
    pub(super) async fn accept(
        &self,
        peer: PeerId,
        cids: Vec<Cid>,
        channel: ResponseChannel<Reply>,
        judgement: (f64, Taking),
    ) {
        let transfers = self.transfers;
        let now = Instant::now();
        let repeater = {
            let mut repeats = lock(self.repeats);
            for cid in &cids {
                repeats.asked(peer, *cid, 0, now);
            }
            repeats.is_repeater(&peer)
        };
        let allowed = {
            let mut choker = lock(self.choker);
            choker.rejudge(peer, judgement.0, judgement.1);
            choker.allow(peer, now)
        };
        // The read permit is taken only for a batch the slot and faults let through.
        let permit = (allowed && !self.faults.refuse_chunk())
            .then(|| {
                self.reads
                    .clone()
                    .try_acquire_many_owned(read_permits(MAX_BATCH_DATA as u64))
                    .ok()
            })
            .flatten();
        let Some(permit) = permit else {
            self.tarpit
                .answer(transfers.net(), channel, Response::Choked, repeater)
                .await;
            return;
        };
        let throttled_share = {
            let mut choker = lock(self.choker);
            choker.started(peer);
            choker
                .is_throttled(&peer)
                .then(|| self.throttled_share.clone())
        };
        let batch = Batch {
            transfers: transfers.clone(),
            peer,
            cids,
            channel,
            permit,
            choker: self.choker.clone(),
            repeats: self.repeats.clone(),
            throttled_share,
            faults: self.faults,
        };
        tokio::spawn(batch.run());
    }
}

/// One accepted batch.
struct Batch {
    transfers: Transfers,
    peer: PeerId,
    cids: Vec<Cid>,
    channel: ResponseChannel<Reply>,
    /// The read permit, given back once the answer is handed to the network task.
    permit: OwnedSemaphorePermit,
    choker: Arc<Mutex<Choker>>,
    repeats: Arc<Mutex<Repeats>>,
    throttled_share: Option<Arc<RateLimiter>>,
    faults: Faults,
}

/// How one file of a batch was read.
enum Read {
    Answer(BatchAnswer),
    /// A file tracked in place changed on disk: withdrawn, answered `NotFound`.
    Changed,
}

impl Batch {
    async fn run(self) {
        let Batch {
            transfers,
            peer,
            cids,
            channel,
            permit,
            choker,
            repeats,
            throttled_share,
            faults,
        } = self;
        let visible: Vec<bool> = cids
            .iter()
            .map(|cid| transfers.inner.share_gate.may_serve(&peer, cid))
            .collect();
        let store = transfers.store().clone();
        let asked = cids.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut room = MAX_BATCH_DATA;
            asked
                .iter()
                .zip(visible)
                .map(|(cid, visible)| match visible {
                    // A private file, and no grant: as if we did not hold it.
                    false => Read::Answer(BatchAnswer::NotFound),
                    true => read_one(&store, cid, &mut room, faults),
                })
                .collect::<Vec<Read>>()
        })
        .await
        .unwrap_or_default();
        let mut answers = Vec::with_capacity(cids.len());
        for (cid, read) in cids.iter().zip(read) {
            answers.push(match read {
                Read::Answer(answer) => answer,
                Read::Changed => {
                    withdraw(&transfers, *cid).await;
                    BatchAnswer::NotFound
                }
            });
        }
        // A read task that failed answered nothing: the rest are asked again later.
        answers.resize(cids.len(), BatchAnswer::Choked);
        let bytes: u64 = answers.iter().map(|a| a.data_len() as u64).sum();
        if let Some(share) = &throttled_share {
            share.acquire(bytes).await;
        }
        if transfers.upload_limit().is_limited() {
            transfers.upload_limit().acquire(bytes).await;
        }
        if bytes > 0 {
            transfers.note_sent(peer, bytes);
        }
        {
            let now = Instant::now();
            let mut repeats = lock(&repeats);
            for (cid, answer) in cids.iter().zip(&answers) {
                if matches!(answer, BatchAnswer::Data(_)) {
                    repeats.sent(peer, *cid, 0, now);
                }
            }
        }
        tracing::trace!(%peer, files = cids.len(), bytes, "served a batch");
        let response = Response::Chunks { answers };
        transfers
            .net()
            .respond(channel, Reply::Message(response))
            .await;
        lock(&choker).finished(peer, bytes, Instant::now());
        drop(permit);
    }
}

/// Reads one file of a batch if it is a file of one chunk that fits the `room` left,
/// and takes its bytes from `room`.
fn read_one(store: &chunk_store::Store, cid: &Cid, room: &mut usize, faults: Faults) -> Read {
    let manifest = match store.manifest(cid) {
        Ok(Some(manifest)) => manifest,
        Ok(None) | Err(_) => return Read::Answer(BatchAnswer::NotFound),
    };
    if manifest.chunk_count() > 1 || manifest.size() > MAX_BATCH_DATA as u64 {
        return Read::Answer(BatchAnswer::NotFound);
    }
    let len = manifest.size() as usize;
    if len > *room {
        return Read::Answer(BatchAnswer::Choked);
    }
    if manifest.chunk_count() == 0 {
        // The empty file: held if the store knows it, nothing to read.
        return Read::Answer(BatchAnswer::Data(ByteBuf::new()));
    }
    match store.read_chunk(cid, 0) {
        Ok(data) => {
            let mut data = data.to_vec();
            faults.maybe_corrupt(&mut data);
            *room -= data.len();
            Read::Answer(BatchAnswer::Data(ByteBuf::from(data)))
        }
        Err(StoreError::Changed(_)) => Read::Changed,
        // Not held (yet), or unreadable: the requester asks elsewhere, or alone.
        Err(_) => Read::Answer(BatchAnswer::NotFound),
    }
}
