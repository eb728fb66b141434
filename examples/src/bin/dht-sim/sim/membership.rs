//! Who is in the network: node identities, the online and offline sets, starting and
//! stopping nodes, building the network node by node, and one churn step.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dht_proto::Cid;
use libp2p::Multiaddr;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use super::{BuildRecord, MinuteRecord, Sim};
use crate::node::{network_config, Role, SimNode};

/// Memory ports start here (high, so that nothing else in the process collides).
pub(super) const FIRST_PORT: u64 = 1 << 40;
/// Longest one node's first bootstrap is waited for while the network is built, in
/// real time (twice Kademlia's query timeout). A slower simulated minute stretches it
/// with the query timeout, so that a join slot lasts as long as the bootstrap it waits
/// for can: one that outlived its slot would go on beside the next joins, and more
/// than `join_concurrency` bootstraps would run at once.
const JOIN_DEADLINE: Duration = Duration::from_secs(60);

/// A set of node indices with O(1) insert, remove and random pick.
#[derive(Default)]
pub(super) struct IndexSet {
    pub(super) items: Vec<usize>,
    pub(super) at: HashMap<usize, usize>,
}

impl IndexSet {
    pub(super) fn insert(&mut self, n: usize) {
        if !self.at.contains_key(&n) {
            self.at.insert(n, self.items.len());
            self.items.push(n);
        }
    }

    pub(super) fn remove(&mut self, n: usize) {
        if let Some(i) = self.at.remove(&n) {
            self.items.swap_remove(i);
            if let Some(moved) = self.items.get(i) {
                self.at.insert(*moved, i);
            }
        }
    }

    pub(super) fn pick(&self, rng: &mut StdRng) -> Option<usize> {
        self.items.choose(rng).copied()
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }
}

impl Sim {
    pub(super) fn new_identity(&mut self) -> usize {
        let index = self.nodes.len();
        // The first node is a server: someone has to be reachable to start a network.
        let role = if index == 0 || self.rng.gen_bool(self.params.server_fraction) {
            Role::Server
        } else {
            Role::Client
        };
        let node = SimNode::new(role);
        self.probe.register(node.peer_id, role);
        self.nodes.push(node);
        index
    }

    /// Bootstrap addresses for a joining node: random online servers, as a user would
    /// copy them from peers they know.
    pub(super) fn pick_bootstrap(&mut self, except: usize) -> Vec<Multiaddr> {
        let mut picked: Vec<usize> = Vec::new();
        let servers_online = self
            .online
            .items
            .iter()
            .filter(|&&n| self.nodes[n].role == Role::Server && n != except)
            .count();
        let want = self.params.bootstrap_per_node.min(servers_online);
        let mut tries = 0;
        while picked.len() < want && tries < 10_000 {
            tries += 1;
            if let Some(n) = self.online.pick(&mut self.rng) {
                if n != except && self.nodes[n].role == Role::Server && !picked.contains(&n) {
                    picked.push(n);
                }
            }
        }
        picked.iter().map(|&n| self.nodes[n].p2p_addr()).collect()
    }

    /// Starts node `n` and announces its files, as the daemon does at start.
    pub(super) async fn start(&mut self, n: usize) -> anyhow::Result<()> {
        let bootstrap = self.pick_bootstrap(n);
        self.nodes[n].port = self.next_port;
        self.next_port += 1;
        let node = &self.nodes[n];
        let config = network_config(
            &self.defaults,
            self.params.time_scale(),
            node.role,
            self.params.relay_servers,
            node.addr(),
            bootstrap,
            self.buffers.clone(),
        );
        self.probe.forget_bootstrap(n);
        for &f in &self.nodes[n].files {
            self.files[f].announced_since_start = false;
        }
        self.nodes[n].start(n, config, &self.probe)?;
        self.announcements.node_started(n);
        self.offline.remove(n);
        self.online.insert(n);
        let cids: Vec<Cid> = self.nodes[n]
            .files
            .iter()
            .map(|&f| self.files[f].cid)
            .collect();
        if let Some(running) = self.nodes[n].running() {
            for cid in cids {
                running.net.start_providing(cid).await;
            }
        }
        Ok(())
    }

    pub(super) async fn stop(&mut self, n: usize) {
        if let Some(running) = self.nodes[n].running() {
            self.announcements.node_stopping(n, &running.net).await;
        }
        self.nodes[n].stop().await;
        self.online.remove(n);
        self.offline.insert(n);
    }

    /// Builds the network: `nodes` nodes join one after another, at most
    /// `join_concurrency` of them bootstrapping at once.
    pub async fn build(&mut self) -> anyhow::Result<BuildRecord> {
        let started = Instant::now();
        let mut joining: Vec<(usize, Instant)> = Vec::new();
        let mut slow_joins = 0;
        for _ in 0..self.params.nodes {
            while joining.len() >= self.params.join_concurrency.max(1) {
                tokio::time::sleep(Duration::from_millis(10)).await;
                slow_joins += self.end_joins(&mut joining);
            }
            let n = self.new_identity();
            self.start(n).await?;
            if n > 0 {
                joining.push((n, Instant::now()));
            }
            if (n + 1).is_multiple_of(100) {
                eprintln!(
                    "{} nodes started in {:.0} s",
                    n + 1,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        while !joining.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
            slow_joins += self.end_joins(&mut joining);
        }
        Ok(BuildRecord {
            wall_secs: started.elapsed().as_secs_f64(),
            slow_joins,
        })
    }

    /// Drops from `joining` the nodes whose first bootstrap ended or whose join
    /// deadline passed; returns how many of them passed the deadline.
    pub(super) fn end_joins(&self, joining: &mut Vec<(usize, Instant)>) -> usize {
        let deadline = JOIN_DEADLINE.mul_f64(self.params.time_scale());
        let mut slow = 0;
        joining.retain(|(n, at)| {
            let bootstrapped = self.probe.bootstrapped(*n);
            let waiting = !bootstrapped && at.elapsed() < deadline;
            if !waiting && !bootstrapped {
                slow += 1;
            }
            waiting
        });
        slow
    }

    /// One churn step: a random idle online node leaves, and one joins: a node that
    /// left earlier comes back (with probability `return_fraction`, same key, new
    /// address, its files announced again) or a new one.
    pub(super) async fn churn(&mut self, minute: &mut MinuteRecord) -> anyhow::Result<()> {
        for _ in 0..100 {
            let Some(n) = self.online.pick(&mut self.rng) else {
                break;
            };
            if !self.busy.contains(&n) {
                self.stop(n).await;
                minute.left += 1;
                break;
            }
        }
        let back = if self.rng.gen_bool(self.params.return_fraction) {
            self.offline.pick(&mut self.rng)
        } else {
            None
        };
        let n = match back {
            Some(n) => {
                minute.came_back += 1;
                n
            }
            None => {
                minute.joined_new += 1;
                self.new_identity()
            }
        };
        self.start(n).await
    }
}
