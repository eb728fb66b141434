//! One signed catalog entry: what a node says it publishes, signed with its identity key
//! so a searcher can drop entries forged by whoever relayed them.

use serde::{Deserialize, Serialize};

use crate::cid::{Cid, Codec};
use crate::identity::{self, SigningKey, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::media_type::is_valid_media_type;

/// What an entry's signature covers starts with these bytes, so a signature made for a
/// catalog entry can never be taken for a signature of anything else p2pd signs.
pub const ENTRY_SIGNATURE_DOMAIN: &[u8] = b"p2pd catalog entry v1\0";
/// The longest entry name, in bytes (the same bound as a name in a manifest response).
pub const MAX_ENTRY_NAME_LEN: usize = crate::message::MAX_NAME_LEN;
/// The largest encoded entry: a 255-byte name and a 127-byte media type make 594 bytes.
pub const MAX_ENTRY_LEN: usize = 1024;

/// Why an entry is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The name is empty.
    #[error("entry name is empty")]
    EmptyName,
    /// The name is longer than [`MAX_ENTRY_NAME_LEN`] bytes.
    #[error("entry name of {0} bytes is longer than {MAX_ENTRY_NAME_LEN}")]
    NameTooLong(usize),
    /// The name holds a control character (newline, escape, NUL…).
    #[error("entry name holds a control character")]
    ControlInName,
    /// The media type is not a plain lower-case `type/subtype`.
    #[error("invalid media type {0:?}")]
    MediaType(String),
    /// The CID does not name a manifest (codec `raw` names a chunk).
    #[error("entry CID {0} is not a file or directory CID")]
    NotAManifestCid(Cid),
    /// The signature does not verify under the publisher key.
    #[error("entry signature does not verify")]
    BadSignature,
    /// The entry is signed by someone other than the peer that sent it.
    #[error("entry is signed by another peer than the one that sent it")]
    WrongPublisher,
}

/// The facts an entry states, before they are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// The file CID, or the directory CID, that the entry lists.
    pub cid: Cid,
    /// The publisher's name for it (a display name: a receiver writes a file under it
    /// only through [`sanitize_file_name`](crate::names::sanitize_file_name)).
    pub name: String,
    /// Size in bytes (of the file, or the sum of a directory's files).
    pub size: u64,
    /// Media type, e.g. from [`media_type_for_name`](crate::media_type::media_type_for_name);
    /// `inode/directory` for a directory.
    pub media_type: String,
    /// When the publisher added it, in seconds since the Unix epoch.
    pub added: u64,
}

/// A signed entry. A decoded entry is well formed but not yet trusted: call
/// [`CatalogEntry::verify_from`] with the peer it came from before using it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireEntry")]
pub struct CatalogEntry {
    cid: Cid,
    name: String,
    size: u64,
    media_type: String,
    added: u64,
    #[serde(with = "serde_bytes")]
    publisher: [u8; PUBLIC_KEY_LEN],
    #[serde(with = "serde_bytes")]
    signature: [u8; SIGNATURE_LEN],
}

/// The same fields as [`CatalogEntry`], as they come off the wire, before the checks.
#[derive(Deserialize)]
struct WireEntry {
    cid: Cid,
    name: String,
    size: u64,
    media_type: String,
    added: u64,
    #[serde(with = "serde_bytes")]
    publisher: [u8; PUBLIC_KEY_LEN],
    #[serde(with = "serde_bytes")]
    signature: [u8; SIGNATURE_LEN],
}

impl TryFrom<WireEntry> for CatalogEntry {
    type Error = EntryError;

    fn try_from(wire: WireEntry) -> Result<Self, Self::Error> {
        let info = EntryInfo {
            cid: wire.cid,
            name: wire.name,
            size: wire.size,
            media_type: wire.media_type,
            added: wire.added,
        };
        info.check()?;
        Ok(CatalogEntry::assemble(info, wire.publisher, wire.signature))
    }
}

impl EntryInfo {
    /// Checks the rules every entry follows: a manifest CID, a name of 1 to 255 bytes
    /// with no control character, a valid media type.
    pub fn check(&self) -> Result<(), EntryError> {
        if self.cid.codec() != Codec::DagCbor {
            return Err(EntryError::NotAManifestCid(self.cid));
        }
        if self.name.is_empty() {
            return Err(EntryError::EmptyName);
        }
        if self.name.len() > MAX_ENTRY_NAME_LEN {
            return Err(EntryError::NameTooLong(self.name.len()));
        }
        if self.name.chars().any(char::is_control) {
            return Err(EntryError::ControlInName);
        }
        if !is_valid_media_type(&self.media_type) {
            return Err(EntryError::MediaType(self.media_type.clone()));
        }
        Ok(())
    }

