//! The download engine: one task per file. It finds providers through the DHT, fetches
//! the manifest, learns which chunks each peer holds (bitfield, then `Have`s), and keeps
//! several chunk requests in flight per peer, picking the rarest chunks first. Every chunk
//! is verified before it is written; a corrupt chunk gets its sender banned and the chunk
//! re-fetched elsewhere. Verified chunks are saved as they arrive, so a restart resumes.
//! When only chunks already in flight are missing (endgame), they are asked of a second
//! peer too and the first answer wins. What to ask of whom is the [`Picker`]'s choice.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chunk_store::{EntryState, StoreError};
use dht_proto::{Bitfield, Cid, Manifest, Request, Response};
use futures::stream::FuturesUnordered;
use futures::{Future, StreamExt};
use libp2p::PeerId;
use tokio::sync::{mpsc, watch};

use super::picker::{Picker, ReadyPeer};
use super::{lock, ActiveDownload, DownloadState, PeerBytes, PeerNews, Progress, Transfers};
use crate::network::{Reply, RequestError};

/// Chunk requests in flight to one peer: enough to keep a connection's pipe full (the
/// benchmark saw no gain from 16 over 8, and the fetch is CPU-bound on loopback).
const PER_PEER_DEPTH: usize = 6;
/// Chunks held at once by one download: requested and not yet answered, plus received
/// and not yet verified and written (bounds memory: each holds up to one chunk, even
/// when the disk is slow). Enough for 4 peers × [`PER_PEER_DEPTH`].
const MAX_IN_FLIGHT: usize = 24;
/// Bytes held at once by one download: files of more than 512 GiB have chunks of 2 or
/// 4 MiB, and hold fewer of them, so memory stays the same whatever the file size.
const MAX_HELD_BYTES: u64 = 24 << 20;
/// Downloads kept for listing; past this, the ended ones are forgotten.
const MAX_LISTED_DOWNLOADS: usize = 256;
/// Failed requests after which a peer is dropped from this download.
const MAX_PEER_FAILURES: u32 = 3;
/// While fewer than 4 peers are sending, the DHT is asked again after this long, then
/// after twice as long each time, up to [`MAX_LOOKUP_INTERVAL`]: a provider that just
/// started (its record gets addresses ~1 s after start) is found quickly, and a long
/// download with few peers does not keep querying the DHT every few seconds.
const FIRST_LOOKUP_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait between two provider lookups of one download.
const MAX_LOOKUP_INTERVAL: Duration = Duration::from_secs(30);
/// Save the verified-chunk bitfield at least this often.
const SAVE_INTERVAL: Duration = Duration::from_millis(500);
/// Progress snapshots at most this often.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);
/// Peers that keep answering `Choked` are asked again after this pause.
const CHOKE_BACKOFF: Duration = Duration::from_millis(500);

/// What the caller asked for.
#[derive(Debug, Clone)]
pub struct FetchParams {
    /// The file.
    pub cid: Cid,
    /// Where to write it; `None` keeps it in the store only.
    pub output: Option<PathBuf>,
    /// A directory to write it in under the name the provider gives (used when `output`
    /// is `None`).
    pub output_dir: Option<PathBuf>,
    /// Give up after this long without progress.
    pub timeout: Duration,
}

