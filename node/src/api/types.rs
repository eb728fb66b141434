//! The wire types of the control API: what the HTTP handlers, the CLI and the web UI
//! exchange, one definition each, shared by the server and the client. The OpenAPI
//! document's schemas are derived from them (`ToSchema`), so a field cannot be added to
//! the answers without reaching the document. Lower layers keep their own types; the
//! wire forms of theirs, and the conversions, are in `convert.rs` (network) and
//! `transfers.rs` (the transfer engine).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use super::convert::{AnnouncementInfo, NetEvent, NodeInfo, PeerInfo};
pub use super::transfers::{DownloadState, PeerBytes, PeerReputation, Progress};

/// `POST /api/add`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddRequest {
    /// Absolute path of the file on the daemon's machine.
    #[schema(value_type = String)]
    pub path: PathBuf,
    /// Track the file in place instead of copying it into the store.
    #[serde(default)]
    pub no_copy: bool,
    /// A name to list it under (default: the file name).
    #[serde(default)]
    pub name: Option<String>,
    /// Keep it out of the catalog: fetchable by CID only, never found by search.
    #[serde(default)]
    pub unlisted: bool,
}

/// The result of an add.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FetchRequest {
    /// The file CID.
    pub cid: String,
    /// Where to write the file (absolute path on the daemon's machine).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub output: Option<PathBuf>,
    /// A directory to write it in under the provider's name for it.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub output_dir: Option<PathBuf>,
    /// Give up after this many seconds without progress (default 60).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// One line of a streamed answer (`application/x-ndjson`): progress, then a result or
/// an error. The document names each use of it: [`AddLine`], [`FetchLine`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddProgress {
    /// Bytes read so far.
    pub bytes: u64,
    /// File size.
    pub size: u64,
}

/// The error body of every failed call.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// HTTP status (4xx: the request was bad; 5xx or 404 from a lookup: it failed).
    pub status: u16,
    /// One line saying what went wrong.
    pub message: String,
}

/// A file the node holds, as listed by `GET /api/files`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    /// `complete`, `partial` or `changed` (an in-place file that changed on disk).
    pub state: String,
    /// `store` (copied), `in_place` (tracked where it is) or `partial` (downloading).
    pub location: String,
    /// The file's path when tracked in place.
    #[schema(value_type = Option<String>)]
    pub path: Option<PathBuf>,
    /// Whether it is pinned.
    pub pinned: bool,
    /// When it was added (seconds since the Unix epoch).
    pub added_unix: u64,
    /// Whether the node announces it (false after `unpublish`).
    #[serde(default = "yes")]
    pub published: bool,
    /// How announcing it went, while the node announces it.
    #[serde(default)]
    pub announcement: Option<AnnouncementInfo>,
    /// Whether it is marked listed (false after `add --unlisted` or `unlist`).
    #[serde(default = "yes")]
    pub listed: bool,
    /// Whether it is in the catalog now (listed, published and complete).
    #[serde(default)]
    pub in_catalog: bool,
    /// Whether the CID names a folder (`GET /api/folders/{cid}` lists its tree); then
    /// `chunks` counts its files, `have_chunks` those here, and `location` is `folder`.
    #[serde(default)]
    pub folder: bool,
}

fn yes() -> bool {
    true
}

/// `GET /api/id`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IdResponse {
    /// Our peer id.
    pub peer_id: String,
    /// Full addresses others can bootstrap from (ending in `/p2p/<peer id>`).
    pub addrs: Vec<String>,
}

/// `GET /api/status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    /// Daemon version.
    pub version: String,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// The data directory.
    #[schema(value_type = String)]
    pub data_dir: PathBuf,
    /// The name the owner gave this node, if any.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Our identity and reach.
    pub node: NodeInfo,
    /// Files held (complete or partial).
    pub files: usize,
    /// CIDs of the files tracked in place that changed on disk (no longer served).
    #[serde(default)]
    pub changed_files: Vec<String>,
    /// Downloads run since start.
    pub downloads: Vec<DownloadInfo>,
}

/// `DELETE /api/files/{cid}` and `POST /api/files/{cid}/unpublish`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CidResponse {
    /// The file CID.
    pub cid: String,
    /// Whether anything changed.
    pub changed: bool,
}

