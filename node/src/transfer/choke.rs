//! Who gets upload slots (BitTorrent's choking). A bounded number of peers is unchoked
//! at once. While there is room, any peer that asks is unchoked. When more peers want
//! data than there are slots, every rechoke ranks them by the bytes they sent us since
//! the last rechoke (tit-for-tat): the best `slots - 1` keep their slots and one more
//! slot rotates among the rest (the optimistic unchoke), so a newcomer with nothing to
//! give yet still gets a start. Peers that give nothing back get only that last slot.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// How often slots are reassigned.
pub const RECHOKE_INTERVAL: Duration = Duration::from_secs(10);
/// How long the optimistic slot stays with one peer.
pub const OPTIMISTIC_INTERVAL: Duration = Duration::from_secs(30);
/// A peer that has not asked for anything this long is no longer interested.
pub const INTEREST_TIMEOUT: Duration = Duration::from_secs(30);

/// The choking state of the upload side.
#[derive(Debug)]
pub struct Choker {
    slots: usize,
    unchoked: HashSet<PeerId>,
    optimistic: Option<(PeerId, Instant)>,
    interest: HashMap<PeerId, Instant>,
    received_at_last_rechoke: HashMap<PeerId, u64>,
}

impl Choker {
    /// A choker with `slots` upload slots (at least 1).
    pub fn new(slots: usize) -> Self {
        Choker {
            slots: slots.max(1),
            unchoked: HashSet::new(),
            optimistic: None,
            interest: HashMap::new(),
            received_at_last_rechoke: HashMap::new(),
        }
    }

    /// A peer asks for a chunk: whether it may have it now.
    pub fn allow(&mut self, peer: PeerId, now: Instant) -> bool {
        self.interest.insert(peer, now);
        if self.unchoked.contains(&peer) {
            return true;
        }
        if self.unchoked.len() < self.slots {
            self.unchoked.insert(peer);
            return true;
        }
        false
    }

    /// Whether a peer holds a slot.
    #[cfg(test)]
    pub fn is_unchoked(&self, peer: &PeerId) -> bool {
        self.unchoked.contains(peer)
    }

    /// Reassigns the slots. `received` is the total of verified bytes each peer has sent
    /// us so far.
    pub fn rechoke(&mut self, now: Instant, received: &HashMap<PeerId, u64>) {
        self.interest
            .retain(|_, last| now.duration_since(*last) < INTEREST_TIMEOUT);
        let mut candidates: Vec<PeerId> = self.interest.keys().copied().collect();
        let gave = |p: &PeerId, last: &HashMap<PeerId, u64>| {
            received
                .get(p)
                .copied()
                .unwrap_or(0)
                .saturating_sub(last.get(p).copied().unwrap_or(0))
        };
        if candidates.len() <= self.slots {
            self.unchoked = candidates.into_iter().collect();
            self.optimistic = None;
        } else {
            let last = &self.received_at_last_rechoke;
            // Best givers first; ties in a fixed order so slots do not flap.
            candidates.sort_by(|a, b| gave(b, last).cmp(&gave(a, last)).then(a.cmp(b)));
            let regular: HashSet<PeerId> =
                candidates.iter().take(self.slots - 1).copied().collect();
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
        let optimistic = choker.optimistic.map(|(o, _)| o);
        let regular: HashSet<PeerId> = choker
            .unchoked
            .iter()
            .filter(|x| Some(**x) != optimistic)
            .copied()
            .collect();
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
}
