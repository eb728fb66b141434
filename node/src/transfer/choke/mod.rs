//! Who gets upload slots (BitTorrent's choking). A bounded number of peers is unchoked
//! at once. While there is room, any peer that asks is unchoked. A slot is freed as
//! soon as its peer disconnects, and taken from a peer that stopped asking (nothing
//! being sent to it, no request for [`SLOT_IDLE`]) when another peer asks and none is
//! free. When more peers want data than there are slots, every rechoke ranks them by
//! what they gave since the last rechoke (tit-for-tat): verified bytes they sent us,
//! and, as a seed sees it, bytes they passed on of the chunks only they got from it
//! ([`pass_on`](super::reputation::pass_on)). The best `slots - 1` keep their slots and
//! one more slot rotates among the rest (the optimistic unchoke), so a newcomer with
//! nothing to give yet still gets a start. Peers that give nothing back get only that
//! last slot: a taker (a peer that refuses our requests or hoards what a seed gave it,
//! and gives us nothing, [`rules::is_taker`](super::reputation::rules::is_taker)) is
//! never given a regular slot, not even a free one, while another taker holds one, and
//! loses a regular slot as soon as it is found out ([`Choker::rejudge`]); ties between
//! equal givers go to the better score, then to the peer we sent the least. A peer that
//! only hoards (never refused us) counts as a taker only while an interested peer that
//! is no taker wants chunks: with nobody else to serve, holding it back would only
//! leave the upload idle.
//!
//! A slot is also a share of the upload. While some interested peer gave within
//! [`RECIPROCATION_MEMORY`] (we are trading), the peers that gave nothing in that time
//! though we asked them (they answered a chunk request of ours `Choked` in that time)
//! are *throttled*: a peer that had nothing we lacked, or that we did not ask, could
//! not give, and is served as usual. The throttled peers together get one slot's share
//! of what the node uploads ([`throttled_rate`]) and [`THROTTLED_IN_FLIGHT`] chunk being
//! sent at once; so with free slots too, tit-for-tat decides the bandwidth.
//! When nobody interested gave anything (a seed nobody passes anything on for yet, or a
//! node nobody serves), only takers are throttled, and they are even when nobody else
//! asks: a node that finished its download goes on refusing to feed the peers that
//! refused it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::reputation::rules::Taking;

/// How often slots are reassigned.
pub const RECHOKE_INTERVAL: Duration = Duration::from_secs(10);
/// How long the optimistic slot stays with one peer.
pub const OPTIMISTIC_INTERVAL: Duration = Duration::from_secs(30);
/// A peer that has not asked for anything this long is no longer interested.
pub const INTEREST_TIMEOUT: Duration = Duration::from_secs(30);
/// A slot holder that has nothing being sent to it and has asked for nothing this long
/// has stopped asking: its slot goes to the next peer that asks when none is free.
pub const SLOT_IDLE: Duration = Duration::from_secs(2);
/// Peers whose interest is tracked at once; past this (after forgetting those that
/// stopped asking), a newcomer is choked.
pub const MAX_TRACKED: usize = 1024;
/// Chunks being sent at once to the throttled peers, all together (their one slot).
pub const THROTTLED_IN_FLIGHT: usize = 1;
/// A peer that gave something this recently counts as reciprocating: one quiet rechoke
/// period (an honest peer may have had nothing we lacked) does not throttle it.
pub const RECIPROCATION_MEMORY: Duration = Duration::from_secs(30);

/// The least bytes per second the throttled peers share, so that they still get a
/// start when the node uploaded next to nothing lately.
pub const THROTTLED_FLOOR: u64 = 64 << 10;

/// The bytes per second all uploads to throttled peers share: one slot's share of what
/// the node uploaded in the last rechoke period (`recent`, bytes per second), and never
/// more than one slot's share of the upload cap, if any; at least [`THROTTLED_FLOOR`].
/// The share follows what the node really sends (it may be held back by its CPU or its
/// link rather than its cap), so that throttling means the same whatever holds it back.
pub fn throttled_rate(upload_cap: Option<u64>, slots: usize, recent: u64) -> u64 {
    let slots = slots.max(1) as u64;
    let share = recent / slots;
    let share = upload_cap.map_or(share, |cap| share.min(cap / slots));
    share.max(THROTTLED_FLOOR)
}

