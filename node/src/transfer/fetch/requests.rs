//! Chunk requests of one download: filling every peer's pipeline with what the
//! [`Picker`](crate::transfer::picker::Picker) plans (rarest first; in endgame, chunks
//! already asked of one other peer), within the download's bounds on chunks and bytes
//! held; handling each answer; and withdrawing requests with `Cancel` (endgame losers,
//! or every request when the owner stops the download).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use dht_proto::{Request, Response};
use libp2p::PeerId;

use super::peers::{BACKOFF, MAX_PEER_FAILURES};
use super::{short, Engine, Outcome};
use crate::network::{Reply, RequestError};
use crate::transfer::lock;
use crate::transfer::picker::ReadyPeer;
use crate::transfer::reputation::rules::{is_snubbing, retry_backoff, source_order, SourceFacts};

/// Chunk requests in flight to one peer: enough to keep a connection's pipe full (the
/// benchmark saw no gain from 16 over 8, and the fetch is CPU-bound on loopback).
const PER_PEER_DEPTH: usize = 6;
/// The round trip up to which [`PER_PEER_DEPTH`] requests keep a connection busy; each
/// further such round trip adds as many.
const SHORT_PATH: Duration = Duration::from_millis(10);
/// Chunks held at once by a download with several sources: requested and not yet
/// answered, plus received and not yet verified and written (bounds memory: each holds
/// up to one chunk, even when the disk is slow). Enough for 4 peers ×
/// [`PER_PEER_DEPTH`]; deeper shares slowed the fetch from four home seeders (the last
/// chunks wait longer in each slow seeder's queue).
const MAX_IN_FLIGHT: usize = 24;
/// Chunks held at once by a download from one source: as many as a far, fast, lossy
/// path needs (see [`depth_for`]).
const MAX_IN_FLIGHT_ONE_SOURCE: usize = 64;
/// Bytes a download holds per chunk it may hold: files of more than 512 GiB have
/// chunks of 2 or 4 MiB, and hold fewer of them, so memory stays the same whatever the
/// file size (24 MiB with several sources, 64 MiB with one).
const HELD_BYTES_PER_CHUNK: u64 = 1 << 20;

/// How many chunks a download with `sources` sources may hold, for chunks of
/// `chunk_size` bytes.
pub(super) fn max_held(chunk_size: u32, sources: usize) -> usize {
    let chunks = if sources <= 1 {
        MAX_IN_FLIGHT_ONE_SOURCE
    } else {
        MAX_IN_FLIGHT
    };
    let bytes = chunks as u64 * HELD_BYTES_PER_CHUNK;
    (bytes / u64::from(chunk_size).max(1)).clamp(1, chunks as u64) as usize
}

/// Chunk requests to keep in flight to a peer `rtt` away (its last ping), at most
/// `share` (its share of what the download may hold): [`PER_PEER_DEPTH`] up to
/// [`SHORT_PATH`], and as many more per such round trip, up to
/// [`MAX_IN_FLIGHT_ONE_SOURCE`]. Each request is a stream that yamux starts with a
/// 256 KiB window, so a stream moves at most 256 KiB per round trip, and on a lossy path
/// a stream waits about a round trip more each time a lost packet holds back the data
/// behind it. Measured on the WAN lab's 1 Gbit/s, 80 ms, 0.5 % loss path (iperf3 about
/// 450 Mbit/s): 24 in flight moved 150–185 Mbit/s, 48 moved 266, 64 moved 281.
pub(super) fn depth_for(rtt: Option<Duration>, share: usize) -> usize {
    let depth = match rtt {
        Some(rtt) if rtt > SHORT_PATH => {
            let scaled = PER_PEER_DEPTH as u128 * rtt.as_micros() / SHORT_PATH.as_micros();
            usize::try_from(scaled).map_or(MAX_IN_FLIGHT_ONE_SOURCE, |d| {
                d.min(MAX_IN_FLIGHT_ONE_SOURCE)
            })
        }
        _ => PER_PEER_DEPTH,
    };
    depth.min(share)
}

/// Each source's share of the chunks a download may hold (`max_held`): an equal part,
/// but never less than [`PER_PEER_DEPTH`] (nor more than `max_held`). One far source may
/// then have up to all of them in flight; four share them as before, 6 each, so that no
/// slow source is asked for more than its part (measured: with 15 each allowed to four
/// home seeders, the first one asked held most of the requests, and the fetch from the
/// four was a quarter slower).
pub(super) fn source_share(max_held: usize, sources: usize) -> usize {
    (max_held / sources.max(1))
        .max(PER_PEER_DEPTH)
        .min(max_held)
}

