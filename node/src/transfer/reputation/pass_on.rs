//! Who passes data on, as a seed sees it (the evidence BitTorrent's super-seeding relies
//! on). Nobody gives a seed anything, so tit-for-tat cannot rank its leechers by what
//! they give it; what a seed can see is this: a chunk it sent to one peer, while no other
//! peer was known to hold it, that another peer announces (`Have`) before the seed sent
//! it to anyone else, reached that peer through the first one. [`PassOn`] records such
//! *sole* gives, credits the recipient when another peer announces the chunk, and once
//! [`PASS_ON_WINDOW`] has passed counts the give as a chance the recipient had to pass
//! it on, if another peer wanted the file when it was sent: a lone downloader, with
//! nobody to pass anything to, had no chance and is no hoarder. A chunk the seed sends a second time before anyone announced it proves nothing
//! either way: it is no longer credited, but the first recipient's chance still counts
//! (a peer that refuses to serve a chunk makes the others fetch it from the seed again).
//! [`rules::is_taker`](super::rules::is_taker) turns the two counts into a judgement.
//!
//! Only what the seed itself sent and heard is used, so a peer cannot buy credit by
//! claiming it; a `Have` is a claim, though, and a group of peers announcing chunks they
//! never fetched could credit one of them (at most once per chunk the seed sent it).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use dht_proto::Cid;
use libp2p::PeerId;

/// How long a peer has to pass a chunk on before the give counts as a chance it had.
pub const PASS_ON_WINDOW: Duration = Duration::from_secs(5);
/// Chunks whose fate is tracked at once; past this, the oldest are forgotten.
pub const MAX_CHUNKS: usize = 65_536;

/// What a seed knows of one chunk that some peer holds.
#[derive(Debug, Clone, Copy)]
struct Fate {
    /// The peer we sent it to as its only known holder; `None` if another peer was
    /// known to hold it first (from its `Have`).
    sole: Option<PeerId>,
    len: u64,
    at: Instant,
    /// Counted as a chance of `sole` already.
    matured: bool,
    /// Credited to `sole`, or sent to someone else first: no more credit.
    settled: bool,
}

/// The fates of the chunks a seed sent or heard of (at most [`MAX_CHUNKS`]).
#[derive(Debug, Default)]
pub struct PassOn {
    chunks: HashMap<(Cid, u32), Fate>,
    /// The chunks in the order first seen (so in time order), to mature and forget them.
    order: VecDeque<(Cid, u32)>,
    /// Every chunk of `order` before this position is past its window.
    matured_upto: usize,
}

impl PassOn {
    fn insert(&mut self, key: (Cid, u32), fate: Fate) {
        while self.chunks.len() >= MAX_CHUNKS {
            match self.order.pop_front() {
                Some(old) => {
                    self.chunks.remove(&old);
                    self.matured_upto = self.matured_upto.saturating_sub(1);
                }
                None => break,
            }
        }
        self.chunks.insert(key, fate);
        self.order.push_back(key);
    }

    /// We, holding the whole file, sent chunk `index` of `cid` (`len` bytes) to `peer`;
    /// `others_want`: another peer was downloading the file from us then, so `peer`
    /// had someone to pass the chunk on to.
    pub fn sent(
        &mut self,
        peer: PeerId,
        cid: Cid,
        index: u32,
        len: u64,
        others_want: bool,
        now: Instant,
    ) {
        match self.chunks.get_mut(&(cid, index)) {
            Some(fate) => {
                if fate.sole != Some(peer) {
                    fate.settled = true;
                }
            }
            None => self.insert(
                (cid, index),
                Fate {
                    sole: Some(peer),
                    len,
                    at: now,
                    // Nobody to pass it on to: it can still be credited, but it is
                    // never counted as a chance.
                    matured: !others_want,
                    settled: false,
                },
            ),
        }
    }

    /// `peer` announced that it holds chunk `index` of `cid`. Returns the peer it must
    /// have come through, with the chunk's length, if this is the first proof of it.
    pub fn announced(
        &mut self,
        peer: PeerId,
        cid: Cid,
        index: u32,
        now: Instant,
    ) -> Option<(PeerId, u64)> {
        match self.chunks.get_mut(&(cid, index)) {
            Some(fate) => {
                let first = fate.sole?;
                if first == peer || fate.settled {
                    return None;
                }
                fate.settled = true;
                Some((first, fate.len))
            }
            None => {
                // Held elsewhere already: sending it later proves nothing.
                self.insert(
                    (cid, index),
                    Fate {
                        sole: None,
                        len: 0,
                        at: now,
                        matured: true,
                        settled: true,
                    },
                );
                None
            }
        }
    }

