//! Saving the reputation table in the store's peer ledger (`chunk_store::ledger`): a
//! row per peer, keyed by its peer id bytes, its [`PeerRecord`] as CBOR. Only the
//! records that changed since the last save are written, with the removal of the peers
//! forgotten since, in one redb transaction: a crash loses at most the changes since
//! the last save, never the ledger. A `reputation.json` left by an older version is
//! read once into the ledger, then deleted.

use std::path::Path;

use chunk_store::ledger::MAX_LEDGER_VALUE_LEN;
use chunk_store::{LedgerChanges, Store, StoreError};
use libp2p::PeerId;

use super::{PeerRecord, Reputation, MAX_PEERS};

/// Forgotten peers remembered for removal at most, between two saves; past this the
/// rows stay and are trimmed when the ledger is next loaded.
const MAX_FORGOTTEN: usize = 2 * MAX_PEERS;

/// The changes of the table since its last save, to be written away from the async
/// runtime.
#[derive(Debug)]
pub struct Snapshot {
    changes: LedgerChanges,
    written: Vec<PeerId>,
    removed: Vec<PeerId>,
}

impl Snapshot {
    /// Writes the changes in one durable transaction. Encoding is done; the disk takes
    /// time: call it on a blocking thread.
    pub fn write(&self, store: &Store) -> Result<(), StoreError> {
        store.save_ledger(&self.changes)
    }

    /// How many peers' rows this snapshot writes or removes.
    #[cfg(test)]
    pub fn peers(&self) -> usize {
        self.written.len() + self.removed.len()
    }
}

impl Reputation {
    /// Loads the table from the store's ledger, skipping rows that do not decode; if
    /// there are more rows than [`MAX_PEERS`], the least recently seen are forgotten
    /// (and removed at the next save).
    pub fn load(store: &Store) -> Result<Self, StoreError> {
        let mut rows: Vec<(PeerId, PeerRecord)> = store
            .load_ledger()?
            .into_iter()
            .filter_map(|(key, value)| {
                let peer = PeerId::from_bytes(&key).ok()?;
                match dht_proto::codec::decode::<PeerRecord>(&value, MAX_LEDGER_VALUE_LEN) {
                    Ok(record) => Some((peer, record)),
                    Err(e) => {
                        tracing::warn!(%peer, "ignoring an unreadable peer ledger row: {e}");
                        None
                    }
                }
            })
            .collect();
        rows.sort_by_key(|(_, r)| std::cmp::Reverse(r.last_seen));
        let extra: Vec<PeerId> = rows.iter().skip(MAX_PEERS).map(|(p, _)| *p).collect();
        let mut table = Reputation::from_records(rows);
        table
            .forgotten
            .extend(extra.into_iter().take(MAX_FORGOTTEN));
        Ok(table)
    }

