//! How much each slot holder uses its slot, and the slot a newcomer may take when none
//! is free: one held for [`SLOT_TRIAL`] by a peer that gave nothing lately, has no
//! chunk being sent to it, and took less than [`MIN_SLOT_RATE`] since it got the slot
//! (or since the last rechoke); under an upload cap, less than half a slot's share of
//! the cap, if that is less. Without this, a newcomer waits
//! for the next rechoke (up to [`RECHOKE_INTERVAL`](super::RECHOKE_INTERVAL)) while the
//! slots go to peers that ask for a chunk now and then and leave the upload idle: in a
//! flood of such peers, an honest download waited up to 10 s for a transfer of 1 s.
//! Only a peer that never held a slot may take one this way, so peers that lost theirs
//! do not take them back from each other between rechokes.

use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::Choker;

/// How long a slot is held before its use is judged.
pub const SLOT_TRIAL: Duration = Duration::from_secs(1);
/// Bytes a second below which a slot holder leaves its slot to a newcomer that asks
/// (a 20 Mbit/s home link takes 2.5 MB/s: one that slow keeps its slot while nobody new
/// asks, and at every rechoke).
pub const MIN_SLOT_RATE: u64 = 4 << 20;

/// One slot holder's use of its slot.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hold {
    since: Instant,
    bytes: u64,
}

impl Hold {
    pub(super) fn new(now: Instant) -> Self {
        Hold {
            since: now,
            bytes: 0,
        }
    }

    /// Bytes a second since `since`, once the slot has been held for [`SLOT_TRIAL`].
    fn rate(&self, now: Instant) -> Option<f64> {
        let held = now.saturating_duration_since(self.since);
        (held >= SLOT_TRIAL).then(|| self.bytes as f64 / held.as_secs_f64())
    }
}

impl Choker {
    /// `peer` gets a slot now.
    pub(super) fn grant(&mut self, peer: PeerId, now: Instant) {
        self.unchoked.insert(peer);
        self.holds.insert(peer, Hold::new(now));
        self.held_before.insert(peer);
    }

    /// The slots as a rechoke assigned them: their use is judged afresh from `now`.
    pub(super) fn restart_holds(&mut self, now: Instant) {
        self.holds = self.unchoked.iter().map(|p| (*p, Hold::new(now))).collect();
        self.held_before.extend(self.unchoked.iter().copied());
    }

    /// `bytes` were sent to `peer`.
    pub(super) fn note_sent(&mut self, peer: &PeerId, bytes: u64) {
        if let Some(hold) = self.holds.get_mut(peer) {
            hold.bytes = hold.bytes.saturating_add(bytes);
        }
    }

    /// The rate below which a holder leaves its slot unused: [`MIN_SLOT_RATE`], or half
    /// a slot's share of the upload cap if that is less.
    pub(super) fn min_slot_rate(&self) -> f64 {
        let share = self
            .upload_cap
            .map_or(MIN_SLOT_RATE, |cap| cap / self.slots as u64 / 2);
        MIN_SLOT_RATE.min(share) as f64
    }

    /// The slot `asker` may take from a holder that leaves it unused, if `asker` is a
    /// newcomer (never held a slot, no taker, not throttled): the least used one.
    pub(super) fn underused_holder(&self, asker: &PeerId, now: Instant) -> Option<PeerId> {
        if self.held_before.contains(asker)
            || self.takers.contains(asker)
            || self.is_throttled(asker)
        {
            return None;
        }
        let optimistic = self.optimistic.map(|(p, _)| p);
        let min_rate = self.min_slot_rate();
        self.unchoked
            .iter()
            .filter(|p| Some(**p) != optimistic)
            .filter(|p| !self.uploading.contains_key(*p) && !self.reciprocating.contains(*p))
            .filter_map(|p| {
                let rate = self.holds.get(p)?.rate(now)?;
                (rate < min_rate).then_some((rate, *p))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .map(|(_, p)| p)
    }
}
