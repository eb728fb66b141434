//! Peers that ask again for chunks they were already sent. A downloader asks each
//! chunk of a peer once (again only when an answer was lost: a timeout, or a restart
//! with chunks in flight); a peer that asks for what it was sent over and over (a
//! flood of identities asking for the same chunks to hold the upload slots) is a
//! *repeater*: the choker treats it as a taker, so it gets only the optimistic slot.
//!
//! A bitfield sent to us starts a new download's exchange: what was sent to an earlier
//! download of the same file (cancelled, or removed and fetched again) is forgotten,
//! so that the new one's requests are no repeats. Asking again for a file's manifest,
//! or sending again our bitfield of it, counts as a repeat past [`QUERIES_FREE`] of each
//! per file: a downloader asks each peer for
//! them once per download (again after a refusal of ours or a restart), and a flood
//! peer that cycles through its requests repeats them long before it has asked for
//! every chunk once.
//!
//! Only a repeat on the same connection, within [`REPEAT_WINDOW`] of the chunk being
//! sent, counts: a peer that restarted lost what it had in flight and reconnects (its
//! record is forgotten when it disconnects), and a user who deletes a file and fetches
//! it again later asks for every chunk once more.
//!
//! Kept in memory only, bounded: [`MAX_PEERS`] peers, [`MAX_CHUNKS_PER_PEER`] chunks
//! and [`MAX_QUERIED_PER_PEER`] files' queries remembered each; when full, the peer
//! that asked least recently is forgotten.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dht_proto::Cid;
use libp2p::PeerId;

/// Peers remembered at once.
pub const MAX_PEERS: usize = 1024;
/// Chunks remembered as sent, per peer; past this, new ones are not remembered (a
/// repeat of them is not seen).
pub const MAX_CHUNKS_PER_PEER: usize = 8192;
/// Repeats before a peer can be a repeater: an honest peer repeats a few (answers lost
/// in a timeout or a restart, at most a pipeline's worth each time).
pub const REPEATS_MIN: u32 = 8;
/// A peer is a repeater once its repeats reach this fraction of the distinct chunks it
/// was sent (and [`REPEATS_MIN`]).
pub const REPEAT_RATIO: u32 = 4;
/// How long after a chunk was sent a request for it again counts as a repeat.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(300);
/// Queries of one kind about one file, within [`REPEAT_WINDOW`] of the first, that are
/// no repeat.
pub const QUERIES_FREE: u32 = 2;
/// Files whose queries are counted, per peer; past this, queries about other files are
/// not counted.
pub const MAX_QUERIED_PER_PEER: usize = 256;

/// A question about a whole file, asked once per download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Query {
    /// The file's manifest.
    Manifest,
    /// Our bitfield of the file (the peer sending its own).
    Bitfield,
}

#[derive(Debug)]
struct Asks {
    /// Chunks sent, and when.
    sent: HashMap<(Cid, u32), Instant>,
    /// Queries about each file: how many since the first, and when that was.
    queries: HashMap<(Cid, Query), (u32, Instant)>,
    repeats: u32,
    last: Instant,
}

/// What each peer was sent and how often it asked again.
#[derive(Debug, Default)]
pub struct Repeats {
    peers: HashMap<PeerId, Asks>,
}

impl Repeats {
    /// `peer` asks for chunk `index` of `cid`: counts a repeat if it was sent it already.
    pub fn asked(&mut self, peer: PeerId, cid: Cid, index: u32, now: Instant) {
        if let Some(asks) = self.peers.get_mut(&peer) {
            asks.last = now;
            let recent = asks
                .sent
                .get(&(cid, index))
                .is_some_and(|at| now.saturating_duration_since(*at) < REPEAT_WINDOW);
            if recent {
                asks.repeats = asks.repeats.saturating_add(1);
            }
        }
    }