    /// Reads a `reputation.json` written by an older version into the table (every
    /// record in it counts as changed). Returns whether there was one to read.
    pub fn import_legacy(&mut self, path: &Path) -> bool {
        #[derive(serde::Deserialize)]
        struct Saved {
            peers: std::collections::HashMap<String, PeerRecord>,
        }
        let Ok(bytes) = std::fs::read(path) else {
            return false;
        };
        let saved: Saved = match serde_json::from_slice(&bytes) {
            Ok(saved) => saved,
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unreadable reputation file: {e}");
                return true;
            }
        };
        for (id, record) in saved.peers {
            if self.peers.len() >= MAX_PEERS {
                break;
            }
            let Ok(peer) = id.parse::<PeerId>() else {
                continue;
            };
            self.peers.entry(peer).or_insert(record);
            self.changed.insert(peer);
        }
        true
    }

    /// The changes since the last snapshot taken, which are marked saved; `None` if
    /// there are none. Cheap enough to take under the table's lock (only the changed
    /// records are encoded).
    pub fn changes(&mut self) -> Option<Snapshot> {
        if self.changed.is_empty() && self.forgotten.is_empty() {
            return None;
        }
        let written: Vec<PeerId> = self.changed.drain().collect();
        let removed: Vec<PeerId> = self.forgotten.drain().collect();
        let write = written
            .iter()
            .filter_map(|peer| {
                let record = self.peers.get(peer)?;
                Some((peer.to_bytes(), dht_proto::codec::encode(record)))
            })
            .collect();
        let remove = removed.iter().map(|p| p.to_bytes()).collect();
        Some(Snapshot {
            changes: LedgerChanges { write, remove },
            written,
            removed,
        })
    }

    /// The snapshot could not be written: its peers count as changed again (those
    /// still known), or forgotten (those not).
    pub fn unsaved(&mut self, snapshot: Snapshot) {
        for peer in snapshot.written.into_iter().chain(snapshot.removed) {
            if self.peers.contains_key(&peer) {
                self.changed.insert(peer);
            } else if self.forgotten.len() < MAX_FORGOTTEN {
                self.forgotten.insert(peer);
            }
        }
    }

    /// Marks a forgotten peer for removal from the ledger (bounded).
    pub(super) fn note_forgotten(&mut self, peer: PeerId) {
        if self.forgotten.len() < MAX_FORGOTTEN {
            self.forgotten.insert(peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn scores_bans_and_history_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let peer = PeerId::random();
        let expired = PeerId::random();
        let before = {
            let store = Store::open(dir.path()).unwrap();
            let mut rep = Reputation::load(&store).unwrap();
            rep.received(peer, 1 << 20);
            rep.corrupt(peer, Duration::from_secs(3600));
            rep.corrupt(expired, Duration::ZERO);
            rep.changes().unwrap().write(&store).unwrap();
            // Nothing changed since: nothing to write.
            assert!(rep.changes().is_none());
            rep.get(&peer).unwrap().clone()
        };
        let store = Store::open(dir.path()).unwrap();
        let loaded = Reputation::load(&store).unwrap();
        assert!(loaded.is_banned(&peer) && !loaded.is_banned(&expired));
        assert_eq!(loaded.get(&peer), Some(&before));
        assert!(!before.history.is_empty() && before.first_seen > 0);
    }

    #[test]
    fn a_snapshot_that_could_not_be_written_is_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut rep = Reputation::default();
        rep.refusal(PeerId::random());
        let copy = rep.changes().unwrap();
        // Changes made while the copy is written are in the next one.
        rep.refusal(PeerId::random());
        rep.unsaved(copy);
        let again = rep.changes().unwrap();
        assert_eq!(again.peers(), 2);
        again.write(&store).unwrap();
        assert_eq!(Reputation::load(&store).unwrap().iter().count(), 2);
    }

    #[test]
    fn forgotten_peers_leave_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut rep = Reputation::default();
        for _ in 0..MAX_PEERS {
            rep.received(PeerId::random(), 1);
        }
        rep.changes().unwrap().write(&store).unwrap();
        // One more peer evicts a tenth of the table, in memory and in the ledger.
        rep.received(PeerId::random(), 1);
        rep.changes().unwrap().write(&store).unwrap();
        let rows = store.ledger_len().unwrap() as usize;
        assert_eq!(rows, rep.iter().count());
        assert!(rows <= MAX_PEERS);
    }

    #[test]
    fn an_old_json_file_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reputation.json");
        let peer = PeerId::random();
        std::fs::write(
            &path,
            format!(
                r#"{{"peers":{{"{peer}":{{"received":5,"sent":1,"corrupt_chunks":0,"failures":0,"refusals":2,"banned_until":null,"last_seen":9}},"not a peer":{{"received":1,"sent":0,"corrupt_chunks":0,"failures":0,"refusals":0,"banned_until":null,"last_seen":1}}}}}}"#
            ),
        )
        .unwrap();
        let mut rep = Reputation::default();
        assert!(rep.import_legacy(&path));
        assert_eq!(rep.get(&peer).unwrap().received, 5);
        assert_eq!(rep.iter().count(), 1);
        assert_eq!(rep.changes().unwrap().peers(), 1);
        assert!(!rep.import_legacy(&dir.path().join("missing.json")));
    }
}