/// Probes in flight at once (beyond [`MAX_IN_FLIGHT`]: a probe answered with a chunk
/// holds one more).
pub(super) const MAX_PROBES: usize = 2;

/// The download's count of chunk requests.
#[derive(Default)]
pub(super) struct Requests {
    /// Chunk requests sent and not answered yet.
    pub in_flight: usize,
    /// Endgame duplicates (and stopped requests) withdrawn with `Cancel` so far.
    pub cancelled: u64,
    /// Probes in flight (at most [`MAX_PROBES`]): chunk requests sent to see whether a
    /// peer gives at all (`rules::is_worth_probing`).
    pub probes: HashSet<(PeerId, u32)>,
}

impl Engine {
    /// Fills every peer's request pipeline with the picker's choices: rarest chunk
    /// first among those the peer holds, peers that gave the most first in each round;
    /// in endgame, chunks already asked of one other peer.
    pub(super) fn schedule(&mut self) {
        let Some(manifest) = &self.file.manifest else {
            return;
        };
        // Sources: peers that sent their bitfield, and peers asked for it that have not
        // answered yet. Counting only the first, a download that first heard from one
        // of four 20 Mbit/s home seeders took it for its one source (64 chunks, 48 in
        // flight at 80 ms): 48 MiB that the seeder's uplink took 20 s to send, while
        // the other three, whose bitfields came milliseconds later, found the budget
        // spent.
        let sources = self
            .peers
            .slots
            .iter()
            .filter(|(peer, s)| {
                !s.dropped && (s.asked_bitfield || self.picker.peer_have(peer).is_some())
            })
            .count();
        let max_held = max_held(manifest.chunk_size(), sources);
        let budget = max_held.saturating_sub(self.held());
        if budget == 0 {
            return;
        }
        let urgent = std::mem::take(&mut *lock(&self.link.shared.urgent));
        if !urgent.is_empty() {
            self.picker.set_urgent(urgent);
        }
        let now = Instant::now();
        let share = source_share(max_held, sources);
        let mut ready: Vec<(ReadyPeer, SourceFacts)> = self
            .peers
            .slots
            .iter()
            .filter_map(|(peer, s)| {
                let free_slots = depth_for(s.rtt, share).saturating_sub(s.in_flight);
                let eligible = !s.dropped
                    && free_slots > 0
                    && self.picker.peer_have(peer).is_some()
                    && s.wait_until.is_none_or(|t| t <= now)
                    && !is_snubbing(s.in_flight, s.last_delivery, now);
                eligible.then_some((peer, s, free_slots))
            })
            .map(|(peer, s, free_slots)| {
                let ready = ReadyPeer {
                    peer: *peer,
                    free_slots,
                    idle: s.in_flight == 0,
                };
                let secs = s
                    .first_asked
                    .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
                let rate = if secs > 0.0 {
                    s.bytes as f64 / secs
                } else {
                    0.0
                };
                (ready, self.transfers.source_facts(*peer, rate))
            })
            .collect();
        if ready.is_empty() {
            return;
        }
        // Debtors, then the fastest, best-scored sources pick first in each round
        // (docs/reputation.md).
        let mut facts: Vec<SourceFacts> = ready.iter().map(|(_, f)| *f).collect();
        source_order(&mut facts);
        let rank: std::collections::HashMap<PeerId, usize> =
            facts.iter().enumerate().map(|(i, f)| (f.peer, i)).collect();
        ready.sort_by_key(|(r, _)| rank.get(&r.peer).copied().unwrap_or(usize::MAX));
        let ready: Vec<ReadyPeer> = ready.into_iter().map(|(r, _)| r).collect();
        for (peer, index) in self.picker.plan(&self.file.have, &ready, budget, now) {
            self.send_chunk_request(peer, index);
        }
    }

    /// Asks each peer worth probing (we gave it data and it never gave us any) for a
    /// chunk it holds, even one asked of another peer, at most [`MAX_PROBES`] at once:
    /// a peer that refuses is then judged a taker within seconds, whether or not it
    /// holds the chunks we would ask it for anyway.
    pub(super) fn probe_suspects(&mut self) {
        if self.file.manifest.is_none() || self.requests.probes.len() >= MAX_PROBES {
            return;
        }
        let now = Instant::now();
        let idle: Vec<PeerId> = self
            .peers
            .slots
            .iter()
            .filter(|(peer, s)| {
                !s.dropped
                    && s.in_flight == 0
                    && s.wait_until.is_none_or(|t| t <= now)
                    && self.picker.peer_have(peer).is_some()
            })
            .map(|(peer, _)| *peer)
            .collect();
        for peer in idle {
            if self.requests.probes.len() >= MAX_PROBES {
                break;
            }
            if !self.transfers.worth_probing(&peer) {
                continue;
            }
            if let Some(index) = self.picker.probe(&peer, &self.file.have) {
                tracing::debug!(%peer, index, "probing a peer that never gave us anything");
                self.requests.probes.insert((peer, index));
                self.send_chunk_request(peer, index);
            }
        }
    }

