//! Chunk picking for one download. The [`Picker`] owns what the peers told us they hold
//! (and so how many peers hold each chunk), which chunks are asked of whom, and which are
//! being verified; it decides what to ask next.
//!
//! The policy: the rarest chunk first among those a peer holds, ties broken by a
//! per-download rotation so that peers spread over the file; one request per ready peer
//! per round, in the order the caller gives; a chunk no peer holds is never asked for.
//! When no unrequested chunk that some peer holds is left (endgame), chunks already asked
//! of one peer are asked of a second one that has nothing in flight, one per round, and
//! the first answer wins. A peer still sending is not given duplicates: they would share
//! its upload with the chunks it still owes, and a copy that loses the race is bytes
//! that delayed the rest (measured with four 20 Mbit/s seeders: when every peer with a
//! free slot took duplicates, 14–16 of them were withdrawn per fetch, and the fetch
//! took 31.6–32.7 s; with duplicates for idle peers only, 3–4 and 30.6–32.0 s).
//!
//! Picking is incremental, so that its cost does not grow with the file: the chunks are
//! kept in rarest-first order, and cursors skip the part of that order that has nothing
//! left to give, so a pick usually looks at a handful of chunks. The order is rebuilt (in
//! linear time) when availability changes: before the next pick for a peer's bitfield or
//! departure, at most every [`REORDER_INTERVAL`] for single chunks (`Have`, `NotFound`);
//! until then a chunk a peer announced may wait, which only delays it a little.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use dht_proto::Bitfield;
use libp2p::PeerId;

/// Availability changes of single chunks rebuild the order at most this often.
pub const REORDER_INTERVAL: Duration = Duration::from_millis(250);

/// Chunks in flight and the peers asked for them.
type Requests = HashMap<u32, Vec<PeerId>>;

/// A peer that can take more requests now.
#[derive(Debug, Clone, Copy)]
pub struct ReadyPeer {
    /// The peer.
    pub peer: PeerId,
    /// How many more requests it can take.
    pub free_slots: usize,
    /// It has no request in flight: only such a peer is asked for endgame duplicates.
    pub idle: bool,
}

/// How soon the rarest-first order must be rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reorder {
    /// The order matches the availability counts.
    NotNeeded,
    /// Single chunks changed: rebuild once [`REORDER_INTERVAL`] has passed since the last.
    Soon,
    /// Whole bitfields changed (or the order was never built): rebuild before picking.
    Now,
}

/// What one peer holds, and where its scan of the order resumes.
struct PeerChunks {
    have: Bitfield,
    /// Every position of the order before this holds a chunk that is ours (stored or
    /// being verified), requested, or not held by this peer (a `Have` since the last
    /// rebuild waits for the next one). Chunks that can be picked again bring it back.
    cursor: usize,
}

/// The chunk picker of one download; see the module documentation.
pub struct Picker {
    /// How many known peers hold each chunk.
    avail: Vec<u16>,
    /// What each known peer holds (dropped peers are removed).
    peers: HashMap<PeerId, PeerChunks>,
    /// Chunks in flight and the peers asked for them (kept while the answer is verified).
    requested: Requests,
    /// Chunks received and being verified and written.
    verifying: HashSet<u32>,
    /// Every chunk in tie-break order, sorted once: the rebuild sorts this by
    /// availability with a stable counting sort.
    by_rotation: Vec<u32>,
    /// Every chunk: those stored at the last rebuild first, then the others, rarest
    /// first, ties in rotation order.
    order: Vec<u32>,
    /// The position of each chunk in `order`.
    pos_of: Vec<u32>,
    /// Every position of the order before this holds a chunk no peer can be asked for:
    /// ours (stored or being verified), requested, or held by no peer (a `Have` since
    /// the last rebuild waits for the next one).
    first_open: usize,
    reorder: Reorder,
    last_reorder: Option<Instant>,
    /// Chunks a reader waits for, asked before the rarest (see [`Picker::set_urgent`]).
    urgent: Vec<u32>,
}

/// The tie-break rank of a chunk: a bijection of the index, different per download.
fn rotation(index: u32, salt: u32) -> u32 {
    index.wrapping_mul(2654435761) ^ salt
}

impl Picker {
    /// A picker for a file of `chunk_count` chunks; `salt` sets the tie-break rotation.
    pub fn new(chunk_count: u32, salt: u32) -> Self {
        let mut by_rotation: Vec<u32> = (0..chunk_count).collect();
        by_rotation.sort_unstable_by_key(|i| rotation(*i, salt));
        let n = chunk_count as usize;
        Picker {
            avail: vec![0; n],
            peers: HashMap::new(),
            requested: HashMap::new(),
            verifying: HashSet::new(),
            by_rotation,
            order: vec![0; n],
            pos_of: vec![0; n],
            first_open: 0,
            reorder: Reorder::Now,
            last_reorder: None,
            urgent: Vec::new(),
        }
    }