impl Transfers {
    /// Starts downloading (or attaches to the running download of the same file) and
    /// returns its progress.
    pub fn fetch(&self, params: FetchParams) -> watch::Receiver<Progress> {
        let mut active = lock(&self.inner.active);
        if let Some(existing) = active.get(&params.cid) {
            if !existing.progress.borrow().is_finished() {
                return existing.progress.clone();
            }
        }
        // Ended downloads stay listed for the API and UI, but not without bound.
        if active.len() >= MAX_LISTED_DOWNLOADS {
            active.retain(|_, d| !d.progress.borrow().is_finished());
        }
        let (progress_tx, progress_rx) = watch::channel(Progress::new(&params.cid));
        let (news_tx, news_rx) = mpsc::channel(1024);
        let have = Arc::new(Mutex::new(Bitfield::new(0)));
        let interested = Arc::new(Mutex::new(HashSet::new()));
        let (cancel_tx, cancel_rx) = watch::channel(false);
        active.insert(
            params.cid,
            ActiveDownload {
                progress: progress_rx.clone(),
                have: have.clone(),
                news: news_tx,
                interested: interested.clone(),
                cancel: cancel_tx,
            },
        );
        drop(active);
        let engine = Engine {
            transfers: self.clone(),
            params,
            progress_tx,
            news: news_rx,
            shared_have: have,
            interested,
            cancel: cancel_rx,
            started: Instant::now(),
            peers: HashMap::new(),
            manifest: None,
            have: Bitfield::new(0),
            picker: Picker::new(0, 0),
            in_flight: 0,
            bytes_received: 0,
            rate_window: VecDeque::new(),
            last_progress: Instant::now(),
            last_save: Instant::now(),
            dirty_since_save: false,
            name: None,
            syncing: Arc::new(AtomicBool::new(false)),
            requests_cancelled: 0,
        };
        self.inner.tasks.spawn(engine.run());
        progress_rx
    }
}

#[derive(Default)]
struct PeerSlot {
    in_flight: usize,
    bytes: u64,
    failures: u32,
    asked_bitfield: bool,
    asked_manifest: bool,
    choked_until: Option<Instant>,
    dropped: bool,
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

enum Outcome {
    Manifest(PeerId, Result<Reply, RequestError>),
    Bitfield(PeerId, Result<Reply, RequestError>),
    Chunk(PeerId, u32, Result<Reply, RequestError>),
    Written(PeerId, u32, u64, Result<(), StoreError>),
}

enum Failure {
    BadInput(String),
    Failed(String),
}

struct Engine {
    transfers: Transfers,
    params: FetchParams,
    progress_tx: watch::Sender<Progress>,
    news: mpsc::Receiver<PeerNews>,
    shared_have: Arc<Mutex<Bitfield>>,
    interested: Arc<Mutex<HashSet<PeerId>>>,
    /// Becomes `true` when the owner stops the download.
    cancel: watch::Receiver<bool>,
    started: Instant,
    peers: HashMap<PeerId, PeerSlot>,
    manifest: Option<Arc<Manifest>>,
    have: Bitfield,
    /// What the peers hold, what is asked of whom, what is being verified; picks the
    /// next requests.
    picker: Picker,
    in_flight: usize,
    bytes_received: u64,
    rate_window: VecDeque<(Instant, u64)>,
    last_progress: Instant,
    last_save: Instant,
    dirty_since_save: bool,
    name: Option<String>,
    /// Whether a background flush of the partial file runs now.
    syncing: Arc<AtomicBool>,
    /// Endgame duplicates withdrawn with `Cancel` so far.
    requests_cancelled: u64,
}

impl Engine {
    async fn run(mut self) {
        let result = self.drive().await;
        let mut progress = self.snapshot();
        match result {
            Ok(()) => {
                progress.state = DownloadState::Done;
                tracing::info!(cid = %self.params.cid, secs = self.started.elapsed().as_secs_f64(), bytes = self.bytes_received, requests_cancelled = self.requests_cancelled, "download finished");
            }
            Err(failure) => {
                progress.state = DownloadState::Failed;
                let (message, bad_input) = match failure {
                    Failure::BadInput(m) => (m, true),
                    Failure::Failed(m) => (m, false),
                };
                tracing::warn!(cid = %self.params.cid, "download failed: {message}");
                progress.error = Some(message);
                progress.bad_input = bad_input;
            }
        }
        let _ = self.progress_tx.send(progress);
    }

