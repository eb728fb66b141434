//! A seed's subscriptions to its leechers' `Have`s. A downloader sends its `Have`s to
//! the peers that asked for its bitfield, and a seed, downloading nothing, never asks:
//! so when a peer first asks this node about a file it holds whole (its bitfield, or a
//! chunk), this node asks for the peer's bitfield in return, sending its own. From then
//! on the peer announces its new chunks here, which tells the seed who passed on the
//! chunks it sent ([`pass_on`](crate::transfer::reputation::pass_on)). It also
//! remembers when each peer last asked about each file, so that a seed knows whether a
//! peer it sends a chunk to has anyone to pass it on to: a peer that answered with a
//! whole bitfield (it claims to hold every chunk) or that this node banned counts as
//! nobody to pass anything on to.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dht_proto::{Cid, Request, Response};
use libp2p::PeerId;

use super::answer::{our_bitfield, Held};
use crate::network::Reply;
use crate::transfer::choke::INTEREST_TIMEOUT;
use crate::transfer::{lock, Transfers};

/// Peer and file pairs subscribed (or being subscribed) at once; past this, new pairs
/// are not subscribed until peers leave.
pub const MAX_SUBSCRIPTIONS: usize = 4096;
/// Files known to be held whole at once; past this, the set starts over.
const MAX_SEEDED: usize = 1024;
/// A pair found not to be seeded is checked again after this long.
const RECHECK: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The check or the bitfield request runs.
    Pending,
    /// The peer was sent our bitfield: it sends us its `Have`s.
    Subscribed,
    /// We did not hold the whole file, or the peer did not answer, at this time.
    Not(Instant),
}

/// One peer's subscription to one file.
#[derive(Debug, Clone, Copy)]
struct Pair {
    state: State,
    /// When the peer last asked about the file.
    asked: Instant,
    /// The peer's bitfield said it holds every chunk.
    holds_all: bool,
}

#[derive(Debug, Default)]
struct Inner {
    pairs: HashMap<(PeerId, Cid), Pair>,
    /// Files found held whole.
    seeded: HashSet<Cid>,
}

/// The subscriptions of this node's upload side (cheap to clone).
#[derive(Debug, Clone, Default)]
pub(super) struct Subscriptions {
    inner: Arc<Mutex<Inner>>,
}

impl Subscriptions {
    /// Whether this node holds the whole of `cid` and no download of it runs, as far as
    /// it knows: its uploads of it are evidence of who passes data on.
    pub(super) fn seeds(&self, transfers: &Transfers, cid: &Cid) -> bool {
        lock(&self.inner).seeded.contains(cid) && transfers.live_have(cid).is_none()
    }

    /// `peer` asked about `cid`: subscribes to its `Have`s if this node seeds the file
    /// and has not yet.
    pub(super) fn on_request(&self, transfers: &Transfers, peer: PeerId, cid: Cid) {
        if transfers.live_have(&cid).is_some() {
            // Downloading it: the download asks peers for their bitfields itself.
            return;
        }
        let now = Instant::now();
        {
            let mut inner = lock(&self.inner);
            let key = (peer, cid);
            if let Some(pair) = inner.pairs.get_mut(&key) {
                pair.asked = now;
            }
            match inner.pairs.get(&key).map(|pair| pair.state) {
                Some(State::Pending | State::Subscribed) => return,
                Some(State::Not(at)) if now.saturating_duration_since(at) < RECHECK => return,
                Some(State::Not(_)) => {}
                None if inner.pairs.len() >= MAX_SUBSCRIPTIONS => return,
                None => {}
            }
            inner.pairs.insert(
                key,
                Pair {
                    state: State::Pending,
                    asked: now,
                    holds_all: false,
                },
            );
        }
        let subscriptions = self.clone();
        let transfers = transfers.clone();
        tokio::spawn(async move {
            let answer = subscriptions.subscribe(&transfers, peer, cid).await;
            let mut inner = lock(&subscriptions.inner);
            if let Some(pair) = inner.pairs.get_mut(&(peer, cid)) {
                match answer {
                    Some(holds_all) => {
                        pair.state = State::Subscribed;
                        pair.holds_all = holds_all;
                    }
                    None => pair.state = State::Not(Instant::now()),
                }
            }
        });
    }

    /// Sends `peer` our bitfield of `cid` if we hold the whole file; if it answered with
    /// its own, returns whether that one is whole.
    async fn subscribe(&self, transfers: &Transfers, peer: PeerId, cid: Cid) -> Option<bool> {
        let have = match our_bitfield(transfers, cid).await {
            // A file of one chunk has nothing to pass on while it downloads (a folder's
            // small files are fetched with one request each): no round trip for it.
            Ok(Held::Yes(have)) if have.is_complete() && have.len() > 1 => have,
            _ => return None,
        };
        {
            let mut inner = lock(&self.inner);
            if inner.seeded.len() >= MAX_SEEDED {
                inner.seeded.clear();
            }
            inner.seeded.insert(cid);
        }
        let answer = transfers
            .net()
            .request(peer, Request::Bitfield { cid, have })
            .await;
        match answer {
            Ok(Reply::Message(Response::Bitfield { have, .. })) => Some(have.is_complete()),
            _ => None,
        }
    }

    /// Whether a peer other than `peer` asked this node about `cid` within
    /// [`INTEREST_TIMEOUT`], and might take chunks from `peer`: it did not claim to hold
    /// every chunk, and `banned` (this node's bans) does not name it.
    pub(super) fn wanted_by_another(
        &self,
        cid: &Cid,
        peer: &PeerId,
        now: Instant,
        banned: impl Fn(&PeerId) -> bool,
    ) -> bool {
        lock(&self.inner).pairs.iter().any(|((p, c), pair)| {
            c == cid
                && p != peer
                && now.saturating_duration_since(pair.asked) < INTEREST_TIMEOUT
                && !pair.holds_all
                && !banned(p)
        })
    }

    /// `peer` disconnected: its subscriptions end (it forgets who asked it).
    pub(super) fn left(&self, peer: &PeerId) {
        lock(&self.inner).pairs.retain(|(p, _), _| p != peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_peers_that_may_take_chunks_count_as_wanting_a_file() {
        let subscriptions = Subscriptions::default();
        let cid = Cid::for_manifest_bytes(b"a file");
        let [taker, downloader, liar, banned] = [(); 4].map(|_| PeerId::random());
        let now = Instant::now();
        let pair = |holds_all| Pair {
            state: State::Subscribed,
            asked: now,
            holds_all,
        };
        let wanted = |s: &Subscriptions| s.wanted_by_another(&cid, &taker, now, |p| *p == banned);
        {
            let mut inner = lock(&subscriptions.inner);
            inner.pairs.insert((taker, cid), pair(false));
            // One that claims to hold every chunk, one this node banned.
            inner.pairs.insert((liar, cid), pair(true));
            inner.pairs.insert((banned, cid), pair(false));
        }
        assert!(!wanted(&subscriptions));
        lock(&subscriptions.inner)
            .pairs
            .insert((downloader, cid), pair(false));
        assert!(wanted(&subscriptions));
        // Its interest lapses.
        let later = now + INTEREST_TIMEOUT;
        assert!(!subscriptions.wanted_by_another(&cid, &taker, later, |_| false));
    }
}
