//! What this node thinks of the peers it has dealt with: verified bytes each way,
//! corrupt chunks, failed requests, refusals, chokes, first and last seen, bans with
//! their reason and expiry, and a bounded history of the score. Kept in memory, bounded,
//! and saved to the store's peer ledger ([`ledger`]) so that scores and bans survive a
//! restart or a crash.
//!
//! The score, from -100 to 100: `10 × log2(1 + MiB received) − 50 × corrupt chunks
//! − 25 × forged catalog entries − 2 × failed requests − 0.5 × refusals`; a banned peer
//! scores -100. Giving us verified data is what raises it; one corrupt chunk costs more
//! than 30 MiB earns, and a catalog entry that is not signed by the peer that sent it
//! (a forged search result) half as much. docs/reputation.md says why, and which
//! decisions it drives ([`rules`]).

pub mod ledger;
pub mod pass_on;
pub mod rules;
pub mod standing;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// Peers remembered at most; the least interesting are forgotten first.
pub const MAX_PEERS: usize = 10_000;
/// Score samples kept per peer (for the trend shown beside it).
pub const MAX_HISTORY: usize = 48;
/// A new score sample is taken at most this often per peer.
pub const HISTORY_INTERVAL: Duration = Duration::from_secs(60);
/// Chunks a peer may claim and then deny (`NotFound` to a chunk it advertised) before
/// it is banned for [`FALSE_HAVE_BAN`].
pub const MAX_FALSE_HAVES: u32 = 4;
/// How long a peer that keeps advertising chunks it does not have is refused.
pub const FALSE_HAVE_BAN: Duration = Duration::from_secs(600);
/// Ban reason of a peer that sent a chunk failing verification.
pub const REASON_CORRUPT: &str = "sent a corrupt chunk";
/// Ban reason of a peer that advertised chunks it did not have.
pub const REASON_FALSE_HAVE: &str = "advertised chunks it does not have";

/// One score sample: when (Unix seconds) and the score in hundredths of a point (the
/// ledger's encoding has no floats).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sample {
    /// Unix seconds.
    pub at: u64,
    /// Score × 100.
    pub score_hundredths: i32,
}

/// What we know of one peer. Fields added after the first version have defaults, so
/// older ledger rows still decode.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PeerRecord {
    /// Verified bytes it sent us.
    pub received: u64,
    /// Bytes we sent it.
    pub sent: u64,
    /// Chunks it sent that failed verification.
    pub corrupt_chunks: u32,
    /// Requests to it that timed out or failed.
    pub failures: u32,
    /// Chunks it advertised and then answered `NotFound` for.
    pub refusals: u32,
    /// Chunk requests it answered `Choked` (not in the score: choking is how a busy
    /// peer shares its slots; used to tell a peer that never gives, see [`rules`]).
    #[serde(default)]
    pub chokes: u32,
    /// Catalog entries it sent that it did not sign (bad signature, or signed by another
    /// key), or that did not match the search. Absent in tables saved before it existed.
    #[serde(default)]
    pub forged_entries: u32,
    /// Bytes of chunks we sent it, while holding the whole file, that no other peer was
    /// known to hold, once [`pass_on::PASS_ON_WINDOW`] has passed since (its chance to
    /// pass them on; see [`pass_on`]).
    #[serde(default)]
    pub sole_sent: u64,
    /// Bytes of those chunks that another peer announced afterwards, before we sent them
    /// to anyone else: data it passed on.
    #[serde(default)]
    pub passed_on: u64,
    /// Banned until this time (seconds since the Unix epoch).
    pub banned_until: Option<u64>,
    /// Why it was last banned.
    #[serde(default)]
    pub ban_reason: Option<String>,
    /// First time we dealt with it (seconds since the Unix epoch; 0 if not known).
    #[serde(default)]
    pub first_seen: u64,
    /// Last time we dealt with it (seconds since the Unix epoch).
    pub last_seen: u64,
    /// Score samples, oldest first, at most [`MAX_HISTORY`].
    #[serde(default)]
    pub history: Vec<Sample>,
}

