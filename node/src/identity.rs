//! The node's Ed25519 identity: made on first start, kept in the data directory (mode
//! 0600), loaded on every later start, so the peer id never changes.

use std::fs;
use std::path::Path;

use anyhow::Context as _;
use libp2p::identity::Keypair;

/// Loads the key at `path`, or makes one and saves it there.
pub fn load_or_create(path: &Path) -> anyhow::Result<Keypair> {
    match fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes)
            .with_context(|| format!("{} is not a valid node key", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .context("encoding the node key")?;
            chunk_store::fsutil::write_private(path, &bytes)?;
            tracing::info!(peer_id = %key.public().to_peer_id(), "created a new node identity");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The Ed25519 signing key of the node's identity, for records the node signs (its
/// catalog entries); signatures made with it verify against the key inside our peer id.
/// `None` for an identity of another key type, which cannot sign such records.
pub fn signing_key(key: &Keypair) -> Option<dht_proto::identity::SigningKey> {
    let pair = key.clone().try_into_ed25519().ok()?;
    let secret: [u8; 32] = pair.secret().as_ref().try_into().ok()?;
    Some(dht_proto::identity::SigningKey::from_bytes(&secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_key_is_the_identity_key() {
        let key = Keypair::generate_ed25519();
        let signing = signing_key(&key).expect("an Ed25519 identity");
        let public = signing.verifying_key().to_bytes();
        let peer_id = key.public().to_peer_id().to_bytes();
        assert_eq!(
            dht_proto::identity::ed25519_key_of_peer_id(&peer_id),
            Some(public)
        );
        // What libp2p signs verifies with the signing key's public half, and back.
        let message = b"p2pd catalog";
        let theirs: [u8; 64] = key.sign(message).unwrap().try_into().unwrap();
        assert!(dht_proto::identity::verify(&public, message, &theirs));
        assert_eq!(dht_proto::identity::sign(&signing, message), theirs);
    }
}
