//! The upload side: answers the transfer-protocol requests that the swarm task hands
//! over, with the checks and limits of docs/protocol.md (§5, responder behaviour), in
//! this order:
//!
//! 1. a `Cancel` is answered `Ack` (and ends the named chunk request, if it still
//!    waits, with `Cancelled`);
//! 2. a banned requester is answered `Choked`;
//! 3. a request about a private file (a password share's) from a peer without a grant
//!    is answered `NotFound` (`crate::share::gate`);
//! 4. a `Chunk` request needs an upload slot ([`Choker`]), else `Choked`;
//! 5. then read permits, one per started MiB of the chunk: taken at once when free;
//!    else the upload waits for them up to [`READ_WAIT`](uploads::READ_WAIT) (a
//!    repeater does not wait), then `Choked` (see [`uploads`]);
//! 6. any other request needs one of [`OTHER_REQUESTS`] permits, else `Choked`.
//!
//! A batch of files of one chunk (`Chunks`) passes 2, 4 and 5 as one chunk request, and
//! 3 file by file ([`batch`]).
//!
//! [`answer`] says what is answered from the store; [`uploads`] runs each accepted
//! chunk request. A peer that asks again for chunks it was sent ([`repeats`]) is
//! judged a taker like one that refuses us, and what it is refused or answered (other
//! than a chunk sent) is held back for a second ([`tarpit`]); the peers it served that
//! never gave anything are probed ([`probe`]). Slots are reassigned every [`RECHOKE_INTERVAL`], and freed at once
//! when their peer disconnects.

mod answer;
mod batch;
pub mod faults;
mod probe;
pub mod repeats;
mod subscribe;
pub mod tarpit;
mod uploads;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dht_proto::{Request, Response};
use libp2p::PeerId;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, Semaphore};

use super::choke::{throttled_rate, Choker, RECHOKE_INTERVAL};
use super::rate::RateLimiter;
use super::reputation::rules::Taking;
use super::{lock, Transfers};
use crate::network::{InboundRequest, NetEvent};
use probe::SeedProbes;
use repeats::{Query, Repeats};
use subscribe::Subscriptions;
use tarpit::Tarpit;
use uploads::{cached_chunk_len, read_permits, PendingUploads, Upload, READ_BUDGET_MIB};

/// `Manifest`, `Bitfield` and `Have` requests answered at once; past this, `Choked`.
pub const OTHER_REQUESTS: usize = 64;
/// How often a seed looks for peers to probe.
const PROBE_TICK: Duration = Duration::from_millis(500);

/// Settings of the upload side.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Peers unchoked at once (upload slots).
    pub upload_slots: usize,
    /// Test-only misbehaviour (set only with the `test-faults` feature).
    pub faults: faults::Faults,
}

