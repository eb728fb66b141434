//! The peers the node knew when it last saved them (its DHT routing table), so that a
//! restarted node can rejoin the network through them when no bootstrap node answers.
//! Peer ids and addresses are kept as the bytes the node gave; the store does not read
//! them.

use redb::{Durability, ReadableTable as _, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

/// Known peers by peer id bytes; the value is a [`KnownPeer`] as CBOR.
pub const KNOWN_PEERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("known-peers-v1");

/// Most peers kept (a routing table of 256 buckets of 20 holds at most 5,120).
pub const MAX_KNOWN_PEERS: usize = 5_120;
/// Most addresses kept per peer.
pub const MAX_ADDRS_PER_PEER: usize = 16;
/// Longest peer id or address kept, in bytes.
pub const MAX_ITEM_LEN: usize = 512;
/// Largest encoded record accepted when decoding.
const MAX_RECORD_LEN: usize = 16 << 10;

/// A peer the node knew, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownPeer {
    /// The peer id, as bytes.
    #[serde(with = "serde_bytes")]
    pub peer_id: Vec<u8>,
    /// Its addresses, each as bytes.
    pub addrs: Vec<serde_bytes::ByteBuf>,
}

impl Store {
    /// Replaces the saved peers with `peers` (at most [`MAX_KNOWN_PEERS`], each with at
    /// most [`MAX_ADDRS_PER_PEER`] addresses; longer items are left out). Durable at
    /// once: the list matters most after a crash, and it is saved seldom.
    pub fn save_known_peers(&self, peers: &[KnownPeer]) -> Result<(), StoreError> {
        self.db.write(Durability::Immediate, |tx| {
            let mut table = tx.open_table(KNOWN_PEERS)?;
            table.retain(|_, _| false)?;
            for peer in peers.iter().take(MAX_KNOWN_PEERS) {
                if peer.peer_id.len() > MAX_ITEM_LEN {
                    continue;
                }
                let kept = KnownPeer {
                    peer_id: peer.peer_id.clone(),
                    addrs: peer
                        .addrs
                        .iter()
                        .filter(|a| a.len() <= MAX_ITEM_LEN)
                        .take(MAX_ADDRS_PER_PEER)
                        .cloned()
                        .collect(),
                };
                if kept.addrs.is_empty() {
                    continue;
                }
                table.insert(
                    peer.peer_id.as_slice(),
                    dht_proto::codec::encode(&kept).as_slice(),
                )?;
            }
            Ok(())
        })
    }

    /// The saved peers; a record that does not decode is skipped (the list is a hint).
    pub fn known_peers(&self) -> Result<Vec<KnownPeer>, StoreError> {
        self.db.read(|tx| {
            let table = match tx.open_table(KNOWN_PEERS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![]),
                Err(e) => return Err(e.into()),
            };
            let mut peers = vec![];
            for row in table.iter()?.take(MAX_KNOWN_PEERS) {
                let (_, value) = row?;
                match dht_proto::codec::decode::<KnownPeer>(value.value(), MAX_RECORD_LEN) {
                    Ok(mut peer) => {
                        peer.addrs.truncate(MAX_ADDRS_PER_PEER);
                        peers.push(peer);
                    }
                    Err(e) => tracing::warn!("skipping a saved peer that does not decode: {e}"),
                }
            }
            Ok(peers)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8, addrs: usize) -> KnownPeer {
        KnownPeer {
            peer_id: vec![n; 38],
            addrs: (0..addrs)
                .map(|i| serde_bytes::ByteBuf::from(vec![n, i as u8]))
                .collect(),
        }
    }

    #[test]
    fn saved_peers_replace_the_previous_ones_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.known_peers().unwrap().is_empty());
        store.save_known_peers(&[peer(1, 2), peer(2, 1)]).unwrap();
        store.save_known_peers(&[peer(3, 1), peer(2, 3)]).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let mut saved = store.known_peers().unwrap();
        saved.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        assert_eq!(saved, vec![peer(2, 3), peer(3, 1)]);
    }

    #[test]
    fn limits_hold_and_peers_without_addresses_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut long = peer(5, 1);
        long.addrs
            .push(serde_bytes::ByteBuf::from(vec![0; MAX_ITEM_LEN + 1]));
        let many: Vec<KnownPeer> = (0..MAX_KNOWN_PEERS + 10)
            .map(|i| KnownPeer {
                peer_id: (i as u32).to_be_bytes().to_vec(),
                addrs: vec![serde_bytes::ByteBuf::from(vec![1])],
            })
            .collect();
        store.save_known_peers(&many).unwrap();
        assert_eq!(store.known_peers().unwrap().len(), MAX_KNOWN_PEERS);
        store
            .save_known_peers(&[peer(4, MAX_ADDRS_PER_PEER + 5), long, peer(6, 0)])
            .unwrap();
        let mut saved = store.known_peers().unwrap();
        saved.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        assert_eq!(saved.len(), 2);
        assert_eq!(saved[0].addrs.len(), MAX_ADDRS_PER_PEER);
        assert_eq!(saved[1].addrs.len(), 1);
    }
}
