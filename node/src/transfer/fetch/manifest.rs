//! The manifest phase of a download: resuming from what the store holds (a complete file
//! is only exported; a partial one is re-hashed), asking peers for the manifest one at a
//! time and checking it against the CID, and beginning the download in the store.

use std::sync::atomic::Ordering;

use chunk_store::FolderRecord;
use dht_proto::dirmanifest::is_dir_manifest;
use dht_proto::{Bitfield, Manifest, Response};
use libp2p::PeerId;

use super::{short, Engine};
use crate::network::{Reply, RequestError};
use crate::transfer::picker::Picker;
use crate::transfer::status::Failure;
use crate::transfer::{blocking, lock};
use chunk_store::EntryState;

impl Engine {
    /// Picks up what the store holds of the file. Returns `true` when the file is
    /// complete already (exported to the output if there is one); resumes a partial
    /// download from its stored manifest otherwise.
    pub(super) async fn resume_from_store(&mut self) -> Result<bool, Failure> {
        let cid = self.params.target.cid;
        let store = self.transfers.store().clone();
        let info = blocking(move || store.info(&cid))
            .await
            .map_err(|e| Failure::storage(e.to_string()))?;
        let Some(info) = info else {
            let store = self.transfers.store().clone();
            let folder = blocking(move || store.folder(&cid))
                .await
                .map_err(|e| Failure::storage(e.to_string()))?;
            if folder.is_some() {
                return Err(Failure::folder(&cid));
            }
            return Ok(false);
        };
        self.file.name = info.name.clone();
        if !info.published {
            self.link.shared.published.store(false, Ordering::SeqCst);
        }
        match info.state {
            EntryState::Complete => {
                self.finish_from_store().await?;
                return Ok(true);
            }
            EntryState::ChangedOnDisk => {
                return Err(Failure::bad_input(format!(
                    "{cid} is tracked in place and changed on disk: add the file again, or \
                     remove it (p2pd rm) to download it anew"
                )));
            }
            EntryState::Partial { .. } => {}
        }
        let store = self.transfers.store().clone();
        let bytes = blocking(move || store.manifest_bytes(&cid))
            .await
            .map_err(|e| Failure::storage(e.to_string()))?;
        if let Some(bytes) = bytes {
            // Nothing stored earlier is trusted: `begin` re-hashes every chunk.
            self.file.verifying = true;
            self.publish(true);
            let begun = self.begin(bytes).await;
            self.file.verifying = false;
            begun?;
            tracing::info!(%cid, have = self.file.have.count(), total = self.file.have.len(), "resuming download");
        }
        Ok(false)
    }

    /// Starts (or resumes) the download in the store once the manifest is known.
    async fn begin(&mut self, manifest_bytes: Vec<u8>) -> Result<(), Failure> {
        let store = self.transfers.store().clone();
        let cid = self.params.target.cid;
        let name = self.file.name.clone();
        let listed = !self.params.in_folder;
        // The picker's setup sorts every chunk once: off the runtime threads too.
        let salt = rand::random();
        let (manifest, have, picker) = blocking(move || {
            let (manifest, have) =
                store.begin_download_listed(&cid, &manifest_bytes, name, listed)?;
            let picker = Picker::new(manifest.chunk_count(), salt);
            Ok((manifest, have, picker))
        })
        .await
        .map_err(Failure::of_store)?;
        self.picker = picker;
        *lock(&self.link.shared.have) = have.clone();
        self.file.have = have;
        self.file.manifest = Some(manifest);
        // Peers that answered the early bitfield (`peers.rs`, `ask`) are known now.
        self.take_early_haves();
        if !self.link.shared.published.load(Ordering::SeqCst) {
            // Unpublished before the entry existed: the entry records it now.
            let store = self.transfers.store().clone();
            if let Err(e) = blocking(move || store.set_published(&cid, false)).await {
                tracing::warn!(%cid, "cannot record that the file is unpublished: {e}");
            }
        }
        if self.file.have.count() > 0 {
            self.transfers
                .announce_download(cid, &self.link.shared)
                .await;
        }
        Ok(())
    }

