//! The control API: [`Api`] is a facade of plain async operations on the serde types in
//! [`types`]; [`http`] serves them over HTTP/JSON (with the route table that also makes
//! the [`openapi`] document), [`auth`] decides who may call it, [`live`] keeps the
//! bandwidth history and the stream of live events, and the CLI calls the same
//! operations through [`crate::client`].

pub mod auth;
pub mod convert;
pub mod http;
pub mod live;
pub mod openapi;
pub mod search;
pub mod transfers;
pub mod types;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chunk_store::{EntryState, ImportMode, Location, StoreError};
use dht_proto::Cid;
use tokio::sync::{broadcast, watch};

use crate::transfer::fetch::FetchParams;
use crate::transfer::{Progress, Transfers};
use types::*;

/// Default fetch timeout without progress.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// File in the data directory holding [`Settings`] as JSON.
pub const SETTINGS_FILE: &str = "settings.json";
/// Directory in the data directory where browser uploads are written before import.
pub const UPLOAD_DIR: &str = "uploads";
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 64;

/// An error that carries its HTTP status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// One line.
    pub message: String,
    /// Seconds the caller should wait before trying again (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The request was bad (400).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// No credentials, or wrong ones (401).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    /// Refused whoever asks (403).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// The thing asked about does not exist (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// The request does not fit the current state (409).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }

    /// The body is larger than allowed (413).
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, message)
    }

    /// Too many attempts; try again after `secs` (429).
    pub fn too_many_requests(message: impl Into<String>, secs: u64) -> Self {
        ApiError {
            retry_after: Some(secs),
            ..Self::new(429, message)
        }
    }

    /// The daemon failed (500).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// The body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            status: self.status,
            message: self.message.clone(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => ApiError::not_found(e.to_string()),
            StoreError::Invalid(_) | StoreError::Changed(_) | StoreError::AlreadyComplete(_) => {
                ApiError::bad_request(e.to_string())
            }
            StoreError::Io { ref source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                ApiError::bad_request(e.to_string())
            }
            _ => ApiError::internal(e.to_string()),
        }
    }
}

/// Parses a CID given by a user.
pub fn parse_cid(text: &str) -> Result<Cid, ApiError> {
    let cid = Cid::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("invalid CID {text:?}: {e}")))?;
    if cid.codec() != dht_proto::Codec::DagCbor {
        return Err(ApiError::bad_request(format!(
            "{cid} names a single chunk (raw), not a file"
        )));
    }
    Ok(cid)
}

/// The daemon's operations.
#[derive(Clone)]
pub struct Api {
    transfers: Transfers,
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
    /// Downloads the owner paused, with where each was going.
    paused: Mutex<HashMap<Cid, Option<PathBuf>>>,
    settings: Mutex<Settings>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
        .map_err(ApiError::from)
}

