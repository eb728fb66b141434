//! Keeps the catalog in step with the store, and the DHT's keyword keys in step with the
//! catalog.
//!
//! The store tells a watcher the CID of every entry it changes (added, downloaded,
//! flags changed, found changed on disk, removed). The watcher only queues the CID; a
//! task re-reads those entries on a blocking thread, signs what is listed, updates the
//! index and tells the network which keyword keys start or stop. If the queue ever
//! overflows, the task re-reads the whole store instead, so no change is lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chunk_store::Store;
use dht_proto::catalog::CatalogEntry;
use dht_proto::Cid;
use tokio::sync::mpsc;

use super::index::KeywordChanges;
use super::{entry_for, folder_entry_for, lock, Catalog, NotInCatalog};

/// Entry changes waiting to be applied.
const QUEUE: usize = 1024;
/// Most changes applied in one pass.
const BATCH: usize = 256;

/// Changes the store reported: the CIDs, and whether some were lost to a full queue.
pub(super) struct StoreChanges {
    cids: mpsc::Receiver<Cid>,
    overflowed: Arc<AtomicBool>,
}

/// Asks the store to report every change of an entry.
pub(super) fn watch_store(store: &Store) -> StoreChanges {
    let (tx, cids) = mpsc::channel(QUEUE);
    let overflowed = Arc::new(AtomicBool::new(false));
    let flag = overflowed.clone();
    store.watch_entries(move |cid| {
        if tx.try_send(*cid).is_err() {
            flag.store(true, Ordering::SeqCst);
        }
    });
    StoreChanges { cids, overflowed }
}

/// Lists the whole store, then follows its changes until the store goes away.
pub(super) async fn keep_in_step(catalog: Catalog, mut changes: StoreChanges) {
    resync_all(&catalog).await;
    tracing::info!(listed = lock(&catalog.inner.index).len(), "catalog ready");
    while let Some(first) = changes.cids.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match changes.cids.try_recv() {
                Ok(cid) => batch.push(cid),
                Err(_) => break,
            }
        }
        if changes.overflowed.swap(false, Ordering::SeqCst) {
            resync_all(&catalog).await;
        } else {
            batch.sort();
            batch.dedup();
            refresh(&catalog, batch).await;
        }
    }
}

/// What the catalog should hold for each of `cids`, read from the store (a file the
/// store does not know, or cannot read, is not listed).
async fn desired(
    catalog: &Catalog,
    cids: Vec<Cid>,
) -> Vec<(Cid, Result<CatalogEntry, NotInCatalog>)> {
    let store = catalog.inner.store.clone();
    let shared = catalog.inner.clone();
    let read = tokio::task::spawn_blocking(move || {
        cids.into_iter()
            .map(|cid| {
                let entry = match store.info(&cid) {
                    Ok(Some(file)) => entry_for(&file, shared.signer.as_ref()),
                    Ok(None) => match store.folder(&cid) {
                        Ok(Some(folder)) => folder_entry_for(&folder, shared.signer.as_ref()),
                        _ => Err(NotInCatalog::Unlisted),
                    },
                    Err(e) => {
                        tracing::warn!(%cid, "catalog cannot read the store entry: {e}");
                        Err(NotInCatalog::Unlisted)
                    }
                };
                (cid, entry)
            })
            .collect()
    });
    read.await.unwrap_or_default()
}

/// Re-reads `cids` and lists or unlists each; returns why each is not listed.
///
/// One refresh at a time, reading and applying under the same lock: a refresh that read
/// the store earlier can never apply after one that read it later, and keyword keys are
/// started and stopped in the order the index changed.
pub(super) async fn refresh(catalog: &Catalog, cids: Vec<Cid>) -> Vec<Option<NotInCatalog>> {
    let _one_at_a_time = catalog.inner.refreshing.lock().await;
    let wanted = desired(catalog, cids).await;
    let mut changes = KeywordChanges::default();
    let mut reasons = Vec::with_capacity(wanted.len());
    {
        let mut index = lock(&catalog.inner.index);
        for (cid, entry) in wanted {
            match entry {
                Ok(entry) => {
                    if index.get(&cid).map(CatalogEntry::info) != Some(entry.info()) {
                        changes.merge(index.insert(entry));
                    }
                    reasons.push(None);
                }
                Err(reason) => {
                    changes.merge(index.remove(&cid));
                    reasons.push(Some(reason));
                }
            }
        }
    }
    announce(catalog, changes).await;
    reasons
}

/// Re-reads the whole store: lists what should be, unlists what should not.
async fn resync_all(catalog: &Catalog) {
    let _one_at_a_time = catalog.inner.refreshing.lock().await;
    let store = catalog.inner.store.clone();
    let shared = catalog.inner.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let signer = shared.signer.as_ref();
        let mut listed: HashMap<Cid, CatalogEntry> = store
            .list()?
            .iter()
            .filter_map(|f| Some((f.cid, entry_for(f, signer).ok()?)))
            .collect();
        for folder in store.folders()? {
            if let Ok(entry) = folder_entry_for(&folder, signer) {
                listed.insert(folder.cid, entry);
            }
        }
        Ok::<_, chunk_store::StoreError>(listed)
    })
    .await;
    let listed = match listed {
        Ok(Ok(listed)) => listed,
        Ok(Err(e)) => {
            tracing::warn!("catalog cannot list the store: {e}");
            return;
        }
        Err(e) => {
            tracing::warn!("catalog store task failed: {e}");
            return;
        }
    };
    let mut changes = KeywordChanges::default();
    {
        let mut index = lock(&catalog.inner.index);
        for cid in index.cids() {
            if !listed.contains_key(&cid) {
                changes.merge(index.remove(&cid));
            }
        }
        for (cid, entry) in listed {
            if index.get(&cid).map(CatalogEntry::info) != Some(entry.info()) {
                changes.merge(index.insert(entry));
            }
        }
    }
    announce(catalog, changes).await;
}

/// Tells the network which keyword keys to start and stop announcing.
async fn announce(catalog: &Catalog, changes: KeywordChanges) {
    let net = &catalog.inner.net;
    for word in changes.stop {
        net.stop_providing_keyword(word).await;
    }
    for word in changes.start {
        net.start_providing_keyword(word).await;
    }
}