    /// `peer` asks `query` about `cid`: past [`QUERIES_FREE`] of them within
    /// [`REPEAT_WINDOW`], each is a repeat.
    pub fn queried(&mut self, peer: PeerId, cid: Cid, query: Query, now: Instant) {
        let asks = self.remember(peer, now);
        let key = (cid, query);
        if !asks.queries.contains_key(&key) && asks.queries.len() >= MAX_QUERIED_PER_PEER {
            asks.queries
                .retain(|_, (_, first)| now.saturating_duration_since(*first) < REPEAT_WINDOW);
            if asks.queries.len() >= MAX_QUERIED_PER_PEER {
                return;
            }
        }
        let (count, first) = asks.queries.entry(key).or_insert((0, now));
        if now.saturating_duration_since(*first) >= REPEAT_WINDOW {
            (*count, *first) = (0, now);
        }
        *count = count.saturating_add(1);
        if *count > QUERIES_FREE {
            asks.repeats = asks.repeats.saturating_add(1);
        }
        if query == Query::Bitfield {
            // A download starts its exchange with us with its bitfield: its requests
            // for chunks sent to an earlier download of the file (cancelled, or the file
            // removed since) are no repeats. A peer that sends bitfields over and over
            // repeats those instead.
            asks.sent.retain(|(c, _), _| *c != cid);
        }
    }

    /// The record of `peer`, made if new (forgetting the peer that asked least recently
    /// when [`MAX_PEERS`] are remembered).
    fn remember(&mut self, peer: PeerId, now: Instant) -> &mut Asks {
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_PEERS {
            if let Some(oldest) = self
                .peers
                .iter()
                .min_by_key(|(_, a)| a.last)
                .map(|(p, _)| *p)
            {
                self.peers.remove(&oldest);
            }
        }
        let asks = self.peers.entry(peer).or_insert_with(|| Asks {
            sent: HashMap::new(),
            queries: HashMap::new(),
            repeats: 0,
            last: now,
        });
        asks.last = now;
        asks
    }

    /// `peer` was sent chunk `index` of `cid`.
    pub fn sent(&mut self, peer: PeerId, cid: Cid, index: u32, now: Instant) {
        let asks = self.remember(peer, now);
        if asks.sent.len() < MAX_CHUNKS_PER_PEER || asks.sent.contains_key(&(cid, index)) {
            asks.sent.insert((cid, index), now);
        }
    }

    /// `peer` disconnected: what it was sent is forgotten (a peer that restarted asks
    /// again for what it had in flight, and is no repeater for that).
    pub fn left(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// Whether `peer` asks again for what it was sent: at least [`REPEATS_MIN`] repeats,
    /// and at least one for every [`REPEAT_RATIO`] distinct chunks it was sent.
    pub fn is_repeater(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|a| {
            a.repeats >= REPEATS_MIN
                && u64::from(a.repeats) * u64::from(REPEAT_RATIO) >= a.sent.len() as u64
        })
    }

