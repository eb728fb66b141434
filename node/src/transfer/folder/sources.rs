//! The sources a folder fetch gives its files. Each file of a folder is an ordinary
//! download, which would otherwise start with a DHT provider lookup of its own: for a
//! folder of many small files, one lookup per file, each taking longer than the file's
//! transfer. The folder's providers almost always hold its files, so the fetch hands
//! them to every file as starting sources: the peer that sent the directory manifest
//! first, then the others the folder's lookup found. A file whose sources do not have
//! it still looks the DHT up after a moment (`fetch/peers.rs`).

use std::time::Duration;

use dht_proto::Cid;
use libp2p::PeerId;

use super::MAX_FOLDER_FETCHES;
use crate::transfer::{lock, Transfers};

/// Sources kept per folder.
pub(crate) const MAX_FOLDER_SOURCES: usize = 16;
/// How long a fetch that resumes from the store (no manifest download, so no known
/// providers) waits for the folder's provider lookup to name a first provider.
const LOOKUP_WAIT: Duration = Duration::from_secs(5);

impl Transfers {
    /// Keeps the peers that hold the folder `cid` (the one that sent its manifest
    /// first) for the fetch that follows.
    pub(crate) fn remember_folder_sources(&self, cid: Cid, mut peers: Vec<PeerId>) {
        peers.truncate(MAX_FOLDER_SOURCES);
        let mut sources = lock(&self.inner.folders.sources);
        if sources.len() >= MAX_FOLDER_FETCHES && !sources.contains_key(&cid) {
            // Manifests fetched by no folder fetch (that never took their sources).
            sources.clear();
        }
        sources.insert(cid, peers);
    }

    /// The sources for the files of the folder `cid`: those its manifest download
    /// found, or else the first providers a lookup of the folder finds.
    pub(super) async fn folder_sources(&self, cid: Cid) -> Vec<PeerId> {
        let known = lock(&self.inner.folders.sources).remove(&cid);
        if let Some(peers) = known.filter(|p| !p.is_empty()) {
            return peers;
        }
        let mut found = self.net().find_providers(cid).await;
        let mut peers = Vec::new();
        if let Ok(Some(first)) = tokio::time::timeout(LOOKUP_WAIT, found.recv()).await {
            peers.push(first);
            // Others already named come along; the lookup is not waited for.
            while let Ok(peer) = found.try_recv() {
                if peers.len() >= MAX_FOLDER_SOURCES {
                    break;
                }
                peers.push(peer);
            }
        }
        tracing::debug!(%cid, sources = peers.len(), "folder sources from a lookup");
        peers
    }
}
