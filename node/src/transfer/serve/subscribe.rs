//! A seed's subscriptions to its leechers' `Have`s. A downloader sends its `Have`s to
//! the peers that asked for its bitfield, and a seed, downloading nothing, never asks:
//! so when a peer first asks this node about a file it holds whole (its bitfield, or a
//! chunk), this node asks for the peer's bitfield in return, sending its own. From then
//! on the peer announces its new chunks here, which tells the seed who passed on the
//! chunks it sent ([`pass_on`](crate::transfer::reputation::pass_on)). It also
//! remembers when each peer last asked about each file, so that a seed knows whether a
//! peer it sends a chunk to has anyone to pass it on to.

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
                },
            );
        }
        let subscriptions = self.clone();
        let transfers = transfers.clone();
        tokio::spawn(async move {
            let subscribed = subscriptions.subscribe(&transfers, peer, cid).await;
            let state = if subscribed {
                State::Subscribed
            } else {
                State::Not(Instant::now())
            };
            let mut inner = lock(&subscriptions.inner);
            if let Some(pair) = inner.pairs.get_mut(&(peer, cid)) {
                pair.state = state;
            }
        });
    }

    /// Sends `peer` our bitfield of `cid` if we hold the whole file; returns whether it
    /// answered with its own.
    async fn subscribe(&self, transfers: &Transfers, peer: PeerId, cid: Cid) -> bool {
        let have = match our_bitfield(transfers, cid).await {
            // A file of one chunk has nothing to pass on while it downloads (a folder's
            // small files are fetched with one request each): no round trip for it.
            Ok(Held::Yes(have)) if have.is_complete() && have.len() > 1 => have,
            _ => return false,
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
        matches!(answer, Ok(Reply::Message(Response::Bitfield { .. })))
    }

    /// Whether a peer other than `peer` asked this node about `cid` within
    /// [`INTEREST_TIMEOUT`]: it downloads the file, so `peer` could pass chunks on to it.
    pub(super) fn wanted_by_another(&self, cid: &Cid, peer: &PeerId, now: Instant) -> bool {
        lock(&self.inner).pairs.iter().any(|((p, c), pair)| {
            c == cid && p != peer && now.saturating_duration_since(pair.asked) < INTEREST_TIMEOUT
        })
    }

    /// `peer` disconnected: its subscriptions end (it forgets who asked it).
    pub(super) fn left(&self, peer: &PeerId) {
        lock(&self.inner).pairs.retain(|(p, _), _| p != peer);
    }
}