    fn chunk_count(&self) -> u32 {
        self.avail.len() as u32
    }

    /// What `peer` holds, if it sent its bitfield and was not removed since.
    pub fn peer_have(&self, peer: &PeerId) -> Option<&Bitfield> {
        self.peers.get(peer).map(|p| &p.have)
    }

    /// Records a peer's bitfield, replacing the one it sent before. Ignored if it does
    /// not cover the file's chunks. Its chunks can be picked at once.
    pub fn set_peer_have(&mut self, peer: PeerId, have: Bitfield) {
        if have.len() != self.chunk_count() {
            return;
        }
        self.remove_peer(peer);
        for i in have.iter_set() {
            self.avail[i as usize] = self.avail[i as usize].saturating_add(1);
        }
        self.peers.insert(peer, PeerChunks { have, cursor: 0 });
        self.reorder = Reorder::Now;
    }

    /// Forgets what a peer holds (it was dropped). Its requests stay recorded until the
    /// caller forgets them.
    pub fn remove_peer(&mut self, peer: PeerId) {
        if let Some(gone) = self.peers.remove(&peer) {
            for i in gone.have.iter_set() {
                self.avail[i as usize] = self.avail[i as usize].saturating_sub(1);
            }
            self.reorder = Reorder::Now;
        }
    }

    /// A peer announced a new chunk (`Have`).
    pub fn peer_gained(&mut self, peer: PeerId, index: u32) {
        if let Some(chunks) = self.peers.get_mut(&peer) {
            if index < chunks.have.len() && !chunks.have.get(index) {
                chunks.have.set(index);
                self.avail[index as usize] = self.avail[index as usize].saturating_add(1);
                self.reorder = self.reorder.max(Reorder::Soon);
            }
        }
    }

    /// A peer answered that it does not hold a chunk after all (`NotFound`).
    pub fn peer_lacks(&mut self, peer: PeerId, index: u32) {
        if let Some(chunks) = self.peers.get_mut(&peer) {
            if chunks.have.get(index) {
                chunks.have.clear(index);
                self.avail[index as usize] = self.avail[index as usize].saturating_sub(1);
                self.reorder = self.reorder.max(Reorder::Soon);
            }
        }
    }

    /// Whether a chunk was received and is being verified and written.
    pub fn is_verifying(&self, index: u32) -> bool {
        self.verifying.contains(&index)
    }

    /// How many chunks are being verified and written.
    pub fn verifying_count(&self) -> usize {
        self.verifying.len()
    }

    /// The peers a chunk is requested from now (the one that delivered it included,
    /// until [`Picker::finish_verifying`]).
    pub fn requesters(&self, index: u32) -> &[PeerId] {
        self.requested.get(&index).map_or(&[], Vec::as_slice)
    }

