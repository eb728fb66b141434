//! The wire types of what the transfer engine reports (a download's [`Progress`], a
//! peer's [`PeerReputation`]) and their conversions from the engine's domain types, plus
//! [`DownloadWatch`], a download's progress as it changes. The JSON shape is the one
//! the CLI and the web UI read.

use std::collections::HashMap;
use std::path::PathBuf;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;

use super::types::DownloadInfo;
use crate::transfer::reputation::PeerStanding;
use crate::transfer::{self, DownloadStatus, FailureKind, RunPhase};

/// Where a download stands, on the wire.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DownloadState {
    /// Waiting for one of the engine's run slots.
    Queued,
    /// Looking for providers and the manifest.
    Finding,
    /// Transferring chunks.
    Downloading,
    /// Re-hashing the chunks a partial file holds before resuming.
    Verifying,
    /// Stopped by the owner, verified chunks kept; `resume` continues.
    Paused,
    /// Finished; the file is in place.
    Done,
    /// Gave up; see `error`. `resume` retries.
    Failed,
    /// Stopped by the owner and what it fetched deleted.
    Cancelled,
}

impl DownloadState {
    /// Whether the download has ended (paused, done, failed or cancelled).
    pub fn has_ended(self) -> bool {
        matches!(
            self,
            DownloadState::Paused
                | DownloadState::Done
                | DownloadState::Failed
                | DownloadState::Cancelled
        )
    }
}

/// Bytes one peer contributed to a download.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct PeerBytes {
    /// The peer.
    pub peer_id: String,
    /// Verified bytes received from it.
    pub bytes: u64,
}

/// A snapshot of a download, streamed to the CLI and the web UI.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// The file.
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
    /// Where the file goes.
    #[schema(value_type = Option<String>)]
    pub output: Option<PathBuf>,
    /// Why it ended without the file: the failure, or that the owner paused or
    /// cancelled it.
    pub error: Option<String>,
    /// Whether the failure was the caller's input (exit code 2) rather than the network.
    pub bad_input: bool,
    /// Whether the failure was this node's full disk (the error says how much room the
    /// file needs and how much is free).
    #[serde(default)]
    pub no_space: bool,
    /// The CID names a folder, not a file: nothing was written, and the folder is
    /// fetched with `POST /api/folders/fetch` (sent as a `done` line of `/api/fetch`).
    #[serde(default)]
    pub folder: bool,
}

impl Progress {
    /// The answer of `/api/fetch` for a CID the store knows as a folder.
    pub fn of_folder(cid: dht_proto::Cid) -> Self {
        Progress::from(&DownloadStatus::new(
            cid,
            transfer::DownloadState::Failed(transfer::Failure::folder(&cid)),
        ))
    }

    /// Whether the download has ended.
    pub fn is_finished(&self) -> bool {
        self.state.has_ended()
    }
}

