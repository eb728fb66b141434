//! Outbound requests in flight, bounded in all and per peer, each with what its caller
//! waits on. The transfer protocols (`requests.rs`) and the catalog (`catalog.rs`) keep
//! one each, with their own limits.

use std::collections::HashMap;
use std::hash::Hash;

use libp2p::PeerId;

/// Requests in flight by key `K`, each with the peer it went to and its reply `R`.
pub(super) struct InFlight<K, R> {
    pending: HashMap<K, (PeerId, R)>,
    /// Requests in flight per peer (a peer leaves the map when it has none).
    per_peer: HashMap<PeerId, usize>,
    max: usize,
    max_per_peer: usize,
}

impl<K: Hash + Eq, R> InFlight<K, R> {
    /// At most `max` requests in flight in all, and `max_per_peer` to one peer.
    pub(super) fn new(max: usize, max_per_peer: usize) -> Self {
        InFlight {
            pending: HashMap::new(),
            per_peer: HashMap::new(),
            max,
            max_per_peer,
        }
    }

    /// Whether one more request to `peer` fits.
    pub(super) fn has_room(&self, peer: &PeerId) -> bool {
        self.pending.len() < self.max
            && self.per_peer.get(peer).copied().unwrap_or(0) < self.max_per_peer
    }

    pub(super) fn insert(&mut self, key: K, peer: PeerId, reply: R) {
        *self.per_peer.entry(peer).or_insert(0) += 1;
        self.pending.insert(key, (peer, reply));
    }

    pub(super) fn remove(&mut self, key: &K) -> Option<R> {
        let (peer, reply) = self.pending.remove(key)?;
        if let Some(n) = self.per_peer.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&peer);
            }
        }
        Some(reply)
    }

    /// Requests in flight, and peers they are in flight to.
    #[cfg(test)]
    pub(super) fn counts(&self) -> (usize, usize) {
        (self.pending.len(), self.per_peer.len())
    }
}
