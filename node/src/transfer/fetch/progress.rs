//! Progress of one download: the verified bytes received in this run and their rate
//! over the last [`RATE_WINDOW`] ([`Meter`]), and the [`DownloadStatus`] snapshots the
//! registry shows, published at most every [`PROGRESS_INTERVAL`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::Engine;
use crate::transfer::status::{DownloadState, DownloadStatus, RunPhase};

/// Progress snapshots at most this often.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);
/// The rate is measured over this long.
const RATE_WINDOW: Duration = Duration::from_secs(3);

/// Bytes received in this run, and when.
pub(super) struct Meter {
    /// When this run started.
    pub started: Instant,
    /// Verified bytes received in this run.
    pub bytes_received: u64,
    /// Verified bytes received in the last [`RATE_WINDOW`], with their times.
    window: VecDeque<(Instant, u64)>,
    /// When the last snapshot was published.
    last_published: Instant,
}

impl Meter {
    pub(super) fn new() -> Self {
        Meter {
            started: Instant::now(),
            bytes_received: 0,
            window: VecDeque::new(),
            last_published: Instant::now(),
        }
    }

    /// Counts a verified chunk.
    pub(super) fn received(&mut self, bytes: u64) {
        self.bytes_received += bytes;
        self.window.push_back((Instant::now(), bytes));
    }

    /// Bytes per second over the last [`RATE_WINDOW`] (or since the start, if shorter).
    fn rate(&mut self, now: Instant) -> f64 {
        while self
            .window
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            self.window.pop_front();
        }
        let bytes: u64 = self.window.iter().map(|(_, b)| b).sum();
        let secs = self
            .window
            .front()
            .map(|(t, _)| now.duration_since(*t).as_secs_f64())
            .unwrap_or(0.0)
            .max(
                self.started
                    .elapsed()
                    .as_secs_f64()
                    .min(RATE_WINDOW.as_secs_f64()),
            )
            .max(0.001);
        bytes as f64 / secs
    }
}

impl Engine {
    /// The download as it stands.
    pub(super) fn snapshot(&mut self) -> DownloadStatus {
        let rate = self.meter.rate(Instant::now());
        let mut status = DownloadStatus::new(self.params.target.cid, self.state());
        match &self.file.manifest {
            Some(m) => {
                // Every chunk but the last is chunk_size long.
                let have = &self.file.have;
                let last = m.chunk_count().saturating_sub(1);
                let short_last = if have.get(last) {
                    u64::from(m.chunk_size() - m.chunk_len(last))
                } else {
                    0
                };
                status.bytes_done =
                    u64::from(have.count()) * u64::from(m.chunk_size()) - short_last;
                status.size = m.size();
                status.chunks_total = m.chunk_count();
                status.chunks_done = have.count();
            }
            None => {
                // A resumed download shows what it held until it knows the manifest.
                let before = self.link.status.borrow();
                status.size = before.size;
                status.chunks_total = before.chunks_total;
                status.chunks_done = before.chunks_done;
                status.bytes_done = before.bytes_done;
            }
        }
        let mut per_peer: Vec<(PeerId, u64)> = self
            .peers
            .slots
            .iter()
            .filter(|(_, s)| s.bytes > 0)
            .map(|(p, s)| (*p, s.bytes))
            .collect();
        per_peer.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
        status.name = self.file.name.clone();
        status.bytes_received = self.meter.bytes_received;
        status.rate = rate;
        status.eta = (rate > 0.0).then(|| {
            Duration::from_secs_f64(status.size.saturating_sub(status.bytes_done) as f64 / rate)
        });
        status.peers = self.peers.sending();
        status.per_peer = per_peer;
        status.elapsed = self.meter.started.elapsed();
        status.output = self.output_path();
        status
    }

    /// The state of the run now (it has not ended).
    fn state(&self) -> DownloadState {
        if self.file.verifying {
            DownloadState::Verifying
        } else if self.file.manifest.is_some() {
            DownloadState::Running(RunPhase::Transferring)
        } else {
            DownloadState::Running(RunPhase::Finding)
        }
    }

    /// Publishes a snapshot if [`PROGRESS_INTERVAL`] has passed since the last (or
    /// `force`).
    pub(super) fn publish(&mut self, force: bool) {
        if !force && self.meter.last_published.elapsed() < PROGRESS_INTERVAL {
            return;
        }
        self.meter.last_published = Instant::now();
        let status = self.snapshot();
        self.link.status.send_replace(status);
    }
}
