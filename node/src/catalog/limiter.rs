//! How often each peer may ask this node's catalog: a token bucket per peer, in a table
//! of bounded size.
//!
//! A peer may ask [`BURST`] requests at once and [`PER_SECOND`] a second after that, so
//! a searcher (one request a search) never notices it and a browser pages through a
//! large catalog at full speed for a while, while a peer hammering the node gets
//! `RateLimited` answers that cost nothing but a map lookup. At most [`MAX_PEERS`]
//! buckets are kept; a full bucket carries no state and is dropped first to make room,
//! and when every bucket is in use a peer not in the table waits like a limited one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Requests a peer may make at once.
pub const BURST: f64 = 30.0;
/// Requests a second a peer may make past its burst.
pub const PER_SECOND: f64 = 10.0;
/// Peers tracked at most.
pub const MAX_PEERS: usize = 4096;

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * PER_SECOND).min(BURST);
        self.at = now;
    }
}

/// The per-peer buckets.
#[derive(Default)]
pub struct Limiter {
    buckets: HashMap<PeerId, Bucket>,
}

impl Limiter {
    /// Takes a token for `peer` at `now`: `Ok` if it may ask, else how long until it may.
    pub fn check(&mut self, peer: PeerId, now: Instant) -> Result<(), Duration> {
        if !self.buckets.contains_key(&peer) && self.buckets.len() >= MAX_PEERS {
            self.drop_full(now);
            if self.buckets.len() >= MAX_PEERS {
                return Err(Duration::from_secs(1));
            }
        }
        let bucket = self.buckets.entry(peer).or_insert(Bucket {
            tokens: BURST,
            at: now,
        });
        bucket.refill(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / PER_SECOND))
        }
    }

    fn drop_full(&mut self, now: Instant) {
        self.buckets.retain(|_, bucket| {
            bucket.refill(now);
            bucket.tokens < BURST
        });
    }

    /// Peers tracked now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no peer is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_gets_its_burst_then_its_rate() {
        let mut limiter = Limiter::default();
        let peer = PeerId::random();
        let other = PeerId::random();
        let t0 = Instant::now();
        for _ in 0..BURST as usize {
            assert!(limiter.check(peer, t0).is_ok());
        }
        let wait = limiter.check(peer, t0).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100));
        // Another peer is not held back by the first.
        assert!(limiter.check(other, t0).is_ok());
        // One tenth of a second later there is one more token, and only one.
        let later = t0 + Duration::from_millis(100);
        assert!(limiter.check(peer, later).is_ok());
        assert!(limiter.check(peer, later).is_err());
    }

    #[test]
    fn the_table_is_bounded_and_idle_peers_make_room() {
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        let busy: Vec<PeerId> = (0..MAX_PEERS).map(|_| PeerId::random()).collect();
        for peer in &busy {
            limiter.check(*peer, t0).unwrap();
        }
        assert_eq!(limiter.len(), MAX_PEERS);
        // Every bucket is in use: a newcomer waits, and the table does not grow.
        assert!(limiter.check(PeerId::random(), t0).is_err());
        assert_eq!(limiter.len(), MAX_PEERS);
        // Once the buckets refill, they carry nothing and make room.
        let later = t0 + Duration::from_secs(10);
        assert!(limiter.check(PeerId::random(), later).is_ok());
        assert_eq!(limiter.len(), 1);
    }
}
