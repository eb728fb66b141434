//! The wire types of what the transfer engine reports (a download's [`Progress`], a
//! peer's [`PeerReputation`]) and their conversions from the engine's types. The JSON
//! shape is the one the CLI and the web UI read.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::transfer;

/// Where a download stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DownloadState {
    /// Looking for providers and the manifest.
    Finding,
    /// Transferring chunks.
    Downloading,
    /// Finished; the file is in place.
    Done,
    /// Gave up; see `error`.
    Failed,
}

/// Verified bytes one peer sent in a download.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PeerBytes {
    /// The peer.
    pub peer_id: String,
    /// Verified bytes it sent.
    pub bytes: u64,
}

/// A snapshot of a download.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// The file CID.
    pub cid: String,
    /// Its name, once known.
    pub name: Option<String>,
    /// Where it stands.
    pub state: DownloadState,
    /// File size (0 until the manifest is known).
    pub size: u64,
    /// Chunks in the file.
    pub chunks_total: u32,
    /// Chunks verified and stored.
    pub chunks_done: u32,
    /// Bytes verified and stored (including any held before this run).
    pub bytes_done: u64,
    /// Verified bytes received over the network in this run.
    pub bytes_received: u64,
    /// Current rate in bytes per second.
    pub rate: f64,
    /// Estimated seconds left.
    pub eta_secs: Option<f64>,
    /// Peers sending to us now.
    pub peers: usize,
    /// Verified bytes per peer in this run.
    pub per_peer: Vec<PeerBytes>,
    /// Seconds since this run started.
    pub elapsed_secs: f64,
    /// Where the file goes (`null`: the store).
    #[schema(value_type = Option<String>)]
    pub output: Option<PathBuf>,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether the failure was the caller's input rather than the network.
    pub bad_input: bool,
}

impl Progress {
    /// Whether the download has ended.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, DownloadState::Done | DownloadState::Failed)
    }
}

/// This node's record of a peer: its score and the counters behind it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PeerReputation {
    /// The peer.
    pub peer_id: String,
    /// Its score, -100 to 100.
    pub score: f64,
    /// Whether it is banned now.
    pub banned: bool,
    /// Verified bytes it sent us.
    pub received: u64,
    /// Bytes we sent it.
    pub sent: u64,
    /// Chunks it sent that failed verification.
    pub corrupt_chunks: u32,
    /// Catalog entries it sent that it did not sign, or that did not match the search.
    pub forged_entries: u32,
    /// Requests to it that timed out or failed.
    pub failures: u32,
    /// Requests it refused (choked, or did not have what it claimed).
    pub refusals: u32,
    /// Banned until this time (seconds since the Unix epoch).
    pub banned_until: Option<u64>,
    /// Last time we dealt with it (seconds since the Unix epoch).
    pub last_seen: u64,
}

impl From<transfer::DownloadState> for DownloadState {
    fn from(s: transfer::DownloadState) -> Self {
        match s {
            transfer::DownloadState::Finding => DownloadState::Finding,
            transfer::DownloadState::Downloading => DownloadState::Downloading,
            transfer::DownloadState::Done => DownloadState::Done,
            transfer::DownloadState::Failed => DownloadState::Failed,
        }
    }
}

impl From<transfer::Progress> for Progress {
    fn from(p: transfer::Progress) -> Self {
        Progress {
            cid: p.cid,
            name: p.name,
            state: p.state.into(),
            size: p.size,
            chunks_total: p.chunks_total,
            chunks_done: p.chunks_done,
            bytes_done: p.bytes_done,
            bytes_received: p.bytes_received,
            rate: p.rate,
            eta_secs: p.eta_secs,
            peers: p.peers,
            per_peer: p
                .per_peer
                .into_iter()
                .map(|b| PeerBytes {
                    peer_id: b.peer_id,
                    bytes: b.bytes,
                })
                .collect(),
            elapsed_secs: p.elapsed_secs,
            output: p.output,
            error: p.error,
            bad_input: p.bad_input,
        }
    }
}

impl From<transfer::reputation::PeerReputation> for PeerReputation {
    fn from(r: transfer::reputation::PeerReputation) -> Self {
        PeerReputation {
            peer_id: r.peer_id,
            score: r.score,
            banned: r.banned,
            received: r.record.received,
            sent: r.record.sent,
            corrupt_chunks: r.record.corrupt_chunks,
            forged_entries: r.record.forged_entries,
            failures: r.record.failures,
            refusals: r.record.refusals,
            banned_until: r.record.banned_until,
            last_seen: r.record.last_seen,
        }
    }
}