/// The choking state of the upload side.
#[derive(Debug)]
pub struct Choker {
    slots: usize,
    unchoked: HashSet<PeerId>,
    optimistic: Option<(PeerId, Instant)>,
    /// When each interested peer last asked for a chunk or had one sent (at most
    /// [`MAX_TRACKED`]).
    interest: HashMap<PeerId, Instant>,
    /// Chunk requests of each peer being answered now.
    uploading: HashMap<PeerId, usize>,
    received_at_last_rechoke: HashMap<PeerId, u64>,
    /// Interested peers that refuse us and give nothing, as of the last
    /// [`Choker::judge`] or [`Choker::rejudge`].
    refusers: HashSet<PeerId>,
    /// Interested peers that hoard what we seeded them (and never refused us).
    hoarders: HashSet<PeerId>,
    /// The peers treated as takers now ([`Choker::recount_takers`]): the refusers, and
    /// the hoarders while an interested peer that is neither could use the upload.
    takers: HashSet<PeerId>,
    /// This node's scores for interested peers, as of the last [`Choker::judge`].
    scores: HashMap<PeerId, f64>,
    /// Interested peers that gave (sent us verified data, or passed ours on) within
    /// [`RECIPROCATION_MEMORY`].
    reciprocating: HashSet<PeerId>,
    /// When each interested peer last gave, as of a rechoke.
    last_gave: HashMap<PeerId, Instant>,
    /// Bytes we sent each interested peer so far, as of the last [`Choker::judge`].
    sent: HashMap<PeerId, u64>,
    /// Chunk requests of ours each interested peer answered `Choked` so far, as of the
    /// last [`Choker::refusals`], and as of the last rechoke.
    chokes: HashMap<PeerId, u32>,
    chokes_at_last_rechoke: HashMap<PeerId, u32>,
    /// When each interested peer last refused us, as of a rechoke.
    last_refused: HashMap<PeerId, Instant>,
    /// Interested peers that refused us within [`RECIPROCATION_MEMORY`].
    refusing: HashSet<PeerId>,
}

impl Choker {
    /// A choker with `slots` upload slots (at least 1).
    pub fn new(slots: usize) -> Self {
        Choker {
            slots: slots.max(1),
            unchoked: HashSet::new(),
            optimistic: None,
            interest: HashMap::new(),
            uploading: HashMap::new(),
            received_at_last_rechoke: HashMap::new(),
            refusers: HashSet::new(),
            hoarders: HashSet::new(),
            takers: HashSet::new(),
            scores: HashMap::new(),
            reciprocating: HashSet::new(),
            last_gave: HashMap::new(),
            sent: HashMap::new(),
            chokes: HashMap::new(),
            chokes_at_last_rechoke: HashMap::new(),
            last_refused: HashMap::new(),
            refusing: HashSet::new(),
        }
    }

    /// The peers whose interest is tracked (at most [`MAX_TRACKED`]): those to judge.
    pub fn interested(&self) -> Vec<PeerId> {
        self.interest.keys().copied().collect()
    }

    /// What reputation says of interested peers: each one's score and whether it takes
    /// without giving. Peers not named count as scoring 0 and giving.
    pub fn judge(&mut self, judgements: impl IntoIterator<Item = (PeerId, f64, Taking)>) {
        self.refusers.clear();
        self.hoarders.clear();
        self.scores.clear();
        for (peer, score, taking) in judgements.into_iter().take(MAX_TRACKED) {
            self.scores.insert(peer, score);
            self.classify(peer, taking);
        }
        self.recount_takers();
    }

    /// Files `peer` as a refuser, a hoarder or neither; returns whether that changed.
    fn classify(&mut self, peer: PeerId, taking: Taking) -> bool {
        let (refuses, hoards) = (taking == Taking::Refuses, taking == Taking::Hoards);
        let changed =
            self.refusers.contains(&peer) != refuses || self.hoarders.contains(&peer) != hoards;
        for (set, member) in [(&mut self.refusers, refuses), (&mut self.hoarders, hoards)] {
            if member {
                set.insert(peer);
            } else {
                set.remove(&peer);
            }
        }
        changed
    }

    /// [`Choker::recount_takers`] when it can change the takers: only hoarders depend
    /// on who else is interested (without any, the takers are the refusers already).
    fn recount_if_hoarders(&mut self) {
        if !self.hoarders.is_empty() {
            self.recount_takers();
        }
    }

