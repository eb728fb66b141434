//! The serde types of the control API: what the HTTP handlers, the CLI and the web UI
//! exchange. One definition each, shared by the server and the client.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::network::{NodeInfo, PeerInfo};
pub use crate::transfer::reputation::PeerReputation;
pub use crate::transfer::Progress;

/// `POST /api/add`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddRequest {
    /// Absolute path of the file on the daemon's machine.
    pub path: PathBuf,
    /// Track the file in place instead of copying it into the store.
    #[serde(default)]
    pub no_copy: bool,
    /// A name to list it under (default: the file name).
    #[serde(default)]
    pub name: Option<String>,
}

/// The result of an add.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddResponse {
    /// The file CID.
    pub cid: String,
    /// The name it is listed under.
    pub name: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u32,
    /// Whether the store already had these bytes.
    pub already_present: bool,
}

/// `POST /api/fetch`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchRequest {
    /// The file CID.
    pub cid: String,
    /// Where to write the file (absolute path on the daemon's machine).
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// A directory to write it in under the provider's name for it.
    #[serde(default)]
    pub output_dir: Option<PathBuf>,
    /// Give up after this many seconds without progress (default 60).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// One line of a streamed answer (`application/x-ndjson`): progress, then a result or
/// an error.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StreamLine<P, R> {
    /// Work in progress.
    Progress(P),
    /// Finished.
    Done(R),
    /// Failed.
    Error(ErrorBody),
}

/// Progress of an add.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddProgress {
    /// Bytes read so far.
    pub bytes: u64,
    /// File size.
    pub size: u64,
}

/// The error body of every failed call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// HTTP status (4xx: the request was bad; 5xx or 404 from a lookup: it failed).
    pub status: u16,
    /// One line saying what went wrong.
    pub message: String,
}

/// A file the node holds, as listed by `GET /api/files`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileInfo {
    /// The file CID.
    pub cid: String,
    /// Its name.
    pub name: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u32,
    /// Verified chunks held.
    pub have_chunks: u32,
    /// `complete` or `partial`.
    pub state: String,
    /// `store` (copied), `in_place` (tracked where it is) or `partial` (downloading).
    pub location: String,
    /// The file's path when tracked in place.
    pub path: Option<PathBuf>,
    /// Whether it is pinned.
    pub pinned: bool,
    /// When it was added (seconds since the Unix epoch).
    pub added_unix: u64,
}

/// `GET /api/id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdResponse {
    /// Our peer id.
    pub peer_id: String,
    /// Full addresses others can bootstrap from (ending in `/p2p/<peer id>`).
    pub addrs: Vec<String>,
}

/// `GET /api/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusResponse {
    /// Daemon version.
    pub version: String,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Our identity and reach.
    pub node: NodeInfoOwned,
    /// Files held (complete or partial).
    pub files: usize,
    /// Downloads run since start.
    pub downloads: Vec<serde_json::Value>,
}

/// [`NodeInfo`] in a form the client can deserialize.
pub type NodeInfoOwned = serde_json::Value;

/// `DELETE /api/files/{cid}` and `POST /api/files/{cid}/unpublish`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CidResponse {
    /// The file CID.
    pub cid: String,
    /// Whether anything changed.
    pub changed: bool,
}
