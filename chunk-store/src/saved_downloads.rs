//! The node's daemon-managed downloads, saved so that they outlive the daemon: which
//! files it was asked to download, with what output and timeout, and how each run
//! ended. The node resumes the unfinished ones when it starts again (even after a
//! SIGKILL) and lists the ended ones as a history, bounded to [`MAX_HISTORY`] and
//! clearable. The verified chunks themselves are the partial download's, kept as
//! `download` keeps them; this table only says what to do with them.

use std::path::PathBuf;

use dht_proto::Cid;
use redb::{Durability, ReadableTable};
use serde::{Deserialize, Serialize};

use crate::store::{cid_of, file_key};
use crate::tables::DOWNLOADS;
use crate::{Store, StoreError};

/// Ended downloads kept in the history; saving one more forgets the oldest.
pub const MAX_HISTORY: usize = 256;
/// Largest encoded record accepted when decoding.
const MAX_RECORD_LEN: usize = 16 << 10;

/// How a saved download stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SavedState {
    /// Queued or running when last saved: resumed when the node starts.
    Unfinished,
    /// Paused by the owner: stays paused until resumed.
    Paused,
    /// Finished.
    Done,
    /// Gave up, with the reason.
    Failed(String),
    /// Cancelled by the owner.
    Cancelled,
}

impl SavedState {
    /// Whether the download has ended for good (history), rather than waiting to run.
    pub fn has_ended(&self) -> bool {
        !matches!(self, SavedState::Unfinished | SavedState::Paused)
    }
}

/// One saved download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedDownload {
    /// The file (the key; filled in when read).
    #[serde(skip, default = "no_cid")]
    pub cid: Option<Cid>,
    /// How it stands.
    pub state: SavedState,
    /// Where it writes the file, if anywhere but the store.
    pub output: Option<PathBuf>,
    /// The directory it writes the file in under the provider's name.
    pub output_dir: Option<PathBuf>,
    /// Seconds without progress after which it gives up.
    pub timeout_secs: u64,
    /// The file's name, once known.
    pub name: Option<String>,
    /// The file's size, once known (0 before).
    pub size: u64,
    /// When it was saved, seconds since the Unix epoch (orders the history).
    pub saved_unix: u64,
}

fn no_cid() -> Option<Cid> {
    None
}

impl Store {
    /// Saves (or replaces) the record of the download of `cid`. Saving an ended one
    /// forgets the oldest ended ones past [`MAX_HISTORY`].
    pub fn save_download(&self, cid: &Cid, record: &SavedDownload) -> Result<(), StoreError> {
        let key = file_key(cid)?;
        let bytes = dht_proto::codec::encode(record);
        let ended = record.state.has_ended();
        self.db.write(Durability::Immediate, |tx| {
            let mut table = tx.open_table(DOWNLOADS)?;
            table.insert(key.as_slice(), bytes.as_slice())?;
            if ended {
                let mut history: Vec<([u8; 32], u64)> = Vec::new();
                for row in table.iter()? {
                    let (k, v) = row?;
                    let Ok(key) = <[u8; 32]>::try_from(k.value()) else {
                        continue;
                    };
                    if let Ok(r) = decode(v.value()) {
                        if r.state.has_ended() {
                            history.push((key, r.saved_unix));
                        }
                    }
                }
                if history.len() > MAX_HISTORY {
                    history.sort_by_key(|(_, at)| *at);
                    for (old, _) in &history[..history.len() - MAX_HISTORY] {
                        table.remove(old.as_slice())?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Every saved download, oldest saved first. Records that do not decode are skipped
    /// (and logged by the caller's absence of them): a bad row must not stop the node.
    pub fn saved_downloads(&self) -> Result<Vec<SavedDownload>, StoreError> {
        let mut all = self.db.read(|tx| {
            let table = tx.open_table(DOWNLOADS)?;
            let mut all = Vec::new();
            for row in table.iter()? {
                let (k, v) = row?;
                let Ok(key) = <[u8; 32]>::try_from(k.value()) else {
                    continue;
                };
                if let Ok(mut record) = decode(v.value()) {
                    record.cid = Some(cid_of(key));
                    all.push(record);
                }
            }
            Ok(all)
        })?;
        all.sort_by_key(|r| r.saved_unix);
        Ok(all)
    }

    /// Forgets the saved download of `cid`. Returns whether there was one.
    pub fn forget_download(&self, cid: &Cid) -> Result<bool, StoreError> {
        let key = file_key(cid)?;
        self.db.write(Durability::Immediate, |tx| {
            let existed = tx.open_table(DOWNLOADS)?.remove(key.as_slice())?.is_some();
            Ok(existed)
        })
    }
}

fn decode(bytes: &[u8]) -> Result<SavedDownload, StoreError> {
    dht_proto::codec::decode(bytes, MAX_RECORD_LEN)
        .map_err(|e| StoreError::Db(format!("corrupt download record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: SavedState, at: u64) -> SavedDownload {
        SavedDownload {
            cid: None,
            state,
            output: Some(PathBuf::from("/tmp/out")),
            output_dir: None,
            timeout_secs: 60,
            name: Some("f".into()),
            size: 10,
            saved_unix: at,
        }
    }

    fn cid(n: u32) -> Cid {
        Cid::for_manifest_bytes(&n.to_le_bytes())
    }

    #[test]
    fn saved_downloads_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .save_download(&cid(1), &record(SavedState::Unfinished, 1))
                .unwrap();
            store
                .save_download(&cid(2), &record(SavedState::Failed("gone".into()), 2))
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let all = store.saved_downloads().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].cid, Some(cid(1)));
        assert_eq!(all[0].state, SavedState::Unfinished);
        assert_eq!(all[0].output, Some(PathBuf::from("/tmp/out")));
        assert_eq!(all[1].state, SavedState::Failed("gone".into()));
        assert!(store.forget_download(&cid(1)).unwrap());
        assert!(!store.forget_download(&cid(1)).unwrap());
        assert_eq!(store.saved_downloads().unwrap().len(), 1);
    }

    #[test]
    fn the_history_keeps_the_newest_ended_downloads_and_every_unfinished_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .save_download(&cid(0), &record(SavedState::Paused, 0))
            .unwrap();
        let extra = 20;
        for n in 1..=(MAX_HISTORY as u32 + extra) {
            store
                .save_download(&cid(n), &record(SavedState::Done, u64::from(n)))
                .unwrap();
        }
        let all = store.saved_downloads().unwrap();
        assert_eq!(all.len(), MAX_HISTORY + 1);
        assert_eq!(all[0].cid, Some(cid(0)), "the paused one stays");
        // The oldest ended ones went.
        assert_eq!(all[1].saved_unix, u64::from(extra) + 1);
    }
}