    /// Peers remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid() -> Cid {
        Cid::for_manifest_bytes(b"file")
    }

    #[test]
    fn a_peer_asking_again_for_what_it_was_sent_is_a_repeater() {
        let (cid, now) = (cid(), Instant::now());
        let mut repeats = Repeats::default();
        let [honest, flood] = [(); 2].map(|_| PeerId::random());
        // The honest peer asks each of 64 chunks once, and 7 of them again (answers
        // lost): not a repeater.
        for index in 0..64 {
            repeats.asked(honest, cid, index, now);
            repeats.sent(honest, cid, index, now);
        }
        for index in 0..7 {
            repeats.asked(honest, cid, index, now);
        }
        assert!(!repeats.is_repeater(&honest));
        // The flood peer cycles over 16 chunks: its second round gives it away.
        for round in 0..2 {
            for index in 0..16 {
                repeats.asked(flood, cid, index, now);
                repeats.sent(flood, cid, index, now);
            }
            assert_eq!(repeats.is_repeater(&flood), round == 1, "round {round}");
        }
        // Asking again for chunks it was refused is no repeat.
        let refused = PeerId::random();
        for _ in 0..50 {
            repeats.asked(refused, cid, 3, now);
        }
        assert!(!repeats.is_repeater(&refused));
    }

    #[test]
    fn an_honest_peer_repeating_a_few_of_many_chunks_is_no_repeater() {
        let (cid, now) = (cid(), Instant::now());
        let mut repeats = Repeats::default();
        let peer = PeerId::random();
        for index in 0..256 {
            repeats.sent(peer, cid, index, now);
        }
        // Three restarts, each with a pipeline of 6 chunks lost.
        for index in 0..18 {
            repeats.asked(peer, cid, index, now);
        }
        assert!(!repeats.is_repeater(&peer));
    }

    #[test]
    fn a_peer_fetching_again_after_a_restart_or_much_later_is_no_repeater() {
        let (cid, now) = (cid(), Instant::now());
        let mut repeats = Repeats::default();
        let peer = PeerId::random();
        let fetch_all = |repeats: &mut Repeats, at: Instant| {
            for index in 0..13 {
                repeats.asked(peer, cid, index, at);
                repeats.sent(peer, cid, index, at);
            }
        };
        // Fetched, killed and restarted (a new connection), fetched again, 50 times.
        for _ in 0..50 {
            fetch_all(&mut repeats, now);
            repeats.left(&peer);
        }
        assert!(!repeats.is_repeater(&peer));
        // Fetched, deleted, and fetched again on the same connection much later.
        fetch_all(&mut repeats, now);
        fetch_all(&mut repeats, now + REPEAT_WINDOW);
        assert!(!repeats.is_repeater(&peer));
        // The same within the window is a repeater.
        fetch_all(&mut repeats, now + REPEAT_WINDOW + Duration::from_secs(1));
        assert!(repeats.is_repeater(&peer));
    }

    #[test]
    fn a_peer_asking_again_and_again_for_a_manifest_or_our_bitfield_is_a_repeater() {
        let (cid, now) = (cid(), Instant::now());
        let mut repeats = Repeats::default();
        let [honest, flood] = [(); 2].map(|_| PeerId::random());
        // An honest downloader asks both once per download: three downloads of the
        // file, one of many other files, and four chunks asked again.
        for _ in 0..3 {
            repeats.queried(honest, cid, Query::Manifest, now);
            repeats.queried(honest, cid, Query::Bitfield, now);
        }
        for n in 0..300u32 {
            let other = Cid::for_manifest_bytes(&n.to_le_bytes());
            repeats.queried(honest, other, Query::Manifest, now);
            repeats.queried(honest, other, Query::Bitfield, now);
        }
        for index in 0..4 {
            repeats.sent(honest, cid, index, now);
            repeats.asked(honest, cid, index, now);
        }
        assert!(!repeats.is_repeater(&honest));
        // A flood peer cycling through manifest, bitfield and chunk requests.
        for index in 0..6 {
            repeats.queried(flood, cid, Query::Manifest, now);
            repeats.queried(flood, cid, Query::Bitfield, now);
            repeats.asked(flood, cid, index, now);
            repeats.sent(flood, cid, index, now);
            assert_eq!(repeats.is_repeater(&flood), index == 5, "after {index}");
        }
        // Much later, asking again is a first time.
        let later = now + REPEAT_WINDOW;
        let again = PeerId::random();
        for at in [now, now, later, later] {
            repeats.queried(again, cid, Query::Manifest, at);
        }
        assert_eq!(repeats.peers[&again].repeats, 0);
    }

    #[test]
    fn a_file_fetched_three_times_in_a_row_on_one_connection_is_no_repeat() {
        // A download cancelled, another paused and removed, then a third: each starts
        // with its bitfield and asks for the same chunks.
        let (cid, now) = (cid(), Instant::now());
        let mut repeats = Repeats::default();
        let peer = PeerId::random();
        for _ in 0..3 {
            repeats.queried(peer, cid, Query::Manifest, now);
            repeats.queried(peer, cid, Query::Bitfield, now);
            for index in 0..12 {
                repeats.asked(peer, cid, index, now);
                repeats.sent(peer, cid, index, now);
            }
        }
        assert!(!repeats.is_repeater(&peer));
    }

    #[test]
    fn the_peers_remembered_are_bounded_oldest_forgotten_first() {
        let (cid, start) = (cid(), Instant::now());
        let mut repeats = Repeats::default();
        let first = PeerId::random();
        repeats.sent(first, cid, 0, start);
        for i in 0..10_000u32 {
            let now = start + std::time::Duration::from_millis(u64::from(i) + 1);
            repeats.sent(PeerId::random(), cid, i % 7, now);
            assert!(repeats.len() <= MAX_PEERS);
        }
        assert!(!repeats.peers.contains_key(&first));
    }
}