/// One peer with its score.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerStanding {
    /// The peer.
    pub peer: PeerId,
    /// Its score.
    pub score: f64,
    /// Whether it is banned now.
    pub banned: bool,
    /// The counters behind the score.
    pub record: PeerRecord,
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl PeerRecord {
    /// Whether the peer is banned at `now` (Unix seconds).
    pub fn is_banned_at(&self, now: u64) -> bool {
        self.banned_until.is_some_and(|until| until > now)
    }

    /// The score (see the module documentation).
    pub fn score_at(&self, now: u64) -> f64 {
        if self.is_banned_at(now) {
            return -100.0;
        }
        let mib = self.received as f64 / (1024.0 * 1024.0);
        let score = 10.0 * (1.0 + mib).log2()
            - 50.0 * f64::from(self.corrupt_chunks)
            - 25.0 * f64::from(self.forged_entries)
            - 2.0 * f64::from(self.failures)
            - 0.5 * f64::from(self.refusals);
        score.clamp(-100.0, 100.0)
    }

    fn ban(&mut self, now: u64, duration: Duration, reason: &str) {
        self.banned_until = Some(now + duration.as_secs());
        self.ban_reason = Some(reason.to_string());
    }

    /// Adds a score sample if the last is older than [`HISTORY_INTERVAL`] (or its
    /// score differs and the last is at least a tenth of that old), dropping the oldest
    /// past [`MAX_HISTORY`].
    fn sample(&mut self, now: u64) {
        let score_hundredths = dht_proto::standing::Standing::hundredths(self.score_at(now));
        let interval = HISTORY_INTERVAL.as_secs();
        let due = self.history.last().is_none_or(|last| {
            let age = now.saturating_sub(last.at);
            age >= interval || (age >= interval / 10 && last.score_hundredths != score_hundredths)
        });
        if !due {
            return;
        }
        if self.history.len() >= MAX_HISTORY {
            self.history.remove(0);
        }
        self.history.push(Sample {
            at: now,
            score_hundredths,
        });
    }
}

/// The table of peer records, with what changed since it was last saved.
#[derive(Debug, Default)]
pub struct Reputation {
    peers: HashMap<PeerId, PeerRecord>,
    /// Peers whose record changed since the last save (at most [`MAX_PEERS`]).
    changed: HashSet<PeerId>,
    /// Peers forgotten since the last save, to remove from the ledger (bounded: a peer
    /// is added only when evicted, and removed when it comes back or is saved).
    forgotten: HashSet<PeerId>,
}

impl Reputation {
    /// A table holding `peers` (the first [`MAX_PEERS`]), all saved.
    pub fn from_records(peers: impl IntoIterator<Item = (PeerId, PeerRecord)>) -> Self {
        Reputation {
            peers: peers.into_iter().take(MAX_PEERS).collect(),
            ..Reputation::default()
        }
    }

    fn record(&mut self, peer: PeerId) -> &mut PeerRecord {
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_PEERS {
            self.evict();
        }
        self.changed.insert(peer);
        self.forgotten.remove(&peer);
        let now = now_unix();
        let record = self.peers.entry(peer).or_insert_with(|| PeerRecord {
            first_seen: now,
            ..PeerRecord::default()
        });
        record.last_seen = now;
        record
    }

