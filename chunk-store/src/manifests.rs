//! Manifests: reading them from the `manifests-v1` table and the in-memory cache of
//! decoded ones that serving chunks relies on.
//!
//! Stored manifests are trusted (they were checked against their CID when they were
//! stored), so filling the cache decodes but never hashes; a manifest is hashed once, when
//! it enters the store ([`Store::import`], [`Store::begin_download`]).

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

use dht_proto::{Cid, Manifest};

use crate::store::file_key;
use crate::tables::MANIFESTS;
use crate::{Store, StoreError};

/// Manifests kept decoded in memory, so serving a chunk does not decode one each time.
const MANIFEST_CACHE: usize = 64;

/// Decoded manifests by file hash; the least recently used is evicted when full.
#[derive(Default)]
pub(crate) struct ManifestCache {
    entries: HashMap<[u8; 32], (Arc<Manifest>, u64)>,
    clock: u64,
}

impl ManifestCache {
    fn get(&mut self, key: &[u8; 32]) -> Option<Arc<Manifest>> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(key).map(|(m, used)| {
            *used = clock;
            m.clone()
        })
    }

    fn insert(&mut self, key: [u8; 32], manifest: Arc<Manifest>) {
        if self.entries.len() >= MANIFEST_CACHE && !self.entries.contains_key(&key) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.clock += 1;
        self.entries.insert(key, (manifest, self.clock));
    }

    pub(crate) fn remove(&mut self, key: &[u8; 32]) {
        self.entries.remove(key);
    }
}

impl Store {
    /// The encoded manifest of a file the store knows (complete or partial).
    pub fn manifest_bytes(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        let key = file_key(cid)?;
        self.db.read(|tx| {
            let table = tx.open_table(MANIFESTS)?;
            let value = table.get(key.as_slice())?;
            Ok(value.map(|v| v.value().to_vec()))
        })
    }

    /// The manifest of a file if it is in the in-memory cache. Does not block (no disk
    /// access, a short lock), so an async task may call it.
    pub fn cached_manifest(&self, cid: &Cid) -> Option<Arc<Manifest>> {
        let key = file_key(cid).ok()?;
        self.lock_cache().get(&key)
    }

    /// The decoded manifest of a file the store knows, from the cache or else read and
    /// decoded (not hashed) and then cached.
    pub fn manifest(&self, cid: &Cid) -> Result<Option<Arc<Manifest>>, StoreError> {
        if let Some(m) = self.cached_manifest(cid) {
            return Ok(Some(m));
        }
        let Some(manifest) = self.decode_stored_manifest(cid)? else {
            return Ok(None);
        };
        let manifest = Arc::new(manifest);
        self.cache_manifest(file_key(cid)?, manifest.clone());
        Ok(Some(manifest))
    }

    pub(crate) fn cache_manifest(&self, key: [u8; 32], manifest: Arc<Manifest>) {
        self.lock_cache().insert(key, manifest);
    }

    /// The manifest, decoded without entering the cache (for listings, which must not
    /// push out the manifests of files being served).
    pub(crate) fn manifest_uncached(&self, cid: &Cid) -> Result<Arc<Manifest>, StoreError> {
        if let Some(m) = self.cached_manifest(cid) {
            return Ok(m);
        }
        self.decode_stored_manifest(cid)?
            .map(Arc::new)
            .ok_or(StoreError::NotFound(*cid))
    }

    fn decode_stored_manifest(&self, cid: &Cid) -> Result<Option<Manifest>, StoreError> {
        let Some(bytes) = self.manifest_bytes(cid)? else {
            return Ok(None);
        };
        Manifest::decode(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Db(format!("stored manifest of {cid}: {e}")))
    }

    pub(crate) fn lock_cache(&self) -> MutexGuard<'_, ManifestCache> {
        self.manifests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_manifest_is_evicted() {
        let mut cache = ManifestCache::default();
        let manifest = Arc::new(Manifest::new(0, 1 << 20, vec![]).unwrap());
        for i in 0..MANIFEST_CACHE as u8 {
            cache.insert([i; 32], manifest.clone());
        }
        // Key 0 is in use (read again); key 1 is now the oldest.
        assert!(cache.get(&[0; 32]).is_some());
        cache.insert([255; 32], manifest);
        assert_eq!(cache.entries.len(), MANIFEST_CACHE);
        assert!(cache.get(&[0; 32]).is_some());
        assert!(cache.get(&[1; 32]).is_none());
        assert!(cache.get(&[255; 32]).is_some());
    }
}
