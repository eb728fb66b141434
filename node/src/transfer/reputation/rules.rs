//! The decisions reputation drives, as pure functions over a peer's record, so that
//! each rule is tested on its own (the choker and the download engine call them):
//!
//! - [`is_taker`]: a peer that takes without giving. It refused our requests (it was
//!   asked because it advertised chunks) yet sent us next to nothing of what we sent
//!   it; the choker gives such a peer only the optimistic slot.
//! - [`source_order`]: which sources a download asks first: the fastest in this
//!   download, then the best scored; peers with a negative score go last.
//! - [`is_snubbing`]: a source with requests out that sent nothing for [`SNUB_TIMEOUT`]
//!   is asked nothing more until it delivers (BitTorrent's anti-snubbing).
//! - [`retry_backoff`]: how long a download waits before asking a failing peer again,
//!   doubling with each failure.

use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::PeerRecord;

/// Bytes we send a peer before its giving nothing back counts against it.
pub const TAKER_GRACE_BYTES: u64 = 1 << 20;
/// `Choked` answers from a peer before its giving nothing back counts against it.
pub const TAKER_MIN_CHOKES: u32 = 4;
/// A peer gives back enough when it sent us at least this fraction of what we sent it.
pub const TAKER_RATIO: u64 = 8;
/// A source with requests out that sent nothing this long is snubbing us.
pub const SNUB_TIMEOUT: Duration = Duration::from_secs(20);
/// First wait before asking a failing peer again.
pub const RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest wait before asking a failing peer again.
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// Whether a peer takes without giving: we sent it more than [`TAKER_GRACE_BYTES`], it
/// choked our requests at least [`TAKER_MIN_CHOKES`] times, and it sent us less than
/// 1/[`TAKER_RATIO`] of what we sent it. A peer we never asked anything of (a seeder's
/// leechers, before they hold chunks) is never a taker: it had no chance to give.
pub fn is_taker(record: &PeerRecord) -> bool {
    record.sent > TAKER_GRACE_BYTES
        && record.chokes >= TAKER_MIN_CHOKES
        && record.received.saturating_mul(TAKER_RATIO) < record.sent
}

/// What a download knows of one source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceFacts {
    /// The source.
    pub peer: PeerId,
    /// Verified bytes per second it delivered in this download (0 if none yet).
    pub rate: f64,
    /// This node's score for it (0 for a peer never seen).
    pub score: f64,
}

/// Sources in the order a download fills their request pipelines: those with a score
/// below zero last; then the fastest first; ties (newcomers have no rate yet) by
/// score, then peer id so the order is stable.
pub fn source_order(sources: &mut [SourceFacts]) {
    sources.sort_by(|a, b| {
        (a.score < 0.0)
            .cmp(&(b.score < 0.0))
            .then(b.rate.total_cmp(&a.rate))
            .then(b.score.total_cmp(&a.score))
            .then(a.peer.cmp(&b.peer))
    });
}

/// Whether a source with requests out snubs us: nothing arrived from it (or since it
/// was first asked) for [`SNUB_TIMEOUT`].
pub fn is_snubbing(in_flight: usize, last_delivery: Option<Instant>, now: Instant) -> bool {
    in_flight > 0 && last_delivery.is_some_and(|t| now.saturating_duration_since(t) >= SNUB_TIMEOUT)
}

/// The wait before asking a peer again after its `failures`th failure in a row:
/// [`RETRY_BASE`] doubled each time, at most [`RETRY_MAX`].
pub fn retry_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    RETRY_BASE.saturating_mul(1 << doublings).min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_that_refuses_us_and_gives_nothing_is_a_taker() {
        let freeloader = PeerRecord {
            sent: 8 << 20,
            chokes: 10,
            ..PeerRecord::default()
        };
        assert!(is_taker(&freeloader));
        // One that gives back an eighth of what it got is not.
        let reciprocates = PeerRecord {
            received: 1 << 20,
            ..freeloader.clone()
        };
        assert!(!is_taker(&reciprocates));
        // Nor one that never refused us: we did not ask, or it served us.
        let never_asked = PeerRecord {
            chokes: 0,
            ..freeloader.clone()
        };
        assert!(!is_taker(&never_asked));
        // Nor a newcomer that has taken little so far.
        let newcomer = PeerRecord {
            sent: TAKER_GRACE_BYTES,
            ..freeloader
        };
        assert!(!is_taker(&newcomer));
    }

    #[test]
    fn sources_are_asked_fastest_first_and_bad_scores_last() {
        let [fast, slow, new_good, new_plain, bad] = [(); 5].map(|_| PeerId::random());
        let mut sources = vec![
            SourceFacts {
                peer: bad,
                rate: 1e9,
                score: -5.0,
            },
            SourceFacts {
                peer: new_plain,
                rate: 0.0,
                score: 0.0,
            },
            SourceFacts {
                peer: slow,
                rate: 1e5,
                score: 50.0,
            },
            SourceFacts {
                peer: new_good,
                rate: 0.0,
                score: 30.0,
            },
            SourceFacts {
                peer: fast,
                rate: 1e7,
                score: 1.0,
            },
        ];
        source_order(&mut sources);
        let order: Vec<PeerId> = sources.iter().map(|s| s.peer).collect();
        assert_eq!(order, vec![fast, slow, new_good, new_plain, bad]);
    }

    #[test]
    fn a_silent_source_snubs_us() {
        let start = Instant::now();
        assert!(!is_snubbing(2, Some(start), start + SNUB_TIMEOUT / 2));
        assert!(is_snubbing(2, Some(start), start + SNUB_TIMEOUT));
        // Nothing asked of it: it cannot snub.
        assert!(!is_snubbing(0, Some(start), start + SNUB_TIMEOUT * 2));
        assert!(!is_snubbing(1, None, start));
    }

    #[test]
    fn retries_back_off_doubling_up_to_a_limit() {
        assert_eq!(retry_backoff(0), RETRY_BASE);
        assert_eq!(retry_backoff(1), RETRY_BASE);
        assert_eq!(retry_backoff(2), RETRY_BASE * 2);
        assert_eq!(retry_backoff(4), RETRY_BASE * 8);
        assert_eq!(retry_backoff(30), RETRY_MAX);
        assert_eq!(retry_backoff(u32::MAX), RETRY_MAX);
    }
}