    /// Chunks this download holds or will hold: requested, or received and being written.
    fn held(&self) -> usize {
        self.requests.in_flight + self.picker.verifying_count()
    }

    fn send_chunk_request(&mut self, peer: PeerId, index: u32) {
        self.requests.in_flight += 1;
        if let Some(slot) = self.peers.slots.get_mut(&peer) {
            let now = Instant::now();
            if slot.in_flight == 0 {
                // Idle until now: the snubbing clock starts with this request.
                slot.last_delivery = Some(now);
            }
            slot.first_asked.get_or_insert(now);
            slot.in_flight += 1;
        }
        let transfers = self.transfers.clone();
        let cid = self.params.target.cid;
        let len = self
            .file
            .manifest
            .as_ref()
            .map_or(0, |m| u64::from(m.chunk_len(index)));
        self.pending.push(Box::pin(async move {
            // The download cap delays the request, not the swarm task.
            transfers.download_limit().acquire(len).await;
            let asked = Instant::now();
            let response = transfers
                .net()
                .request(peer, Request::Chunk { cid, index })
                .await;
            let ms = asked.elapsed().as_secs_f64() * 1e3;
            tracing::trace!(%peer, index, ms, "chunk request answered");
            Outcome::Chunk(peer, index, response)
        }));
    }

    /// A peer's answer to a chunk request.
    pub(super) fn on_chunk(
        &mut self,
        peer: PeerId,
        index: u32,
        result: Result<Reply, RequestError>,
    ) {
        self.requests.in_flight -= 1;
        self.requests.probes.remove(&(peer, index));
        let Some(slot) = self.peers.slots.get_mut(&peer) else {
            // Only idle peers are evicted: a peer with a request out is still here.
            self.picker.forget_request(index, peer);
            return;
        };
        slot.in_flight = slot.in_flight.saturating_sub(1);
        let mut requeue = true;
        match result {
            Ok(Reply::Chunk(data)) => {
                // An endgame duplicate (someone else was faster) is just forgotten, like
                // a refusal but with no blame; so is a chunk from a peer banned while it
                // was in flight (a corrupter's pipelined chunks are not even verified).
                if !self.file.have.get(index)
                    && !self.picker.is_verifying(index)
                    && !self.transfers.is_banned(&peer)
                {
                    requeue = false;
                    self.write_chunk(peer, index, data);
                }
            }
            Ok(Reply::Message(Response::Choked)) => {
                // Choking is how a busy seeder shares its slots: not in its score, but
                // counted to tell a peer that never gives (reputation::rules::is_taker).
                tracing::debug!(%peer, index, "chunk request choked");
                slot.wait_until = Some(Instant::now() + BACKOFF);
                self.transfers.note_choked(peer);
            }
            Ok(Reply::Message(Response::Cancelled)) => {
                // We withdrew this request: the chunk came from another peer.
            }
            Ok(Reply::Message(Response::NotFound)) => {
                // We ask only for chunks the peer advertised.
                if self.transfers.note_refusal(peer) {
                    self.drop_peer(peer);
                } else {
                    self.picker.peer_lacks(peer, index);
                }
            }
            Ok(Reply::Message(other))
                if !other.answers(&Request::Chunk {
                    cid: self.params.target.cid,
                    index,
                }) =>
            {
                // Not an answer to a chunk request at all (the spec's table of answers):
                // the peer breaks the protocol, which counts against it.
                tracing::debug!(%peer, index, "not an answer to a chunk request: {}", short(&Reply::Message(other)));
                slot.failures += 1;
                self.transfers.note_failure(peer);
            }
            Ok(other) => {
                tracing::debug!(%peer, index, "chunk request refused: {}", short(&other));
                slot.failures += 1;
            }
            Err(RequestError::ConnectionClosed) => {
                // Another connection to the peer (e.g. a direct one replacing a relayed
                // one) carries the retry; not the peer's fault.
            }
            Err(e) if !e.blames_peer() => {
                // Too many requests in flight here (or the daemon is stopping): a limit of
                // ours, never held against the peer. Ask it again a little later.
                tracing::debug!(%peer, index, "chunk request not sent: {e}");
                slot.wait_until = Some(Instant::now() + BACKOFF);
            }
            Err(e) => {
                tracing::debug!(%peer, index, "chunk request failed: {e}");
                slot.failures += 1;
                slot.wait_until = Some(Instant::now() + retry_backoff(slot.failures));
                self.transfers.note_failure(peer);
            }
        }
        if requeue {
            self.picker.forget_request(index, peer);
            if self
                .peers
                .slots
                .get(&peer)
                .is_some_and(|s| s.failures >= MAX_PEER_FAILURES)
            {
                tracing::info!(%peer, "dropping peer after repeated failures");
                self.drop_peer(peer);
            }
        }
    }

