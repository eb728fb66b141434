//! Test builds only (`test-faults`): a catalog server that lies, so the tests can show
//! that searchers and browsers drop forged entries and hold them against the sender.
//! The daemon's hidden `--test-forge-catalog` option picks the lie.

use dht_proto::catalog::{CatalogEntry, CatalogResponse, EntryInfo, MAX_ENTRY_LEN};
use dht_proto::identity::SigningKey;
use dht_proto::Cid;
use serde::Serialize;

/// How the server forges its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Forgery {
    /// Every entry's signature has one bit flipped (fails verification).
    BadSignature,
    /// Every entry is re-signed, validly, by another key than the node's own (an entry
    /// relayed or made up in someone else's name).
    ForeignKey,
}

/// The wire fields of an entry, to write one whatever its signature.
#[derive(Serialize)]
struct Wire<'a> {
    cid: Cid,
    name: &'a str,
    size: u64,
    media_type: &'a str,
    added: u64,
    #[serde(with = "serde_bytes")]
    publisher: [u8; 32],
    #[serde(with = "serde_bytes")]
    signature: [u8; 64],
}

impl Forgery {
    /// The response with every entry forged.
    pub fn apply(self, response: CatalogResponse) -> CatalogResponse {
        match response {
            CatalogResponse::Results { entries, more } => CatalogResponse::Results {
                entries: entries.into_iter().filter_map(|e| self.forge(e)).collect(),
                more,
            },
            CatalogResponse::Page {
                entries,
                page,
                total,
            } => CatalogResponse::Page {
                entries: entries.into_iter().filter_map(|e| self.forge(e)).collect(),
                page,
                total,
            },
            other => other,
        }
    }

    fn forge(self, entry: CatalogEntry) -> Option<CatalogEntry> {
        match self {
            Forgery::ForeignKey => {
                EntryInfo::sign(entry.info(), &SigningKey::from_bytes(&[7; 32])).ok()
            }
            Forgery::BadSignature => {
                let mut signature = *entry.signature();
                signature[0] ^= 1;
                let wire = Wire {
                    cid: *entry.cid(),
                    name: entry.name(),
                    size: entry.size(),
                    media_type: entry.media_type(),
                    added: entry.added(),
                    publisher: *entry.publisher(),
                    signature,
                };
                dht_proto::codec::decode(&dht_proto::codec::encode(&wire), MAX_ENTRY_LEN).ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_entries_fail_their_checks_and_only_those() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let sender = dht_proto::identity::ed25519_peer_id(&key.verifying_key().to_bytes());
        let entry = EntryInfo {
            cid: Cid::for_manifest_bytes(b"x"),
            name: "holiday.jpg".into(),
            size: 3,
            media_type: "image/jpeg".into(),
            added: 5,
        }
        .sign(&key)
        .unwrap();
        let response = CatalogResponse::Results {
            entries: vec![entry],
            more: false,
        };
        let words = vec!["holiday".to_string()];
        let honest = response.clone().into_checked_entries(&sender, Some(&words));
        assert_eq!((honest.entries.len(), honest.rejected), (1, 0));
        for forgery in [Forgery::BadSignature, Forgery::ForeignKey] {
            let checked = forgery
                .apply(response.clone())
                .into_checked_entries(&sender, Some(&words));
            assert_eq!(
                (checked.entries.len(), checked.rejected),
                (0, 1),
                "{forgery:?}"
            );
        }
    }
}
