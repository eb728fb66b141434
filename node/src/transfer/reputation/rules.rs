//! The decisions reputation drives, as pure functions over a peer's record, so that
//! each rule is tested on its own (the choker and the download engine call them):
//!
//! - [`is_taker`]: a peer that takes without giving. It sent us next to nothing of what
//!   we sent it, and either refused our requests (it was asked because it advertised
//!   chunks) or, as a seed sees it, passed on next to nothing of the chunks only it got
//!   from us ([`pass_on`](super::pass_on)); the choker gives such a peer only the
//!   optimistic slot.
//! - [`is_worth_probing`]: a peer we gave data to and that never gave us any is asked
//!   for a chunk at once, even one already asked of another peer, so that a peer that
//!   refuses is found out within seconds rather than when it happens to hold the only
//!   chunk left to ask for.
//! - [`source_order`]: which sources a download asks first: those that owe us (we sent
//!   them more than they sent us), most owed first, then the fastest in this download,
//!   then the best scored; then those that gave us much more than we gave them, least
//!   first; takers and peers with a negative score go last. Asking a debtor first and a
//!   creditor last balances what each pair of peers exchanges, so that every peer's
//!   upload comes near its download, and a debtor that refuses is soon a taker.
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

/// Bytes of sole chunks ([`PeerRecord::sole_sent`]) a peer must have had the chance to
/// pass on before passing on too little counts against it.
pub const HOARD_MIN_BYTES: u64 = 4 << 20;
/// A peer passes on enough when at least this fraction of its sole chunks reached
/// another peer through it.
pub const PASS_ON_RATIO: u64 = 8;

/// A peer that refused us is a taker only while it sent us less than
/// 1/`REFUSER_RATIO` of what we sent it. Smaller than [`TAKER_RATIO`]: a node that
/// holds the whole file only learns whether a peer gives through its probes, and an
/// honest peer whose slots were taken when it was first asked, once it answers one, is
/// cleared for the next 64 chunks.
pub const REFUSER_RATIO: u64 = 64;

/// Whether a peer takes without giving: it sent us less than 1/[`TAKER_RATIO`] of what
/// we sent it, and it either refuses us (we sent it more than [`TAKER_GRACE_BYTES`], it
/// choked our requests at least [`TAKER_MIN_CHOKES`] times, and it sent us less than
/// 1/[`REFUSER_RATIO`] of what we sent it) or hoards (it had at least
/// [`HOARD_MIN_BYTES`] of chunks only it got from us, as a seed, to pass on, and passed
/// on less than 1/[`PASS_ON_RATIO`] of them). A peer we never asked anything of and
/// that never got a sole chunk from us (a seeder's leechers, before they hold chunks)
/// is never a taker: it had no chance to give.
pub fn is_taker(record: &PeerRecord) -> bool {
    taking(record) != Taking::No
}

/// How a peer takes without giving, if it does ([`taking`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taking {
    /// It gives back enough, or had no chance to give.
    No,
    /// It passed on too little of the chunks only it got from us as a seed, but never
    /// refused us. Why it passed nothing on a seed cannot know (the only other
    /// downloader may be one it banned), so the choker holds it back only while an
    /// interested peer that is no taker could use the upload instead.
    Hoards,
    /// It refused our requests and gave us next to nothing.
    Refuses,
}

/// How `record`'s peer takes without giving (see [`is_taker`]); a peer that both
/// refuses and hoards [`Taking::Refuses`].
pub fn taking(record: &PeerRecord) -> Taking {
    if record.received.saturating_mul(TAKER_RATIO) >= record.sent {
        return Taking::No;
    }
    let refuses = record.sent > TAKER_GRACE_BYTES
        && record.chokes >= TAKER_MIN_CHOKES
        && record.received.saturating_mul(REFUSER_RATIO) < record.sent;
    let hoards = record.sole_sent >= HOARD_MIN_BYTES
        && record.passed_on.saturating_mul(PASS_ON_RATIO) < record.sole_sent;
    if refuses {
        Taking::Refuses
    } else if hoards {
        Taking::Hoards
    } else {
        Taking::No
    }
}

/// Whether a download should ask `record`'s peer for a chunk now, even one already
/// asked of another peer, to see whether it gives: we sent it more than
/// [`TAKER_GRACE_BYTES`] and it sent us less than 1/[`REFUSER_RATIO`] of that. Judged
/// a taker or not, it is asked again (the callers space the probes): an honest peer
/// that was busy when first asked clears itself with one chunk.
pub fn is_worth_probing(record: &PeerRecord) -> bool {
    record.sent > TAKER_GRACE_BYTES && record.received.saturating_mul(REFUSER_RATIO) < record.sent
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
    /// Bytes it sent us beyond those we sent it, if we sent it anything (0 otherwise: a
    /// seed we never gave anything is no trading partner).
    pub credit: u64,
    /// Verified bytes it sent us in all.
    pub given: u64,
    /// Whether it takes without giving ([`is_taker`]).
    pub taker: bool,
}

