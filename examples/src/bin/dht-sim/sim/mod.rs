//! The simulation: builds the network node by node, seeds it with files, then plays a
//! seeded random schedule minute by simulated minute (nodes leave, come back or join
//! new, files are announced and looked up) and records what each lookup got.
//!
//! Time: every libp2p timer (Kademlia's query timeout and periodic bootstrap, the ping,
//! the idle connection timeout, handshake timeouts) runs on the wall clock, so the schedule runs
//! on it too: one simulated minute lasts `minute_secs` wall seconds (60: real time).
//! A longer minute stretches the timers that run beside churn by as much
//! ([`Params::time_scale`]), so that a network too large to simulate in real time can
//! run slower than it with the same proportions.

mod files;
mod membership;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chunk_store::BufferPool;
use dht_proto::Cid;
use p2pd::options::DaemonArgs;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

use crate::announce::AnnouncementTracker;
use crate::node::{daemon_defaults, Role, SimNode};
use crate::probe::Probe;
use files::FileRec;
use membership::{IndexSet, FIRST_PORT};

/// What to simulate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Params {
    pub nodes: usize,
    pub server_fraction: f64,
    pub relay_servers: bool,
    pub minutes: u32,
    pub minute_secs: f64,
    pub churn: f64,
    pub return_fraction: f64,
    pub seed_files: usize,
    pub files_per_minute: f64,
    pub lookups_per_minute: f64,
    pub bootstrap_per_node: usize,
    pub join_concurrency: usize,
    pub seed: u64,
    /// `p2pd daemon` options every node gets, over the daemon's defaults.
    pub daemon_options: Vec<String>,
}

impl Params {
    /// How many times slower than real time the simulation runs: the factor of the
    /// stretched timers. A minute shorter than a real one (quick test runs) leaves the
    /// timers as the daemon has them: the nodes' work does not get any faster.
    pub fn time_scale(&self) -> f64 {
        (self.minute_secs / 60.0).max(1.0)
    }
}

/// What one lookup got.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LookupRecord {
    /// Simulated minute it started in (0: before churn started).
    pub minute: u32,
    pub looker: Role,
    /// The role of the file's provider.
    pub provider: Role,
    /// It found a provider that was online when it started: the DHT named it and the
    /// daemon connected to it (the daemon hands out only providers it reached).
    pub ok: bool,
    /// The DHT named the file's provider (whether or not the daemon then reached it).
    pub named: bool,
    /// When the lookup started, an announcement of the file had completed since its
    /// provider last (re)started, so the DHT held the provider's current addresses.
    pub announced_since_start: bool,
    /// Wall time to the first online provider.
    pub latency_ms: Option<f64>,
    pub hops: Option<u32>,
    pub requests: Option<u32>,
    pub failed_requests: Option<u32>,
    pub query_ms: Option<f64>,
    pub timed_out: bool,
}

/// One simulated minute.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MinuteRecord {
    pub minute: u32,
    pub online: usize,
    pub left: usize,
    pub came_back: usize,
    pub joined_new: usize,
    pub published: usize,
    /// Latest any event of the minute ran after its scheduled time, ms.
    pub max_lag_ms: f64,
}

/// Figures of building the network.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BuildRecord {
    pub wall_secs: f64,
    /// Nodes whose first bootstrap did not end within the join deadline.
    pub slow_joins: usize,
}

pub struct Sim {
    params: Params,
    defaults: DaemonArgs,
    buffers: BufferPool,
    pub probe: Arc<Probe>,
    rng: StdRng,
    nodes: Vec<SimNode>,
    online: IndexSet,
    offline: IndexSet,
    files: Vec<FileRec>,
    file_by_cid: HashMap<Cid, usize>,
    busy: HashSet<usize>,
    lookups: JoinSet<(usize, LookupRecord)>,
    pub records: Vec<LookupRecord>,
    pub minutes: Vec<MinuteRecord>,
    pub announcements: AnnouncementTracker,
    pub lookups_skipped: u64,
    next_port: u64,
}

/// What the schedule does at one moment.
#[derive(Debug, Clone, Copy)]
enum Action {
    Churn,
    Publish,
    Lookup,
}