/// Checks a display name: `None` or empty clears it.
pub fn check_display_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(name) = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_DISPLAY_NAME {
        return Err(ApiError::bad_request(format!(
            "the display name must have at most {MAX_DISPLAY_NAME} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "the display name must not contain control characters",
        ));
    }
    Ok(Some(name))
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

/// A name for a file uploaded through the browser: its safe form
/// ([`dht_proto::names::sanitize_file_name`]), or `upload` if nothing usable is left.
pub fn upload_name(name: Option<&str>) -> String {
    name.and_then(dht_proto::names::sanitize_file_name)
        .unwrap_or_else(|| "upload".into())
}

impl Api {
    /// The facade over a running node. The daemon runs [`Api::live_monitor`] beside it.
    pub fn new(transfers: Transfers, data_dir: PathBuf) -> Self {
        let (events, _) = broadcast::channel(256);
        // Uploads left over from a previous run were never imported.
        let _ = std::fs::remove_dir_all(data_dir.join(UPLOAD_DIR));
        Api {
            transfers,
            started: Instant::now(),
            shared: Arc::new(Shared {
                events,
                stats: Mutex::new(live::Stats::default()),
                paused: Mutex::new(HashMap::new()),
                settings: Mutex::new(load_settings(&data_dir)),
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
    pub fn upload_path(&self) -> Result<PathBuf, ApiError> {
        // The store imports absolute paths only; `--data-dir` may be relative.
        let dir = std::path::absolute(self.data_dir.join(UPLOAD_DIR))
            .map_err(|e| ApiError::internal(format!("the upload directory: {e}")))?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
        Ok(dir.join(format!("upload-{}", auth::random_hex())))
    }

    /// Imports a file and announces it. `progress` is told the bytes read so far.
    pub async fn add(
        &self,
        request: AddRequest,
        progress: impl FnMut(u64) + Send + 'static,
    ) -> Result<AddResponse, ApiError> {
        if !request.path.is_absolute() {
            return Err(ApiError::bad_request(format!(
                "path must be absolute: {}",
                request.path.display()
            )));
        }
        if let Some(name) = &request.name {
            if name.is_empty() || name.len() > dht_proto::message::MAX_NAME_LEN {
                return Err(ApiError::bad_request("name must be 1 to 255 bytes"));
            }
        }
        let store = self.transfers.store().clone();
        let mode = if request.no_copy {
            ImportMode::Reference
        } else {
            ImportMode::Copy
        };
        let mut progress = progress;
        let listed = !request.unlisted;
        let outcome = blocking(move || {
            store.import_listed(&request.path, mode, request.name, listed, &mut progress)
        })
        .await?;
        tracing::info!(cid = %outcome.cid, size = outcome.size, "file added");
        self.transfers.net().start_providing(outcome.cid).await;
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
    pub fn fetch(&self, request: FetchRequest) -> Result<watch::Receiver<Progress>, ApiError> {
        let cid = parse_cid(&request.cid)?;
        for path in [&request.output, &request.output_dir].into_iter().flatten() {
            if !path.is_absolute() {
                return Err(ApiError::bad_request(format!(
                    "path must be absolute: {}",
                    path.display()
                )));
            }
        }
        if let Some(output) = &request.output {
            if output.exists() {
                return Err(ApiError::bad_request(format!(
                    "{} already exists",
                    output.display()
                )));
            }
            match output.parent() {
                Some(dir) if dir.is_dir() => {}
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "directory of {} does not exist",
                        output.display()
                    )))
                }
            }
        }
        if let Some(dir) = &request.output_dir {
            if !dir.is_dir() {
                return Err(ApiError::bad_request(format!(
                    "{} is not a directory",
                    dir.display()
                )));
            }
        }
        if let Some(running) = self.transfers.download(&cid) {
            let running = running.borrow();
            if !running.is_finished()
                && request.output.is_some()
                && running.output != request.output
            {
                return Err(ApiError::bad_request(format!(
                    "{cid} is already being downloaded to {}",
                    running
                        .output
                        .as_ref()
                        .map_or("the store".to_string(), |p| p.display().to_string())
                )));
            }
        }
        let timeout = fetch_timeout(request.timeout_secs)?;
        lock(&self.shared.paused).remove(&cid);
        Ok(self.transfers.fetch(FetchParams {
            cid,
            output: request.output,
            output_dir: request.output_dir,
            timeout,
        }))
    }

    /// Every file the node holds.
    pub async fn files(&self) -> Result<Vec<FileInfo>, ApiError> {
        let store = self.transfers.store().clone();
        let entries = blocking(move || store.list()).await?;
        let mut announced: HashMap<Cid, crate::network::Announcement> = (self.transfers.net())
            .announcements()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.cid, a))
            .collect();
        Ok(entries
            .into_iter()
            .map(|e| {
                let (state, have) = match e.state {
                    EntryState::Complete => ("complete", e.chunk_count),
                    EntryState::Partial { have } => ("partial", have),
                    EntryState::ChangedOnDisk => ("changed", 0),
                };
                let (location, path) = match e.location {
                    Location::Blob => ("store", None),
                    Location::Reference { path, .. } => ("in_place", Some(path)),
                    Location::Partial => ("partial", None),
                };
                FileInfo {
                    cid: e.cid.to_string(),
                    name: e.name,
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
                }
            })
            .collect())
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
        self.transfers
            .net()
            .info()
            .await
            .map(NodeInfo::from)
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// Identity, reach, files and downloads.
    pub async fn status(&self) -> Result<StatusResponse, ApiError> {
        let info = self.node_info().await?;
        let store = self.transfers.store().clone();
        let files = blocking(move || store.len()).await? as usize;
        Ok(StatusResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_secs: self.started.elapsed().as_secs(),
            data_dir: self.data_dir.clone(),
            display_name: self.settings().display_name,
            node: info,
            files,
            downloads: self.downloads(),
        })
    }

    /// Connected peers, with the bytes exchanged with each and its current rates.
    pub async fn peers(&self) -> Result<Vec<PeerView>, ApiError> {
        let peers = self
            .transfers
            .net()
            .peers()
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let traffic = self.transfers.traffic();
        let scores: HashMap<String, f64> = self
            .transfers
            .reputation()
            .into_iter()
            .map(|r| (r.peer_id, r.score))
            .collect();
        let stats = lock(&self.shared.stats);
        Ok(peers
            .into_iter()
            .map(|info| {
                let id = info.peer_id;
                let t = traffic.get(&id).copied();
                let (rate_down, rate_up) = stats.peer_rates(&id);
                let info = PeerInfo::from(info);
                PeerView {
                    bytes_received: t.map_or(0, |t| t.received),
                    bytes_sent: t.map_or(0, |t| t.sent),
                    rate_down,
                    rate_up,
                    banned: self.transfers.is_banned(&id),
                    reputation: scores.get(&info.peer_id).copied(),
                    info,
                }
            })
            .collect())
    }

    /// Live network events.
    pub fn subscribe(&self) -> broadcast::Receiver<crate::network::NetEvent> {
        self.transfers.net().subscribe()
    }

    /// This node's scores for the peers it has dealt with, best first.
    pub fn reputation(&self) -> Vec<PeerReputation> {
        self.transfers
            .reputation()
            .into_iter()
            .map(PeerReputation::from)
            .collect()
    }

    /// Downloads run since the daemon started, newest first.
    pub fn downloads(&self) -> Vec<DownloadInfo> {
        let paused = lock(&self.shared.paused);
        let mut list: Vec<DownloadInfo> = self
            .transfers
            .downloads()
            .into_iter()
            .map(|progress| DownloadInfo {
                paused: progress.is_finished()
                    && Cid::from_str(&progress.cid).is_ok_and(|c| paused.contains_key(&c)),
                progress: progress.into(),
            })
            .collect();
        list.sort_by(|a, b| a.progress.elapsed_secs.total_cmp(&b.progress.elapsed_secs));
        list
    }

    fn download_info(&self, cid: &Cid) -> Result<DownloadInfo, ApiError> {
        let progress = self
            .transfers
            .download(cid)
            .ok_or_else(|| ApiError::not_found(format!("no download of {cid}")))?
            .borrow()
            .clone();
        Ok(DownloadInfo {
            paused: progress.is_finished() && lock(&self.shared.paused).contains_key(cid),
            progress: progress.into(),
        })
    }

    /// Starts downloading a file into the store (or attaches to its running download).
    pub fn start_download(&self, request: StartDownload) -> Result<DownloadInfo, ApiError> {
        let cid = parse_cid(&request.cid)?;
        let timeout = fetch_timeout(request.timeout_secs)?;
        let output = lock(&self.shared.paused).remove(&cid).flatten();
        let progress = self.transfers.fetch(FetchParams {
            cid,
            output,
            output_dir: None,
            timeout,
        });
        let progress = progress.borrow().clone();
        Ok(DownloadInfo {
            progress: progress.into(),
            paused: false,
        })
    }

    /// Stops a running download and waits (briefly) until it has saved what it holds.
    /// Returns whether it was running.
    async fn stop_download(&self, cid: &Cid) -> Result<bool, ApiError> {
        let mut progress = self
            .transfers
            .download(cid)
            .ok_or_else(|| ApiError::not_found(format!("no download of {cid}")))?;
        if !self.transfers.cancel(cid) {
            return Ok(false);
        }
        let stopped = tokio::time::timeout(Duration::from_secs(10), async {
            while !progress.borrow_and_update().is_finished() {
                if progress.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        if stopped.is_err() {
            return Err(ApiError::internal(format!("{cid} did not stop in time")));
        }
        Ok(true)
    }

    /// Pauses a running download: it stops, keeping its verified chunks; `resume`
    /// continues it.
    pub async fn pause(&self, cid: &str) -> Result<DownloadInfo, ApiError> {
        let cid = parse_cid(cid)?;
        // Where the file was going: a resumed download goes there too.
        let output = self
            .transfers
            .download(&cid)
            .and_then(|p| p.borrow().output.clone());
        // Marked first, so nobody sees the stopped download as failed.
        let was_paused = lock(&self.shared.paused).insert(cid, output);
        match self.stop_download(&cid).await {
            Ok(true) => tracing::info!(%cid, "download paused"),
            Ok(false) if was_paused.is_some() => {} // paused already
            other => {
                lock(&self.shared.paused).remove(&cid);
                other?;
                return Err(ApiError::conflict(format!(
                    "the download of {cid} is not running"
                )));
            }
        }
        let info = self.download_info(&cid)?;
        self.emit(LiveEvent::Download {
            download: info.clone(),
        });
        Ok(info)
    }

    /// Resumes a paused (or failed) download where it stopped.
    pub fn resume(&self, cid: &str) -> Result<DownloadInfo, ApiError> {
        let parsed = parse_cid(cid)?;
        let Some(progress) = self.transfers.download(&parsed) else {
            return Err(ApiError::not_found(format!("no download of {parsed}")));
        };
        if !progress.borrow().is_finished() {
            return Err(ApiError::conflict(format!(
                "the download of {parsed} is running"
            )));
        }
        self.start_download(StartDownload {
            cid: cid.to_string(),
            timeout_secs: None,
        })
    }

    /// Cancels a download: stops it if it runs and deletes what it had fetched (a
    /// complete file stays).
    pub async fn cancel(&self, cid: &str) -> Result<DownloadInfo, ApiError> {
        let cid = parse_cid(cid)?;
        self.stop_download(&cid).await?;
        lock(&self.shared.paused).remove(&cid);
        let store = self.transfers.store().clone();
        let partial = blocking(move || {
            Ok(store
                .info(&cid)?
                .is_some_and(|e| matches!(e.state, EntryState::Partial { .. })))
        })
        .await?;
        if partial {
            self.transfers.net().stop_providing(cid).await;
            let store = self.transfers.store().clone();
            blocking(move || store.remove(&cid)).await?;
            self.emit(LiveEvent::FileChanged {
                cid: cid.to_string(),
                change: "removed".into(),
            });
        }
        tracing::info!(%cid, "download cancelled");
        let info = self.download_info(&cid)?;
        self.emit(LiveEvent::Download {
            download: info.clone(),
        });
        Ok(info)
    }

    /// A complete file's name, size and chunk count, for streaming it to a browser.
    pub async fn content_info(&self, cid: &str) -> Result<(Cid, String, u64, u32), ApiError> {
        let cid = parse_cid(cid)?;
        let store = self.transfers.store().clone();
        let info = blocking(move || store.info(&cid))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("{cid} is not in the store")))?;
        if !matches!(info.state, EntryState::Complete) {
            return Err(ApiError::conflict(format!(
                "{cid} is not complete yet: it is still being downloaded"
            )));
        }
        let name = crate::transfer::fetch::safe_file_name(info.name.as_deref(), &cid);
        Ok((cid, name, info.size, info.chunk_count))
    }

    /// One verified chunk of a file.
    pub async fn read_chunk(
        &self,
        cid: Cid,
        index: u32,
    ) -> Result<chunk_store::ChunkBuf, ApiError> {
        let store = self.transfers.store().clone();
        blocking(move || store.read_chunk(&cid, index)).await
    }

    /// Stops announcing a file (it stays in the store).
    pub async fn unpublish(&self, cid: &str) -> Result<CidResponse, ApiError> {
        let cid = parse_cid(cid)?;
        let store = self.transfers.store().clone();
        blocking(move || store.set_published(&cid, false)).await?;
        self.transfers.net().stop_providing(cid).await;
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
        if self
            .transfers
            .download(&cid)
            .is_some_and(|p| !p.borrow().is_finished())
        {
            return Err(ApiError::bad_request(format!("{cid} is being downloaded")));
        }
        self.transfers.net().stop_providing(cid).await;
        let store = self.transfers.store().clone();
        let changed = blocking(move || store.remove(&cid)).await?;
        if !changed {
            return Err(ApiError::not_found(format!("{cid} is not in the store")));
        }
        lock(&self.shared.paused).remove(&cid);
        self.emit(LiveEvent::FileChanged {
            cid: cid.to_string(),
            change: "removed".into(),
        });
        Ok(CidResponse {
            cid: cid.to_string(),
            changed,
        })
    }
}

fn fetch_timeout(secs: Option<u64>) -> Result<Duration, ApiError> {
    match secs {
        Some(0) => Err(ApiError::bad_request("timeout must be at least 1 second")),
        Some(secs) if secs > 7 * 24 * 3600 => Err(ApiError::bad_request(
            "timeout must be at most a week (604800 seconds)",
        )),
        Some(secs) => Ok(Duration::from_secs(secs)),
        None => Ok(DEFAULT_FETCH_TIMEOUT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_checked() {
        assert_eq!(check_display_name(None).ok(), Some(None));
        assert_eq!(check_display_name(Some("  ".into())).ok(), Some(None));
        assert_eq!(
            check_display_name(Some(" Ada's laptop ".into())).ok(),
            Some(Some("Ada's laptop".into()))
        );
        assert!(check_display_name(Some("a\nb".into())).is_err());
        assert!(check_display_name(Some("x".repeat(65))).is_err());
    }

    #[test]
    fn upload_names_are_made_safe() {
        assert_eq!(upload_name(Some("report.pdf")), "report.pdf");
        assert_eq!(upload_name(Some("C:\\Users\\a\\b.txt")), "b.txt");
        assert_eq!(upload_name(Some("../x")), "x");
        assert_eq!(upload_name(Some("..")), "upload");
        assert_eq!(upload_name(None), "upload");
        assert_eq!(upload_name(Some(&"é".repeat(200))).len(), 254);
    }
}
