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
