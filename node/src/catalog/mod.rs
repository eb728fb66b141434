//! This node's catalog and the search of other nodes' catalogs: decentralized, signed
//! keyword search and browsing (docs/protocol.md §11).
//!
//! The catalog is a function of the store: a file is in it while it is complete,
//! published and listed (`add --unlisted`, `p2pd unlist` clear that). Each entry is
//! signed with the node's identity key, and each keyword of its name is announced in
//! the DHT, so any node can find the peers that list a word and ask them over the
//! catalog protocol.
//!
//! # Layout
//! - `index.rs`: [`Index`], the listed entries in memory, indexed by word and by age,
//!   and the reference-counted keyword keys.
//! - `sync.rs`: keeps the index in step with the store (the store's entry watcher) and
//!   the network's keyword announcements in step with the index.
//! - `server.rs`: answers peers' catalog requests from the index, rate-limited per peer
//!   (`limiter.rs`); never an unlisted file; browsing only while the owner allows it.
//! - `search.rs`: [`Catalog::search`], asking the peers that provide the words' keys.
//! - `results.rs`: merging verified entries by CID and ranking them.
//! - `browse.rs`: [`Catalog::browse`], paging through one peer's listed entries.
//! - `forge.rs` (test builds only): a catalog server that lies, for the tests (another
//!   test switch makes it slow).

pub mod browse;
#[cfg(feature = "test-faults")]
pub mod forge;
pub mod index;
pub mod limiter;
pub mod results;
pub mod search;
mod server;
mod sync;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chunk_store::{EntryInfo as StoreEntry, EntryState, Store, StoreError};
use dht_proto::catalog::{CatalogEntry, EntryInfo};
use dht_proto::identity::SigningKey;
use dht_proto::Cid;
use serde::{Deserialize, Serialize};

use crate::network::{KeywordAnnouncements, Network};
use crate::tasks::Tasks;
use crate::transfer::Transfers;
pub use browse::{BrowseError, BrowseTarget, Browsed};
pub use index::Index;
pub use results::SearchHit;
pub use search::{SearchEvent, SearchSummary};

/// File in the data directory holding [`CatalogSettings`] as JSON.
pub const CATALOG_FILE: &str = "catalog.json";

/// What the owner decides about the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogSettings {
    /// Whether peers may page through the whole catalog (search works either way).
    #[serde(default = "yes")]
    pub browse: bool,
}

fn yes() -> bool {
    true
}

impl Default for CatalogSettings {
    fn default() -> Self {
        CatalogSettings { browse: true }
    }
}

/// Reads the catalog settings of a data directory (defaults if there are none or they
/// do not parse: a broken file must not stop the daemon).
pub fn load_settings(data_dir: &Path) -> CatalogSettings {
    std::fs::read(data_dir.join(CATALOG_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// How the catalog stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogStatus {
    /// Entries listed.
    pub listed: usize,
    /// Distinct keywords of the listed names, each one DHT key.
    pub keywords: usize,
    /// How announcing those keys went.
    pub announcements: KeywordAnnouncements,
    /// Whether peers may browse.
    pub browse: bool,
}

/// Why a file is not in the catalog although listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotInCatalog {
    /// The owner unlisted it.
    Unlisted,
    /// The owner stopped announcing it (`unpublish`).
    Unpublished,
    /// It is still being downloaded.
    Incomplete,
    /// It was tracked in place and changed on disk.
    ChangedOnDisk,
    /// It has no name to list it under, or one no entry may carry.
    Unnamed,
    /// The node's identity cannot sign entries.
    CannotSign,
}

impl std::fmt::Display for NotInCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotInCatalog::Unlisted => "unlisted",
            NotInCatalog::Unpublished => "not published (unpublished)",
            NotInCatalog::Incomplete => "still downloading",
            NotInCatalog::ChangedOnDisk => "changed on disk since it was added",
            NotInCatalog::Unnamed => "has no name an entry can carry",
            NotInCatalog::CannotSign => "this node's identity cannot sign entries",
        })
    }
}