    async fn drive(&mut self) -> Result<(), Failure> {
        let cid = self.params.cid;
        let store = self.transfers.store().clone();
        let net = self.transfers.net().clone();
        tracing::info!(%cid, output = ?self.params.output, "download started");

        if let Some(output) = &self.params.output {
            if output.exists() {
                return Err(Failure::BadInput(format!(
                    "{} already exists",
                    output.display()
                )));
            }
        }

        // Already here? Then there is nothing to download.
        let info = blocking({
            let store = store.clone();
            move || store.info(&cid)
        })
        .await
        .map_err(|e| Failure::BadInput(e.to_string()))?;
        if let Some(info) = &info {
            self.name = info.name.clone();
            if info.state == EntryState::Complete {
                return self.finish_from_store().await;
            }
            // A partial download: resume from the stored manifest.
            let bytes = blocking({
                let store = store.clone();
                move || store.manifest_bytes(&cid)
            })
            .await
            .map_err(|e| Failure::Failed(e.to_string()))?;
            if let Some(bytes) = bytes {
                self.begin(bytes).await?;
                tracing::info!(%cid, have = self.have.count(), total = self.have.len(), "resuming download");
            }
        }

        let mut pending: FuturesUnordered<BoxFut<Outcome>> = FuturesUnordered::new();
        let mut providers = net.find_providers(cid).await;
        let mut lookup_open = true;
        let mut lookup_interval = FIRST_LOOKUP_INTERVAL;
        let mut next_lookup = Instant::now() + lookup_interval;
        let mut last_progress_at = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(100));

        // Peers we are already connected to may hold the file (LAN neighbours, the peer
        // that told us about it): ask them too.
        for peer in net.connected_peers().await {
            self.add_peer(peer, &mut pending);
        }

        loop {
            if self.manifest.is_some() && self.have.is_complete() {
                break;
            }
            if last_progress_at.elapsed() > self.params.timeout {
                let message = if self.manifest.is_none() {
                    format!(
                        "no provider of {cid} found within {}s",
                        self.params.timeout.as_secs()
                    )
                } else if self.active_peers() == 0 {
                    format!(
                        "no provider could send the rest of {cid} within {}s",
                        self.params.timeout.as_secs()
                    )
                } else {
                    format!(
                        "download of {cid} made no progress for {}s",
                        self.params.timeout.as_secs()
                    )
                };
                return Err(Failure::Failed(message));
            }
            self.schedule(&mut pending);

            tokio::select! {
                found = providers.recv(), if lookup_open => match found {
                    Some(peer) => self.add_peer(peer, &mut pending),
                    None => lookup_open = false,
                },
                Some(news) = self.news.recv() => self.on_news(news),
                Ok(()) = self.cancel.changed() => {
                    if *self.cancel.borrow() {
                        // Paused or cancelled: peers need not send what is still asked.
                        let out: Vec<(u32, Vec<PeerId>)> = self
                            .picker
                            .requests()
                            .map(|(index, peers)| (index, peers.to_vec()))
                            .collect();
                        for (index, peers) in out {
                            self.cancel_requests(index, &peers);
                        }
                        self.maybe_save(true).await;
                        return Err(Failure::Failed(format!("download of {cid} stopped")));
                    }
                }
                Some(outcome) = pending.next(), if !pending.is_empty() => {
                    if self.on_outcome(outcome, &mut pending).await? {
                        last_progress_at = Instant::now();
                    }
                }
                _ = tick.tick() => {
                    if !lookup_open && Instant::now() >= next_lookup && self.active_peers() < 4 {
                        providers = net.find_providers(cid).await;
                        lookup_open = true;
                        lookup_interval = (lookup_interval * 2).min(MAX_LOOKUP_INTERVAL);
                        next_lookup = Instant::now() + lookup_interval;
                    }
                    self.maybe_save(false).await;
                    self.publish(false);
                }
            }
        }
        self.maybe_save(true).await;
        self.complete().await
    }

    fn active_peers(&self) -> usize {
        self.peers
            .iter()
            .filter(|(peer, slot)| {
                !slot.dropped && self.picker.peer_have(peer).is_some_and(|h| h.count() > 0)
            })
            .count()
    }

    fn add_peer(&mut self, peer: PeerId, pending: &mut FuturesUnordered<BoxFut<Outcome>>) {
        if peer == self.transfers.net().local_peer_id() || self.transfers.is_banned(&peer) {
            return;
        }
        let slot = self.peers.entry(peer).or_default();
        if slot.dropped {
            // A provider found again gets another chance.
            slot.dropped = false;
            slot.failures = 0;
            slot.asked_bitfield = false;
            slot.asked_manifest = false;
        }
        self.ask(peer, pending);
    }

