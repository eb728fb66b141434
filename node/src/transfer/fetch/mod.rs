//! The download engine: one task per run of a download. It finds providers through the
//! DHT, fetches the manifest, learns which chunks each peer holds (bitfield, then
//! `Have`s), and keeps several chunk requests in flight per peer, picking the rarest
//! chunks first. Every chunk is verified before it is written; a corrupt chunk gets its
//! sender banned and the chunk re-fetched elsewhere. Verified chunks are saved as they
//! arrive, so a restart resumes. When only chunks already in flight are missing
//! (endgame), they are asked of a second peer too and the first answer wins.
//!
//! This module owns the task: its state, grouped by responsibility, and its loop. The
//! behaviour of each part is in a submodule:
//!
//! - [`peers`]: provider lookups, and the peers of this download (what each is asked,
//!   what it holds, when it is dropped);
//! - [`manifest`]: the manifest phase (one peer at a time, checked against the CID) and
//!   beginning or resuming the download in the store;
//! - [`requests`]: chunk requests as the [`Picker`] plans them, their answers, and the
//!   withdrawal of endgame duplicates;
//! - [`writing`]: verifying and writing chunks, saving progress, telling interested
//!   peers, and finishing the file;
//! - [`progress`]: the rate, the ETA and the status snapshots the registry shows.

mod manifest;
mod peers;
mod progress;
mod requests;
mod writing;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chunk_store::StoreError;
use dht_proto::{Bitfield, Manifest};
use futures::stream::FuturesUnordered;
use futures::{Future, StreamExt};
use libp2p::PeerId;
use tokio::sync::{mpsc, watch};

use super::downloads::{DownloadShared, FetchParams, Stop, TaskLink};
use super::picker::Picker;
use super::run_queue::{QueuePlace, RunSlot};
use super::status::{DownloadState, DownloadStatus, Failure, FailureKind};
use super::{PeerNews, Transfers};
use crate::network::{Reply, RequestError};
use peers::{Lookup, Peers};
use progress::Meter;
use requests::Requests;
use writing::Saver;

/// How often the loop checks timers (saves, lookups, progress snapshots).
const TICK: Duration = Duration::from_millis(100);
/// Every this many ticks (500 ms) the sources' round trips are read again.
const ROUND_TRIP_TICKS: u64 = 5;