    /// Forgets the tenth of peers that matter least: those not banned, least recently
    /// seen first; then, if bans fill the table, the bans that end soonest (a flood of
    /// banned identities must not grow it without bound).
    fn evict(&mut self) {
        let now = now_unix();
        let mut candidates: Vec<(bool, u64, PeerId)> = self
            .peers
            .iter()
            .map(|(p, r)| {
                let banned = r.is_banned_at(now);
                let order = if banned {
                    r.banned_until.unwrap_or(0)
                } else {
                    r.last_seen
                };
                (banned, order, *p)
            })
            .collect();
        let evict = MAX_PEERS / 10;
        if evict < candidates.len() {
            candidates.select_nth_unstable(evict);
            candidates.truncate(evict);
        }
        for (_, _, peer) in candidates {
            self.peers.remove(&peer);
            self.changed.remove(&peer);
            self.note_forgotten(peer);
        }
    }

    /// Counts verified bytes a peer sent us.
    pub fn received(&mut self, peer: PeerId, bytes: u64) {
        let record = self.record(peer);
        record.received += bytes;
        record.sample(record.last_seen);
    }

    /// Counts bytes we sent a peer.
    pub fn sent(&mut self, peer: PeerId, bytes: u64) {
        self.record(peer).sent += bytes;
    }

    /// Counts a failed or timed-out request.
    pub fn failure(&mut self, peer: PeerId) {
        let record = self.record(peer);
        record.failures += 1;
        record.sample(record.last_seen);
    }

    /// Counts a chunk a peer advertised and then did not have; bans it for
    /// [`FALSE_HAVE_BAN`] at the [`MAX_FALSE_HAVES`]th. Returns whether it is banned now.
    pub fn refusal(&mut self, peer: PeerId) -> bool {
        let record = self.record(peer);
        let now = record.last_seen;
        record.refusals += 1;
        if record.refusals.is_multiple_of(MAX_FALSE_HAVES) && !record.is_banned_at(now) {
            record.ban(now, FALSE_HAVE_BAN, REASON_FALSE_HAVE);
        }
        record.sample(now);
        record.is_banned_at(now)
    }

    /// Counts a chunk we sent a peer as the only known holder, whose chance to pass it
    /// on is over.
    pub fn sole_sent(&mut self, peer: PeerId, bytes: u64) {
        let record = self.record(peer);
        record.sole_sent = record.sole_sent.saturating_add(bytes);
    }

    /// Counts a chunk a peer passed on.
    pub fn passed_on(&mut self, peer: PeerId, bytes: u64) {
        let record = self.record(peer);
        record.passed_on = record.passed_on.saturating_add(bytes);
    }

    /// Counts a chunk request the peer answered `Choked`.
    pub fn choked(&mut self, peer: PeerId) {
        self.record(peer).chokes += 1;
    }

    /// Counts catalog entries a peer sent that failed their checks.
    pub fn forged_entries(&mut self, peer: PeerId, entries: u32) {
        let record = self.record(peer);
        record.forged_entries = record.forged_entries.saturating_add(entries);
        record.sample(record.last_seen);
    }

    /// Counts a corrupt chunk and bans the peer for `duration`.
    pub fn corrupt(&mut self, peer: PeerId, duration: Duration) {
        let record = self.record(peer);
        let now = record.last_seen;
        record.corrupt_chunks += 1;
        record.ban(now, duration, REASON_CORRUPT);
        record.sample(now);
    }

    /// Whether a peer is banned now.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|r| r.is_banned_at(now_unix()))
    }

    /// One peer's record.
    pub fn get(&self, peer: &PeerId) -> Option<&PeerRecord> {
        self.peers.get(peer)
    }

    /// Every peer's record.
    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &PeerRecord)> {
        self.peers.iter()
    }

    /// Every peer with its score, best first.
    pub fn table(&self) -> Vec<PeerStanding> {
        let mut table = self.standings();
        best_first(&mut table);
        table
    }

    /// Every peer with its score, in no order (sort with [`best_first`] after letting go
    /// of the table's lock).
    pub fn standings(&self) -> Vec<PeerStanding> {
        let now = now_unix();
        self.peers
            .iter()
            .map(|(peer, record)| PeerStanding {
                peer: *peer,
                score: (record.score_at(now) * 10.0).round() / 10.0,
                banned: record.is_banned_at(now),
                record: record.clone(),
            })
            .collect()
    }
}