    /// Sends whatever a peer should be asked next: the manifest if we lack it (from one
    /// peer at a time), then its bitfield.
    fn ask(&mut self, peer: PeerId, pending: &mut FuturesUnordered<BoxFut<Outcome>>) {
        let net = self.transfers.net().clone();
        let cid = self.params.cid;
        // One peer at a time is asked for the manifest (only while we lack it).
        let manifest_asked =
            self.manifest.is_none() && self.peers.values().any(|p| p.asked_manifest && !p.dropped);
        let Some(slot) = self.peers.get_mut(&peer) else {
            return;
        };
        if slot.dropped {
            return;
        }
        if self.manifest.is_none() {
            if !slot.asked_manifest && !manifest_asked {
                slot.asked_manifest = true;
                pending.push(Box::pin(async move {
                    Outcome::Manifest(peer, net.request(peer, Request::Manifest { cid }).await)
                }));
            }
            return;
        }
        if !slot.asked_bitfield {
            slot.asked_bitfield = true;
            let have = self.have.clone();
            pending.push(Box::pin(async move {
                Outcome::Bitfield(
                    peer,
                    net.request(peer, Request::Bitfield { cid, have }).await,
                )
            }));
        }
    }

    fn drop_peer(&mut self, peer: PeerId) {
        if let Some(slot) = self.peers.get_mut(&peer) {
            if !slot.dropped {
                slot.dropped = true;
                self.picker.remove_peer(peer);
            }
        }
    }

    fn set_peer_have(&mut self, peer: PeerId, have: Bitfield) {
        let Some(manifest) = &self.manifest else {
            return;
        };
        // Decoding checked the bits against the bitfield's own length.
        if have.len() != manifest.chunk_count() {
            return;
        }
        let Some(slot) = self.peers.get_mut(&peer) else {
            return;
        };
        if slot.dropped {
            return;
        }
        self.picker.set_peer_have(peer, have);
    }

    fn on_news(&mut self, news: PeerNews) {
        match news {
            PeerNews::Bitfield(peer, have) => {
                self.peers.entry(peer).or_default();
                self.set_peer_have(peer, have);
            }
            PeerNews::Have(peer, index) => self.picker.peer_gained(peer, index),
        }
    }

    /// Starts (or resumes) the download in the store once the manifest is known.
    async fn begin(&mut self, manifest_bytes: Vec<u8>) -> Result<(), Failure> {
        let store = self.transfers.store().clone();
        let cid = self.params.cid;
        let name = self.name.clone();
        // The picker's setup sorts every chunk once: off the runtime threads too.
        let salt = rand::random();
        let (manifest, have, picker) = blocking(move || {
            let (manifest, have) = store.begin_download(&cid, &manifest_bytes, name)?;
            let picker = Picker::new(manifest.chunk_count(), salt);
            Ok((manifest, have, picker))
        })
        .await
        .map_err(|e| Failure::Failed(e.to_string()))?;
        self.picker = picker;
        *lock(&self.shared_have) = have.clone();
        self.have = have;
        self.manifest = Some(manifest);
        // Peers that sent bitfields before we knew the manifest are asked again.
        for slot in self.peers.values_mut() {
            slot.asked_bitfield = false;
        }
        if self.have.count() > 0 {
            self.transfers.net().start_providing(cid).await;
        }
        Ok(())
    }