impl SourceFacts {
    /// The facts of a source from its record (`None`: a peer never seen).
    pub fn of(peer: PeerId, rate: f64, record: Option<&PeerRecord>, now: u64) -> Self {
        SourceFacts {
            peer,
            rate,
            score: record.map_or(0.0, |r| r.score_at(now)),
            owes: record.map_or(0, |r| r.sent.saturating_sub(r.received)),
            credit: record
                .filter(|r| r.sent > 0)
                .map_or(0, |r| r.received.saturating_sub(r.sent)),
            given: record.map_or(0, |r| r.received),
            taker: record.is_some_and(is_taker),
        }
    }

    /// Whether it owes us more than [`OWED_GRACE_BYTES`].
    fn in_debt(&self) -> bool {
        self.owes > OWED_GRACE_BYTES
    }

    /// Whether it gave us more than [`CREDIT_GRACE_BYTES`] beyond what we gave it.
    fn in_credit(&self) -> bool {
        self.credit > CREDIT_GRACE_BYTES
    }

    /// Sources are asked tier by tier: debtors, then the others, then creditors.
    fn tier(&self) -> u8 {
        if self.in_debt() {
            0
        } else if self.in_credit() {
            2
        } else {
            1
        }
    }

    /// Whether it goes last whatever it owes: a taker, or a negative score.
    fn shunned(&self) -> bool {
        self.taker || self.score < 0.0
    }
}

/// A source is a creditor, asked after the others, when it sent us more than this
/// beyond what we sent it.
pub const CREDIT_GRACE_BYTES: u64 = 4 << 20;

/// Verified bytes a source sent us are compared in steps of this much: among the
/// sources that neither owe us nor are owed, those that gave us less by a step or more
/// are asked first, and within a step the fastest.
pub const GIVEN_STEP_BYTES: u64 = 4 << 20;

