//! The control API: [`Api`] is a facade of plain async operations on the serde types in
//! [`types`] and [`transfers`]; it calls the transfer engine's and the network's
//! operations and converts their domain types to those wire types. [`http`] serves them
//! over HTTP/JSON (with the route table that also makes the [`openapi`] document),
//! [`auth`] decides who may call it, [`live`] keeps the bandwidth history and the stream
//! of live events, and the CLI calls the same operations through [`crate::client`].
//! [`share`] holds the share operations and their wire types. [`ApiError`] carries an
//! HTTP status; [`input`] checks what users send.

pub mod auth;
pub mod convert;
pub mod doctor;
mod error;
pub mod folders;
pub mod http;
pub mod input;
pub mod live;
pub mod openapi;
pub mod ops;
pub mod relays;
pub mod search;
pub mod share;
pub mod standing;
pub mod store;
mod store_reads;
pub mod transfers;
pub mod types;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chunk_store::{EntryState, ImportMode, Location};
use dht_proto::Cid;
use tokio::sync::broadcast;

use crate::network::Network;
use crate::transfer::{FetchParams, Transfers};
pub use error::ApiError;
use input::fetch_timeout;
pub use input::{check_display_name, parse_cid, upload_name};
use transfers::DownloadWatch;
use types::*;

/// Default fetch timeout without progress.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// File in the data directory holding [`Settings`] as JSON.
pub const SETTINGS_FILE: &str = "settings.json";
/// Directory in the data directory where browser uploads are written before import.
pub const UPLOAD_DIR: &str = "uploads";
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 64;

/// The daemon's operations.
#[derive(Clone)]
pub struct Api {
    transfers: Transfers,
    net: Network,
    shares: crate::share::Shares,
    started: Instant,
    data_dir: PathBuf,
    shared: Arc<Shared>,
    /// Search, browse and listing (see `search.rs`).
    catalog: Option<crate::catalog::Catalog>,
}

