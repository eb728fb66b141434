//! The peer ledger: what the node remembers of each peer it dealt with (its reputation
//! counters, bans and score history), one row per peer in the `peer-ledger-v1` table.
//!
//! The store keeps the rows, the node gives them meaning: a key is a peer's identity in
//! bytes, a value the node's encoded record, both opaque here and bounded in length.
//! Saving the rows that changed and forgetting those evicted happen in one transaction,
//! so a crash leaves either the old ledger or the new one, never a mix. The table is
//! created by the first save: a store that never dealt with a peer has none, and an
//! older store opens without writing anything.

use redb::{Durability, ReadableTable, TableError};

use crate::tables::PEER_LEDGER;
use crate::{Store, StoreError};

/// Longest key accepted (a libp2p peer id is at most 42 bytes today).
pub const MAX_LEDGER_KEY_LEN: usize = 128;
/// Longest value accepted.
pub const MAX_LEDGER_VALUE_LEN: usize = 16 << 10;
/// Rows kept at most; a save that would grow the table past this is refused (the node
/// evicts before it saves).
pub const MAX_LEDGER_ROWS: u64 = 100_000;

/// One ledger row: a key and its value.
pub type LedgerRow = (Vec<u8>, Vec<u8>);

/// One save: rows written (inserted or replaced) and keys forgotten.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LedgerChanges {
    /// `(key, value)` rows to write.
    pub write: Vec<LedgerRow>,
    /// Keys to remove.
    pub remove: Vec<Vec<u8>>,
}

impl LedgerChanges {
    /// Whether the save would change nothing.
    pub fn is_empty(&self) -> bool {
        self.write.is_empty() && self.remove.is_empty()
    }
}

impl Store {
    /// Every row of the peer ledger, in key order. Rows whose key or value is longer
    /// than the limits are skipped (they cannot have been written by [`Store::save_ledger`]).
    pub fn load_ledger(&self) -> Result<Vec<LedgerRow>, StoreError> {
        self.db.read(|tx| {
            let table = match tx.open_table(PEER_LEDGER) {
                Ok(table) => table,
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut rows = Vec::new();
            for item in table.iter()? {
                let (key, value) = item?;
                let (key, value) = (key.value(), value.value());
                if key.len() <= MAX_LEDGER_KEY_LEN && value.len() <= MAX_LEDGER_VALUE_LEN {
                    rows.push((key.to_vec(), value.to_vec()));
                }
            }
            Ok(rows)
        })
    }

    /// Writes and removes ledger rows in one durable transaction. Refuses (changing
    /// nothing) a key or value over the limits, or a save that would leave more than
    /// [`MAX_LEDGER_ROWS`] rows.
    pub fn save_ledger(&self, changes: &LedgerChanges) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        for (key, value) in &changes.write {
            if key.is_empty() || key.len() > MAX_LEDGER_KEY_LEN {
                return Err(StoreError::Invalid("ledger key of a bad length".into()));
            }
            if value.len() > MAX_LEDGER_VALUE_LEN {
                return Err(StoreError::Invalid("ledger record too long".into()));
            }
        }
        self.db.write(Durability::Immediate, |tx| {
            let mut table = tx.open_table(PEER_LEDGER)?;
            for key in &changes.remove {
                table.remove(key.as_slice())?;
            }
            for (key, value) in &changes.write {
                table.insert(key.as_slice(), value.as_slice())?;
            }
            if redb::ReadableTableMetadata::len(&table)? > MAX_LEDGER_ROWS {
                // Dropping the transaction uncommitted leaves the ledger as it was.
                return Err(StoreError::Invalid("peer ledger full".into()));
            }
            Ok(())
        })
    }

    /// Rows in the peer ledger.
    pub fn ledger_len(&self) -> Result<u64, StoreError> {
        self.db.read(|tx| match tx.open_table(PEER_LEDGER) {
            Ok(table) => Ok(redb::ReadableTableMetadata::len(&table)?),
            Err(TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(e.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
        (key.as_bytes().to_vec(), value.as_bytes().to_vec())
    }

    #[test]
    fn rows_survive_a_reopen_and_removals_apply() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert!(store.load_ledger().unwrap().is_empty());
            assert_eq!(store.ledger_len().unwrap(), 0);
            store
                .save_ledger(&LedgerChanges {
                    write: vec![row("a", "1"), row("b", "2")],
                    remove: vec![],
                })
                .unwrap();
            store
                .save_ledger(&LedgerChanges {
                    write: vec![row("b", "3")],
                    remove: vec![b"a".to_vec()],
                })
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load_ledger().unwrap(), vec![row("b", "3")]);
        assert_eq!(store.ledger_len().unwrap(), 1);
    }

    #[test]
    fn a_bad_save_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .save_ledger(&LedgerChanges {
                write: vec![row("a", "1")],
                remove: vec![],
            })
            .unwrap();
        let too_long = (b"b".to_vec(), vec![0; MAX_LEDGER_VALUE_LEN + 1]);
        for bad in [
            LedgerChanges {
                write: vec![row("c", "1"), too_long],
                remove: vec![b"a".to_vec()],
            },
            LedgerChanges {
                write: vec![(vec![], b"1".to_vec())],
                remove: vec![],
            },
            LedgerChanges {
                write: vec![(vec![1; MAX_LEDGER_KEY_LEN + 1], b"1".to_vec())],
                remove: vec![],
            },
        ] {
            assert!(matches!(
                store.save_ledger(&bad),
                Err(StoreError::Invalid(_))
            ));
        }
        assert_eq!(store.load_ledger().unwrap(), vec![row("a", "1")]);
    }
}