    /// Every chunk requested now, with the peers asked.
    pub fn requests(&self) -> impl Iterator<Item = (u32, &[PeerId])> + '_ {
        self.requested
            .iter()
            .map(|(i, peers)| (*i, peers.as_slice()))
    }

    /// A chunk arrived and is being verified and written; it is not picked meanwhile.
    pub fn start_verifying(&mut self, index: u32) {
        self.verifying.insert(index);
    }

    /// Verifying a chunk ended: `stored` if it is now ours (the caller marks it in the
    /// bitfield it passes to [`Picker::plan`]); otherwise (corrupt) it can be picked again.
    /// Every request for it is forgotten either way.
    pub fn finish_verifying(&mut self, index: u32, stored: bool) {
        self.verifying.remove(&index);
        self.requested.remove(&index);
        if !stored {
            self.reopen(index);
        }
    }

    /// A request ended without a chunk to verify: refused, failed, or answered after
    /// another peer's answer (an endgame duplicate). When no request for the chunk is
    /// left and it is not being verified, it can be picked again.
    pub fn forget_request(&mut self, index: u32, peer: PeerId) {
        let Some(asked) = self.requested.get_mut(&index) else {
            return;
        };
        asked.retain(|p| *p != peer);
        if asked.is_empty() {
            self.requested.remove(&index);
            if !self.verifying.contains(&index) {
                self.reopen(index);
            }
        }
    }

    /// A chunk can be picked again: cursors that passed it come back to it.
    fn reopen(&mut self, index: u32) {
        let Some(&pos) = self.pos_of.get(index as usize) else {
            return;
        };
        let pos = pos as usize;
        if self.avail[index as usize] > 0 {
            self.first_open = self.first_open.min(pos);
        }
        for chunks in self.peers.values_mut() {
            if chunks.have.get(index) {
                chunks.cursor = chunks.cursor.min(pos);
            }
        }
    }

    /// Picks the next requests: one per ready peer per round, in the order given, until
    /// `budget` requests are picked or no ready peer has anything left to give. `have`
    /// holds the chunks that are ours. The picks are recorded as requested: the caller
    /// must send every one of them.
    pub fn plan(
        &mut self,
        have: &Bitfield,
        ready: &[ReadyPeer],
        budget: usize,
        now: Instant,
    ) -> Vec<(PeerId, u32)> {
        let mut picks = Vec::new();
        if budget == 0 || ready.is_empty() {
            return picks;
        }
        if self.reorder_due(now) {
            self.rebuild_order(have, now);
        }
        let endgame = !self.any_fresh(have);
        if endgame && !ready.iter().any(|r| r.idle && r.free_slots > 0) {
            // Duplicates go to idle peers only: nothing to plan (`schedule` runs on every
            // turn of the download's loop).
            return picks;
        }
        // In endgame: the chunks asked of someone and not yet ours, those of the peer
        // with the most in flight first (`endgame_order`).
        let mut in_flight: Vec<u32> = Vec::new();
        if endgame {
            in_flight = self
                .requested
                .keys()
                .copied()
                .filter(|i| !have.get(*i) && !self.verifying.contains(i))
                .collect();
            endgame_order(&mut in_flight, &self.requested);
        }
        let mut slots: Vec<ReadyPeer> = ready
            .iter()
            .filter(|r| r.free_slots > 0 && self.peers.contains_key(&r.peer))
            .copied()
            .collect();
        let mut budget = budget;
        // Round robin, one request per peer per round, so that every peer gets a share of
        // the pipeline when the peers together could take more than the budget.
        while !slots.is_empty() {
            slots.retain_mut(|slot| {
                if budget == 0 || slot.free_slots == 0 {
                    return false;
                }
                let pick = if endgame {
                    if !slot.idle {
                        return false;
                    }
                    // One duplicate per round: the peer is not idle after it.
                    slot.idle = false;
                    self.pick_duplicate(&slot.peer, &in_flight)
                } else {
                    self.pick_urgent(&slot.peer, have)
                        .or_else(|| self.pick_fresh(&slot.peer, have))
                };
                let Some(index) = pick else {
                    return false;
                };
                self.requested.entry(index).or_default().push(slot.peer);
                picks.push((slot.peer, index));
                budget -= 1;
                slot.free_slots -= 1;
                true
            });
        }
        picks
    }

    fn reorder_due(&self, now: Instant) -> bool {
        match self.reorder {
            Reorder::NotNeeded => false,
            Reorder::Soon => self
                .last_reorder
                .is_none_or(|t| now.saturating_duration_since(t) >= REORDER_INTERVAL),
            Reorder::Now => true,
        }
    }

    /// Rebuilds the rarest-first order: a stable counting sort of the rotation order by
    /// availability, stored chunks first (they never come back; chunks being verified
    /// may, so they keep their rank). Linear in the chunk count.
    fn rebuild_order(&mut self, have: &Bitfield, now: Instant) {
        let avail = &self.avail;
        // Bucket 0: stored; then one bucket per availability.
        let bucket = |i: u32| {
            if have.get(i) {
                0
            } else {
                1 + usize::from(avail[i as usize])
            }
        };
        let most = avail.iter().copied().max().unwrap_or(0);
        let mut next = vec![0usize; 2 + usize::from(most)];
        for i in &self.by_rotation {
            next[bucket(*i)] += 1;
        }
        // Stored chunks and those nobody holds come before the first that can be picked.
        let start = next[0] + next[1];
        let mut total = 0;
        for slot in next.iter_mut() {
            let count = *slot;
            *slot = total;
            total += count;
        }
        for i in &self.by_rotation {
            let b = bucket(*i);
            self.order[next[b]] = *i;
            self.pos_of[*i as usize] = next[b] as u32;
            next[b] += 1;
        }
        self.first_open = start;
        for chunks in self.peers.values_mut() {
            chunks.cursor = start;
        }
        self.reorder = Reorder::NotNeeded;
        self.last_reorder = Some(now);
    }

    /// Whether some peer holds a chunk that is neither ours nor requested.
    fn any_fresh(&mut self, have: &Bitfield) -> bool {
        while let Some(&index) = self.order.get(self.first_open) {
            if self.avail[index as usize] > 0
                && !have.get(index)
                && !self.verifying.contains(&index)
                && !self.requested.contains_key(&index)
            {
                return true;
            }
            self.first_open += 1;
        }
        false
    }

    /// The rarest chunk `peer` holds that is neither ours nor requested.
    fn pick_fresh(&mut self, peer: &PeerId, have: &Bitfield) -> Option<u32> {
        let chunks = self.peers.get_mut(peer)?;
        let mut pos = chunks.cursor.max(self.first_open);
        while let Some(&index) = self.order.get(pos) {
            pos += 1;
            // (A chunk the peer holds counts it in `avail`; checked anyway, as a chunk
            // nobody holds must never be asked for.)
            if chunks.have.get(index)
                && self.avail[index as usize] > 0
                && !have.get(index)
                && !self.verifying.contains(&index)
                && !self.requested.contains_key(&index)
            {
                // `plan` records it as requested, so the cursor may pass it.
                chunks.cursor = pos;
                return Some(index);
            }
        }
        chunks.cursor = pos;
        None
    }

    /// Asks for `chunks` (in that order) before any other, in place of the previous
    /// ones: a reader of the file waits for them. Out-of-range indices are ignored.
    pub fn set_urgent(&mut self, mut chunks: Vec<u32>) {
        chunks.retain(|i| *i < self.chunk_count());
        self.urgent = chunks;
    }

    /// The first urgent chunk `peer` holds that is neither ours nor asked for.
    fn pick_urgent(&mut self, peer: &PeerId, have: &Bitfield) -> Option<u32> {
        self.urgent.retain(|i| !have.get(*i));
        let holds = &self.peers.get(peer)?.have;
        self.urgent.iter().copied().find(|i| {
            holds.get(*i) && !self.verifying.contains(i) && !self.requested.contains_key(i)
        })
    }

    /// A chunk to ask `peer` for only to see whether it gives at all: one it holds that is
    /// not ours, not being verified and not asked of it already, preferably one asked of
    /// nobody (so that a peer that does give sends nothing twice). Recorded as requested.
    pub fn probe(&mut self, peer: &PeerId, have: &Bitfield) -> Option<u32> {
        let holds = &self.peers.get(peer)?.have;
        let open = |i: &u32| !have.get(*i) && !self.verifying.contains(i);
        let index = holds
            .iter_set()
            .find(|i| open(i) && !self.requested.contains_key(i))
            .or_else(|| {
                holds
                    .iter_set()
                    .find(|i| open(i) && !self.requested.get(i).is_some_and(|a| a.contains(peer)))
            })?;
        self.requested.entry(index).or_default().push(*peer);
        Some(index)
    }

    /// In endgame: the first chunk of `in_flight` (in `endgame_order`) that `peer` holds
    /// and that was asked of one other peer only.
    fn pick_duplicate(&self, peer: &PeerId, in_flight: &[u32]) -> Option<u32> {
        let have = &self.peers.get(peer)?.have;
        in_flight.iter().copied().find(|i| {
            have.get(*i)
                && self
                    .requested
                    .get(i)
                    .is_some_and(|asked| asked.len() < 2 && !asked.contains(peer))
        })
    }
}

/// Orders endgame candidates: first the chunks asked of the peer that has the most of
/// them in flight, then by index. A peer shares its upload among the chunks it sends at
/// once, so the one holding the most finishes its last chunk last: its chunks are the
/// ones worth a second request. (Measured with four 20 Mbit/s home seeders, lowest
/// index first: one seeder slower than the rest in that round still had four chunks in
/// flight when the others fell idle, and the idle ones duplicated a chunk of a fast
/// peer that finished first anyway; the fetch ended 1.2 s after the first went idle.)
fn endgame_order(in_flight: &mut [u32], requested: &Requests) {
    let mut load: HashMap<PeerId, usize> = HashMap::new();
    for peers in in_flight.iter().filter_map(|i| requested.get(i)) {
        for peer in peers {
            *load.entry(*peer).or_default() += 1;
        }
    }
    let heaviest = |i: &u32| {
        requested
            .get(i)
            .and_then(|peers| {
                peers
                    .iter()
                    .map(|p| load.get(p).copied().unwrap_or(0))
                    .max()
            })
            .unwrap_or(0)
    };
    in_flight.sort_unstable_by_key(|i| (std::cmp::Reverse(heaviest(i)), *i));
}

#[cfg(test)]
mod tests;