impl crate::transfer::Transfers {
    /// What reputation says of a download source that delivered `rate` bytes per
    /// second in this download ([`rules::source_order`] ranks by it).
    pub fn source_facts(&self, peer: PeerId, rate: f64) -> rules::SourceFacts {
        let table = crate::transfer::lock(&self.inner.reputation);
        rules::SourceFacts::of(peer, rate, table.get(&peer), now_unix())
    }

    /// Chunk requests of ours `peer` answered `Choked` so far.
    pub(crate) fn chokes_of(&self, peer: &PeerId) -> u32 {
        let table = crate::transfer::lock(&self.inner.reputation);
        table.get(peer).map_or(0, |r| r.chokes)
    }

    /// Whether a download should probe `peer` ([`rules::is_worth_probing`]).
    pub(crate) fn worth_probing(&self, peer: &PeerId) -> bool {
        let table = crate::transfer::lock(&self.inner.reputation);
        table.get(peer).is_some_and(rules::is_worth_probing)
    }

    /// This node, holding the whole of `cid`, sent `peer` chunk `index` (`len` bytes):
    /// evidence of whether `peer` passes data on ([`pass_on`]), if `others_want` (another
    /// peer was downloading the file from this node then).
    pub(crate) fn note_seeded(
        &self,
        peer: PeerId,
        cid: dht_proto::Cid,
        index: u32,
        len: u64,
        others_want: bool,
    ) {
        let now = std::time::Instant::now();
        crate::transfer::lock(&self.inner.pass_on).sent(peer, cid, index, len, others_want, now);
        self.mature_pass_on();
    }

    /// `peer` announced chunk `index` of `cid` to this node: credits the peer it came
    /// through, if only one could have passed it on.
    pub(crate) fn note_announced(&self, peer: PeerId, cid: dht_proto::Cid, index: u32) {
        let now = std::time::Instant::now();
        let credit = crate::transfer::lock(&self.inner.pass_on).announced(peer, cid, index, now);
        if let Some((passer, len)) = credit {
            crate::transfer::lock(&self.inner.reputation).passed_on(passer, len);
        }
    }

    /// Counts the sole chunks whose window to be passed on ended as chances their
    /// recipients had.
    pub(crate) fn mature_pass_on(&self) {
        let now = std::time::Instant::now();
        let due = crate::transfer::lock(&self.inner.pass_on).mature(now);
        if due.is_empty() {
            return;
        }
        let mut table = crate::transfer::lock(&self.inner.reputation);
        for (peer, len) in due {
            table.sole_sent(peer, len);
        }
    }

    /// What each peer gave: verified bytes it sent us, and the bytes it passed on of
    /// the chunks this node, as a seed, sent it only (tit-for-tat ranks by it).
    pub(crate) fn contributions(&self) -> HashMap<PeerId, u64> {
        crate::transfer::lock(&self.inner.reputation)
            .iter()
            .map(|(peer, r)| (*peer, r.received.saturating_add(r.passed_on)))
            .collect()
    }
}