    /// Sets who counts as a taker now: every refuser (a node goes on refusing to feed
    /// the peers that refused it), and the hoarders only while an interested peer that
    /// is neither wants chunks. A seed cannot tell why a peer passed nothing on (the
    /// only other downloader may be one it banned), and holding hoarders back when
    /// nobody else asks would only leave the upload idle.
    fn recount_takers(&mut self) {
        let someone_else = self
            .interest
            .keys()
            .any(|p| !self.refusers.contains(p) && !self.hoarders.contains(p));
        self.takers.clone_from(&self.refusers);
        if someone_else {
            self.takers.extend(self.hoarders.iter().copied());
        }
    }

    /// What reputation says of one peer now (see [`Choker::judge`]): a peer found to
    /// take without giving loses its regular slot at once, not at the next rechoke.
    pub fn rejudge(&mut self, peer: PeerId, score: f64, taking: Taking) {
        if !self.interest.contains_key(&peer) && self.interest.len() >= MAX_TRACKED {
            return;
        }
        self.scores.insert(peer, score);
        // Judged at every chunk request: the takers are counted again only on a change.
        if self.classify(peer, taking) {
            self.recount_takers();
        }
        if self.takers.contains(&peer) && self.optimistic.is_none_or(|(p, _)| p != peer) {
            self.unchoked.remove(&peer);
        }
    }

    /// The bytes we sent each interested peer so far (peers not named: none).
    pub fn served(&mut self, sent: impl IntoIterator<Item = (PeerId, u64)>) {
        self.sent.clear();
        self.sent.extend(sent.into_iter().take(MAX_TRACKED));
    }

    /// How many chunk requests of ours each interested peer answered `Choked` so far
    /// (peers not named: none).
    pub fn refusals(&mut self, chokes: impl IntoIterator<Item = (PeerId, u32)>) {
        self.chokes.clear();
        self.chokes.extend(chokes.into_iter().take(MAX_TRACKED));
    }

    /// Whether uploads to `peer` share one slot of the upload cap, one chunk at a time:
    /// it is a taker, or we are trading and it refused us and gave us nothing within
    /// [`RECIPROCATION_MEMORY`].
    pub fn is_throttled(&self, peer: &PeerId) -> bool {
        self.takers.contains(peer)
            || (!self.reciprocating.is_empty()
                && !self.reciprocating.contains(peer)
                && self.refusing.contains(peer))
    }

    /// Chunks being sent now to throttled peers, all together.
    fn throttled_in_flight(&self) -> usize {
        self.uploading
            .iter()
            .filter(|(p, _)| self.is_throttled(p))
            .map(|(_, n)| n)
            .sum()
    }

    /// Whether another taker than `peer` holds a slot (the optimistic one, as takers
    /// get no other).
    fn other_taker_unchoked(&self, peer: &PeerId) -> bool {
        self.unchoked
            .iter()
            .any(|p| p != peer && self.takers.contains(p))
    }

    /// A peer asks for a chunk: whether it may have it now.
    pub fn allow(&mut self, peer: PeerId, now: Instant) -> bool {
        if !self.interest.contains_key(&peer) && self.interest.len() >= MAX_TRACKED {
            self.forget_uninterested(now);
            if self.interest.len() >= MAX_TRACKED {
                return false;
            }
        }
        if self.interest.insert(peer, now).is_none() {
            self.recount_if_hoarders();
        }
        if self.is_throttled(&peer) && self.throttled_in_flight() >= THROTTLED_IN_FLIGHT {
            return false;
        }
        if self.unchoked.contains(&peer) {
            return true;
        }
        if self.takers.contains(&peer) && self.other_taker_unchoked(&peer) {
            return false;
        }
        if self.unchoked.len() < self.slots {
            self.unchoked.insert(peer);
            return true;
        }
        match self.idle_holder(now) {
            Some(idle) => {
                self.release(&idle);
                self.unchoked.insert(peer);
                true
            }
            None => false,
        }
    }

    /// The slot holder that stopped asking longest ago, if one did.
    fn idle_holder(&self, now: Instant) -> Option<PeerId> {
        self.unchoked
            .iter()
            .filter(|p| !self.uploading.contains_key(*p))
            .filter_map(|p| {
                // A holder with no recorded interest asked nothing recently.
                let idle_for = self
                    .interest
                    .get(p)
                    .map_or(SLOT_IDLE, |t| now.saturating_duration_since(*t));
                (idle_for >= SLOT_IDLE).then_some((idle_for, *p))
            })
            .max()
            .map(|(_, p)| p)
    }

    fn release(&mut self, peer: &PeerId) {
        self.unchoked.remove(peer);
        if self.optimistic.is_some_and(|(p, _)| p == *peer) {
            self.optimistic = None;
        }
    }