    /// Returns whether the outcome was progress (manifest, or a verified chunk).
    async fn on_outcome(
        &mut self,
        outcome: Outcome,
        pending: &mut FuturesUnordered<BoxFut<Outcome>>,
    ) -> Result<bool, Failure> {
        match outcome {
            Outcome::Manifest(peer, result) => {
                if self.manifest.is_some() {
                    return Ok(false);
                }
                match result {
                    Ok(Reply::Message(Response::Manifest { manifest, name })) => {
                        let cid = self.params.cid;
                        match Manifest::decode_for(&cid, &manifest) {
                            Ok(_) => {
                                self.name = name.filter(|n| !n.is_empty());
                                self.begin(manifest.into_vec()).await?;
                                let peers: Vec<PeerId> = self.peers.keys().copied().collect();
                                for p in peers {
                                    self.ask(p, pending);
                                }
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
                        if let Some(slot) = self.peers.get_mut(&peer) {
                            slot.asked_manifest = false;
                        }
                    }
                    other => {
                        tracing::debug!(%peer, "no manifest from peer: {:?}", other.map(|r| short(&r)));
                        self.drop_peer(peer);
                    }
                }
                // Ask the next peer.
                let peers: Vec<PeerId> = self.peers.keys().copied().collect();
                for p in peers {
                    self.ask(p, pending);
                }
                Ok(false)
            }
            Outcome::Bitfield(peer, result) => {
                match result {
                    Ok(Reply::Message(Response::Bitfield { have })) => {
                        self.set_peer_have(peer, have)
                    }
                    Err(RequestError::ConnectionClosed) => {
                        // The connection was replaced (relayed → direct): ask again.
                        if let Some(slot) = self.peers.get_mut(&peer) {
                            slot.asked_bitfield = false;
                        }
                        self.ask(peer, pending);
                    }
                    _ => self.drop_peer(peer),
                }
                Ok(false)
            }
            Outcome::Chunk(peer, index, result) => {
                self.in_flight -= 1;
                let slot = self.peers.entry(peer).or_default();
                slot.in_flight = slot.in_flight.saturating_sub(1);
                let mut requeue = true;
                match result {
                    Ok(Reply::Chunk(data)) => {
                        // An endgame duplicate (someone else was faster) is just
                        // forgotten, like a refusal but with no blame.
                        if !self.have.get(index) && !self.picker.is_verifying(index) {
                            requeue = false;
                            self.picker.start_verifying(index);
                            let store = self.transfers.store().clone();
                            let cid = self.params.cid;
                            let manifest = self.manifest.clone();
                            pending.push(Box::pin(async move {
                                let len = data.len() as u64;
                                let result = match manifest {
                                    Some(m) => {
                                        blocking(move || store.write_chunk(&cid, &m, index, &data))
                                            .await
                                    }
                                    None => Err(StoreError::Invalid("no manifest".into())),
                                };
                                Outcome::Written(peer, index, len, result)
                            }));
                        }
                    }
                    Ok(Reply::Message(Response::Choked)) => {
                        // Choking is how a busy seeder shares its slots: not held against it.
                        slot.choked_until = Some(Instant::now() + CHOKE_BACKOFF);
                    }
                    Ok(Reply::Message(Response::Cancelled)) => {
                        // We withdrew this request: the chunk came from another peer.
                    }
                    Ok(Reply::Message(Response::NotFound)) => {
                        self.transfers.note_refusal(peer);
                        self.picker.peer_lacks(peer, index);
                    }
                    Ok(other) => {
                        tracing::debug!(%peer, index, "unexpected answer to a chunk request: {}", short(&other));
                        slot.failures += 1;
                    }
                    Err(RequestError::ConnectionClosed | RequestError::Overloaded) => {
                        // Another connection to the peer (e.g. a direct one replacing a
                        // relayed one) carries the retry, or too many requests were in
                        // flight here: not the peer's fault.
                    }
                    Err(e) => {
                        tracing::debug!(%peer, index, "chunk request failed: {e}");
                        slot.failures += 1;
                        self.transfers.note_failure(peer);
                    }
                }
                if requeue {
                    self.picker.forget_request(index, peer);
                    if self
                        .peers
                        .get(&peer)
                        .is_some_and(|s| s.failures >= MAX_PEER_FAILURES)
                    {
                        tracing::info!(%peer, "dropping peer after repeated failures");
                        self.drop_peer(peer);
                    }
                }
                Ok(false)
            }
            Outcome::Written(peer, index, len, result) => {
                // Endgame duplicates of a stored chunk still out at other peers.
                let losers: Vec<PeerId> = if result.is_ok() {
                    self.picker
                        .requesters(index)
                        .iter()
                        .copied()
                        .filter(|p| *p != peer)
                        .collect()
                } else {
                    Vec::new()
                };
                // A chunk that was not stored (corrupt) can be picked again.
                self.picker.finish_verifying(index, result.is_ok());
                self.cancel_requests(index, &losers);
                match result {
                    Ok(()) => {
                        self.have.set(index);
                        lock(&self.shared_have).set(index);
                        self.dirty_since_save = true;
                        self.bytes_received += len;
                        self.rate_window.push_back((Instant::now(), len));
                        if let Some(slot) = self.peers.get_mut(&peer) {
                            slot.bytes += len;
                            slot.failures = 0;
                        }
                        self.transfers.note_received(peer, len);
                        if self.have.count() == 1 {
                            // Holding verified chunks makes us a provider too.
                            self.transfers.net().start_providing(self.params.cid).await;
                        }
                        self.announce_have(index);
                        self.publish(false);
                        Ok(true)
                    }
                    Err(StoreError::BadChunk { .. }) => {
                        tracing::warn!(%peer, index, "corrupt chunk received");
                        self.transfers.ban(peer);
                        self.drop_peer(peer);
                        Ok(false)
                    }
                    Err(e) => Err(Failure::Failed(format!("cannot store chunk {index}: {e}"))),
                }
            }
        }
    }

    /// Withdraws the requests for a chunk we now hold from `peers` (the losers of an
    /// endgame race), so that a peer that has not sent it yet does not (see `serve.rs`).
    /// Their answers still arrive, as `Cancelled` or as a chunk, and are dropped.
    fn cancel_requests(&mut self, index: u32, peers: &[PeerId]) {
        for &peer in peers {
            self.requests_cancelled += 1;
            let net = self.transfers.net().clone();
            let cid = self.params.cid;
            tokio::spawn(async move {
                let _ = net.request(peer, Request::Cancel { cid, index }).await;
            });
        }
    }

    /// Tells the peers that asked for our bitfield that we hold one more chunk, except
    /// those known to hold it already (a seeder, or the peer that sent it) and banned
    /// ones. A peer that cannot be reached is forgotten: it asks again if it returns.
    fn announce_have(&self, index: u32) {
        let peers: Vec<PeerId> = lock(&self.interested).iter().copied().collect();
        for peer in peers {
            if self.picker.peer_have(&peer).is_some_and(|h| h.get(index))
                || self.transfers.is_banned(&peer)
            {
                continue;
            }
            let net = self.transfers.net().clone();
            let cid = self.params.cid;
            let interested = self.interested.clone();
            tokio::spawn(async move {
                if net
                    .request(peer, Request::Have { cid, index })
                    .await
                    .is_err_and(|e| e.blames_peer())
                {
                    lock(&interested).remove(&peer);
                }
            });
        }
    }

    /// Fills every peer's request pipeline with the [`Picker`]'s choices: rarest chunk
    /// first among those the peer holds, peers that gave the most first in each round; in
    /// endgame, chunks already asked of one other peer.
    fn schedule(&mut self, pending: &mut FuturesUnordered<BoxFut<Outcome>>) {
        let Some(manifest) = &self.manifest else {
            return;
        };
        let max_held = (MAX_HELD_BYTES / u64::from(manifest.chunk_size()).max(1))
            .clamp(1, MAX_IN_FLIGHT as u64) as usize;
        let depth = PER_PEER_DEPTH.min(max_held);
        let budget = max_held.saturating_sub(self.held());
        if budget == 0 {
            return;
        }
        let now = Instant::now();
        let mut ready: Vec<(ReadyPeer, u64)> = self
            .peers
            .iter()
            .filter(|(peer, s)| {
                !s.dropped
                    && s.in_flight < depth
                    && self.picker.peer_have(peer).is_some()
                    && s.choked_until.is_none_or(|t| t <= now)
            })
            .map(|(peer, s)| {
                let ready = ReadyPeer {
                    peer: *peer,
                    free_slots: depth - s.in_flight,
                };
                (ready, s.bytes)
            })
            .collect();
        if ready.is_empty() {
            return;
        }
        // Peers that gave the most pick first in each round.
        ready.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
        let ready: Vec<ReadyPeer> = ready.into_iter().map(|(r, _)| r).collect();
        for (peer, index) in self.picker.plan(&self.have, &ready, budget, now) {
            self.send_chunk_request(peer, index, pending);
        }
    }

    /// Chunks this download holds or will hold: requested, or received and being written.
    fn held(&self) -> usize {
        self.in_flight + self.picker.verifying_count()
    }

    fn send_chunk_request(
        &mut self,
        peer: PeerId,
        index: u32,
        pending: &mut FuturesUnordered<BoxFut<Outcome>>,
    ) {
        self.in_flight += 1;
        if let Some(slot) = self.peers.get_mut(&peer) {
            slot.in_flight += 1;
        }
        let transfers = self.transfers.clone();
        let cid = self.params.cid;
        let len = self
            .manifest
            .as_ref()
            .map_or(0, |m| u64::from(m.chunk_len(index)));
        pending.push(Box::pin(async move {
            // The download cap delays the request, not the swarm task.
            transfers.download_limit().acquire(len).await;
            let response = transfers
                .net()
                .request(peer, Request::Chunk { cid, index })
                .await;
            Outcome::Chunk(peer, index, response)
        }));
    }

    async fn maybe_save(&mut self, force: bool) {
        if !self.dirty_since_save || (!force && self.last_save.elapsed() < SAVE_INTERVAL) {
            return;
        }
        self.dirty_since_save = false;
        self.last_save = Instant::now();
        let store = self.transfers.store().clone();
        let cid = self.params.cid;
        let have = self.have.clone();
        if let Err(e) = blocking(move || store.save_progress(&cid, &have)).await {
            tracing::warn!(%cid, "cannot save download progress: {e}");
        }
        // Flush written chunks in the background, one flush at a time, so the final sync
        // does not stall the end of the download.
        if !force && !self.syncing.swap(true, Ordering::AcqRel) {
            let store = self.transfers.store().clone();
            let syncing = self.syncing.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = store.sync_download(&cid) {
                    tracing::debug!(%cid, "background sync: {e}");
                }
                syncing.store(false, Ordering::Release);
            });
        }
    }