    /// A peer's answer to our manifest request. Returns whether it was progress.
    pub(super) async fn on_manifest(
        &mut self,
        peer: PeerId,
        result: Result<Reply, RequestError>,
    ) -> Result<bool, Failure> {
        if self.file.manifest.is_some() {
            return Ok(false);
        }
        match result {
            Ok(Reply::Message(Response::Manifest { manifest, name })) => {
                let cid = self.params.target.cid;
                // Hashing and decoding up to 16 MiB takes milliseconds: not on the
                // runtime's threads.
                let bytes = manifest.into_vec();
                if is_dir_manifest(&bytes) {
                    return self.on_folder_manifest(peer, bytes, name).await;
                }
                let checked = tokio::task::spawn_blocking(move || {
                    Manifest::decode_for(&cid, &bytes).map(|_| bytes)
                })
                .await
                .map_err(|e| Failure::storage(format!("checking the manifest: {e}")))?;
                match checked {
                    Ok(bytes) => {
                        self.file.name = name.filter(|n| !n.is_empty());
                        self.begin(bytes).await?;
                        self.ask_all();
                        return Ok(true);
                    }
                    Err(e) => {
                        tracing::warn!(%peer, "peer sent a manifest that is not {cid}: {e}");
                        self.transfers.ban(peer);
                        self.drop_peer(peer);
                    }
                }
            }
            Err(RequestError::ConnectionClosed) => {
                // The connection was replaced (relayed → direct): ask again.
                if let Some(slot) = self.peers.slots.get_mut(&peer) {
                    slot.asked_manifest = false;
                }
            }
            Err(e) if !e.blames_peer() => self.retry_later(peer, |slot| {
                slot.asked_manifest = false;
            }),
            other => {
                tracing::debug!(%peer, "no manifest from peer: {:?}", other.map(|r| short(&r)));
                self.drop_peer(peer);
            }
        }
        // Ask the next peer.
        self.ask_all();
        Ok(false)
    }

    /// A peer answered with a directory manifest: if it is the one the CID names, it is
    /// kept in the store for the folder fetch and this run ends as [`Failure::folder`];
    /// a peer that sent anything else is banned like one that sent a wrong manifest.
    async fn on_folder_manifest(
        &mut self,
        peer: PeerId,
        bytes: Vec<u8>,
        name: Option<String>,
    ) -> Result<bool, Failure> {
        let cid = self.params.target.cid;
        let store = self.transfers.store().clone();
        let record = FolderRecord {
            name: name.and_then(|n| dht_proto::names::sanitize_file_name(&n)),
            added_unix: crate::transfer::folder::now_unix(),
            complete: false,
            published: true,
            listed: true,
            files: 0,
            size: 0,
            fetch_to: None,
        };
        let stored = blocking(move || match store.folder(&cid)? {
            Some(_) => Ok(()),
            None => store.put_folder(&cid, &bytes, &record).map(|_| ()),
        })
        .await;
        match stored {
            Ok(()) => {
                let others = self
                    .peers
                    .slots
                    .iter()
                    .filter(|(p, s)| **p != peer && !s.dropped)
                    .map(|(p, _)| *p);
                let sources = std::iter::once(peer).chain(others).collect();
                self.transfers.remember_folder_sources(cid, sources);
                Err(Failure::folder(&cid))
            }
            Err(chunk_store::StoreError::Invalid(e)) => {
                tracing::warn!(%peer, "peer sent a directory manifest that is not {cid}: {e}");
                self.transfers.ban(peer);
                self.drop_peer(peer);
                self.ask_all();
                Ok(false)
            }
            Err(e) => Err(Failure::of_store(e)),
        }
    }

    /// The file is already complete in the store: write it out if asked to.
    async fn finish_from_store(&mut self) -> Result<(), Failure> {
        let cid = self.params.target.cid;
        let store = self.transfers.store().clone();
        let manifest = blocking({
            let store = store.clone();
            move || store.manifest(&cid)
        })
        .await
        .map_err(|e| Failure::storage(e.to_string()))?;
        if let Some(m) = &manifest {
            self.file.have = Bitfield::full(m.chunk_count());
        }
        self.file.manifest = manifest;
        if let Some(out) = self.output_path() {
            if out.exists() {
                return Err(Failure::bad_input(format!(
                    "{} already exists",
                    out.display()
                )));
            }
            blocking(move || store.export(&cid, &out))
                .await
                .map_err(|e| Failure::storage(format!("cannot write {cid}: {e}")))?;
        }
        self.transfers
            .announce_download(cid, &self.link.shared)
            .await;
        Ok(())
    }
}
