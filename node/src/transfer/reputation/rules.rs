//! The decisions reputation drives, as pure functions over a peer's record, so that
//! each rule is tested on its own (the choker and the download engine call them):
//!
//! - [`is_taker`]: a peer that takes without giving. It refused our requests (it was
//!   asked because it advertised chunks) yet sent us next to nothing of what we sent
//!   it; the choker gives such a peer only the optimistic slot.
//! - [`source_order`]: which sources a download asks first: those that owe us (we sent
//!   them more than they sent us), most owed first, then the fastest in this download,
//!   then the best scored; peers with a negative score go last. Asking a debtor first
//!   balances what each pair of peers exchanges (its tit-for-tat favours us), and a
//!   debtor that refuses is soon found to be a taker.
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

/// A source owes us when we sent it more than this beyond what it sent us.
pub const OWED_GRACE_BYTES: u64 = 1 << 20;

/// What a download knows of one source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceFacts {
    /// The source.
    pub peer: PeerId,
    /// Verified bytes per second it delivered in this download (0 if none yet).
    pub rate: f64,
    /// This node's score for it (0 for a peer never seen).
    pub score: f64,
    /// Bytes we sent it beyond those it sent us (0 if it sent us as much or more).
    pub owes: u64,
}

impl SourceFacts {
    /// The facts of a source from its record (`None`: a peer never seen).
    pub fn of(peer: PeerId, rate: f64, record: Option<&PeerRecord>, now: u64) -> Self {
        SourceFacts {
            peer,
            rate,
            score: record.map_or(0.0, |r| r.score_at(now)),
            owes: record.map_or(0, |r| r.sent.saturating_sub(r.received)),
        }
    }

    /// Whether it owes us more than [`OWED_GRACE_BYTES`].
    fn in_debt(&self) -> bool {
        self.owes > OWED_GRACE_BYTES
    }
}

/// Sources in the order a download fills their request pipelines: those with a score
/// below zero last; then those that owe us more than [`OWED_GRACE_BYTES`], most owed
/// first; then the fastest first; ties (newcomers have no rate yet) by score, then peer
/// id so the order is stable.
pub fn source_order(sources: &mut [SourceFacts]) {
    sources.sort_by(|a, b| {
        (a.score < 0.0)
            .cmp(&(b.score < 0.0))
            .then(b.in_debt().cmp(&a.in_debt()))
            .then(if a.in_debt() && b.in_debt() {
                b.owes.cmp(&a.owes)
            } else {
                std::cmp::Ordering::Equal
            })
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

    fn facts(peer: PeerId, rate: f64, score: f64, owes: u64) -> SourceFacts {
        SourceFacts {
            peer,
            rate,
            score,
            owes,
        }
    }

    #[test]
    fn sources_are_asked_fastest_first_and_bad_scores_last() {
        let [fast, slow, new_good, new_plain, bad] = [(); 5].map(|_| PeerId::random());
        let mut sources = vec![
            facts(bad, 1e9, -5.0, 0),
            facts(new_plain, 0.0, 0.0, 0),
            facts(slow, 1e5, 50.0, 0),
            facts(new_good, 0.0, 30.0, 0),
            // Owing less than the grace is owing nothing.
            facts(fast, 1e7, 1.0, OWED_GRACE_BYTES),
        ];
        source_order(&mut sources);
        let order: Vec<PeerId> = sources.iter().map(|s| s.peer).collect();
        assert_eq!(order, vec![fast, slow, new_good, new_plain, bad]);
    }

    #[test]
    fn sources_that_owe_us_are_asked_first_most_owed_first() {
        let [fast, debtor, big_debtor, bad_debtor] = [(); 4].map(|_| PeerId::random());
        let mut sources = vec![
            facts(fast, 1e8, 60.0, 0),
            facts(debtor, 0.0, 0.0, 4 << 20),
            facts(bad_debtor, 0.0, -1.0, 64 << 20),
            facts(big_debtor, 1e3, 0.0, 16 << 20),
        ];
        source_order(&mut sources);
        let order: Vec<PeerId> = sources.iter().map(|s| s.peer).collect();
        assert_eq!(order, vec![big_debtor, debtor, fast, bad_debtor]);
        // The debt is read from the record: sent beyond received.
        let record = PeerRecord {
            sent: 10 << 20,
            received: 3 << 20,
            ..PeerRecord::default()
        };
        assert_eq!(SourceFacts::of(fast, 1.0, Some(&record), 0).owes, 7 << 20);
        let creditor = PeerRecord {
            received: 20 << 20,
            ..record
        };
        assert_eq!(SourceFacts::of(fast, 1.0, Some(&creditor), 0).owes, 0);
        assert_eq!(SourceFacts::of(fast, 1.0, None, 0).owes, 0);
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
