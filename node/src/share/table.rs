//! The share table as it is kept in memory and in `<data dir>/shares.json`: each
//! share's id, file, expiry, and for a password share the Argon2id key and salt.

use std::path::Path;

use dht_proto::access::{KdfParams, KEY_LEN, SALT_LEN};
use dht_proto::ticket::{Ticket, SHARE_ID_LEN};
use dht_proto::Cid;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

/// File of the share table in the data directory.
pub const SHARES_FILE: &str = "shares.json";

/// What a password share keeps: the key derived from the password, and how.
#[derive(Clone, Serialize, Deserialize)]
pub struct Secret {
    /// The Argon2id salt.
    #[serde(with = "hex_bytes")]
    pub salt: [u8; SALT_LEN],
    /// The derived key (the password itself is never kept).
    #[serde(with = "hex_bytes")]
    pub key: [u8; KEY_LEN],
    /// The Argon2id parameters.
    pub kdf: KdfParams,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Share {
    /// The handle in its tickets (random, not a secret).
    #[serde(with = "hex_bytes")]
    pub id: [u8; SHARE_ID_LEN],
    /// The file.
    #[serde(with = "cid_text")]
    pub cid: Cid,
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether the CID names a directory.
    #[serde(default)]
    pub directory: bool,
    /// When it was made (Unix seconds).
    pub created_unix: u64,
    /// When it ends (Unix seconds), if it does.
    pub expires_unix: Option<u64>,
    /// Set for a password share.
    pub secret: Option<Secret>,
    /// For a password share of a folder: the folder's own files, which it keeps private
    /// with the folder (fixed when the share is made; a folder's content never changes).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "cid_list")]
    pub members: Vec<Cid>,
}

impl Share {
    /// Its id in hex.
    pub fn id_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.id)
    }

    /// Whether it has ended.
    pub fn is_expired_at(&self, now: u64) -> bool {
        self.expires_unix.is_some_and(|end| now >= end)
    }

    /// Its ticket, naming `provider` at `addrs`.
    pub fn ticket(&self, provider: PeerId, addrs: Vec<Multiaddr>) -> Ticket {
        Ticket {
            cid: self.cid,
            directory: self.directory,
            name: self.name.clone(),
            size: self.size,
            provider: provider.to_bytes(),
            addrs: addrs.iter().map(|a| a.to_vec()).collect(),
            expires: self.expires_unix,
            password: self.secret.is_some(),
            share_id: self.id,
        }
    }
}

/// The shares, oldest first.
#[derive(Default)]
pub(super) struct Table {
    shares: Vec<Share>,
}

impl Table {
    /// Reads the table; an unreadable one is moved aside (logged) and an empty one used.
    pub fn load(path: &Path) -> Table {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Table::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read the shares: {e}");
                return Table::default();
            }
        };
        match serde_json::from_slice::<Vec<Share>>(&bytes) {
            Ok(mut shares) => {
                shares.truncate(super::MAX_SHARES);
                Table { shares }
            }
            Err(e) => {
                let aside = path.with_extension("json.bad");
                tracing::warn!(path = %path.display(), aside = %aside.display(), "the shares file is damaged ({e}); starting with none");
                let _ = std::fs::rename(path, aside);
                Table::default()
            }
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.shares).unwrap_or_default()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Share> {
        self.shares.iter()
    }

    pub fn len(&self) -> usize {
        self.shares.len()
    }

    pub fn push(&mut self, share: Share) {
        self.shares.push(share);
    }

    /// Removes and returns the shares that match.
    pub fn remove(&mut self, matches: impl Fn(&Share) -> bool) -> Vec<Share> {
        let (gone, kept) = std::mem::take(&mut self.shares)
            .into_iter()
            .partition(|s| matches(s));
        self.shares = kept;
        gone
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::HEXLOWER.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = data_encoding::HEXLOWER
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom(format!("expected {N} bytes")))
    }
}

mod cid_text {
    use dht_proto::Cid;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(cid: &Cid, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&cid.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cid, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

mod cid_list {
    use dht_proto::Cid;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(cids: &[Cid], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(cids.iter().map(|c| c.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cid>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads_back_what_it_wrote_and_survives_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SHARES_FILE);
        let mut table = Table::default();
        table.push(Share {
            id: [7; SHARE_ID_LEN],
            cid: Cid::for_manifest_bytes(b"x"),
            name: "x.txt".into(),
            size: 1,
            directory: false,
            created_unix: 5,
            expires_unix: Some(9),
            secret: Some(Secret {
                salt: [1; SALT_LEN],
                key: [2; KEY_LEN],
                kdf: KdfParams::DEFAULT,
            }),
            members: vec![Cid::for_manifest_bytes(b"y")],
        });
        std::fs::write(&path, table.to_json()).unwrap();
        let back = Table::load(&path);
        assert_eq!(back.len(), 1);
        let share = back.iter().next().unwrap();
        assert_eq!(share.members, [Cid::for_manifest_bytes(b"y")]);
        assert_eq!(share.id, [7; SHARE_ID_LEN]);
        assert_eq!(share.secret.as_ref().unwrap().key, [2; KEY_LEN]);
        assert!(share.is_expired_at(9) && !share.is_expired_at(8));

        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(Table::load(&path).len(), 0);
        assert!(path.with_extension("json.bad").exists());
    }
}