/// State the facade keeps besides the transfer engine's.
struct Shared {
    /// Live events for the web UI.
    events: broadcast::Sender<LiveEvent>,
    /// Bandwidth history.
    stats: Mutex<live::Stats>,
    settings: Mutex<Settings>,
    /// The Prometheus registry, once the daemon set it (see `ops`).
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
    /// The store's part of the status, read with a deadline.
    summary_reads: store_reads::StoreReads<store::Summary>,
    /// The store's files and folders, read with a deadline.
    listing_reads: store_reads::StoreReads<Arc<store::Listing>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads the settings file of a data directory (defaults if there is none or it is
/// unreadable: a corrupt settings file must not stop the daemon).
pub fn load_settings(data_dir: &Path) -> Settings {
    std::fs::read(data_dir.join(SETTINGS_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Writes the settings file of a data directory (atomically and durably).
pub fn save_settings(data_dir: &Path, settings: &Settings) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(settings).map_err(std::io::Error::other)?;
    chunk_store::fsutil::write_atomic(&data_dir.join(SETTINGS_FILE), &bytes)
}

impl Api {
    /// The facade over a running node (the engine's operations, and the network's for
    /// what it reports). The daemon runs [`Api::live_monitor`] beside it.
    pub fn new(
        transfers: Transfers,
        net: Network,
        shares: crate::share::Shares,
        data_dir: PathBuf,
    ) -> Self {
        let (events, _) = broadcast::channel(256);
        // Uploads left over from a previous run were never imported.
        let _ = std::fs::remove_dir_all(data_dir.join(UPLOAD_DIR));
        Api {
            transfers,
            net,
            shares,
            started: Instant::now(),
            shared: Arc::new(Shared {
                events,
                stats: Mutex::new(live::Stats::default()),
                settings: Mutex::new(load_settings(&data_dir)),
                metrics: std::sync::OnceLock::new(),
                summary_reads: Default::default(),
                listing_reads: Default::default(),
            }),
            data_dir,
            catalog: None,
        }
    }

    /// The task that samples bandwidth and watches downloads for the live views; it
    /// ends when the last `Api` is dropped.
    pub fn live_monitor(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        live::monitor(self.transfers.clone(), Arc::downgrade(&self.shared))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn emit(&self, event: LiveEvent) {
        let _ = self.shared.events.send(event);
    }

    /// Live events: network changes, downloads, new files, bandwidth.
    pub fn live_events(&self) -> broadcast::Receiver<LiveEvent> {
        self.shared.events.subscribe()
    }

    /// The owner's settings.
    pub fn settings(&self) -> Settings {
        lock(&self.shared.settings).clone()
    }

    /// Changes the settings and stores them in the data directory.
    pub async fn set_settings(&self, settings: Settings) -> Result<Settings, ApiError> {
        let settings = Settings {
            display_name: check_display_name(settings.display_name)?,
        };
        let dir = self.data_dir.clone();
        let to_save = settings.clone();
        tokio::task::spawn_blocking(move || save_settings(&dir, &to_save))
            .await
            .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
            .map_err(|e| ApiError::internal(format!("saving the settings: {e}")))?;
        *lock(&self.shared.settings) = settings.clone();
        tracing::info!(display_name = ?settings.display_name, "settings changed");
        self.emit(LiveEvent::Settings {
            settings: settings.clone(),
        });
        Ok(settings)
    }

    /// Bandwidth now and over the last minutes.
    pub fn stats(&self) -> StatsResponse {
        lock(&self.shared.stats).response()
    }

    /// A fresh path in the upload directory for a browser upload to be written to
    /// before it is imported.
    pub async fn upload_path(&self) -> Result<PathBuf, ApiError> {
        // The store imports absolute paths only; `--data-dir` may be relative.
        let dir = std::path::absolute(self.data_dir.join(UPLOAD_DIR))
            .map_err(|e| ApiError::internal(format!("the upload directory: {e}")))?;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
        Ok(dir.join(format!("upload-{}", auth::random_hex())))
    }

    /// Imports a file and announces it. `progress` is told the bytes read so far.
    pub async fn add(
        &self,
        request: AddRequest,
        progress: impl FnMut(u64) + Send + 'static,
    ) -> Result<AddResponse, ApiError> {
        input::check_absolute(&request.path)?;
        // The store checks the name (one plain file name) before it opens the file.
        let mode = if request.no_copy {
            ImportMode::Reference
        } else {
            ImportMode::Copy
        };
        let outcome = self
            .transfers
            .add(
                request.path,
                mode,
                request.name,
                !request.unlisted,
                progress,
            )
            .await?;
        let response = AddResponse {
            cid: outcome.cid.to_string(),
            name: outcome.name,
            size: outcome.size,
            chunks: outcome.chunks,
            already_present: outcome.already_present,
        };
        self.emit(LiveEvent::FileAdded {
            file: response.clone(),
        });
        Ok(response)
    }

    /// Starts a download, or attaches to the one running for the same file.
    pub async fn fetch(&self, request: FetchRequest) -> Result<DownloadWatch, ApiError> {
        let target = input::fetch_target(request)?;
        // The same fetch again attaches to its download, even once its file is there.
        let attaching = target
            .output
            .as_ref()
            .is_some_and(|o| self.transfers.is_download_output(&target.cid, o));
        let (output, output_dir) = (target.output.clone(), target.output_dir.clone());
        input::off_runtime(move || {
            if let (Some(output), false) = (&output, attaching) {
                input::check_output(output)?;
            }
            match output_dir {
                Some(dir) if !dir.is_dir() => Err(ApiError::bad_request(format!(
                    "{} is not a directory",
                    dir.display()
                ))),
                _ => Ok(()),
            }
        })
        .await?;
        let status = self.transfers.fetch(FetchParams::from(target))?;
        Ok(DownloadWatch::new(status))
    }

    /// Every file the node holds.
    pub async fn files(&self) -> Result<Vec<FileInfo>, ApiError> {
        let listing = self.store_listing().await?;
        let mut announced: HashMap<Cid, crate::network::Announcement> = self
            .net
            .announcements()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.cid, a))
            .collect();
        let mut listed: Vec<FileInfo> = listing
            .entries
            .iter()
            .map(|e| {
                let (state, have) = match e.state {
                    EntryState::Complete => ("complete", e.chunk_count),
                    EntryState::Partial { have } => ("partial", have),
                    EntryState::ChangedOnDisk => ("changed", 0),
                };
                let (location, path) = match &e.location {
                    Location::Blob => ("store", None),
                    Location::Reference { path, .. } => ("in_place", Some(path.clone())),
                    Location::Partial => ("partial", None),
                };
                FileInfo {
                    cid: e.cid.to_string(),
                    name: e.name.clone(),
                    size: e.size,
                    chunks: e.chunk_count,
                    have_chunks: have,
                    state: state.into(),
                    location: location.into(),
                    path,
                    pinned: e.pinned,
                    added_unix: e.added_unix,
                    published: e.published,
                    announcement: announced.remove(&e.cid).map(Into::into),
                    listed: e.listed,
                    in_catalog: self.in_catalog(&e.cid),
                    folder: false,
                }
            })
            .collect();
        for f in &listing.folders {
            listed.push(self.folder_file_info(f, &mut announced));
        }
        Ok(listed)
    }

    /// Our peer id and full addresses.
    pub async fn id(&self) -> Result<IdResponse, ApiError> {
        let info = self.node_info().await?;
        let mut addrs = info.external_addrs.clone();
        for a in info.listen_addrs {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        Ok(IdResponse {
            peer_id: info.peer_id,
            addrs,
        })
    }

    async fn node_info(&self) -> Result<NodeInfo, ApiError> {
        self.net
            .info()
            .await
            .map(NodeInfo::from)
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// Identity, reach, files and downloads.
    pub async fn status(&self) -> Result<StatusResponse, ApiError> {
        let info = self.node_info().await?;
        let store = self.store_summary().await?;
        Ok(StatusResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_secs: self.started.elapsed().as_secs(),
            data_dir: self.data_dir.clone(),
            display_name: self.settings().display_name,
            node: info,
            files: store.files,
            changed_files: store.changed,
            downloads: self.downloads(),
        })
    }

    /// Connected peers, with the bytes exchanged with each and its current rates.
    pub async fn peers(&self) -> Result<Vec<PeerView>, ApiError> {
        let peers = self
            .net
            .peers()
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let traffic = self.transfers.traffic();
        let standing: HashMap<libp2p::PeerId, (f64, bool)> = self
            .transfers
            .reputation()
            .into_iter()
            .map(|r| (r.peer, (r.score, r.banned)))
            .collect();
        let stats = lock(&self.shared.stats);
        Ok(peers
            .into_iter()
            .map(|info| {
                let id = info.peer_id;
                let t = traffic.get(&id).copied();
                let (rate_down, rate_up) = stats.peer_rates(&id);
                let standing = standing.get(&id).copied();
                let info = PeerInfo::from(info);
                PeerView {
                    bytes_received: t.map_or(0, |t| t.received),
                    bytes_sent: t.map_or(0, |t| t.sent),
                    rate_down,
                    rate_up,
                    banned: standing.is_some_and(|(_, banned)| banned),
                    reputation: standing.map(|(score, _)| score),
                    info,
                }
            })
            .collect())
    }

    /// Live network events.
    pub fn subscribe(&self) -> broadcast::Receiver<crate::network::NetEvent> {
        self.net.subscribe()
    }

    /// This node's scores for the peers it has dealt with, best first.
    pub fn reputation(&self) -> Vec<PeerReputation> {
        self.transfers
            .reputation()
            .iter()
            .map(PeerReputation::from)
            .collect()
    }

    /// Downloads run since the daemon started, the most recently started first.
    pub fn downloads(&self) -> Vec<DownloadInfo> {
        self.transfers
            .downloads()
            .iter()
            .map(DownloadInfo::from)
            .collect()
    }

    /// Starts downloading a file into the store (or attaches to its running download);
    /// a paused or failed download continues where it stopped.
    pub fn start_download(&self, request: StartDownload) -> Result<DownloadInfo, ApiError> {
        let cid = parse_cid(&request.cid)?;
        let timeout = fetch_timeout(request.timeout_secs)?;
        let status = self.transfers.start(cid, timeout)?;
        let info = DownloadInfo::from(&*status.borrow());
        Ok(info)
    }

    /// Pauses a running download: it stops, keeping its verified chunks; `resume`
    /// continues it.
    pub async fn pause(&self, cid: &str) -> Result<DownloadInfo, ApiError> {
        let cid = parse_cid(cid)?;
        let info = DownloadInfo::from(&self.transfers.pause(&cid).await?);
        self.emit(LiveEvent::Download {
            download: info.clone(),
        });
        Ok(info)
    }

    /// Resumes a paused (or failed) download where it stopped.
    pub fn resume(&self, cid: &str) -> Result<DownloadInfo, ApiError> {
        let cid = parse_cid(cid)?;
        Ok(DownloadInfo::from(&self.transfers.resume(&cid)?))
    }

    /// Cancels a download: stops it if it runs and deletes what it had fetched (a
    /// complete file stays).
    pub async fn cancel(&self, cid: &str) -> Result<DownloadInfo, ApiError> {
        let cid = parse_cid(cid)?;
        let had_partial = self.transfers.download(&cid).is_some_and(|d| {
            !matches!(
                d.state,
                crate::transfer::DownloadState::Done | crate::transfer::DownloadState::Cancelled
            )
        });
        let info = DownloadInfo::from(&self.transfers.cancel(&cid).await?);
        if had_partial {
            self.emit(LiveEvent::FileChanged {
                cid: cid.to_string(),
                change: "removed".into(),
            });
        }
        self.emit(LiveEvent::Download {
            download: info.clone(),
        });
        Ok(info)
    }

    /// Stops announcing a file (it stays in the store).
    pub async fn unpublish(&self, cid: &str) -> Result<CidResponse, ApiError> {
        let cid = parse_cid(cid)?;
        self.transfers.unpublish(cid).await?;
        self.emit(LiveEvent::FileChanged {
            cid: cid.to_string(),
            change: "unpublished".into(),
        });
        Ok(CidResponse {
            cid: cid.to_string(),
            changed: true,
        })
    }

    /// Stops announcing a file and deletes the store's copy.
    pub async fn remove(&self, cid: &str) -> Result<CidResponse, ApiError> {
        let cid = parse_cid(cid)?;
        self.transfers.remove(cid).await?;
        self.emit(LiveEvent::FileChanged {
            cid: cid.to_string(),
            change: "removed".into(),
        });
        Ok(CidResponse {
            cid: cid.to_string(),
            changed: true,
        })
    }
}