    /// The exact bytes a publisher signs (spec: "Signed bytes"):
    /// `ENTRY_SIGNATURE_DOMAIN ‖ cid (36) ‖ size (u64 BE) ‖ added (u64 BE) ‖ publisher (32)
    /// ‖ name length (u16 BE) ‖ name ‖ media type length (u8) ‖ media type`.
    pub fn signed_bytes(&self, publisher: &[u8; PUBLIC_KEY_LEN]) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENTRY_SIGNATURE_DOMAIN.len() + 90 + self.name.len());
        out.extend_from_slice(ENTRY_SIGNATURE_DOMAIN);
        out.extend_from_slice(&self.cid.to_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.added.to_be_bytes());
        out.extend_from_slice(publisher);
        // check() bounds both lengths (255 and 127), so the casts are exact.
        out.extend_from_slice(&(self.name.len() as u16).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.push(self.media_type.len() as u8);
        out.extend_from_slice(self.media_type.as_bytes());
        out
    }

    /// Signs the entry with a node's identity key.
    pub fn sign(self, key: &SigningKey) -> Result<CatalogEntry, EntryError> {
        self.check()?;
        let publisher = key.verifying_key().to_bytes();
        let signature = identity::sign(key, &self.signed_bytes(&publisher));
        Ok(CatalogEntry::assemble(self, publisher, signature))
    }

    /// Builds an entry from a signature made elsewhere (e.g. by libp2p's
    /// `Keypair::sign` over [`EntryInfo::signed_bytes`]) and checks it.
    pub fn with_signature(
        self,
        publisher: [u8; PUBLIC_KEY_LEN],
        signature: [u8; SIGNATURE_LEN],
    ) -> Result<CatalogEntry, EntryError> {
        self.check()?;
        let entry = CatalogEntry::assemble(self, publisher, signature);
        entry.verify()?;
        Ok(entry)
    }
}

impl CatalogEntry {
    pub(super) fn assemble(
        info: EntryInfo,
        publisher: [u8; PUBLIC_KEY_LEN],
        signature: [u8; SIGNATURE_LEN],
    ) -> Self {
        CatalogEntry {
            cid: info.cid,
            name: info.name,
            size: info.size,
            media_type: info.media_type,
            added: info.added,
            publisher,
            signature,
        }
    }

    /// The signed facts.
    pub fn info(&self) -> EntryInfo {
        EntryInfo {
            cid: self.cid,
            name: self.name.clone(),
            size: self.size,
            media_type: self.media_type.clone(),
            added: self.added,
        }
    }

    /// The listed CID.
    pub fn cid(&self) -> &Cid {
        &self.cid
    }

    /// The publisher's name for it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Media type.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// When it was added (Unix seconds).
    pub fn added(&self) -> u64 {
        self.added
    }

    /// The publisher's Ed25519 public key.
    pub fn publisher(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.publisher
    }

    /// The signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// The publisher's binary libp2p peer id (`PeerId::from_bytes` takes it).
    pub fn publisher_peer_id(&self) -> [u8; identity::ED25519_PEER_ID_LEN] {
        identity::ed25519_peer_id(&self.publisher)
    }

    /// Checks the signature against the publisher key.
    pub fn verify(&self) -> Result<(), EntryError> {
        let signed = self.info().signed_bytes(&self.publisher);
        if identity::verify(&self.publisher, &signed, &self.signature) {
            Ok(())
        } else {
            Err(EntryError::BadSignature)
        }
    }