    /// A chunk request of `peer` is being answered.
    pub fn started(&mut self, peer: PeerId) {
        *self.uploading.entry(peer).or_insert(0) += 1;
    }

    /// A chunk request of `peer` was answered: it counts as active until now.
    pub fn finished(&mut self, peer: PeerId, now: Instant) {
        if let Some(last) = self.interest.get_mut(&peer) {
            *last = (*last).max(now);
        }
        if let Some(n) = self.uploading.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.uploading.remove(&peer);
            }
        }
    }

    /// `peer` disconnected: its slot is free at once.
    pub fn left(&mut self, peer: &PeerId) {
        self.release(peer);
        self.interest.remove(peer);
        self.recount_if_hoarders();
    }

    fn forget_uninterested(&mut self, now: Instant) {
        self.interest
            .retain(|_, last| now.saturating_duration_since(*last) < INTEREST_TIMEOUT);
        self.recount_if_hoarders();
    }

    /// Whether a peer holds a slot.
    #[cfg(test)]
    pub fn is_unchoked(&self, peer: &PeerId) -> bool {
        self.unchoked.contains(peer)
    }

    /// Reassigns the slots. `received` is the total each peer has given so far: verified
    /// bytes it sent us, and bytes it passed on of those we sent it as a seed.
    pub fn rechoke(&mut self, now: Instant, received: &HashMap<PeerId, u64>) {
        self.forget_uninterested(now);
        self.last_gave.retain(|p, _| self.interest.contains_key(p));
        self.last_refused
            .retain(|p, _| self.interest.contains_key(p));
        let mut candidates: Vec<PeerId> = self.interest.keys().copied().collect();
        let gave = |p: &PeerId, last: &HashMap<PeerId, u64>| {
            received
                .get(p)
                .copied()
                .unwrap_or(0)
                .saturating_sub(last.get(p).copied().unwrap_or(0))
        };
        for p in &candidates {
            if gave(p, &self.received_at_last_rechoke) > 0 {
                self.last_gave.insert(*p, now);
            }
        }
        for p in &candidates {
            let chokes = self.chokes.get(p).copied().unwrap_or(0);
            if chokes > self.chokes_at_last_rechoke.get(p).copied().unwrap_or(0) {
                self.last_refused.insert(*p, now);
            }
        }
        let recent = |when: &HashMap<PeerId, Instant>, p: &PeerId| {
            when.get(p)
                .is_some_and(|t| now.saturating_duration_since(*t) < RECIPROCATION_MEMORY)
        };
        self.reciprocating = candidates
            .iter()
            .filter(|p| recent(&self.last_gave, p))
            .copied()
            .collect();
        self.refusing = candidates
            .iter()
            .filter(|p| recent(&self.last_refused, p))
            .copied()
            .collect();
        self.chokes_at_last_rechoke = self.chokes.clone();
        let takers = candidates
            .iter()
            .filter(|p| self.takers.contains(p))
            .count();
        if candidates.len() <= self.slots && takers <= 1 {
            self.unchoked = candidates.into_iter().collect();
            self.optimistic = None;
        } else {
            let last = &self.received_at_last_rechoke;
            let score = |p: &PeerId| self.scores.get(p).copied().unwrap_or(0.0);
            let sent = |p: &PeerId| self.sent.get(p).copied().unwrap_or(0);
            // Best givers first, then best scores, then those we sent the least (a seed,
            // given nothing by anyone, shares itself out evenly); ties in a fixed order.
            candidates.sort_by(|a, b| {
                gave(b, last)
                    .cmp(&gave(a, last))
                    .then(score(b).total_cmp(&score(a)))
                    .then(sent(a).cmp(&sent(b)))
                    .then(a.cmp(b))
            });
            // Takers never hold a regular slot.
            let regular: HashSet<PeerId> = candidates
                .iter()
                .filter(|p| !self.takers.contains(p))
                .take(self.slots - 1)
                .copied()
                .collect();
            let keep_optimistic = self.optimistic.filter(|(p, since)| {
                now.duration_since(*since) < OPTIMISTIC_INTERVAL
                    && self.interest.contains_key(p)
                    && !regular.contains(p)
            });
            let optimistic = keep_optimistic.or_else(|| {
                let rest: Vec<PeerId> = candidates
                    .iter()
                    .filter(|p| !regular.contains(p))
                    .copied()
                    .collect();
                if rest.is_empty() {
                    return None;
                }
                let pick = rest[rand::random::<usize>() % rest.len()];
                Some((pick, now))
            });
            self.unchoked = regular;
            if let Some((p, _)) = optimistic {
                self.unchoked.insert(p);
            }
            self.optimistic = optimistic;
        }
        self.received_at_last_rechoke = received.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: usize) -> Vec<PeerId> {
        (0..n).map(|_| PeerId::random()).collect()
    }

    /// The unchoked peers but the optimistic one.
    fn regular_slots(choker: &Choker) -> HashSet<PeerId> {
        let optimistic = choker.optimistic.map(|(o, _)| o);
        choker
            .unchoked
            .iter()
            .filter(|x| Some(**x) != optimistic)
            .copied()
            .collect()
    }

    #[test]
    fn everyone_is_served_while_there_is_room() {
        let mut choker = Choker::new(3);
        let now = Instant::now();
        let p = peers(3);
        assert!(p.iter().all(|peer| choker.allow(*peer, now)));
        let late = PeerId::random();
        assert!(!choker.allow(late, now));
    }

    #[test]
    fn peers_that_give_back_get_the_slots_first() {
        let mut choker = Choker::new(3);
        let now = Instant::now();
        let p = peers(6);
        for peer in &p {
            choker.allow(*peer, now);
        }
        // p[4] and p[5] uploaded to us; the others gave nothing.
        let mut received = HashMap::new();
        received.insert(p[4], 5_000_000);
        received.insert(p[5], 1_000_000);
        choker.rechoke(now, &received);
        assert!(choker.is_unchoked(&p[4]) && choker.is_unchoked(&p[5]));
        // One optimistic slot goes to one of the freeloaders.
        let freeloaders = p[..4].iter().filter(|x| choker.is_unchoked(x)).count();
        assert_eq!(freeloaders, 1);
        // Ranking uses what they gave since the last rechoke: p[4] stops giving, p[0]
        // starts, p[5] gives 2 MB more. The regular slots go to p[0] and p[5], though
        // p[4]'s total (5 MB) is still above p[5]'s (3 MB).
        received.insert(p[0], 9_000_000);
        received.insert(p[5], 3_000_000);
        for peer in &p {
            choker.allow(*peer, now);
        }
        choker.rechoke(now + RECHOKE_INTERVAL, &received);
        let regular = regular_slots(&choker);
        assert_eq!(regular, HashSet::from([p[0], p[5]]));
    }

    #[test]
    fn the_optimistic_slot_rotates_and_idle_peers_lose_interest() {
        let mut choker = Choker::new(2);
        let start = Instant::now();
        let p = peers(5);
        let mut seen = HashSet::new();
        for round in 0..40u32 {
            let now = start + OPTIMISTIC_INTERVAL * round;
            for peer in &p {
                choker.allow(*peer, now);
            }
            choker.rechoke(now, &HashMap::new());
            assert_eq!(p.iter().filter(|x| choker.is_unchoked(x)).count(), 2);
            seen.extend(p.iter().filter(|x| choker.is_unchoked(x)).copied());
        }
        assert!(
            seen.len() >= 4,
            "optimistic slot should rotate, saw {}",
            seen.len()
        );
        // Nobody asks for a while: nobody holds a slot.
        choker.rechoke(
            start + OPTIMISTIC_INTERVAL * 41 + INTEREST_TIMEOUT,
            &HashMap::new(),
        );
        assert!(p.iter().all(|x| !choker.is_unchoked(x)));
    }

    #[test]
    fn a_slot_is_free_as_soon_as_its_peer_leaves() {
        let mut choker = Choker::new(8);
        let now = Instant::now();
        let p = peers(8);
        for peer in &p {
            assert!(choker.allow(*peer, now));
            choker.started(*peer);
            choker.finished(*peer, now);
        }
        let ninth = PeerId::random();
        assert!(!choker.allow(ninth, now));
        choker.left(&p[3]);
        assert!(choker.allow(ninth, now));
        assert!(!choker.is_unchoked(&p[3]));
    }

    #[test]
    fn a_peer_that_stops_asking_loses_its_slot_to_the_next_that_asks() {
        let mut choker = Choker::new(2);
        let start = Instant::now();
        let [a, b, c] = [PeerId::random(), PeerId::random(), PeerId::random()];
        assert!(choker.allow(a, start) && choker.allow(b, start));
        // b's chunk is still being sent: never idle, however long it takes.
        choker.started(b);
        assert!(!choker.allow(c, start + SLOT_IDLE / 2));
        assert!(choker.allow(c, start + SLOT_IDLE));
        assert!(!choker.is_unchoked(&a) && choker.is_unchoked(&b) && choker.is_unchoked(&c));
        // Once b's upload ends and b stops asking, b's slot goes to the next peer.
        let ended = start + SLOT_IDLE * 2;
        choker.finished(b, ended);
        assert!(choker.allow(c, ended), "c keeps asking");
        let d = PeerId::random();
        assert!(!choker.allow(d, ended + SLOT_IDLE / 2));
        assert!(choker.allow(c, ended + SLOT_IDLE * 3 / 4));
        assert!(choker.allow(d, ended + SLOT_IDLE));
        assert!(!choker.is_unchoked(&b));
    }

    #[test]
    fn ten_thousand_peers_coming_and_going_keep_the_maps_bounded() {
        let mut choker = Choker::new(8);
        let start = Instant::now();
        for n in 0..10_000u32 {
            let now = start + Duration::from_millis(u64::from(n));
            let peer = PeerId::random();
            choker.allow(peer, now);
            choker.started(peer);
            choker.finished(peer, now);
            // Half of them disconnect; the others just stop asking.
            if n % 2 == 0 {
                choker.left(&peer);
            }
            assert!(choker.interest.len() <= MAX_TRACKED);
            assert!(choker.unchoked.len() <= 8);
        }
        assert!(choker.uploading.is_empty());
        // Once nobody has asked for a while, nobody is tracked.
        choker.rechoke(
            start + Duration::from_secs(10) + INTEREST_TIMEOUT,
            &HashMap::new(),
        );
        assert!(choker.interest.is_empty() && choker.unchoked.is_empty());
    }

    #[test]
    fn a_taker_gets_only_the_optimistic_slot_even_when_slots_are_free() {
        let mut choker = Choker::new(4);
        let now = Instant::now();
        let [giver, t1, t2, t3] = [(); 4].map(|_| PeerId::random());
        choker.judge([
            (giver, 10.0, Taking::No),
            (t1, 0.0, Taking::Refuses),
            (t2, 0.0, Taking::Refuses),
            (t3, 0.0, Taking::Refuses),
        ]);
        assert!(choker.allow(giver, now));
        assert!(choker.allow(t1, now));
        // Two slots are free, but a taker already holds one.
        assert!(!choker.allow(t2, now) && !choker.allow(t3, now));
        // Rechoking keeps one taker at most, whatever the slots free.
        for round in 1..20u32 {
            let at = now + RECHOKE_INTERVAL * round;
            for p in [giver, t1, t2, t3] {
                choker.allow(p, at);
            }
            choker.rechoke(at, &HashMap::new());
            assert!(choker.is_unchoked(&giver), "round {round}");
            let takers = [t1, t2, t3]
                .iter()
                .filter(|p| choker.is_unchoked(p))
                .count();
            assert_eq!(takers, 1, "round {round}");
        }
    }

    #[test]
    fn hoarders_are_held_back_only_while_someone_else_wants_chunks() {
        let mut choker = Choker::new(4);
        let now = Instant::now();
        let [h1, h2, honest] = [(); 3].map(|_| PeerId::random());
        // Two peers that passed nothing on, and nobody else: both are served in full.
        choker.judge([(h1, 0.0, Taking::Hoards), (h2, 0.0, Taking::Hoards)]);
        assert!(choker.allow(h1, now) && choker.allow(h2, now));
        choker.rechoke(now, &HashMap::new());
        assert!(choker.is_unchoked(&h1) && choker.is_unchoked(&h2));
        assert!(!choker.is_throttled(&h1) && !choker.is_throttled(&h2));
        // A downloader that is no taker asks: the hoarders are takers again, one at a
        // time in the optimistic slot, throttled.
        assert!(choker.allow(honest, now));
        choker.judge([
            (h1, 0.0, Taking::Hoards),
            (h2, 0.0, Taking::Hoards),
            (honest, 0.0, Taking::No),
        ]);
        assert!(choker.is_throttled(&h1) && choker.is_throttled(&h2));
        let later = now + RECHOKE_INTERVAL;
        for p in [h1, h2, honest] {
            choker.allow(p, later);
        }
        choker.rechoke(later, &HashMap::new());
        assert!(choker.is_unchoked(&honest));
        assert_eq!([h1, h2].iter().filter(|p| choker.is_unchoked(p)).count(), 1);
        // It leaves: the hoarders are served in full again.
        choker.left(&honest);
        assert!(!choker.is_throttled(&h1) && !choker.is_throttled(&h2));
        // A refuser is held back even alone.
        choker.rejudge(h1, 0.0, Taking::Refuses);
        assert!(choker.is_throttled(&h1) && !choker.is_throttled(&h2));
    }

    #[test]
    fn while_trading_peers_that_refused_us_and_gave_nothing_lately_are_throttled() {
        let mut choker = Choker::new(8);
        let start = Instant::now();
        let [giver, refuser, newcomer] = [(); 3].map(|_| PeerId::random());
        for p in [giver, refuser] {
            choker.allow(p, start);
        }
        // Nobody gave anything: we are seeding, nobody is throttled.
        choker.rechoke(start, &HashMap::new());
        assert!(!choker.is_throttled(&giver) && !choker.is_throttled(&refuser));
        // The giver sends us data, the refuser answers our requests `Choked`: the
        // refuser shares one slot's worth from now on, though slots are free.
        let received = HashMap::from([(giver, 4 << 20), (refuser, 0)]);
        choker.refusals([(refuser, 2)]);
        let later = start + RECHOKE_INTERVAL;
        for p in [giver, refuser] {
            choker.allow(p, later);
        }
        choker.rechoke(later, &received);
        assert!(!choker.is_throttled(&giver) && choker.is_throttled(&refuser));
        // A newcomer we never asked anything could not give: served as usual.
        assert!(!choker.is_throttled(&newcomer));
        choker.started(refuser);
        assert!(!choker.allow(refuser, later), "one chunk at a time");
        choker.started(newcomer);
        assert!(choker.allow(newcomer, later), "not throttled");
        choker.finished(newcomer, later);
        assert!(choker.allow(giver, later));
        choker.finished(refuser, later);
        assert!(choker.allow(refuser, later));
        // One quiet period later (no new refusal, no new gift) nothing changes.
        let one_quiet = later + RECHOKE_INTERVAL;
        for p in [giver, refuser] {
            choker.allow(p, one_quiet);
        }
        choker.rechoke(one_quiet, &received);
        assert!(!choker.is_throttled(&giver) && choker.is_throttled(&refuser));
        // What counts is the recent past: nobody gave or refused since.
        let quiet = later + RECIPROCATION_MEMORY;
        for p in [giver, refuser] {
            choker.allow(p, quiet);
        }
        choker.rechoke(quiet, &received);
        assert!(!choker.is_throttled(&giver) && !choker.is_throttled(&refuser));
        // A taker is throttled even then.
        choker.judge([(refuser, 0.0, Taking::Refuses)]);
        assert!(choker.is_throttled(&refuser) && !choker.is_throttled(&giver));
    }

    #[test]
    fn a_peer_that_had_nothing_we_lacked_is_not_throttled_for_giving_nothing() {
        // A peer lagging behind has nothing we lack: we never ask it, it never gives,
        // and it is served like the givers while we trade.
        let mut choker = Choker::new(8);
        let start = Instant::now();
        let [giver, lagging] = [(); 2].map(|_| PeerId::random());
        for round in 0..4u32 {
            let now = start + RECHOKE_INTERVAL * round;
            for p in [giver, lagging] {
                choker.allow(p, now);
            }
            let received = HashMap::from([(giver, u64::from(round + 1) << 20)]);
            choker.rechoke(now, &received);
            assert!(!choker.is_throttled(&lagging), "round {round}");
            choker.started(giver);
            assert!(choker.allow(lagging, now));
            choker.finished(giver, now);
        }
    }

    #[test]
    fn a_throttled_peer_is_sent_one_chunk_at_a_time() {
        let mut choker = Choker::new(4);
        let now = Instant::now();
        let [giver, taker] = [(); 2].map(|_| PeerId::random());
        choker.judge([(giver, 10.0, Taking::No), (taker, 0.0, Taking::Refuses)]);
        assert!(choker.allow(taker, now));
        choker.started(taker);
        assert!(!choker.allow(taker, now), "a second chunk at once");
        choker.finished(taker, now);
        assert!(choker.allow(taker, now));
        // A giver has no such bound.
        for _ in 0..3 {
            assert!(choker.allow(giver, now));
            choker.started(giver);
        }
    }

    #[test]
    fn throttled_peers_share_one_slot_of_the_upload_cap() {
        // One slot's share of what was really uploaded lately…
        assert_eq!(throttled_rate(Some(4 << 20), 8, 2 << 20), 256 << 10);
        assert_eq!(throttled_rate(None, 8, 16 << 20), 2 << 20);
        // …never more than a slot's share of the cap…
        assert_eq!(throttled_rate(Some(4 << 20), 8, 100 << 20), 512 << 10);
        assert_eq!(throttled_rate(Some(4 << 20), 1, 100 << 20), 4 << 20);
        // …and never nothing.
        assert_eq!(throttled_rate(Some(4 << 20), 8, 0), THROTTLED_FLOOR);
        assert_eq!(throttled_rate(Some(3), 8, 1 << 20), THROTTLED_FLOOR);
    }

    #[test]
    fn a_seed_gives_its_regular_slots_to_the_peers_it_served_least() {
        let mut choker = Choker::new(3);
        let now = Instant::now();
        // Highest peer ids first, so that the peer-id tie-break alone would pick others.
        let mut p = peers(5);
        p.sort_by(|a, b| b.cmp(a));
        for peer in &p {
            choker.allow(*peer, now);
        }
        // Nobody gives a seed anything: p[0] and p[1] had the least so far.
        choker.served([
            (p[0], 1),
            (p[1], 2),
            (p[2], 3 << 20),
            (p[3], 4 << 20),
            (p[4], 5 << 20),
        ]);
        choker.rechoke(now + RECHOKE_INTERVAL, &HashMap::new());
        let regular = regular_slots(&choker);
        assert_eq!(regular, HashSet::from([p[0], p[1]]));
    }

    #[test]
    fn a_peer_judged_a_taker_between_rechokes_loses_its_regular_slot_at_once() {
        let mut choker = Choker::new(4);
        let now = Instant::now();
        let [giver, freeloader] = [(); 2].map(|_| PeerId::random());
        assert!(choker.allow(giver, now) && choker.allow(freeloader, now));
        choker.rechoke(now, &HashMap::new());
        assert!(choker.is_unchoked(&freeloader));
        // Our download just found that it refuses us: no slot until it is the one taker
        // in the optimistic slot, and one chunk at a time.
        choker.rejudge(freeloader, 0.0, Taking::Refuses);
        assert!(!choker.is_unchoked(&freeloader) && choker.is_throttled(&freeloader));
        choker.rejudge(giver, 5.0, Taking::No);
        assert!(choker.is_unchoked(&giver) && !choker.is_throttled(&giver));
        // It gives back later: judged again, it is no taker any more.
        choker.rejudge(freeloader, 0.0, Taking::No);
        assert!(!choker.is_throttled(&freeloader));
    }

    #[test]
    fn a_seed_gives_its_regular_slots_to_the_peers_that_pass_its_chunks_on() {
        // A seed receives nothing: what ranks its leechers is what they passed on of
        // the chunks only they got from it (`Transfers::contributions`).
        let mut choker = Choker::new(3);
        let start = Instant::now();
        let p = peers(6);
        for peer in &p {
            choker.allow(*peer, start);
        }
        choker.rechoke(start, &HashMap::new());
        let later = start + RECHOKE_INTERVAL;
        for peer in &p {
            choker.allow(*peer, later);
        }
        let passed_on = HashMap::from([(p[1], 3 << 20), (p[4], 1 << 20)]);
        choker.rechoke(later, &passed_on);
        assert_eq!(regular_slots(&choker), HashSet::from([p[1], p[4]]));
        // The peers that passed nothing on are not throttled for it (a seed asks
        // nothing of them, so they could not refuse it); one that refused its probes
        // is.
        assert!(p.iter().all(|x| !choker.is_throttled(x)));
        choker.refusals([(p[0], 1)]);
        let then = later + RECHOKE_INTERVAL;
        for peer in &p {
            choker.allow(*peer, then);
        }
        choker.rechoke(then, &passed_on);
        assert!(p.iter().all(|x| choker.is_throttled(x) == (*x == p[0])));
    }

    #[test]
    fn equal_givers_are_ranked_by_score() {
        let mut choker = Choker::new(3);
        let now = Instant::now();
        let p = peers(5);
        for peer in &p {
            choker.allow(*peer, now);
        }
        // Nobody gave anything; p[3] and p[4] score best.
        choker.judge(
            p.iter()
                .enumerate()
                .map(|(i, peer)| (*peer, i as f64 * 10.0, Taking::No)),
        );
        choker.rechoke(now + RECHOKE_INTERVAL, &HashMap::new());
        assert!(choker.is_unchoked(&p[3]) && choker.is_unchoked(&p[4]));
    }
}