/// Spawns the task of one run of a download.
pub(super) fn spawn(transfers: Transfers, params: FetchParams, link: TaskLink) {
    // The place in the queue is taken now, in the order downloads are started.
    let place = Some(transfers.inner.run_queue.join());
    let engine = Engine {
        transfers,
        place,
        params,
        link: Link {
            status: link.status,
            news: link.news,
            shared: link.shared,
            stop: link.stop,
        },
        file: FileState {
            manifest: None,
            have: Bitfield::new(0),
            name: None,
            verifying: false,
        },
        peers: Peers::default(),
        picker: Picker::new(0, 0),
        requests: Requests::default(),
        saver: Saver::default(),
        meter: Meter::new(),
        pending: FuturesUnordered::new(),
    };
    // In the daemon's task tree: a stopping daemon waits for the download to save.
    let tasks = engine.transfers.inner.tasks.clone();
    tasks.spawn(engine.run());
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The answer to something the task started: a request to a peer, or a chunk write.
enum Outcome {
    Manifest(PeerId, Result<Reply, RequestError>),
    Bitfield(PeerId, Result<Reply, RequestError>),
    /// The answer to a bitfield asked beside the manifest, with an empty one of ours.
    EarlyBitfield(PeerId, Result<Reply, RequestError>),
    Chunk(PeerId, u32, Result<Reply, RequestError>),
    Written(PeerId, u32, u64, Result<(), StoreError>),
}

/// How a run ended without the file.
enum Ended {
    /// The owner stopped it.
    Stopped(Stop),
    /// It gave up.
    Failed(Failure),
}

impl From<Failure> for Ended {
    fn from(f: Failure) -> Self {
        Ended::Failed(f)
    }
}

/// The task's ends of its links to the registry and the upload side.
struct Link {
    /// Where the status snapshots go.
    status: watch::Sender<DownloadStatus>,
    /// Peers' bitfields and `Have`s that reached the upload side.
    news: mpsc::Receiver<PeerNews>,
    /// The live bitfield, the peers that want our `Have`s, whether to announce.
    shared: Arc<DownloadShared>,
    /// Set when the owner stops the download.
    stop: watch::Receiver<Option<Stop>>,
}

/// What this run knows of the file itself.
struct FileState {
    /// Known once a peer sent it (or the store had it).
    manifest: Option<Arc<Manifest>>,
    /// The chunks verified and stored (empty until the manifest is known).
    have: Bitfield,
    /// The name the store or a provider gave it.
    name: Option<String>,
    /// Whether the chunks of a partial file are being re-hashed now.
    verifying: bool,
}

/// One run of a download.
struct Engine {
    transfers: Transfers,
    /// Its place in the download queue, until it gets a run slot.
    place: Option<QueuePlace>,
    params: FetchParams,
    link: Link,
    file: FileState,
    peers: Peers,
    /// What the peers hold, what is asked of whom, what is being verified; picks the
    /// next requests.
    picker: Picker,
    requests: Requests,
    saver: Saver,
    meter: Meter,
    /// Requests and writes in flight.
    pending: FuturesUnordered<BoxFut<Outcome>>,
}

impl Engine {
    async fn run(mut self) {
        let cid = self.params.target.cid;
        let queued = self.link.status.borrow().clone();
        if !self.params.in_folder {
            self.transfers.save_download(&self.params, &queued).await;
        }
        let result = match self.wait_for_run_slot().await {
            Ok(_slot) => self.drive().await,
            Err(stop) => Err(Ended::Stopped(stop)),
        };
        let shutdown = matches!(result, Err(Ended::Stopped(Stop::Shutdown)));
        let mut status = self.snapshot();
        status.state = match result {
            Ok(()) => {
                tracing::info!(%cid, secs = self.meter.started.elapsed().as_secs_f64(), bytes = self.meter.bytes_received, requests_cancelled = self.requests.cancelled, "download finished");
                DownloadState::Done
            }
            Err(Ended::Stopped(Stop::Pause | Stop::Shutdown)) => DownloadState::Paused,
            Err(Ended::Stopped(Stop::Cancel)) => match self.transfers.delete_partial(cid).await {
                Ok(_) => DownloadState::Cancelled,
                Err(e) => DownloadState::Failed(Failure::storage(format!(
                    "cancelled, but what it fetched could not be deleted: {e}"
                ))),
            },
            Err(Ended::Failed(failure)) if failure.kind == FailureKind::Folder => {
                tracing::info!(%cid, "the CID names a folder");
                DownloadState::Failed(failure)
            }
            Err(Ended::Failed(failure)) => {
                tracing::warn!(%cid, "download failed: {}", failure.message);
                DownloadState::Failed(failure)
            }
        };
        let folder =
            matches!(&status.state, DownloadState::Failed(f) if f.kind == FailureKind::Folder);
        if folder {
            // No download: the folder fetch takes over, and nothing is left to resume.
            self.transfers.forget_saved_download(cid).await;
        } else if !shutdown && !self.params.in_folder {
            // Stopped by the daemon's stop, it stays saved as unfinished: the next
            // start resumes it.
            self.transfers.save_download(&self.params, &status).await;
        }
        self.link.status.send_replace(status);
        if folder {
            self.transfers.forget_ended(&cid);
        }
    }

    /// Waits in the queue for one of the engine's run slots; returns the owner's stop
    /// if it comes first.
    async fn wait_for_run_slot(&mut self) -> Result<RunSlot, Stop> {
        let Some(place) = self.place.take() else {
            return Err(Stop::Pause);
        };
        tokio::select! {
            slot = place.slot() => Ok(slot),
            stop = self.link.stop.wait_for(Option::is_some) => {
                Err(stop.ok().and_then(|s| *s).unwrap_or(Stop::Pause))
            }
        }
    }

    async fn drive(&mut self) -> Result<(), Ended> {
        let cid = self.params.target.cid;
        tracing::info!(%cid, output = ?self.params.target.output, "download started");
        if let Some(output) = &self.params.target.output {
            // A dangling symbolic link counts: the final link would refuse it.
            if output.symlink_metadata().is_ok() {
                return Err(
                    Failure::bad_input(format!("{} already exists", output.display())).into(),
                );
            }
        }
        self.publish(true);
        if self.resume_from_store().await? {
            // Complete already: nothing to download.
            return Ok(());
        }

        let net = self.transfers.net().clone();
        // Known sources (a folder's providers) are asked first; the DHT only if they do
        // not do (see `again_if_due` below).
        let mut lookup = if self.params.sources.is_empty() {
            Lookup::start(&net, cid).await
        } else {
            Lookup::later()
        };
        for peer in self.params.sources.clone() {
            self.add_peer(peer);
        }
        let mut last_progress_at = Instant::now();
        let mut tick = tokio::time::interval(TICK);
        let mut ticks: u64 = 0;
        // Peers we are already connected to may hold the file (LAN neighbours, the peer
        // that told us about it): ask them too.
        for peer in net.connected_peers().await {
            self.add_peer(peer);
        }

        loop {
            if self.file.manifest.is_some() && self.file.have.is_complete() {
                break;
            }
            if last_progress_at.elapsed() > self.params.target.timeout {
                return Err(self.stalled().into());
            }
            self.schedule();

            tokio::select! {
                found = lookup.next(), if lookup.is_open() => match found {
                    Some(peer) => self.add_peer(peer),
                    None => lookup.close(),
                },
                Some(news) = self.link.news.recv() => self.on_news(news),
                Ok(()) = self.link.stop.changed() => {
                    let stop = *self.link.stop.borrow_and_update();
                    if let Some(stop) = stop {
                        // Paused or cancelled: peers need not send what is still asked.
                        self.withdraw_all_requests();
                        self.maybe_save(true).await;
                        return Err(Ended::Stopped(stop));
                    }
                }
                Some(outcome) = self.pending.next(), if !self.pending.is_empty() => {
                    if self.on_outcome(outcome).await? {
                        last_progress_at = Instant::now();
                    }
                }
                _ = tick.tick() => {
                    ticks += 1;
                    if ticks % ROUND_TRIP_TICKS == 1 {
                        self.refresh_round_trips(&net).await;
                    }
                    // Peers whose questions a limit of ours held back are asked now.
                    self.ask_all();
                    self.probe_suspects();
                    if self.peers.active(&self.picker) < peers::ENOUGH_PEERS {
                        lookup.again_if_due(&net, cid).await;
                    } else if self.peers.known() < peers::WANTED_PEERS {
                        lookup.more_if_due(&net, cid).await;
                    }
                    self.maybe_save(false).await;
                    self.publish(false);
                }
            }
        }
        self.maybe_save(true).await;
        Ok(self.complete().await?)
    }

    /// Takes each source's last measured round trip from the network.
    async fn refresh_round_trips(&mut self, net: &crate::network::Network) {
        let Ok(peers) = net.peers().await else {
            return;
        };
        for info in peers {
            if let Some(slot) = self.peers.slots.get_mut(&info.peer_id) {
                slot.rtt = info.rtt;
            }
        }
    }

    /// Why the download made no progress within its timeout.
    fn stalled(&self) -> Failure {
        let cid = self.params.target.cid;
        let secs = self.params.target.timeout.as_secs();
        let message = if self.file.manifest.is_none() {
            format!("no provider of {cid} found within {secs}s")
        } else if self.peers.active(&self.picker) == 0 {
            format!("no provider could send the rest of {cid} within {secs}s")
        } else {
            format!("download of {cid} made no progress for {secs}s")
        };
        Failure::network(message)
    }

    /// Handles an answer; returns whether it was progress (the manifest, or a verified
    /// chunk).
    async fn on_outcome(&mut self, outcome: Outcome) -> Result<bool, Failure> {
        match outcome {
            Outcome::Manifest(peer, result) => self.on_manifest(peer, result).await,
            Outcome::Bitfield(peer, result) => {
                self.on_bitfield(peer, result);
                Ok(false)
            }
            Outcome::EarlyBitfield(peer, result) => {
                self.on_early_bitfield(peer, result);
                Ok(false)
            }
            Outcome::Chunk(peer, index, result) => {
                self.on_chunk(peer, index, result);
                Ok(false)
            }
            Outcome::Written(peer, index, len, result) => {
                self.on_written(peer, index, len, result).await
            }
        }
    }
}

/// A short name for an answer, for logs.
fn short(reply: &Reply) -> &'static str {
    match reply {
        Reply::Chunk(_) => "chunk",
        Reply::Message(response) => super::answer_name(response),
    }
}