    fn output_path(&self) -> Option<PathBuf> {
        if let Some(output) = &self.params.output {
            return Some(output.clone());
        }
        let dir = self.params.output_dir.as_ref()?;
        Some(dir.join(safe_file_name(self.name.as_deref(), &self.params.cid)))
    }

    async fn complete(&mut self) -> Result<(), Failure> {
        let store = self.transfers.store().clone();
        let cid = self.params.cid;
        let have = self.have.clone();
        let output = self.output_path();
        if let Some(out) = &output {
            if out.exists() {
                return Err(Failure::BadInput(format!(
                    "{} already exists; the download is kept and resumes into another path",
                    out.display()
                )));
            }
        }
        let target = output.clone();
        blocking(move || store.complete_download(&cid, &have, target.as_deref()))
            .await
            .map_err(|e| Failure::Failed(format!("cannot finish {cid}: {e}")))?;
        self.transfers.net().start_providing(cid).await;
        self.publish(true);
        Ok(())
    }

    /// The file is already complete in the store: write it out if asked to.
    async fn finish_from_store(&mut self) -> Result<(), Failure> {
        let cid = self.params.cid;
        let store = self.transfers.store().clone();
        let manifest = blocking({
            let store = store.clone();
            move || store.manifest(&cid)
        })
        .await
        .map_err(|e| Failure::Failed(e.to_string()))?;
        if let Some(m) = &manifest {
            self.have = Bitfield::full(m.chunk_count());
        }
        self.manifest = manifest;
        if let Some(out) = self.output_path() {
            if out.exists() {
                return Err(Failure::BadInput(format!(
                    "{} already exists",
                    out.display()
                )));
            }
            blocking(move || store.export(&cid, &out))
                .await
                .map_err(|e| Failure::Failed(format!("cannot write {cid}: {e}")))?;
        }
        self.transfers.net().start_providing(cid).await;
        Ok(())
    }

