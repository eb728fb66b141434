//! The control API: [`Api`] is a facade of plain async operations on the serde types in
//! [`types`]; [`http`] serves them over HTTP/JSON with a token, and the CLI calls them
//! through [`crate::client`].

pub mod http;
pub mod types;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chunk_store::{EntryState, ImportMode, Location, StoreError};
use dht_proto::Cid;
use tokio::sync::watch;

use crate::transfer::fetch::FetchParams;
use crate::transfer::{Progress, Transfers};
use types::*;

/// Default fetch timeout without progress.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// An error that carries its HTTP status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// One line.
    pub message: String,
}

impl ApiError {
    /// The request was bad (400).
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
        }
    }

    /// The thing asked about does not exist (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: 404,
            message: message.into(),
        }
    }

    /// The daemon failed (500).
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: 500,
            message: message.into(),
        }
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
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
        .map_err(ApiError::from)
}

impl Api {
    /// The facade over a running node.
    pub fn new(transfers: Transfers, data_dir: PathBuf) -> Self {
        Api {
            transfers,
            started: Instant::now(),
            data_dir,
        }
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
        let outcome =
            blocking(move || store.import(&request.path, mode, request.name, &mut progress))
                .await?;
        tracing::info!(cid = %outcome.cid, size = outcome.size, "file added");
        self.transfers.net().start_providing(outcome.cid).await;
        Ok(AddResponse {
            cid: outcome.cid.to_string(),
            name: outcome.name,
            size: outcome.size,
            chunks: outcome.chunks,
            already_present: outcome.already_present,
        })
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
        let timeout = match request.timeout_secs {
            Some(0) => return Err(ApiError::bad_request("timeout must be at least 1 second")),
            Some(secs) => Duration::from_secs(secs),
            None => DEFAULT_FETCH_TIMEOUT,
        };
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
        Ok(entries
            .into_iter()
            .map(|e| {
                let (state, have) = match e.state {
                    EntryState::Complete => ("complete", e.chunk_count),
                    EntryState::Partial { have } => ("partial", have),
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
            node: serde_json::to_value(info).unwrap_or_default(),
            files,
            downloads: self
                .transfers
                .downloads()
                .into_iter()
                .filter_map(|p| serde_json::to_value(p).ok())
                .collect(),
        })
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, ApiError> {
        self.transfers
            .net()
            .peers()
            .await
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// Live network events.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<crate::network::NetEvent> {
        self.transfers.net().subscribe()
    }

    /// This node's scores for the peers it has dealt with, best first.
    pub fn reputation(&self) -> Vec<PeerReputation> {
        self.transfers.reputation()
    }

    /// Downloads run since the daemon started.
    pub fn downloads(&self) -> Vec<Progress> {
        self.transfers.downloads()
    }

    /// Stops announcing a file (it stays in the store).
    pub async fn unpublish(&self, cid: &str) -> Result<CidResponse, ApiError> {
        let cid = parse_cid(cid)?;
        let store = self.transfers.store().clone();
        blocking(move || store.set_published(&cid, false)).await?;
        self.transfers.net().stop_providing(cid).await;
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
        Ok(CidResponse {
            cid: cid.to_string(),
            changed,
        })
    }
}