/// The node's catalog (cheap to clone).
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Shared>,
}

struct Shared {
    index: Mutex<Index>,
    signer: Option<SigningKey>,
    store: Arc<Store>,
    net: Network,
    transfers: Transfers,
    settings: Mutex<CatalogSettings>,
    data_dir: PathBuf,
    /// Where searches run, as children of the daemon's task tree.
    tasks: Tasks,
    /// Held while the index is brought in step with the store (see `sync.rs`).
    refreshing: tokio::sync::Mutex<()>,
    #[cfg(feature = "test-faults")]
    forgery: Option<forge::Forgery>,
    #[cfg(feature = "test-faults")]
    answer_delay: Option<std::time::Duration>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the catalog needs from the daemon.
pub struct CatalogParts {
    /// The store whose listed files it lists.
    pub store: Arc<Store>,
    /// The network it announces keywords and answers peers on.
    pub net: Network,
    /// Where peers that send forged entries lose reputation.
    pub transfers: Transfers,
    /// The node's signing key (`None`: nothing can be listed).
    pub signer: Option<SigningKey>,
    /// The data directory (settings).
    pub data_dir: PathBuf,
    /// The daemon's task tree: each search runs as a child task.
    pub tasks: Tasks,
    /// Test builds: make the catalog server lie.
    #[cfg(feature = "test-faults")]
    pub forgery: Option<forge::Forgery>,
    /// Test builds: make the catalog server answer this late (a slow peer).
    #[cfg(feature = "test-faults")]
    pub answer_delay: Option<std::time::Duration>,
}

impl Catalog {
    /// Makes the catalog, and the task to run for it: it keeps the catalog in step with
    /// the store (beginning with the whole store) and answers peers, until the store or
    /// the network goes away. Peers are answered "no catalog" until the task runs.
    pub async fn start(parts: CatalogParts) -> (Catalog, impl Future<Output = ()> + Send) {
        if parts.signer.is_none() {
            tracing::warn!("the node's identity is not an Ed25519 key: its catalog stays empty");
        }
        let catalog = Catalog {
            inner: Arc::new(Shared {
                index: Mutex::new(Index::default()),
                signer: parts.signer,
                settings: Mutex::new(load_settings(&parts.data_dir)),
                store: parts.store,
                net: parts.net,
                transfers: parts.transfers,
                data_dir: parts.data_dir,
                tasks: parts.tasks,
                refreshing: tokio::sync::Mutex::new(()),
                #[cfg(feature = "test-faults")]
                forgery: parts.forgery,
                #[cfg(feature = "test-faults")]
                answer_delay: parts.answer_delay,
            }),
        };
        let changes = sync::watch_store(&catalog.inner.store);
        let (requests, inbound) = tokio::sync::mpsc::channel(server::QUEUE);
        catalog.inner.net.serve_catalog(requests).await;
        let task = {
            let catalog = catalog.clone();
            async move {
                tokio::join!(
                    sync::keep_in_step(catalog.clone(), changes),
                    server::run(catalog, inbound)
                );
            }
        };
        (catalog, task)
    }

    /// How the catalog stands now.
    pub async fn status(&self) -> CatalogStatus {
        let (listed, keywords) = {
            let index = lock(&self.inner.index);
            (index.len(), index.provided_keywords().len())
        };
        CatalogStatus {
            listed,
            keywords,
            announcements: self
                .inner
                .net
                .keyword_announcements()
                .await
                .unwrap_or_default(),
            browse: self.settings().browse,
        }
    }

    /// The owner's settings.
    pub fn settings(&self) -> CatalogSettings {
        *lock(&self.inner.settings)
    }

