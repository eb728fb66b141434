//! What this node thinks of the peers it has dealt with: verified bytes they sent us,
//! bytes we sent them, corrupt chunks, failed requests, refusals, and bans. Kept in
//! memory, bounded, and saved to `reputation.json` in the data directory so that scores
//! and bans survive a restart.
//!
//! The score, from -100 to 100: `10 × log2(1 + MiB received) − 50 × corrupt chunks
//! − 25 × forged catalog entries − 2 × failed requests − 0.5 × refusals`; a banned peer
//! scores -100. Giving us verified data is what raises it; one corrupt chunk costs more
//! than 30 MiB earns, and a catalog entry that is not signed by the peer that sent it
//! (a forged search result) half as much.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// Peers remembered at most; the least interesting are forgotten first.
pub const MAX_PEERS: usize = 10_000;

/// What we know of one peer.
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
    /// Requests it refused (choked, or did not have what it claimed).
    pub refusals: u32,
    /// Catalog entries it sent that it did not sign (bad signature, or signed by another
    /// key), or that did not match the search. Absent in tables saved before it existed.
    #[serde(default)]
    pub forged_entries: u32,
    /// Banned until this time (seconds since the Unix epoch).
    pub banned_until: Option<u64>,
    /// Last time we dealt with it (seconds since the Unix epoch).
    pub last_seen: u64,
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

fn now_unix() -> u64 {
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
}

/// The table of peer records.
#[derive(Debug, Default)]
pub struct Reputation {
    peers: HashMap<PeerId, PeerRecord>,
    dirty: bool,
}

/// A copy of the table, to be written to its file away from the async runtime.
#[derive(Debug)]
pub struct Snapshot(Vec<(PeerId, PeerRecord)>);

impl Snapshot {
    /// Writes the table to `path` (atomically and durably). Encoding and the disk both
    /// take time: call it on a blocking thread.
    pub fn write(self, path: &Path) -> std::io::Result<()> {
        let saved = Saved {
            peers: self
                .0
                .into_iter()
                .map(|(p, r)| (p.to_string(), r))
                .collect(),
        };
        let bytes = serde_json::to_vec(&saved).map_err(std::io::Error::other)?;
        chunk_store::fsutil::write_atomic(path, &bytes)
    }
}

/// The file format: peer ids as strings.
#[derive(Serialize, Deserialize)]
struct Saved {
    peers: HashMap<String, PeerRecord>,
}

impl Reputation {
    /// Loads the table saved at `path` (an empty one if there is none or it is unreadable).
    pub fn load(path: &Path) -> Self {
        let Ok(bytes) = std::fs::read(path) else {
            return Reputation::default();
        };
        let saved: Saved = match serde_json::from_slice(&bytes) {
            Ok(saved) => saved,
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unreadable reputation file: {e}");
                return Reputation::default();
            }
        };
        let peers = saved
            .peers
            .into_iter()
            .filter_map(|(id, record)| Some((id.parse().ok()?, record)))
            .take(MAX_PEERS)
            .collect();
        Reputation {
            peers,
            dirty: false,
        }
    }

    /// A copy of the table if it changed since the last copy taken, which it marks
    /// saved. Cheap (no encoding, no I/O), so it can be taken under the table's lock
    /// and written without it.
    pub fn changes(&mut self) -> Option<Snapshot> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        Some(Snapshot(
            self.peers.iter().map(|(p, r)| (*p, r.clone())).collect(),
        ))
    }

    /// Marks the table changed again: its last copy could not be written.
    pub fn unsaved(&mut self) {
        self.dirty = true;
    }

    fn record(&mut self, peer: PeerId) -> &mut PeerRecord {
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_PEERS {
            self.evict();
        }
        self.dirty = true;
        let record = self.peers.entry(peer).or_default();
        record.last_seen = now_unix();
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
        }
    }

    /// Counts verified bytes a peer sent us.
    pub fn received(&mut self, peer: PeerId, bytes: u64) {
        self.record(peer).received += bytes;
    }

    /// Counts bytes we sent a peer.
    pub fn sent(&mut self, peer: PeerId, bytes: u64) {
        self.record(peer).sent += bytes;
    }

    /// Counts a failed or timed-out request.
    pub fn failure(&mut self, peer: PeerId) {
        self.record(peer).failures += 1;
    }

    /// Counts a refused request.
    pub fn refusal(&mut self, peer: PeerId) {
        self.record(peer).refusals += 1;
    }

    /// Counts catalog entries a peer sent that failed their checks.
    pub fn forged_entries(&mut self, peer: PeerId, entries: u32) {
        let record = self.record(peer);
        record.forged_entries = record.forged_entries.saturating_add(entries);
    }

    /// Counts a corrupt chunk and bans the peer for `duration`.
    pub fn corrupt(&mut self, peer: PeerId, duration: Duration) {
        let record = self.record(peer);
        record.corrupt_chunks += 1;
        record.banned_until = Some(now_unix() + duration.as_secs());
    }

    /// Whether a peer is banned now.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|r| r.is_banned_at(now_unix()))
    }

    /// One peer's record.
    #[cfg(test)]
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
    fn bans_expire_and_scores_and_bans_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reputation.json");
        let mut rep = Reputation::default();
        let peer = PeerId::random();
        let expired = PeerId::random();
        rep.received(peer, 1 << 20);
        rep.corrupt(peer, Duration::from_secs(3600));
        rep.corrupt(expired, Duration::ZERO);
        assert!(!rep.is_banned(&expired));
        rep.changes().unwrap().write(&path).unwrap();
        // Nothing changed since: nothing to write.
        assert!(rep.changes().is_none());
        let loaded = Reputation::load(&path);
        assert!(loaded.is_banned(&peer));
        assert_eq!(loaded.get(&peer), rep.get(&peer));
        // An unreadable file is ignored, not fatal.
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(Reputation::load(&path).iter().count(), 0);
    }

    #[test]
    fn a_copy_that_could_not_be_written_is_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut rep = Reputation::default();
        rep.refusal(PeerId::random());
        let copy = rep.changes().unwrap();
        // Changes made while the copy is written are in the next one.
        rep.refusal(PeerId::random());
        assert!(copy
            .write(&dir.path().join("missing/reputation.json"))
            .is_err());
        rep.unsaved();
        let again = rep.changes().unwrap();
        assert_eq!(again.0.len(), 2);
        again.write(&dir.path().join("reputation.json")).unwrap();
        assert_eq!(
            Reputation::load(&dir.path().join("reputation.json"))
                .iter()
                .count(),
            2
        );
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