impl From<&DownloadStatus> for Progress {
    fn from(s: &DownloadStatus) -> Self {
        let (state, error, bad_input) = match &s.state {
            transfer::DownloadState::Queued => (DownloadState::Queued, None, false),
            transfer::DownloadState::Running(RunPhase::Finding) => {
                (DownloadState::Finding, None, false)
            }
            transfer::DownloadState::Running(RunPhase::Transferring) => {
                (DownloadState::Downloading, None, false)
            }
            transfer::DownloadState::Verifying => (DownloadState::Verifying, None, false),
            transfer::DownloadState::Paused => (
                DownloadState::Paused,
                Some(format!("the download of {} was paused", s.cid)),
                false,
            ),
            transfer::DownloadState::Done => (DownloadState::Done, None, false),
            transfer::DownloadState::Failed(failure) => (
                DownloadState::Failed,
                Some(failure.message.clone()),
                failure.kind == FailureKind::BadInput,
            ),
            transfer::DownloadState::Cancelled => (
                DownloadState::Cancelled,
                Some(format!("the download of {} was cancelled", s.cid)),
                false,
            ),
        };
        Progress {
            cid: s.cid.to_string(),
            name: s.name.clone(),
            state,
            size: s.size,
            chunks_total: s.chunks_total,
            chunks_done: s.chunks_done,
            bytes_done: s.bytes_done,
            bytes_received: s.bytes_received,
            rate: s.rate,
            eta_secs: s.eta.map(|d| d.as_secs_f64()),
            peers: s.peers,
            per_peer: s
                .per_peer
                .iter()
                .map(|(peer, bytes)| PeerBytes {
                    peer_id: peer.to_string(),
                    bytes: *bytes,
                })
                .collect(),
            elapsed_secs: s.elapsed.as_secs_f64(),
            output: s.output.clone(),
            error,
            bad_input,
            no_space: matches!(&s.state, transfer::DownloadState::Failed(f) if f.kind == FailureKind::NoSpace),
            folder: matches!(&s.state, transfer::DownloadState::Failed(f) if f.kind == FailureKind::Folder),
        }
    }
}

impl From<&DownloadStatus> for DownloadInfo {
    fn from(s: &DownloadStatus) -> Self {
        let progress = Progress::from(s);
        DownloadInfo {
            paused: progress.state == DownloadState::Paused,
            progress,
        }
    }
}

/// A download's progress as it changes.
pub struct DownloadWatch(watch::Receiver<DownloadStatus>);

impl DownloadWatch {
    pub(super) fn new(status: watch::Receiver<DownloadStatus>) -> Self {
        DownloadWatch(status)
    }

    /// The latest snapshot (marked as seen).
    pub fn latest(&mut self) -> Progress {
        Progress::from(&*self.0.borrow_and_update())
    }

    /// Waits for a snapshot newer than the last one seen; fails when the engine is gone.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.0.changed().await
    }
}

/// One peer's entry as the API shows it: this node's score for it and the counters
/// behind the score.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
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
    /// Chunks it advertised and then did not have.
    pub refusals: u32,
    /// Chunk requests it answered `Choked`.
    #[serde(default)]
    pub chokes: u32,
    /// Banned until this time (seconds since the Unix epoch).
    pub banned_until: Option<u64>,
    /// Why it was last banned.
    #[serde(default)]
    pub ban_reason: Option<String>,
    /// Whether it takes without giving (gets only the optimistic upload slot).
    #[serde(default)]
    pub taker: bool,
    /// First time we dealt with it (seconds since the Unix epoch; 0 if not known).
    #[serde(default)]
    pub first_seen: u64,
    /// Last time we dealt with it (seconds since the Unix epoch).
    pub last_seen: u64,
    /// Score samples, oldest first: `[unix seconds, score]` (the trend).
    #[serde(default)]
    pub history: Vec<(u64, f64)>,
}

impl From<&PeerStanding> for PeerReputation {
    fn from(p: &PeerStanding) -> Self {
        PeerReputation {
            peer_id: p.peer.to_string(),
            score: p.score,
            banned: p.banned,
            received: p.record.received,
            sent: p.record.sent,
            corrupt_chunks: p.record.corrupt_chunks,
            forged_entries: p.record.forged_entries,
            failures: p.record.failures,
            refusals: p.record.refusals,
            chokes: p.record.chokes,
            banned_until: p.record.banned_until,
            ban_reason: p.record.ban_reason.clone(),
            taker: crate::transfer::reputation::rules::is_taker(&p.record),
            first_seen: p.record.first_seen,
            last_seen: p.record.last_seen,
            history: p
                .record
                .history
                .iter()
                .map(|s| (s.at, f64::from(s.score_hundredths) / 100.0))
                .collect(),
        }
    }
}

/// The last score and ban shown of each peer, so that only changes are sent to live
/// views. It holds the peers of the latest table only: a peer the engine forgot is
/// forgotten here too.
#[derive(Debug, Default)]
pub struct ScoreChanges {
    shown: HashMap<PeerId, (f64, bool)>,
}

