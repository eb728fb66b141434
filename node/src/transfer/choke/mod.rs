//! Who gets upload slots (BitTorrent's choking). A bounded number of peers is unchoked
//! at once. While there is room, any peer that asks is unchoked. A slot is freed as
//! soon as its peer disconnects, and taken from a peer that stopped asking (nothing
//! being sent to it, no request for [`SLOT_IDLE`]) when another peer asks and none is
//! free, or by a newcomer from a holder that leaves its slot unused (`slot_use.rs`).
//! When more peers want data than there are slots, every rechoke ranks them by
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
use slot_use::Hold;

mod slot_use;
pub use slot_use::{MIN_SLOT_RATE, SLOT_TRIAL};

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
    /// Each slot holder's use of its slot (`slot_use.rs`).
    holds: HashMap<PeerId, Hold>,
    /// Interested peers that have held a slot: no newcomers any more.
    held_before: HashSet<PeerId>,
    /// The node's upload cap in bytes per second, if any.
    upload_cap: Option<u64>,
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
            holds: HashMap::new(),
            held_before: HashSet::new(),
            upload_cap: None,
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
            self.holds.remove(&peer);
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
            self.grant(peer, now);
            return true;
        }
        let unused = self
            .idle_holder(now)
            .or_else(|| self.underused_holder(&peer, now));
        match unused {
            Some(holder) => {
                self.release(&holder);
                self.grant(peer, now);
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
        self.holds.remove(peer);
        if self.optimistic.is_some_and(|(p, _)| p == *peer) {
            self.optimistic = None;
        }
    }

    /// A chunk request of `peer` is being answered.
    pub fn started(&mut self, peer: PeerId) {
        *self.uploading.entry(peer).or_insert(0) += 1;
    }

    /// A chunk request of `peer` was answered with `bytes`: it counts as active until
    /// now.
    pub fn finished(&mut self, peer: PeerId, bytes: u64, now: Instant) {
        if let Some(last) = self.interest.get_mut(&peer) {
            *last = (*last).max(now);
        }
        self.note_sent(&peer, bytes);
        if let Some(n) = self.uploading.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.uploading.remove(&peer);
            }
        }
    }

    /// The node's upload cap now (bytes per second), if any.
    pub fn set_upload_cap(&mut self, cap: Option<u64>) {
        self.upload_cap = cap;
    }

    /// `peer` disconnected: its slot is free at once.
    pub fn left(&mut self, peer: &PeerId) {
        self.release(peer);
        self.interest.remove(peer);
        self.held_before.remove(peer);
        self.recount_if_hoarders();
    }

    fn forget_uninterested(&mut self, now: Instant) {
        self.interest
            .retain(|_, last| now.saturating_duration_since(*last) < INTEREST_TIMEOUT);
        let interest = &self.interest;
        self.held_before.retain(|p| interest.contains_key(p));
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
        self.restart_holds(now);
        self.received_at_last_rechoke = received.clone();
    }
}

#[cfg(test)]
mod tests;