    /// Checks that the entry was signed by `sender`, the binary peer id of the peer that
    /// sent it (`PeerId::to_bytes`), and that the signature verifies.
    pub fn verify_from(&self, sender: &[u8]) -> Result<(), EntryError> {
        if identity::ed25519_key_of_peer_id(sender) != Some(self.publisher) {
            return Err(EntryError::WrongPublisher);
        }
        self.verify()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::codec;

    pub(crate) use crate::identity::tests::key;

    /// The largest valid entry: every field at its longest.
    pub(crate) fn largest() -> CatalogEntry {
        EntryInfo {
            name: "é".repeat(127) + "x",
            media_type: format!("{}/{}", "a".repeat(63), "b".repeat(63)),
            size: u64::MAX,
            added: u64::MAX,
            ..info("x")
        }
        .sign(&key(3))
        .unwrap()
    }

    pub(crate) fn info(name: &str) -> EntryInfo {
        EntryInfo {
            cid: Cid::for_manifest_bytes(name.as_bytes()),
            name: name.into(),
            size: 12,
            media_type: crate::media_type::media_type_for_name(name).into(),
            added: 1_700_000_000,
        }
    }

    #[test]
    fn signs_verifies_and_round_trips() {
        let entry = info("hello.txt").sign(&key(1)).unwrap();
        entry.verify().unwrap();
        entry.verify_from(&entry.publisher_peer_id()).unwrap();
        let bytes = codec::encode(&entry);
        let back: CatalogEntry = codec::decode(&bytes, MAX_ENTRY_LEN).unwrap();
        assert_eq!(back, entry);
        back.verify_from(&identity::ed25519_peer_id(
            &key(1).verifying_key().to_bytes(),
        ))
        .unwrap();
        // A signature from libp2p-style signing over signed_bytes gives the same entry.
        let publisher = key(1).verifying_key().to_bytes();
        let signature = identity::sign(&key(1), &info("hello.txt").signed_bytes(&publisher));
        assert_eq!(
            info("hello.txt")
                .with_signature(publisher, signature)
                .unwrap(),
            entry
        );
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let entry = info("hello.txt").sign(&key(1)).unwrap();
        let publisher = *entry.publisher();
        let signature = *entry.signature();
        let changes: [fn(&mut EntryInfo); 5] = [
            |i| i.name = "hellp.txt".into(),
            |i| i.size += 1,
            |i| i.added -= 1,
            |i| i.media_type = "text/html".into(),
            |i| i.cid = Cid::for_manifest_bytes(b"other"),
        ];
        for change in changes {
            let mut changed = entry.info();
            change(&mut changed);
            assert_eq!(
                changed.with_signature(publisher, signature),
                Err(EntryError::BadSignature)
            );
        }
        let other = key(2).verifying_key().to_bytes();
        assert_eq!(
            info("hello.txt").with_signature(other, signature),
            Err(EntryError::BadSignature)
        );
    }

    #[test]
    fn a_relayed_entry_is_refused_from_another_sender() {
        let entry = info("hello.txt").sign(&key(1)).unwrap();
        let relay = identity::ed25519_peer_id(&key(2).verifying_key().to_bytes());
        assert_eq!(entry.verify_from(&relay), Err(EntryError::WrongPublisher));
        assert_eq!(entry.verify_from(&[]), Err(EntryError::WrongPublisher));
    }

    #[test]
    fn invalid_facts_are_refused() {
        let cases: Vec<(EntryInfo, EntryError)> = vec![
            (
                EntryInfo {
                    name: String::new(),
                    ..info("x.txt")
                },
                EntryError::EmptyName,
            ),
            (
                EntryInfo {
                    name: "x".repeat(256),
                    ..info("x.txt")
                },
                EntryError::NameTooLong(256),
            ),
            (
                EntryInfo {
                    name: "a\nb".into(),
                    ..info("x.txt")
                },
                EntryError::ControlInName,
            ),
            (
                EntryInfo {
                    media_type: "text/plain; charset=x".into(),
                    ..info("x.txt")
                },
                EntryError::MediaType("text/plain; charset=x".into()),
            ),
            (
                EntryInfo {
                    cid: Cid::for_chunk(b"c"),
                    ..info("x.txt")
                },
                EntryError::NotAManifestCid(Cid::for_chunk(b"c")),
            ),
        ];
        for (bad, error) in cases {
            assert_eq!(bad.clone().sign(&key(1)), Err(error.clone()));
            // The same entry signed anyway does not decode.
            let publisher = key(1).verifying_key().to_bytes();
            let forged = CatalogEntry::assemble(bad.clone(), publisher, [0; 64]);
            let bytes = codec::encode(&forged);
            assert!(codec::decode::<CatalogEntry>(&bytes, MAX_ENTRY_LEN).is_err());
        }
    }

    #[test]
    fn the_largest_entry_fits_its_limit() {
        let entry = largest();
        let len = codec::encode(&entry).len();
        assert_eq!(len, 594);
        assert!(len <= MAX_ENTRY_LEN);
    }
}