    /// The sole gives whose [`PASS_ON_WINDOW`] ended since the last call: each
    /// recipient with the chunk's length.
    pub fn mature(&mut self, now: Instant) -> Vec<(PeerId, u64)> {
        let mut due = Vec::new();
        while let Some(key) = self.order.get(self.matured_upto) {
            let Some(fate) = self.chunks.get_mut(key) else {
                self.matured_upto += 1;
                continue;
            };
            if now.saturating_duration_since(fate.at) < PASS_ON_WINDOW {
                break;
            }
            self.matured_upto += 1;
            if !fate.matured {
                fate.matured = true;
                if let Some(peer) = fate.sole {
                    due.push((peer, fate.len));
                }
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid() -> Cid {
        Cid::for_manifest_bytes(b"file")
    }

    #[test]
    fn a_chunk_announced_by_another_peer_credits_its_only_recipient_once() {
        let mut seen = PassOn::default();
        let start = Instant::now();
        let [passer, other, third] = [(); 3].map(|_| PeerId::random());
        seen.sent(passer, cid(), 7, 1 << 20, true, start);
        // Its own announcement proves nothing.
        assert_eq!(seen.announced(passer, cid(), 7, start), None);
        assert_eq!(
            seen.announced(other, cid(), 7, start),
            Some((passer, 1 << 20))
        );
        // Once per chunk.
        assert_eq!(seen.announced(third, cid(), 7, start), None);
        // And the give counts as a chance once its window is over, once.
        assert!(seen.mature(start + PASS_ON_WINDOW / 2).is_empty());
        assert_eq!(seen.mature(start + PASS_ON_WINDOW), vec![(passer, 1 << 20)]);
        assert!(seen.mature(start + PASS_ON_WINDOW * 2).is_empty());
    }

    #[test]
    fn a_chunk_sent_twice_or_held_elsewhere_credits_nobody() {
        let mut seen = PassOn::default();
        let start = Instant::now();
        let [hoarder, asker, other] = [(); 3].map(|_| PeerId::random());
        // The hoarder's chunk had to be sent again: no credit, but its chance counts.
        seen.sent(hoarder, cid(), 1, 100, true, start);
        seen.sent(asker, cid(), 1, 100, true, start);
        assert_eq!(seen.announced(other, cid(), 1, start), None);
        assert_eq!(seen.mature(start + PASS_ON_WINDOW), vec![(hoarder, 100)]);
        // A chunk another peer announced before we sent it is no sole give.
        assert_eq!(seen.announced(other, cid(), 2, start), None);
        seen.sent(asker, cid(), 2, 100, true, start);
        assert_eq!(seen.announced(hoarder, cid(), 2, start), None);
        assert!(seen.mature(start + PASS_ON_WINDOW * 2).is_empty());
    }

    #[test]
    fn a_lone_downloader_had_no_chance_to_pass_anything_on() {
        let mut seen = PassOn::default();
        let start = Instant::now();
        let [lone, later] = [(); 2].map(|_| PeerId::random());
        // Nobody else wanted the file: no chance counted, however long it holds it.
        for index in 0..8 {
            seen.sent(lone, cid(), index, 1 << 20, false, start);
        }
        assert!(seen.mature(start + PASS_ON_WINDOW * 10).is_empty());
        // A peer that comes later and announces one of them still credits it.
        assert_eq!(
            seen.announced(later, cid(), 3, start + PASS_ON_WINDOW * 11),
            Some((lone, 1 << 20))
        );
    }

    #[test]
    fn the_tracked_chunks_are_bounded() {
        let mut seen = PassOn::default();
        let start = Instant::now();
        let peer = PeerId::random();
        for index in 0..(MAX_CHUNKS as u32 + 1000) {
            seen.sent(peer, cid(), index, 1, true, start);
            assert!(seen.chunks.len() <= MAX_CHUNKS);
        }
        assert_eq!(seen.order.len(), seen.chunks.len());
        // The oldest were forgotten, the newest kept.
        assert!(!seen.chunks.contains_key(&(cid(), 0)));
        assert!(seen.chunks.contains_key(&(cid(), MAX_CHUNKS as u32 + 999)));
        assert_eq!(seen.mature(start + PASS_ON_WINDOW).len(), MAX_CHUNKS);
    }
}