    fn snapshot(&mut self) -> Progress {
        let now = Instant::now();
        while self
            .rate_window
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(3))
        {
            self.rate_window.pop_front();
        }
        let window_bytes: u64 = self.rate_window.iter().map(|(_, b)| b).sum();
        let window_secs = self
            .rate_window
            .front()
            .map(|(t, _)| now.duration_since(*t).as_secs_f64())
            .unwrap_or(0.0)
            .max(self.started.elapsed().as_secs_f64().min(3.0))
            .max(0.001);
        let rate = window_bytes as f64 / window_secs;
        let (size, chunks_total, bytes_done) = match &self.manifest {
            Some(m) => {
                // Every chunk but the last is chunk_size long.
                let last = m.chunk_count().saturating_sub(1);
                let short_last = if self.have.get(last) {
                    u64::from(m.chunk_size() - m.chunk_len(last))
                } else {
                    0
                };
                let done = u64::from(self.have.count()) * u64::from(m.chunk_size()) - short_last;
                (m.size(), m.chunk_count(), done)
            }
            None => (0, 0, 0),
        };
        let mut per_peer: Vec<PeerBytes> = self
            .peers
            .iter()
            .filter(|(_, s)| s.bytes > 0)
            .map(|(p, s)| PeerBytes {
                peer_id: p.to_string(),
                bytes: s.bytes,
            })
            .collect();
        per_peer.sort_by_key(|p| std::cmp::Reverse(p.bytes));
        Progress {
            cid: self.params.cid.to_string(),
            name: self.name.clone(),
            state: if self.manifest.is_some() {
                DownloadState::Downloading
            } else {
                DownloadState::Finding
            },
            size,
            chunks_total,
            chunks_done: self.have.count(),
            bytes_done,
            bytes_received: self.bytes_received,
            rate,
            eta_secs: (rate > 0.0).then(|| (size - bytes_done) as f64 / rate),
            peers: self.peers.values().filter(|s| s.in_flight > 0).count(),
            per_peer,
            elapsed_secs: self.started.elapsed().as_secs_f64(),
            output: self.output_path(),
            error: None,
            bad_input: false,
        }
    }

    fn publish(&mut self, force: bool) {
        if !force && self.last_progress.elapsed() < PROGRESS_INTERVAL {
            return;
        }
        self.last_progress = Instant::now();
        let progress = self.snapshot();
        let _ = self.progress_tx.send(progress);
    }
}