    /// Changes the settings and stores them in the data directory.
    pub async fn set_settings(&self, settings: CatalogSettings) -> std::io::Result<()> {
        let path = self.inner.data_dir.join(CATALOG_FILE);
        let bytes = serde_json::to_vec_pretty(&settings).map_err(std::io::Error::other)?;
        tokio::task::spawn_blocking(move || chunk_store::fsutil::write_atomic(&path, &bytes))
            .await
            .map_err(std::io::Error::other)??;
        *lock(&self.inner.settings) = settings;
        tracing::info!(browse = settings.browse, "catalog settings changed");
        Ok(())
    }

    /// Lists or unlists a stored file. Returns why it is not in the catalog now, if it
    /// is not (a listed file that is unpublished or incomplete stays out until it is
    /// published or complete).
    pub async fn set_listed(
        &self,
        cid: Cid,
        listed: bool,
    ) -> Result<Option<NotInCatalog>, StoreError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || store.set_listed(&cid, listed))
            .await
            .map_err(|e| StoreError::Invalid(format!("store task failed: {e}")))??;
        tracing::info!(%cid, listed, "catalog listing changed");
        // The watcher brings the change too; doing it here makes it visible at once.
        Ok(self.refresh(vec![cid]).await.into_iter().next().flatten())
    }

    /// Whether `cid` is in the catalog now.
    pub fn contains(&self, cid: &Cid) -> bool {
        lock(&self.inner.index).get(cid).is_some()
    }

    /// Re-reads these files from the store and lists or unlists each as it is now;
    /// returns, for each, why it is not listed (`None`: it is).
    pub(crate) async fn refresh(&self, cids: Vec<Cid>) -> Vec<Option<NotInCatalog>> {
        sync::refresh(self, cids).await
    }
}

/// The signed entry a folder gets in the catalog (media type `inode/directory`, the sum
/// of its files' sizes), or why it gets none: as for a file, and only once every file
/// of the tree is here.
fn folder_entry_for(
    folder: &chunk_store::FolderInfo,
    signer: Option<&SigningKey>,
) -> Result<CatalogEntry, NotInCatalog> {
    let record = &folder.record;
    if !record.listed {
        return Err(NotInCatalog::Unlisted);
    }
    if !record.published {
        return Err(NotInCatalog::Unpublished);
    }
    if !record.complete {
        return Err(NotInCatalog::Incomplete);
    }
    let name = record.name.clone().ok_or(NotInCatalog::Unnamed)?;
    let signer = signer.ok_or(NotInCatalog::CannotSign)?;
    EntryInfo {
        cid: folder.cid,
        media_type: FOLDER_MEDIA_TYPE.into(),
        name,
        size: record.size,
        added: record.added_unix,
    }
    .sign(signer)
    .map_err(|_| NotInCatalog::Unnamed)
}

/// The media type of a folder's catalog entry (docs/protocol.md §11).
pub const FOLDER_MEDIA_TYPE: &str = "inode/directory";

/// The signed entry a stored file gets in the catalog, or why it gets none.
fn entry_for(file: &StoreEntry, signer: Option<&SigningKey>) -> Result<CatalogEntry, NotInCatalog> {
    if !file.listed {
        return Err(NotInCatalog::Unlisted);
    }
    if !file.published {
        return Err(NotInCatalog::Unpublished);
    }
    match file.state {
        EntryState::Complete => {}
        EntryState::Partial { .. } => return Err(NotInCatalog::Incomplete),
        EntryState::ChangedOnDisk => return Err(NotInCatalog::ChangedOnDisk),
    }
    let name = file.name.clone().ok_or(NotInCatalog::Unnamed)?;
    let signer = signer.ok_or(NotInCatalog::CannotSign)?;
    EntryInfo {
        cid: file.cid,
        media_type: dht_proto::media_type::media_type_for_name(&name).into(),
        name,
        size: file.size,
        added: file.added_unix,
    }
    .sign(signer)
    .map_err(|_| NotInCatalog::Unnamed)
}
