//! What the nodes' announcements did, read from each node's own network layer: which
//! files a finished round sent to at least one DHT server (`Network::announcements`),
//! and what the batched reprovider sent for them (`Network::reprovide_stats`). The
//! reprovider writes `ADD_PROVIDER` itself rather than through Kademlia's
//! `start_providing`, so Kademlia's own query events do not show announcements.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use dht_proto::Cid;
use p2pd::network::Network;

/// How often the nodes are asked (each ask is one round trip to every provider's
/// swarm task).
const EVERY: Duration = Duration::from_secs(1);

/// Announcement totals.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AnnouncementTotals {
    /// Announcement rounds that ended (one per file per round).
    pub ended: u64,
    /// Of those, the ones that sent the record to at least one DHT server.
    pub completed: u64,
    /// Kademlia requests the reprovider sent: its lookups' `FIND_NODE` requests and its
    /// `ADD_PROVIDER` messages, over every node and run.
    pub requests: u64,
    /// DHT servers the completed rounds sent the record to, summed.
    pub peers_reached: u64,
}

#[derive(Default)]
pub struct AnnouncementTracker {
    pub totals: AnnouncementTotals,
    /// Per node and file: the end of the last round counted.
    counted_rounds: HashMap<(usize, Cid), SystemTime>,
    /// Per node: the requests of its current run counted so far.
    counted_requests: HashMap<usize, u64>,
    last: Option<Instant>,
}

impl AnnouncementTracker {
    /// Node `n` starts again: its network layer counts from zero.
    pub fn node_started(&mut self, n: usize) {
        self.counted_requests.remove(&n);
    }

    /// Counts what the node's current run sent, before it stops.
    pub async fn node_stopping(&mut self, n: usize, net: &Network) {
        self.count_requests(n, net).await;
        self.counted_requests.remove(&n);
    }

    /// Asks the given online nodes (index, network, files it provides) what their
    /// rounds did since the last ask, at most once per second unless `now`; returns the
    /// files that at least one round sent to a DHT server.
    pub async fn collect<'a>(
        &mut self,
        nodes: impl IntoIterator<Item = (usize, &'a Network)>,
        now: bool,
    ) -> Vec<Cid> {
        if !now && self.last.is_some_and(|at| at.elapsed() < EVERY) {
            return Vec::new();
        }
        self.last = Some(Instant::now());
        let mut announced = Vec::new();
        for (n, net) in nodes {
            self.count_requests(n, net).await;
            let Ok(rounds) = net.announcements().await else {
                continue;
            };
            for a in rounds {
                let Some(ended) = a.last_announced else {
                    continue;
                };
                if self.counted_rounds.insert((n, a.cid), ended) == Some(ended) {
                    continue;
                }
                let peers = a.peers.unwrap_or(0);
                self.totals.ended += 1;
                if peers > 0 {
                    self.totals.completed += 1;
                    self.totals.peers_reached += u64::from(peers);
                    announced.push(a.cid);
                }
            }
        }
        announced
    }

    async fn count_requests(&mut self, n: usize, net: &Network) {
        let Ok(stats) = net.reprovide_stats().await else {
            return;
        };
        let total = stats.lookup_requests + stats.messages_sent + stats.messages_failed;
        let counted = self.counted_requests.entry(n).or_default();
        self.totals.requests += total.saturating_sub(*counted);
        *counted = total;
    }
}