impl ScoreChanges {
    /// The peers of `table` whose score or ban changed since the last call (all of them
    /// the first time).
    pub fn update(&mut self, table: &[PeerStanding]) -> Vec<PeerStanding> {
        let mut changed = Vec::new();
        let mut shown = HashMap::with_capacity(table.len());
        for peer in table {
            let now = (peer.score, peer.banned);
            if self.shown.get(&peer.peer) != Some(&now) {
                changed.push(peer.clone());
            }
            shown.insert(peer.peer, now);
        }
        self.shown = shown;
        changed
    }

    /// Peers remembered.
    pub fn len(&self) -> usize {
        self.shown.len()
    }

    /// Whether no peer is remembered.
    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::Failure;
    use dht_proto::Cid;
    use libp2p::PeerId;
    use std::time::Duration;

    fn status(state: transfer::DownloadState) -> DownloadStatus {
        DownloadStatus {
            cid: Cid::for_manifest_bytes(b"m"),
            name: Some("f".into()),
            state,
            size: 10,
            chunks_total: 1,
            chunks_done: 1,
            bytes_done: 10,
            bytes_received: 10,
            rate: 5.0,
            eta: Some(Duration::from_millis(1500)),
            peers: 1,
            per_peer: vec![(PeerId::random(), 10)],
            elapsed: Duration::from_secs(2),
            output: Some(PathBuf::from("/x")),
        }
    }

    #[test]
    fn every_engine_state_has_its_wire_state() {
        use transfer::DownloadState as S;
        let cases = [
            (S::Queued, "queued", false, false),
            (S::Running(RunPhase::Finding), "finding", false, false),
            (
                S::Running(RunPhase::Transferring),
                "downloading",
                false,
                false,
            ),
            (S::Verifying, "verifying", false, false),
            (S::Paused, "paused", true, true),
            (S::Done, "done", true, false),
            (
                S::Failed(Failure::network("no provider")),
                "failed",
                true,
                true,
            ),
            (S::Cancelled, "cancelled", true, true),
        ];
        for (state, wire, ended, has_error) in cases {
            let info = DownloadInfo::from(&status(state));
            let json = serde_json::to_value(&info).expect("serializable");
            assert_eq!(json["state"], wire);
            assert_eq!(json["paused"], wire == "paused");
            assert_eq!(info.progress.is_finished(), ended, "{wire}");
            assert_eq!(info.progress.error.is_some(), has_error, "{wire}");
            assert_eq!(json["eta_secs"], 1.5);
            assert_eq!(json["per_peer"][0]["bytes"], 10);
        }
        let bad = Progress::from(&status(S::Failed(Failure::bad_input("exists"))));
        assert!(bad.bad_input);
        assert_eq!(bad.error.as_deref(), Some("exists"));
    }

    #[test]
    fn score_changes_hold_only_the_peers_of_the_latest_table() {
        use crate::transfer::reputation::PeerRecord;
        let standing = |peer, score| PeerStanding {
            peer,
            score,
            banned: false,
            record: PeerRecord::default(),
        };
        let mut changes = ScoreChanges::default();
        let stays = PeerId::random();
        // 10,000 peers come, each seen once, and go.
        for _ in 0..10_000 {
            let table = [standing(stays, 1.0), standing(PeerId::random(), 0.0)];
            let changed = changes.update(&table);
            assert!(changed.iter().any(|p| p.peer == table[1].peer));
            assert!(changes.len() <= 2);
        }
        // Only changes are reported.
        assert!(changes.update(&[standing(stays, 1.0)]).is_empty());
        assert_eq!(changes.update(&[standing(stays, 2.5)]).len(), 1);
        assert!(changes.update(&[]).is_empty());
        assert!(changes.is_empty());
    }
}