/// A file name from a peer, made safe to create in a directory
/// ([`dht_proto::names::sanitize_file_name`]); the CID when nothing usable is left.
pub fn safe_file_name(name: Option<&str>, cid: &Cid) -> String {
    name.and_then(dht_proto::names::sanitize_file_name)
        .unwrap_or_else(|| cid.to_string())
}

fn short(reply: &Reply) -> &'static str {
    let response = match reply {
        Reply::Chunk(_) => return "chunk",
        Reply::Message(response) => response,
    };
    match response {
        Response::Manifest { .. } => "manifest",
        Response::Chunk { .. } => "chunk",
        Response::Bitfield { .. } => "bitfield",
        Response::Ack => "ack",
        Response::NotFound => "not found",
        Response::Choked => "choked",
        Response::Cancelled => "cancelled",
        Response::Error { .. } => "error",
    }
}

/// Runs a store operation on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(StoreError::Invalid(format!("store task failed: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_from_peers_are_made_safe() {
        let cid = Cid::for_manifest_bytes(b"x");
        assert_eq!(safe_file_name(Some("report.pdf"), &cid), "report.pdf");
        assert_eq!(safe_file_name(Some("../../etc/passwd"), &cid), "passwd");
        assert_eq!(safe_file_name(Some(".."), &cid), cid.to_string());
        assert_eq!(safe_file_name(Some(".bashrc"), &cid), cid.to_string());
        assert_eq!(safe_file_name(Some("a\nb"), &cid), "ab");
        assert_eq!(safe_file_name(None, &cid), cid.to_string());
        assert_eq!(safe_file_name(Some(""), &cid), cid.to_string());
    }
}
