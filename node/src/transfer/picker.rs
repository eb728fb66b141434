//! Chunk picking for one download. The [`Picker`] owns what the peers told us they hold
//! (and so how many peers hold each chunk), which chunks are asked of whom, and which are
//! being verified; it decides what to ask next.
//!
//! The policy: the rarest chunk first among those a peer holds, ties broken by a
//! per-download rotation so that peers spread over the file; one request per ready peer
//! per round, in the order the caller gives; a chunk no peer holds is never asked for.
//! When no unrequested chunk that some peer holds is left (endgame), chunks already asked
//! of one peer are asked of a second one, and the first answer wins.
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
        // In endgame: the chunks asked of someone and not yet ours, lowest index first.
        let mut in_flight: Vec<u32> = Vec::new();
        if endgame {
            in_flight = self
                .requested
                .keys()
                .copied()
                .filter(|i| !have.get(*i) && !self.verifying.contains(i))
                .collect();
            in_flight.sort_unstable();
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
                    self.pick_duplicate(&slot.peer, &in_flight)
                } else {
                    self.pick_fresh(&slot.peer, have)
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

    /// In endgame: the first chunk of `in_flight` that `peer` holds and that was asked of
    /// one other peer only.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Requests one peer may have in flight in these tests (as the engine's pipeline depth).
    const DEPTH: usize = 6;
    /// Chunks one download may hold at once in these tests (as the engine's limit).
    const BUDGET: usize = 24;

    fn some_peers<const N: usize>() -> [PeerId; N] {
        std::array::from_fn(|_| PeerId::random())
    }

    fn holding(len: u32, chunks: impl IntoIterator<Item = u32>) -> Bitfield {
        let mut have = Bitfield::new(len);
        for i in chunks {
            have.set(i);
        }
        have
    }

    fn ready(peers: &[PeerId], free_slots: usize) -> Vec<ReadyPeer> {
        peers
            .iter()
            .map(|peer| ReadyPeer {
                peer: *peer,
                free_slots,
            })
            .collect()
    }

    /// Settles a chunk as the engine does after a good write.
    fn store(picker: &mut Picker, have: &mut Bitfield, index: u32) {
        picker.start_verifying(index);
        picker.finish_verifying(index, true);
        have.set(index);
    }

    #[test]
    fn the_rarest_chunk_is_picked_first() {
        let n = 32;
        let [a, b, c] = some_peers();
        let mut picker = Picker::new(n, 7);
        // Chunk 20 is held by one peer, 5 and 11 by two, the rest by all three.
        picker.set_peer_have(a, Bitfield::full(n));
        picker.set_peer_have(b, holding(n, (0..n).filter(|i| *i != 20)));
        picker.set_peer_have(c, holding(n, (0..n).filter(|i| ![5, 11, 20].contains(i))));
        let have = Bitfield::new(n);
        let now = Instant::now();

        let first = picker.plan(&have, &ready(&[a], 1), BUDGET, now);
        assert_eq!(first, vec![(a, 20)]);
        let mut next: Vec<u32> = picker
            .plan(&have, &ready(&[a], 2), BUDGET, now)
            .into_iter()
            .map(|(_, i)| i)
            .collect();
        next.sort_unstable();
        assert_eq!(next, vec![5, 11]);
        // Peer c lacks the rare ones, so it gets a common one.
        let (_, common) = picker.plan(&have, &ready(&[c], 1), BUDGET, now)[0];
        assert!(![5, 11, 20].contains(&common));
    }

    #[test]
    fn a_chunk_nobody_holds_is_never_picked() {
        let n = 40;
        let [a, b] = some_peers();
        let mut picker = Picker::new(n, 1);
        // Nobody ever holds 3; only b holds 30, and b leaves; a turns out not to hold 17.
        picker.set_peer_have(a, holding(n, (0..n).filter(|i| *i != 3 && *i != 30)));
        picker.set_peer_have(b, holding(n, [30]));
        picker.remove_peer(b);
        picker.peer_lacks(a, 17);
        let mut have = Bitfield::new(n);
        let mut now = Instant::now();
        let mut picked = HashSet::new();
        for _ in 0..20 {
            for (_, index) in picker.plan(&have, &ready(&[a], DEPTH), BUDGET, now) {
                assert!(picked.insert(index), "chunk {index} picked twice");
                store(&mut picker, &mut have, index);
            }
            now += REORDER_INTERVAL;
        }
        for lost in [3, 17, 30] {
            assert!(!picked.contains(&lost), "chunk {lost} has no holder");
        }
        assert_eq!(picked.len(), n as usize - 3);
    }

    #[test]
    fn a_chunk_that_failed_verification_is_picked_again() {
        let n = 64;
        let [a, b] = some_peers();
        let mut picker = Picker::new(n, 3);
        picker.set_peer_have(a, Bitfield::full(n));
        picker.set_peer_have(b, Bitfield::full(n));
        let mut have = Bitfield::new(n);
        let now = Instant::now();
        let picks = picker.plan(&have, &ready(&[a], n as usize), n as usize, now);
        assert_eq!(picks.len(), n as usize);
        // Every chunk arrives; the earliest picked one is corrupt, and so is the last.
        let corrupt = [picks[0].1, picks[n as usize - 1].1];
        for (_, index) in &picks {
            picker.start_verifying(*index);
        }
        for (_, index) in &picks {
            let good = !corrupt.contains(index);
            picker.finish_verifying(*index, good);
            if good {
                have.set(*index);
            }
        }
        // Both come back, to the peer whose scan had passed them, as fresh picks.
        let mut again: Vec<u32> = picker
            .plan(&have, &ready(&[a], DEPTH), BUDGET, now)
            .into_iter()
            .map(|(_, i)| i)
            .collect();
        again.sort_unstable();
        let mut expected = corrupt.to_vec();
        expected.sort_unstable();
        assert_eq!(again, expected);
        assert!(picker.requested.values().all(|asked| asked == &[a]));
    }

    #[test]
    fn a_chunk_whose_request_failed_is_picked_again() {
        let n = 50;
        let [a, b] = some_peers();
        let mut picker = Picker::new(n, 11);
        picker.set_peer_have(a, Bitfield::full(n));
        picker.set_peer_have(b, holding(n, 0..25));
        let mut have = Bitfield::new(n);
        let now = Instant::now();
        let picks = picker.plan(&have, &ready(&[a, b], DEPTH), BUDGET, now);
        assert_eq!(picks.len(), 2 * DEPTH);
        // Everything else arrives; b's first request is refused (choked).
        let (_, refused) = picks[1];
        assert!(refused < 25);
        picker.forget_request(refused, b);
        for (_, index) in picks.iter().filter(|(_, i)| *i != refused) {
            store(&mut picker, &mut have, *index);
        }
        // Only b is ready: the chunk it held and gave back is its first pick again.
        let next = picker.plan(&have, &ready(&[b], 1), BUDGET, now);
        assert_eq!(next, vec![(b, refused)]);
    }

    #[test]
    fn endgame_asks_a_second_peer_never_a_third() {
        let n = 5;
        let peers: [PeerId; 3] = some_peers();
        let mut picker = Picker::new(n, 5);
        for peer in &peers {
            picker.set_peer_have(*peer, Bitfield::full(n));
        }
        let have = Bitfield::new(n);
        let now = Instant::now();
        let fresh = picker.plan(&have, &ready(&peers, 2), BUDGET, now);
        assert_eq!(fresh.len(), n as usize);
        // Chunk 4's answer is being verified: it needs no second request.
        let verified = fresh
            .iter()
            .find(|(_, i)| *i == 4)
            .map(|(_, i)| *i)
            .unwrap();
        picker.start_verifying(verified);

        let dups = picker.plan(&have, &ready(&peers, DEPTH), BUDGET, now);
        assert_eq!(dups.len(), n as usize - 1);
        for index in 0..n - 1 {
            let asked = &picker.requested[&index];
            assert_eq!(asked.len(), 2, "chunk {index} asked of {asked:?}");
            assert_ne!(asked[0], asked[1]);
        }
        assert_eq!(picker.requested[&verified].len(), 1);
        // Nothing more to ask, however many slots are free.
        assert!(picker
            .plan(&have, &ready(&peers, DEPTH), BUDGET, now)
            .is_empty());
    }

    #[test]
    fn picks_spread_over_the_peers_in_rounds() {
        let n = 200;
        let peers: [PeerId; 4] = some_peers();
        let mut picker = Picker::new(n, 9);
        for peer in &peers {
            picker.set_peer_have(*peer, Bitfield::full(n));
        }
        let have = Bitfield::new(n);
        let now = Instant::now();
        // A budget smaller than the peers' room: one per peer per round, in the order given.
        let picks = picker.plan(&have, &ready(&peers, DEPTH), 10, now);
        let who: Vec<PeerId> = picks.iter().map(|(p, _)| *p).collect();
        let rounds: Vec<PeerId> = peers.iter().cycle().take(10).copied().collect();
        assert_eq!(who, rounds);
        // Enough budget: every peer's pipeline fills.
        let more = picker.plan(&have, &ready(&peers, DEPTH), 4 * DEPTH, now);
        for peer in &peers {
            assert_eq!(more.iter().filter(|(p, _)| p == peer).count(), DEPTH);
        }
        let distinct: HashSet<u32> = picks.iter().chain(&more).map(|(_, i)| *i).collect();
        assert_eq!(distinct.len(), picks.len() + more.len());
    }

    #[test]
    fn a_new_bitfield_is_usable_at_once_and_a_have_soon() {
        let n = 30;
        let [a, b] = some_peers();
        let mut picker = Picker::new(n, 2);
        picker.set_peer_have(a, holding(n, 0..10));
        let mut have = Bitfield::new(n);
        let now = Instant::now();
        for (_, index) in picker.plan(&have, &ready(&[a], 10), BUDGET, now) {
            store(&mut picker, &mut have, index);
        }
        assert_eq!(have.count(), 10);
        // A bitfield arriving right after a pick is used at once.
        picker.set_peer_have(b, holding(n, 10..20));
        let picks = picker.plan(&have, &ready(&[b], 1), BUDGET, now);
        assert!(picks.len() == 1 && (10..20).contains(&picks[0].1));
        store(&mut picker, &mut have, picks[0].1);
        // A `Have` is used by the next rebuild, at most REORDER_INTERVAL later.
        picker.peer_gained(a, 25);
        let later = now + REORDER_INTERVAL;
        let picks = picker.plan(&have, &ready(&[a], 1), BUDGET, later);
        assert_eq!(picks, vec![(a, 25)]);
    }

    /// The picker before it was made incremental: every call sorts all the fresh chunks.
    /// `peers` are the known peers' bitfields; picks are recorded in `requested`.
    #[allow(clippy::too_many_arguments)]
    fn full_sort_plan(
        have: &Bitfield,
        verifying: &HashSet<u32>,
        requested: &mut Requests,
        avail: &[u16],
        peers: &HashMap<PeerId, Bitfield>,
        ready: &[ReadyPeer],
        budget: usize,
        salt: u32,
    ) -> Vec<(PeerId, u32)> {
        let missing: Vec<u32> = (0..have.len())
            .filter(|i| !have.get(*i) && !verifying.contains(i))
            .collect();
        let mut fresh: Vec<u32> = missing
            .iter()
            .copied()
            .filter(|i| !requested.contains_key(i) && avail[*i as usize] > 0)
            .collect();
        fresh.sort_by_key(|i| (avail[*i as usize], rotation(*i, salt)));
        let endgame = fresh.is_empty();
        let mut taken = vec![false; fresh.len()];
        let mut first_untaken = 0;
        let mut slots: Vec<ReadyPeer> = ready
            .iter()
            .filter(|r| r.free_slots > 0 && peers.contains_key(&r.peer))
            .copied()
            .collect();
        let mut budget = budget;
        let mut picks = Vec::new();
        while !slots.is_empty() {
            slots.retain_mut(|slot| {
                if budget == 0 || slot.free_slots == 0 {
                    return false;
                }
                let holds = &peers[&slot.peer];
                let pick = if !endgame {
                    while first_untaken < taken.len() && taken[first_untaken] {
                        first_untaken += 1;
                    }
                    let found =
                        (first_untaken..fresh.len()).find(|j| !taken[*j] && holds.get(fresh[*j]));
                    found.map(|j| {
                        taken[j] = true;
                        fresh[j]
                    })
                } else {
                    missing.iter().copied().find(|i| {
                        holds.get(*i)
                            && requested
                                .get(i)
                                .is_some_and(|asked| asked.len() < 2 && !asked.contains(&slot.peer))
                    })
                };
                let Some(index) = pick else {
                    return false;
                };
                requested.entry(index).or_default().push(slot.peer);
                picks.push((slot.peer, index));
                budget -= 1;
                slot.free_slots -= 1;
                true
            });
        }
        picks
    }

    /// A download driven by random events: answers, failures, refusals, corrupt chunks,
    /// `Have`s, peers leaving and coming back.
    struct Swarm {
        picker: Picker,
        salt: u32,
        have: Bitfield,
        peers: Vec<PeerId>,
        /// Requests sent and not answered.
        in_flight: Vec<(PeerId, u32)>,
        /// Chunks received and not yet verified.
        verifying: Vec<u32>,
        rng: StdRng,
        now: Instant,
    }

    impl Swarm {
        fn new(n: u32, peer_count: usize, seed: u64) -> Self {
            let mut rng = StdRng::seed_from_u64(seed);
            let salt = rng.gen();
            let mut swarm = Swarm {
                picker: Picker::new(n, salt),
                salt,
                have: Bitfield::new(n),
                peers: (0..peer_count).map(|_| PeerId::random()).collect(),
                in_flight: Vec::new(),
                verifying: Vec::new(),
                rng,
                now: Instant::now(),
            };
            // One seeder stays (but for a few chunks nobody has); the others hold parts.
            let seeder = swarm.peers[0];
            let lost: HashSet<u32> = (0..3).map(|_| swarm.rng.gen_range(0..n)).collect();
            swarm
                .picker
                .set_peer_have(seeder, holding(n, (0..n).filter(|i| !lost.contains(i))));
            for k in 1..peer_count {
                let have = swarm.random_bitfield();
                swarm.picker.set_peer_have(swarm.peers[k], have);
            }
            swarm
        }

        fn random_bitfield(&mut self) -> Bitfield {
            let n = self.have.len();
            let share = self.rng.gen_range(0.0..1.0);
            let chunks: Vec<u32> = (0..n).filter(|_| self.rng.gen_bool(share)).collect();
            holding(n, chunks)
        }

        /// One random event that is not a pick.
        fn event(&mut self) {
            let n = self.have.len();
            match self.rng.gen_range(0..10) {
                0..=3 if !self.in_flight.is_empty() => {
                    let at = self.rng.gen_range(0..self.in_flight.len());
                    let (peer, index) = self.in_flight.swap_remove(at);
                    if self.have.get(index) || self.picker.is_verifying(index) {
                        self.picker.forget_request(index, peer);
                    } else {
                        self.picker.start_verifying(index);
                        self.verifying.push(index);
                    }
                }
                4 if !self.in_flight.is_empty() => {
                    let at = self.rng.gen_range(0..self.in_flight.len());
                    let (peer, index) = self.in_flight.swap_remove(at);
                    if self.rng.gen_bool(0.5) {
                        self.picker.peer_lacks(peer, index);
                    }
                    self.picker.forget_request(index, peer);
                }
                5..=6 if !self.verifying.is_empty() => {
                    let at = self.rng.gen_range(0..self.verifying.len());
                    let index = self.verifying.swap_remove(at);
                    let good = self.rng.gen_bool(0.8);
                    self.picker.finish_verifying(index, good);
                    if good {
                        self.have.set(index);
                    }
                }
                7 => {
                    let peer = self.peers[self.rng.gen_range(1..self.peers.len())];
                    let index = self.rng.gen_range(0..n);
                    self.picker.peer_gained(peer, index);
                }
                8 => {
                    let peer = self.peers[self.rng.gen_range(1..self.peers.len())];
                    if self.picker.peer_have(&peer).is_some() {
                        self.picker.remove_peer(peer);
                    } else {
                        let have = self.random_bitfield();
                        self.picker.set_peer_have(peer, have);
                    }
                }
                _ => {}
            }
        }

        fn ready(&self) -> Vec<ReadyPeer> {
            let mut ready = Vec::new();
            for peer in &self.peers {
                let busy = self.in_flight.iter().filter(|(p, _)| p == peer).count();
                if busy < DEPTH {
                    ready.push(ReadyPeer {
                        peer: *peer,
                        free_slots: DEPTH - busy,
                    });
                }
            }
            ready
        }

        fn budget(&self) -> usize {
            BUDGET.saturating_sub(self.in_flight.len() + self.verifying.len())
        }

        /// What the full-sort picker would pick now, and the requests it would leave.
        fn full_sort_picks(&self) -> (Vec<(PeerId, u32)>, Requests) {
            let mut requested = self.picker.requested.clone();
            let peers: HashMap<PeerId, Bitfield> = self
                .picker
                .peers
                .iter()
                .map(|(p, c)| (*p, c.have.clone()))
                .collect();
            let picks = full_sort_plan(
                &self.have,
                &self.picker.verifying,
                &mut requested,
                &self.picker.avail,
                &peers,
                &self.ready(),
                self.budget(),
                self.salt,
            );
            (picks, requested)
        }

        fn plan(&mut self) -> Vec<(PeerId, u32)> {
            let picks = self
                .picker
                .plan(&self.have, &self.ready(), self.budget(), self.now);
            self.in_flight.extend(&picks);
            picks
        }
    }

    /// With the order fresh (time moves on by the rebuild interval before each pick),
    /// the incremental picker makes exactly the choices of the full sort.
    #[test]
    fn picks_match_a_full_sort_of_the_fresh_chunks() {
        for seed in 0..20 {
            let mut swarm = Swarm::new(300, 5, seed);
            for step in 0..2000 {
                swarm.event();
                swarm.now += REORDER_INTERVAL;
                let (expected, requested) = swarm.full_sort_picks();
                let picks = swarm.plan();
                assert_eq!(picks, expected, "seed {seed}, step {step}");
                assert_eq!(
                    swarm.picker.requested, requested,
                    "seed {seed}, step {step}"
                );
            }
        }
    }

    /// With the order often stale, every pick still obeys the rules, and the download
    /// still gets every chunk that some peer holds.
    #[test]
    fn stale_order_picks_obey_the_rules_and_finish() {
        for seed in 0..20 {
            let mut swarm = Swarm::new(300, 5, 100 + seed);
            for step in 0..2000 {
                swarm.event();
                swarm.now += REORDER_INTERVAL / 10;
                let was_requested = swarm.picker.requested.clone();
                let picks = swarm.plan();
                // A plan is all fresh chunks or, in endgame, all second requests.
                let duplicates = picks
                    .iter()
                    .filter(|(_, i)| was_requested.contains_key(i))
                    .count();
                assert!(duplicates == 0 || duplicates == picks.len(), "seed {seed}");
                for (peer, index) in picks {
                    let at = format!("seed {seed}, step {step}, chunk {index}");
                    assert!(
                        swarm.picker.avail[index as usize] > 0,
                        "{at}: nobody has it"
                    );
                    assert!(swarm.picker.peer_have(&peer).unwrap().get(index), "{at}");
                    assert!(!swarm.have.get(index), "{at}: ours already");
                    assert!(!swarm.picker.is_verifying(index), "{at}: being verified");
                    let asked = &swarm.picker.requested[&index];
                    assert!(asked.len() <= 2, "{at}: asked of {asked:?}");
                    assert!(
                        !asked[..asked.len() - 1].contains(&peer),
                        "{at}: asked twice"
                    );
                }
            }
            // Everything gets answered and stored now: the download completes but for
            // the chunks no peer holds.
            for _ in 0..1000 {
                swarm.now += REORDER_INTERVAL;
                swarm.plan();
                for (peer, index) in std::mem::take(&mut swarm.in_flight) {
                    if swarm.have.get(index) || swarm.picker.is_verifying(index) {
                        swarm.picker.forget_request(index, peer);
                    } else {
                        swarm.picker.start_verifying(index);
                        swarm.verifying.push(index);
                    }
                }
                for index in std::mem::take(&mut swarm.verifying) {
                    swarm.picker.finish_verifying(index, true);
                    swarm.have.set(index);
                }
            }
            for index in 0..swarm.have.len() {
                if swarm.picker.avail[index as usize] > 0 {
                    assert!(swarm.have.get(index), "seed {seed}, chunk {index}");
                }
            }
            assert!(swarm.picker.requested.is_empty(), "seed {seed}");
        }
    }

    /// Old and new cost of one scheduling pass at 1024 and 2^19 chunks (the most a file
    /// may have), printed, not asserted. Run with
    /// `cargo test --release -p p2pd pick_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "prints timings; run by hand"]
    fn pick_cost_by_file_size() {
        for n in [1024u32, 1 << 19] {
            let salt = 0x5eed;
            let peers: [PeerId; 5] = some_peers();
            // Four seeders and a peer with every other chunk.
            let mut bitfields: HashMap<PeerId, Bitfield> = HashMap::new();
            for peer in &peers[..4] {
                bitfields.insert(*peer, Bitfield::full(n));
            }
            bitfields.insert(peers[4], holding(n, (0..n).step_by(2)));

            let started = Instant::now();
            let mut picker = Picker::new(n, salt);
            let setup = started.elapsed();
            for (peer, have) in &bitfields {
                picker.set_peer_have(*peer, have.clone());
            }
            let mut have = Bitfield::new(n);
            let started = Instant::now();
            picker.rebuild_order(&have, Instant::now());
            let rebuild = started.elapsed();

            // Each pass: pick up to the budget, then four requests are answered and
            // stored (oldest first), as after four events of a running download.
            // An eighth of the file: far from the endgame.
            let calls = 20_000.min(n as usize / 8);
            let mut in_flight: VecDeque<u32> = VecDeque::new();
            let mut spent = Duration::ZERO;
            let now = Instant::now();
            for _ in 0..calls {
                let budget = BUDGET - in_flight.len();
                let started = Instant::now();
                let picks = picker.plan(&have, &ready(&peers, DEPTH), budget, now);
                spent += started.elapsed();
                in_flight.extend(picks.iter().map(|(_, i)| *i));
                for index in in_flight.drain(..4.min(in_flight.len())) {
                    store(&mut picker, &mut have, index);
                }
            }
            let incremental = spent / calls as u32;

            // The same passes with the full sort.
            let calls = if n > 10_000 { 20 } else { n as usize / 8 };
            let avail = picker.avail.clone();
            let mut have = Bitfield::new(n);
            let mut requested = Requests::new();
            let mut in_flight: VecDeque<u32> = VecDeque::new();
            let mut spent = Duration::ZERO;
            for _ in 0..calls {
                let budget = BUDGET - in_flight.len();
                let started = Instant::now();
                let picks = full_sort_plan(
                    &have,
                    &HashSet::new(),
                    &mut requested,
                    &avail,
                    &bitfields,
                    &ready(&peers, DEPTH),
                    budget,
                    salt,
                );
                spent += started.elapsed();
                in_flight.extend(picks.iter().map(|(_, i)| *i));
                for index in in_flight.drain(..4.min(in_flight.len())) {
                    requested.remove(&index);
                    have.set(index);
                }
            }
            let full_sort = spent / calls as u32;
            println!(
                "{n:>7} chunks: full sort {full_sort:>12.3?} per pass, incremental \
                 {incremental:>9.3?} per pass; once per download {setup:.3?}, \
                 per rebuild {rebuild:.3?}"
            );
        }
    }
}