/// Sources in the order a download fills their request pipelines: takers and those
/// with a score below zero last; first those that owe us more than
/// [`OWED_GRACE_BYTES`], most owed first; then the others, those that gave us least
/// first (in steps of [`GIVEN_STEP_BYTES`], so that every source's upload comes near
/// the others' rather than the fastest serving most), fastest first; then those
/// that gave us more than [`CREDIT_GRACE_BYTES`] beyond what we gave them, least first;
/// ties (newcomers have no rate yet) by score, then peer id so the order is stable.
pub fn source_order(sources: &mut [SourceFacts]) {
    sources.sort_by(|a, b| {
        a.shunned()
            .cmp(&b.shunned())
            .then(a.tier().cmp(&b.tier()))
            .then(match a.tier().max(b.tier()) {
                0 => b.owes.cmp(&a.owes),
                2 => a.credit.cmp(&b.credit),
                _ => (a.given / GIVEN_STEP_BYTES).cmp(&(b.given / GIVEN_STEP_BYTES)),
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
        assert_eq!(taking(&freeloader), Taking::Refuses);
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
            ..freeloader.clone()
        };
        assert!(!is_taker(&newcomer));
        // A refuser that answered one probe in 64 chunks we sent it is cleared (a busy
        // honest peer); one that gave less is not.
        let answered_once = PeerRecord {
            sent: 64 << 20,
            received: 1 << 20,
            ..freeloader.clone()
        };
        assert!(!is_taker(&answered_once));
        let gave_a_crumb = PeerRecord {
            sent: (64 << 20) + 1,
            ..answered_once
        };
        assert!(is_taker(&gave_a_crumb));
    }

    #[test]
    fn a_peer_that_passes_on_nothing_of_a_seeds_sole_chunks_is_a_taker() {
        // A seed asks nothing of anyone, so only pass-on can tell a hoarder.
        let hoarder = PeerRecord {
            sent: 40 << 20,
            sole_sent: 12 << 20,
            ..PeerRecord::default()
        };
        assert!(is_taker(&hoarder));
        assert_eq!(taking(&hoarder), Taking::Hoards);
        // One that also refused us is judged by the worse.
        let refuses_too = PeerRecord {
            chokes: TAKER_MIN_CHOKES,
            ..hoarder.clone()
        };
        assert_eq!(taking(&refuses_too), Taking::Refuses);
        // One that passed on an eighth of its sole chunks is not.
        let passes_on = PeerRecord {
            passed_on: (12 << 20) / PASS_ON_RATIO,
            ..hoarder.clone()
        };
        assert!(!is_taker(&passes_on));
        // Nor one that had too few chances yet.
        let newcomer = PeerRecord {
            sole_sent: HOARD_MIN_BYTES - 1,
            ..hoarder.clone()
        };
        assert!(!is_taker(&newcomer));
        // Nor one that gives us back directly.
        let trades = PeerRecord {
            received: 10 << 20,
            ..hoarder
        };
        assert!(!is_taker(&trades));
    }

    #[test]
    fn a_peer_we_gave_to_that_never_gave_back_is_probed_until_judged() {
        let suspect = PeerRecord {
            sent: TAKER_GRACE_BYTES + 1,
            ..PeerRecord::default()
        };
        assert!(is_worth_probing(&suspect));
        // Not before we gave it more than the grace…
        let newcomer = PeerRecord {
            sent: TAKER_GRACE_BYTES,
            ..suspect.clone()
        };
        assert!(!is_worth_probing(&newcomer));
        // …nor once it gave a 64th of what we gave it…
        let giver = PeerRecord {
            received: (TAKER_GRACE_BYTES + 1).div_ceil(REFUSER_RATIO),
            ..suspect.clone()
        };
        assert!(!is_worth_probing(&giver));
        // …but still once it refused often enough to be judged a taker: an honest peer
        // that was busy then clears itself by answering one.
        let refused = PeerRecord {
            chokes: TAKER_MIN_CHOKES,
            ..suspect
        };
        assert!(is_worth_probing(&refused) && is_taker(&refused));
        let answered = PeerRecord {
            received: 1 << 20,
            ..refused
        };
        assert!(!is_worth_probing(&answered) && !is_taker(&answered));
    }

    fn facts(peer: PeerId, rate: f64, score: f64, owes: u64) -> SourceFacts {
        SourceFacts {
            peer,
            rate,
            score,
            owes,
            credit: 0,
            given: 0,
            taker: false,
        }
    }

    #[test]
    fn sources_that_gave_us_much_more_than_we_gave_them_are_asked_after_the_others() {
        let [fast, creditor, big_creditor, debtor, taker] = [(); 5].map(|_| PeerId::random());
        let mut sources = vec![
            SourceFacts {
                credit: 64 << 20,
                ..facts(big_creditor, 1e9, 80.0, 0)
            },
            SourceFacts {
                taker: true,
                ..facts(taker, 1e9, 10.0, 64 << 20)
            },
            SourceFacts {
                credit: CREDIT_GRACE_BYTES + 1,
                ..facts(creditor, 1e9, 80.0, 0)
            },
            // A credit within the grace is no credit.
            SourceFacts {
                credit: CREDIT_GRACE_BYTES,
                ..facts(fast, 1e8, 0.0, 0)
            },
            facts(debtor, 0.0, 0.0, 2 << 20),
        ];
        source_order(&mut sources);
        let order: Vec<PeerId> = sources.iter().map(|s| s.peer).collect();
        assert_eq!(order, vec![debtor, fast, creditor, big_creditor, taker]);
        // The credit is read from the record: received beyond sent, if we sent anything.
        let record = PeerRecord {
            sent: 3 << 20,
            received: 10 << 20,
            ..PeerRecord::default()
        };
        let of = SourceFacts::of(fast, 1.0, Some(&record), 0);
        assert_eq!((of.credit, of.owes), (7 << 20, 0));
        let seed = PeerRecord { sent: 0, ..record };
        assert_eq!(SourceFacts::of(fast, 1.0, Some(&seed), 0).credit, 0);
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
    fn sources_that_gave_us_least_are_asked_first_then_the_fastest() {
        // A finished peer that gave us a lot and was never given anything (no creditor)
        // is asked after those that gave us less, however fast.
        let [rich, fast, slow, near] = [(); 4].map(|_| PeerId::random());
        let mut sources = vec![
            SourceFacts {
                given: 100 << 20,
                ..facts(rich, 1e9, 90.0, 0)
            },
            SourceFacts {
                given: 8 << 20,
                ..facts(fast, 1e8, 40.0, 0)
            },
            SourceFacts {
                given: 1 << 20,
                ..facts(slow, 1e5, 10.0, 0)
            },
            // Within the same step as `fast`: ranked by speed with it.
            SourceFacts {
                given: (8 << 20) + GIVEN_STEP_BYTES / 2,
                ..facts(near, 1e9, 40.0, 0)
            },
        ];
        source_order(&mut sources);
        let order: Vec<PeerId> = sources.iter().map(|s| s.peer).collect();
        assert_eq!(order, vec![slow, near, fast, rich]);
        let record = PeerRecord {
            received: 5 << 20,
            ..PeerRecord::default()
        };
        assert_eq!(SourceFacts::of(rich, 1.0, Some(&record), 0).given, 5 << 20);
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