/// Answers inbound requests until the channel closes.
pub async fn run(
    transfers: Transfers,
    config: ServeConfig,
    mut inbound: mpsc::Receiver<InboundRequest>,
) {
    let reads = Arc::new(Semaphore::new(READ_BUDGET_MIB));
    let others = Arc::new(Semaphore::new(OTHER_REQUESTS));
    let choker = Arc::new(Mutex::new(Choker::new(config.upload_slots)));
    lock(&choker).set_upload_cap(transfers.upload_limit().rate());
    // Uploads to throttled peers (takers, and while trading the peers that gave
    // nothing lately) share one slot's worth of what this node uploads (choke/),
    // reassessed at every rechoke.
    let share = |recent| {
        let rate = throttled_rate(transfers.upload_limit().rate(), config.upload_slots, recent);
        Arc::new(RateLimiter::new(Some(rate)))
    };
    let mut throttled_share = share(0);
    let mut sent_at_last_rechoke: u64 = transfers.traffic().values().map(|t| t.sent).sum();
    let mut rechoke = tokio::time::interval(RECHOKE_INTERVAL);
    let mut net_events = transfers.net().subscribe();
    let mut net_events_open = true;
    let uploads = PendingUploads::default();
    let subscriptions = Subscriptions::default();
    let probes = SeedProbes::default();
    let repeats = Arc::new(Mutex::new(Repeats::default()));
    let tarpit = Tarpit::default();
    let judge = |peer: &PeerId| {
        let (score, taking) = transfers.peer_judgement(peer);
        // A peer that asks again and again for what it was sent is held back always.
        if lock(&repeats).is_repeater(peer) {
            (score, Taking::Refuses)
        } else {
            (score, taking)
        }
    };
    let mut probe_tick = tokio::time::interval(PROBE_TICK);
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
                let traffic = transfers.traffic();
                let sent_now: u64 = traffic.values().map(|t| t.sent).sum();
                let recent = sent_now.saturating_sub(sent_at_last_rechoke) / RECHOKE_INTERVAL.as_secs();
                sent_at_last_rechoke = sent_now;
                throttled_share = share(recent);
                transfers.mature_pass_on();
                // Tit-for-tat by what each peer gave: to us, or as a seed sees it, onward.
                let received = transfers.contributions();
                let interested = lock(&choker).interested();
                let judgements: Vec<_> = interested
                    .into_iter()
                    .map(|peer| {
                        let (score, taker) = judge(&peer);
                        (peer, score, taker)
                    })
                    .collect();
                let sent = judgements
                    .iter()
                    .map(|(peer, _, _)| (*peer, traffic.get(peer).map_or(0, |t| t.sent)))
                    .collect::<Vec<_>>();
                let chokes = judgements
                    .iter()
                    .map(|(peer, _, _)| (*peer, transfers.chokes_of(peer)))
                    .collect::<Vec<_>>();
                let mut choker = lock(&choker);
                choker.set_upload_cap(transfers.upload_limit().rate());
                choker.judge(judgements);
                choker.served(sent);
                choker.refusals(chokes);
                choker.rechoke(Instant::now(), &received);
                continue;
            }
            event = net_events.recv(), if net_events_open => {
                match event {
                    Ok(NetEvent::PeerDisconnected(peer)) => {
                        lock(&choker).left(&peer);
                        lock(&repeats).left(&peer);
                        subscriptions.left(&peer);
                        probes.left(&peer);
                    }
                    // Missed events: slots of peers that left then free up as idle.
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => net_events_open = false,
                }
                continue;
            }
            _ = probe_tick.tick() => {
                probes.start_due(&transfers, |cid| {
                    subscriptions.seeds(&transfers, cid) || transfers.live_have(cid).is_some()
                });
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
        if let Request::Chunks { cids } = request {
            let server = batch::BatchServer {
                transfers: &transfers,
                choker: &choker,
                reads: &reads,
                repeats: &repeats,
                throttled_share: &throttled_share,
                tarpit: &tarpit,
                faults: config.faults,
            };
            server.accept(peer, cids, channel, judge(&peer)).await;
            continue;
        }
        let gated = request
            .cid()
            .is_some_and(|cid| !transfers.inner.share_gate.may_serve(&peer, cid));
        if gated {
            // A private file, and no grant: answered as if we did not hold it.
            net.respond(channel, Response::NotFound).await;
            continue;
        }
        let repeater = {
            let mut repeats = lock(&repeats);
            let now = Instant::now();
            match &request {
                Request::Bitfield { cid, .. } => repeats.queried(peer, *cid, Query::Bitfield, now),
                Request::Manifest { cid } => repeats.queried(peer, *cid, Query::Manifest, now),
                Request::Chunk { cid, index } => repeats.asked(peer, *cid, *index, now),
                _ => {}
            }
            repeats.is_repeater(&peer)
        };
        // A repeater is not subscribed to nor probed: both would send it requests.
        if let (Request::Chunk { cid, .. } | Request::Bitfield { cid, .. }, false) =
            (&request, repeater)
        {
            // A file of one chunk has nothing to pass on while it downloads
            // (`Subscriptions::subscribe` checks again when the manifest is not in memory).
            let one_chunk = transfers
                .store()
                .cached_manifest(cid)
                .is_some_and(|m| m.chunk_count() <= 1);
            if !one_chunk {
                subscriptions.on_request(&transfers, peer, *cid);
            }
        }
        match (&request, repeater) {
            (Request::Have { cid, index }, false) => probes.announced(peer, *cid, *index),
            (Request::Bitfield { cid, have }, false) => probes.bitfield(peer, *cid, have),
            _ => {}
        }
        if let Request::Chunk { cid, index } = request {
            // Judged again now, not only at the next rechoke: a peer found to refuse us
            // loses its regular slot at once.
            let (score, taker) = judge(&peer);
            let allowed = {
                let mut choker = lock(&choker);
                choker.rejudge(peer, score, taker);
                choker.allow(peer, Instant::now())
            };
            if config.faults.refuse_chunk() || !allowed {
                tarpit
                    .answer(&net, channel, Response::Choked, repeater)
                    .await;
                continue;
            }
            let throttled_share = lock(&choker)
                .is_throttled(&peer)
                .then(|| throttled_share.clone());
            // Every permit the chunk needs, at once, when its length is known without
            // the disk; one otherwise (the upload takes the rest once it knows).
            let len = cached_chunk_len(&transfers, &cid, index);
            let needed = read_permits(len.unwrap_or(0));
            // A burst of requests from a far peer (up to 64 in flight) may find the
            // budget spent for the few milliseconds the reads before it take: its
            // upload waits for the permits rather than being choked at once.
            let permits = match reads.clone().try_acquire_many_owned(needed) {
                Ok(permits) => Some(permits),
                Err(_) if !repeater => None,
                Err(_) => {
                    tarpit
                        .answer(&net, channel, Response::Choked, repeater)
                        .await;
                    continue;
                }
            };
            lock(&choker).started(peer);
            let seeding = subscriptions.seeds(&transfers, &cid);
            let upload = Upload {
                transfers: transfers.clone(),
                peer,
                cid,
                index,
                channel,
                permits,
                len,
                reads: reads.clone(),
                uploads: uploads.clone(),
                choker: choker.clone(),
                throttled_share,
                repeats: repeats.clone(),
                seeding,
                // Only a seed's gives are evidence: the scan of the subscriptions is
                // skipped for every other chunk served.
                others_want: seeding
                    && subscriptions
                        .wanted_by_another(&cid, &peer, Instant::now(), |p| transfers.is_banned(p)),
                faults: config.faults,
            };
            tokio::spawn(upload.run());
            continue;
        }
        let Ok(permit) = others.clone().try_acquire_owned() else {
            tarpit
                .answer(&net, channel, Response::Choked, repeater)
                .await;
            continue;
        };
        let transfers = transfers.clone();
        let faults = config.faults;
        let tarpit = tarpit.clone();
        tokio::spawn(async move {
            let response = answer::answer(&transfers, peer, request, faults).await;
            drop(permit);
            tarpit.answer(&net, channel, response, repeater).await;
        });
    }
}
