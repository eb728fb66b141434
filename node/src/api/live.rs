//! What the live views need and the transfer engine does not keep: bandwidth sampled
//! once a second from [`Transfers::traffic`] (the node's rate now, the last five
//! minutes of it, and each peer's current rate), and the stream of [`LiveEvent`]s of
//! download progress, made by watching every download's progress snapshots.
//!
//! One task, [`monitor`], does both for all clients, so the cost does not grow with the
//! number of open browser tabs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Weak;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::PeerId;

use super::transfers::ScoreChanges;
use super::types::{DownloadInfo, LiveEvent, RateSample, StatsResponse};
use super::{lock, Shared};
use crate::transfer::{PeerTraffic, Transfers};

/// Samples kept: one a second for five minutes.
pub const HISTORY_LEN: usize = 300;
/// "Now" is the average over this many one-second samples.
const NOW_WINDOW: usize = 3;
/// How often downloads are checked for changes.
const DOWNLOAD_POLL: Duration = Duration::from_millis(250);

/// Bandwidth history.
#[derive(Default)]
pub struct Stats {
    history: VecDeque<RateSample>,
    /// Per-peer totals at the last few samples, oldest first.
    snapshots: VecDeque<(Instant, HashMap<PeerId, PeerTraffic>)>,
    total_received: u64,
    total_sent: u64,
}

fn totals(traffic: &HashMap<PeerId, PeerTraffic>) -> (u64, u64) {
    traffic
        .values()
        .fold((0, 0), |(r, s), t| (r + t.received, s + t.sent))
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Stats {
    /// Records the byte counters as they are at `now`; returns the sample of the
    /// interval since the last call.
    pub fn sample(
        &mut self,
        traffic: HashMap<PeerId, PeerTraffic>,
        now: Instant,
        t_ms: u64,
    ) -> RateSample {
        let (received, sent) = totals(&traffic);
        let sample = match self.snapshots.back() {
            Some((then, previous)) => {
                let secs = now.duration_since(*then).as_secs_f64().max(0.001);
                let (r0, s0) = totals(previous);
                RateSample {
                    t_ms,
                    down: received.saturating_sub(r0) as f64 / secs,
                    up: sent.saturating_sub(s0) as f64 / secs,
                }
            }
            None => RateSample {
                t_ms,
                down: 0.0,
                up: 0.0,
            },
        };
        self.total_received = received;
        self.total_sent = sent;
        self.history.push_back(sample);
        while self.history.len() > HISTORY_LEN {
            self.history.pop_front();
        }
        self.snapshots.push_back((now, traffic));
        while self.snapshots.len() > NOW_WINDOW + 1 {
            self.snapshots.pop_front();
        }
        sample
    }

    /// The answer of `GET /api/stats`.
    pub fn response(&self) -> StatsResponse {
        let recent = self.history.iter().rev().take(NOW_WINDOW);
        let n = recent.len().max(1) as f64;
        let (down, up) = recent.fold((0.0, 0.0), |(d, u), s| (d + s.down, u + s.up));
        StatsResponse {
            down_rate: down / n,
            up_rate: up / n,
            total_received: self.total_received,
            total_sent: self.total_sent,
            history: self.history.iter().copied().collect(),
        }
    }

    /// Bytes per second a peer sent us and we sent it, over the last few seconds.
    pub fn peer_rates(&self, peer: &PeerId) -> (f64, f64) {
        let (Some((t0, first)), Some((t1, last))) = (self.snapshots.front(), self.snapshots.back())
        else {
            return (0.0, 0.0);
        };
        let secs = t1.duration_since(*t0).as_secs_f64();
        if secs <= 0.0 {
            return (0.0, 0.0);
        }
        let a = first.get(peer).copied().unwrap_or_default();
        let b = last.get(peer).copied().unwrap_or_default();
        (
            b.received.saturating_sub(a.received) as f64 / secs,
            b.sent.saturating_sub(a.sent) as f64 / secs,
        )
    }
}

/// Samples bandwidth every second and sends a [`LiveEvent`] for every change of a
/// download, until the API is dropped.
pub(super) async fn monitor(transfers: Transfers, shared: Weak<Shared>) {
    let mut tick = tokio::time::interval(DOWNLOAD_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_sample = Instant::now();
    // The last state sent of each download, as JSON, and whether it had ended: ended
    // downloads do not change, so they are not serialized again.
    let mut sent: HashMap<String, (String, bool)> = HashMap::new();
    // The last score and ban sent for each peer.
    let mut scores = ScoreChanges::default();
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = Instant::now();
        if now >= next_sample {
            next_sample += Duration::from_secs(1);
            if next_sample < now {
                next_sample = now + Duration::from_secs(1);
            }
            let sample = lock(&shared.stats).sample(transfers.traffic(), now, unix_ms());
            let _ = shared.events.send(LiveEvent::Stats { sample });
            for peer in scores.update(&transfers.reputation()) {
                let _ = shared.events.send(LiveEvent::Reputation {
                    peer_id: peer.peer.to_string(),
                    score: peer.score,
                    banned: peer.banned,
                });
            }
        }
        if shared.events.receiver_count() == 0 {
            sent.clear();
            continue;
        }
        let downloads = transfers.downloads();
        // Downloads the engine forgot are forgotten here too.
        let listed: HashSet<String> = downloads.iter().map(|d| d.cid.to_string()).collect();
        sent.retain(|cid, _| listed.contains(cid));
        for status in downloads {
            let cid = status.cid.to_string();
            if status.state.has_ended() && sent.get(&cid).is_some_and(|(_, ended)| *ended) {
                continue;
            }
            let info = DownloadInfo::from(&status);
            let Ok(mut value) = serde_json::to_value(&info) else {
                continue;
            };
            // Elapsed time changes on every snapshot; only real changes are sent.
            if let Some(fields) = value.as_object_mut() {
                fields.remove("elapsed_secs");
            }
            let key = value.to_string();
            if sent.get(&info.progress.cid).map(|(k, _)| k) != Some(&key) {
                let ended = info.progress.is_finished();
                sent.insert(info.progress.cid.clone(), (key, ended));
                let _ = shared.events.send(LiveEvent::Download { download: info });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_counter_differences() {
        let peer = PeerId::random();
        let mut stats = Stats::default();
        let t0 = Instant::now();
        let at = |received, sent| HashMap::from([(peer, PeerTraffic { received, sent })]);
        assert_eq!(stats.sample(at(0, 0), t0, 0).down, 0.0);
        let s = stats.sample(at(1000, 500), t0 + Duration::from_secs(1), 1000);
        assert!((s.down - 1000.0).abs() < 1e-6 && (s.up - 500.0).abs() < 1e-6);
        stats.sample(at(3000, 500), t0 + Duration::from_secs(2), 2000);
        let r = stats.response();
        assert_eq!((r.total_received, r.total_sent), (3000, 500));
        assert_eq!(r.history.len(), 3);
        // The last three samples: 0, 1000, 2000 down.
        assert!((r.down_rate - 1000.0).abs() < 1e-6, "{}", r.down_rate);
        let (down, up) = stats.peer_rates(&peer);
        assert!((down - 1500.0).abs() < 1e-6 && (up - 250.0).abs() < 1e-6);
        for i in 3..400 {
            stats.sample(at(3000, 500), t0 + Duration::from_secs(i), i * 1000);
        }
        assert_eq!(stats.response().history.len(), HISTORY_LEN);
        assert_eq!(stats.peer_rates(&peer), (0.0, 0.0));
    }
}
