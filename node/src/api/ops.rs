//! The operator's API operations and their wire types: clearing the download history,
//! and the metrics scrape (the daemon-managed downloads themselves are in the facade and
//! [`super::transfers`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::transfers::DownloadState;
use super::{Api, ApiError};
use crate::metrics::{Metrics, Reading};

/// `DELETE /api/downloads`: what clearing the history did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClearedHistory {
    /// Ended downloads (done, failed, cancelled) forgotten.
    pub cleared: usize,
}

/// Every wire state, so that a state with no download shows 0 rather than vanishing.
const STATES: [(DownloadState, &str); 8] = [
    (DownloadState::Queued, "queued"),
    (DownloadState::Finding, "finding"),
    (DownloadState::Downloading, "downloading"),
    (DownloadState::Verifying, "verifying"),
    (DownloadState::Paused, "paused"),
    (DownloadState::Done, "done"),
    (DownloadState::Failed, "failed"),
    (DownloadState::Cancelled, "cancelled"),
];

impl Api {
    /// Forgets the ended downloads (paused and running ones stay).
    pub async fn clear_download_history(&self) -> Result<ClearedHistory, ApiError> {
        let cleared = self.transfers.clear_download_history().await?;
        Ok(ClearedHistory { cleared })
    }

    /// Serves `metrics` at `GET /metrics` from now on.
    pub fn set_metrics(&self, metrics: Arc<Metrics>) {
        let _ = self.shared.metrics.set(metrics);
    }

    /// The metrics in the OpenMetrics text format.
    pub async fn metrics_text(&self) -> Result<String, ApiError> {
        let Some(metrics) = self.shared.metrics.get().cloned() else {
            return Err(ApiError::not_found("this daemon keeps no metrics"));
        };
        let reading = self.metrics_reading().await?;
        Ok(metrics.render(&reading))
    }

    async fn metrics_reading(&self) -> Result<Reading, ApiError> {
        let (received, sent) = self
            .transfers
            .traffic()
            .values()
            .fold((0u64, 0u64), |(r, s), t| {
                (r.saturating_add(t.received), s.saturating_add(t.sent))
            });
        let chunks = self.transfers.chunk_counts();
        let info = self.node_info().await?;
        let peers = self.peers().await?;
        let files = self.files().await?;
        let downloads = self.downloads();
        let mut reading = Reading {
            received_bytes: received,
            sent_bytes: sent,
            chunks_verified: chunks.verified,
            chunks_corrupt: chunks.corrupt,
            routing_table_peers: count(info.routing_table_peers),
            dht_server: info.dht_server,
            provider_announcements: info.provider_announcements,
            relay_reservations: count(info.relay_reservations.len()),
            banned_peers: count(self.reputation().iter().filter(|p| p.banned).count()),
            ..Reading::default()
        };
        reading.downloads = STATES
            .iter()
            .map(|(state, name)| {
                let n = downloads.iter().filter(|d| d.progress.state == *state);
                (*name, count(n.count()))
            })
            .collect();
        let direct = peers.iter().filter(|p| p.info.direct).count();
        reading.peers_direct = count(direct);
        reading.peers_relayed = count(peers.len() - direct);
        let mut by_state = [("complete", 0), ("partial", 0), ("changed", 0)];
        for file in &files {
            if let Some(slot) = by_state.iter_mut().find(|(s, _)| *s == file.state) {
                slot.1 += 1;
            }
            reading.store_bytes += count(match file.state.as_str() {
                "complete" => file.size,
                "partial" if file.chunks > 0 => {
                    file.size / u64::from(file.chunks) * u64::from(file.have_chunks)
                }
                _ => 0,
            });
            if let Some(a) = file.announcement.as_ref().filter(|_| file.published) {
                let stored = a.peers.unwrap_or(0);
                if stored > 0 {
                    reading.files_announced += 1;
                } else {
                    reading.files_unannounced += 1;
                }
                reading.announcement_peers += i64::from(stored);
            }
        }
        reading.store_files = by_state.to_vec();
        Ok(reading)
    }
}

/// A count as a gauge value.
fn count<T: TryInto<i64>>(n: T) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// How long a reader waits for a file's manifest, and then for each chunk.
pub const STREAM_TIMEOUT: std::time::Duration = super::DEFAULT_FETCH_TIMEOUT;

impl Api {
    /// Opens a file for reading as it downloads (starting its download if needed).
    pub async fn open_stream(
        &self,
        cid: &str,
    ) -> Result<crate::transfer::stream::StreamInfo, ApiError> {
        let cid = super::parse_cid(cid)?;
        Ok(self.transfers.open_stream(cid, STREAM_TIMEOUT).await?)
    }

    /// Chunk `index` once verified; the download fetches `wanted` first meanwhile.
    pub async fn stream_chunk(
        &self,
        cid: dht_proto::Cid,
        index: u32,
        wanted: std::ops::Range<u32>,
    ) -> Result<chunk_store::ChunkBuf, ApiError> {
        Ok(self
            .transfers
            .chunk_when_ready(cid, index, wanted, STREAM_TIMEOUT)
            .await?)
    }
}