/// Sorts peers best score first, ties in peer-id order.
pub fn best_first(table: &mut [PeerStanding]) {
    table.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.peer.cmp(&b.peer)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn giving_raises_the_score_and_corruption_sinks_it() {
        let mut rep = Reputation::default();
        let good = PeerId::random();
        let bad = PeerId::random();
        rep.received(good, 64 << 20);
        rep.received(bad, 64 << 20);
        rep.corrupt(bad, Duration::from_secs(60));
        let table = rep.table();
        assert_eq!(table[0].peer, good);
        assert!((table[0].score - 60.2).abs() < 0.05, "{}", table[0].score);
        assert_eq!(table[1].score, -100.0);
        assert!(table[1].banned && rep.is_banned(&bad) && !rep.is_banned(&good));
        assert_eq!(table[1].record.ban_reason.as_deref(), Some(REASON_CORRUPT));
        rep.failure(good);
        rep.refusal(good);
        assert!(rep.table()[0].score < 60.0);
        // A forged catalog entry costs half a corrupt chunk, and does not ban.
        let forger = PeerId::random();
        rep.received(forger, 64 << 20);
        rep.forged_entries(forger, 1);
        let forger_row = rep
            .table()
            .into_iter()
            .find(|r| r.record.forged_entries == 1);
        let forger_row = forger_row.unwrap();
        assert!(
            (forger_row.score - 35.2).abs() < 0.05,
            "{}",
            forger_row.score
        );
        assert!(!forger_row.banned);
    }

    #[test]
    fn a_peer_that_keeps_denying_what_it_advertised_is_banned() {
        let mut rep = Reputation::default();
        let liar = PeerId::random();
        for _ in 1..MAX_FALSE_HAVES {
            assert!(!rep.refusal(liar));
        }
        assert!(rep.refusal(liar));
        assert!(rep.is_banned(&liar));
        let record = rep.get(&liar).unwrap();
        assert_eq!(record.ban_reason.as_deref(), Some(REASON_FALSE_HAVE));
        let until = record.banned_until.unwrap();
        assert!(until >= now_unix() + FALSE_HAVE_BAN.as_secs() - 1);
    }

    #[test]
    fn bans_expire() {
        let mut rep = Reputation::default();
        let expired = PeerId::random();
        rep.corrupt(expired, Duration::ZERO);
        assert!(!rep.is_banned(&expired));
        assert!(rep.get(&expired).unwrap().score_at(now_unix()) > -100.0);
    }

    #[test]
    fn the_history_is_sampled_and_bounded() {
        let mut record = PeerRecord::default();
        let start = 1_700_000_000;
        for minute in 0..(MAX_HISTORY as u64 * 2) {
            record.received += 1 << 20;
            record.sample(start + minute * HISTORY_INTERVAL.as_secs());
            // A second change at once adds no sample.
            record.sample(start + minute * HISTORY_INTERVAL.as_secs() + 1);
        }
        assert_eq!(record.history.len(), MAX_HISTORY);
        assert!(record.history.windows(2).all(|w| w[0].at < w[1].at));
        let last = record.history.last().unwrap();
        assert_eq!(
            last.at,
            start + (MAX_HISTORY as u64 * 2 - 1) * HISTORY_INTERVAL.as_secs()
        );
        // Rising received bytes, rising score.
        assert!(record.history[0].score_hundredths < last.score_hundredths);
    }

    #[test]
    fn ten_thousand_banned_peers_coming_and_going_keep_the_table_bounded() {
        let mut rep = Reputation::default();
        let mut banned = Vec::new();
        for n in 0..MAX_PEERS + 1000 {
            let peer = PeerId::random();
            // Later bans last longer.
            rep.corrupt(peer, Duration::from_secs(3600 + n as u64));
            banned.push(peer);
            assert!(rep.iter().count() <= MAX_PEERS);
            assert!(rep.changed.len() <= MAX_PEERS);
        }
        // The bans that end soonest were forgotten, the latest are kept.
        assert!(rep.is_banned(banned.last().unwrap()));
        assert!(!rep.is_banned(&banned[0]));
        // Peers not banned are forgotten before any ban.
        let mut rep = Reputation::default();
        let villain = PeerId::random();
        rep.corrupt(villain, Duration::from_secs(3600));
        for _ in 0..MAX_PEERS + 1000 {
            rep.received(PeerId::random(), 1);
        }
        assert!(rep.is_banned(&villain));
    }

    #[test]
    fn the_table_is_bounded() {
        let mut rep = Reputation::default();
        for _ in 0..MAX_PEERS + 5 {
            rep.refusal(PeerId::random());
        }
        assert!(rep.iter().count() <= MAX_PEERS);
    }
}