    /// Withdraws the requests for a chunk from `peers` (the losers of an endgame race,
    /// or everyone when the download stops), so that a peer that has not sent it yet
    /// does not (see `serve.rs`). Their answers still arrive, as `Cancelled` or as a
    /// chunk, and are dropped.
    pub(super) fn cancel_requests(&mut self, index: u32, peers: &[PeerId]) {
        for &peer in peers {
            self.requests.cancelled += 1;
            let net = self.transfers.net().clone();
            let cid = self.params.target.cid;
            tokio::spawn(async move {
                let _ = net.request(peer, Request::Cancel { cid, index }).await;
            });
        }
    }

    /// Withdraws every request still out: the download stops.
    pub(super) fn withdraw_all_requests(&mut self) {
        let out: Vec<(u32, Vec<PeerId>)> = self
            .picker
            .requests()
            .map(|(index, peers)| (index, peers.to_vec()))
            .collect();
        for (index, peers) in out {
            self.cancel_requests(index, &peers);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_round_trips_get_more_requests_in_flight_within_the_bounds() {
        let ms = Duration::from_millis;
        let all = MAX_IN_FLIGHT_ONE_SOURCE;
        assert_eq!(depth_for(None, all), PER_PEER_DEPTH);
        assert_eq!(depth_for(Some(ms(1)), all), PER_PEER_DEPTH);
        assert_eq!(depth_for(Some(SHORT_PATH), all), PER_PEER_DEPTH);
        assert_eq!(depth_for(Some(ms(20)), all), 12);
        assert_eq!(depth_for(Some(ms(40)), all), 24);
        assert_eq!(depth_for(Some(ms(80)), all), 48);
        assert_eq!(depth_for(Some(Duration::from_secs(5)), all), all);
        // Within the source's share.
        assert_eq!(depth_for(Some(ms(80)), 6), 6);
        assert_eq!(depth_for(Some(ms(1)), 3), 3);
    }

    #[test]
    fn one_source_may_hold_more_than_several_and_larger_chunks_fewer() {
        const MIB: u32 = 1 << 20;
        assert_eq!(max_held(MIB, 0), MAX_IN_FLIGHT_ONE_SOURCE);
        assert_eq!(max_held(MIB, 1), MAX_IN_FLIGHT_ONE_SOURCE);
        assert_eq!(max_held(MIB, 2), MAX_IN_FLIGHT);
        assert_eq!(max_held(MIB, 16), MAX_IN_FLIGHT);
        // The same bytes in larger chunks; small chunks never more than the count.
        assert_eq!(max_held(4 * MIB, 1), MAX_IN_FLIGHT_ONE_SOURCE / 4);
        assert_eq!(max_held(2 * MIB, 4), MAX_IN_FLIGHT / 2);
        assert_eq!(max_held(64 << 10, 4), MAX_IN_FLIGHT);
        assert_eq!(max_held(u32::MAX, 1), 1);
    }

    #[test]
    fn sources_share_the_chunks_held_but_each_gets_the_usual_depth() {
        assert_eq!(source_share(MAX_IN_FLIGHT, 0), MAX_IN_FLIGHT);
        assert_eq!(source_share(MAX_IN_FLIGHT, 1), MAX_IN_FLIGHT);
        assert_eq!(source_share(MAX_IN_FLIGHT, 2), 12);
        assert_eq!(source_share(MAX_IN_FLIGHT, 4), PER_PEER_DEPTH);
        assert_eq!(source_share(MAX_IN_FLIGHT, 16), PER_PEER_DEPTH);
        assert_eq!(source_share(6, 16), 6, "large chunks: fewer held");
        assert_eq!(source_share(3, 1), 3);
    }
}