/// `GET` and `PUT /api/settings`: what the owner can change while the daemon runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Settings {
    /// A name for this node, shown in the web UI and in `p2pd status` (1 to 64
    /// characters, no control characters; `null` or empty clears it).
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `POST /api/downloads`: start (or attach to) a download kept in the store.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StartDownload {
    /// The file CID.
    #[schema(example = "bafyr4iaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    pub cid: String,
    /// Give up after this many seconds without progress (default 60).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// A download as listed by `GET /api/downloads`: its progress, and whether the owner
/// paused it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DownloadInfo {
    /// The engine's last snapshot.
    #[serde(flatten)]
    #[schema(inline)]
    pub progress: Progress,
    /// Paused by the owner: the verified chunks are kept and `resume` continues.
    pub paused: bool,
}

/// One connected peer with what we exchanged with it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PeerView {
    /// Addresses, connection kind, RTT, agent.
    #[serde(flatten)]
    #[schema(inline)]
    pub info: PeerInfo,
    /// Verified bytes it sent us (all time: kept with its reputation).
    pub bytes_received: u64,
    /// Bytes we sent it (all time).
    pub bytes_sent: u64,
    /// Bytes per second it sends us now (over the last few seconds).
    pub rate_down: f64,
    /// Bytes per second we send it now.
    pub rate_up: f64,
    /// Whether we refuse it (it sent corrupt data).
    pub banned: bool,
    /// This node's reputation score for it (-100 to 100); `null` if it never sent or
    /// refused us anything.
    pub reputation: Option<f64>,
}

/// One sample of the node's traffic.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct RateSample {
    /// When (milliseconds since the Unix epoch).
    pub t_ms: u64,
    /// Bytes per second received (verified chunk data).
    pub down: f64,
    /// Bytes per second sent.
    pub up: f64,
}

/// `GET /api/stats`: bandwidth now and over the last minutes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatsResponse {
    /// Bytes per second received now.
    pub down_rate: f64,
    /// Bytes per second sent now.
    pub up_rate: f64,
    /// Verified bytes received, all time (kept with peer reputation).
    pub total_received: u64,
    /// Bytes sent, all time (kept with peer reputation).
    pub total_sent: u64,
    /// One sample per second, oldest first (at most the last five minutes).
    pub history: Vec<RateSample>,
}

/// A live event, as sent on `GET /api/events/live` (server-sent events, one JSON object
/// per `data:` line) and tagged by `type`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A peer connected, left, or an address of ours was confirmed.
    Net {
        /// The network event (`peer_connected`, `peer_disconnected`, `external_address`).
        event: NetEvent,
    },
    /// A download changed.
    Download {
        /// Its state now.
        download: DownloadInfo,
    },
    /// A file was added (shared) on this node.
    FileAdded {
        /// The file.
        file: AddResponse,
    },
    /// A file was removed, or stopped or started being announced.
    FileChanged {
        /// The file CID.
        cid: String,
        /// `removed`, `unpublished`, `published`, `changed_on_disk` or `repaired`.
        change: String,
    },
    /// The bandwidth sample of the last second.
    Stats {
        /// The sample.
        sample: RateSample,
    },
    /// This node's score for a peer changed (it sent verified data, failed, refused,
    /// or was banned).
    Reputation {
        /// The peer.
        peer_id: String,
        /// Its score now, -100 to 100.
        score: f64,
        /// Whether it is banned now.
        banned: bool,
    },
    /// The owner changed the settings.
    Settings {
        /// The new settings.
        settings: Settings,
    },
}

/// `POST /api/login`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The owner's password.
    pub password: String,
}

/// `POST /api/setup`: set the first password with the one-time setup token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetupRequest {
    /// The token from the setup link the daemon printed.
    pub token: String,
    /// The new password (at least 8 characters).
    pub password: String,
}

/// `GET /api/session`, and the answer to a login.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    /// Whether this request is authenticated.
    pub authenticated: bool,
    /// How: `token` (the CLI's bearer token) or `session` (a web login).
    pub via: Option<String>,
    /// Whether the owner has set a password yet.
    pub password_set: bool,
    /// The header value state-changing requests of this session must send as
    /// `X-CSRF-Token`.
    pub csrf_token: Option<String>,
    /// Seconds until the session expires.
    pub expires_in_secs: Option<u64>,
}

/// The lines of `POST /api/add`.
pub type AddLine = StreamLine<AddProgress, AddResponse>;
/// The lines of `POST /api/fetch`.
pub type FetchLine = StreamLine<Progress, Progress>;

/// The bytes of a file, as an `application/octet-stream` body (for the document only).
pub struct FileBytes;

impl utoipa::PartialSchema for FileBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .content_media_type("application/octet-stream")
            .into()
    }
}

impl ToSchema for FileBytes {}