impl Sim {
    pub fn new(params: Params, probe: Arc<Probe>) -> anyhow::Result<Self> {
        let defaults = daemon_defaults(&params.daemon_options)?;
        Ok(Sim {
            rng: StdRng::seed_from_u64(params.seed),
            params,
            defaults,
            buffers: BufferPool::new(8 << 20),
            probe,
            nodes: Vec::new(),
            online: IndexSet::default(),
            offline: IndexSet::default(),
            files: Vec::new(),
            file_by_cid: HashMap::new(),
            busy: HashSet::new(),
            lookups: JoinSet::new(),
            records: Vec::new(),
            minutes: Vec::new(),
            announcements: AnnouncementTracker::default(),
            lookups_skipped: 0,
            next_port: FIRST_PORT,
        })
    }

    pub fn identities(&self) -> usize {
        self.nodes.len()
    }

    /// Plays the schedule: minute 0 without churn (lookups only, a baseline), then
    /// `minutes` minutes with churn.
    pub async fn run(&mut self) -> anyhow::Result<()> {
        let minute_wall = Duration::from_secs_f64(self.params.minute_secs);
        for m in 0..=self.params.minutes {
            let churned = m > 0;
            let n = self.params.nodes as f64;
            let mut actions: Vec<(f64, Action)> = Vec::new();
            let mut add = |rng: &mut StdRng, count: f64, action: Action| {
                // Fractional counts round at random, so that rates below 1 per minute
                // still happen on average.
                let whole = count.floor() as usize + usize::from(rng.gen_bool(count.fract()));
                for _ in 0..whole {
                    actions.push((rng.gen_range(0.0..1.0), action));
                }
            };
            if churned {
                add(&mut self.rng, self.params.churn * n, Action::Churn);
                add(&mut self.rng, self.params.files_per_minute, Action::Publish);
            }
            add(
                &mut self.rng,
                self.params.lookups_per_minute,
                Action::Lookup,
            );
            actions.sort_by(|a, b| a.0.total_cmp(&b.0));

            let mut record = MinuteRecord {
                minute: m,
                ..MinuteRecord::default()
            };
            let start = Instant::now();
            for (at, action) in actions {
                let due = start + minute_wall.mul_f64(at);
                let now = Instant::now();
                if due > now {
                    tokio::time::sleep(due - now).await;
                } else {
                    record.max_lag_ms = record.max_lag_ms.max((now - due).as_secs_f64() * 1e3);
                }
                self.collect_lookups();
                self.collect_announcements(false).await;
                match action {
                    Action::Churn => self.churn(&mut record).await?,
                    Action::Publish => {
                        if self.publish().await {
                            record.published += 1;
                        }
                    }
                    Action::Lookup => self.lookup(m),
                }
            }
            let end = start + minute_wall;
            let now = Instant::now();
            if end > now {
                tokio::time::sleep(end - now).await;
            }
            record.online = self.online.len();
            eprintln!(
                "minute {m}: {} online, {} left, {} back, {} new, {} lookups done so far",
                record.online,
                record.left,
                record.came_back,
                record.joined_new,
                self.records.len()
            );
            self.minutes.push(record);
        }
        // The lookups still running end within their deadline.
        while let Some(done) = self.lookups.join_next().await {
            if let Ok((n, record)) = done {
                self.busy.remove(&n);
                self.records.push(record);
            }
        }
        self.collect_announcements(true).await;
        Ok(())
    }

    /// Stops every node.
    pub async fn shutdown(&mut self) {
        for n in 0..self.nodes.len() {
            self.nodes[n].stop().await;
        }
    }

    /// Routing-table sizes of the online nodes, asked from each node.
    pub async fn routing_table_sizes(&self) -> Vec<(Role, usize)> {
        let mut out = Vec::new();
        for &n in &self.online.items {
            if let Some(running) = self.nodes[n].running() {
                if let Ok(info) = running.net.info().await {
                    out.push((self.nodes[n].role, info.routing_table_peers));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Params;

    fn with_minute(minute_secs: f64) -> Params {
        Params {
            nodes: 10,
            server_fraction: 0.3,
            relay_servers: false,
            minutes: 1,
            minute_secs,
            churn: 0.2,
            return_fraction: 0.5,
            seed_files: 20,
            files_per_minute: 1.0,
            lookups_per_minute: 1.0,
            bootstrap_per_node: 2,
            join_concurrency: 8,
            seed: 1,
            daemon_options: vec![],
        }
    }

    #[test]
    fn a_longer_minute_is_the_factor_and_a_shorter_one_leaves_the_timers() {
        assert_eq!(with_minute(60.0).time_scale(), 1.0);
        assert_eq!(with_minute(240.0).time_scale(), 4.0);
        assert_eq!(with_minute(10.0).time_scale(), 1.0);
    }
}
