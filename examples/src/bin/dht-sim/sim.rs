//! The simulation: builds the network node by node, seeds it with files, then plays a
//! seeded random schedule minute by simulated minute (nodes leave, come back or join
//! new, files are announced and looked up) and records what each lookup got.
//!
//! Time: every libp2p timer (Kademlia's query timeout and periodic bootstrap, the idle
//! connection timeout, handshake timeouts) runs on the wall clock, so the schedule runs
//! on it too: one simulated minute lasts `minute_secs` wall seconds (60: real time).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chunk_store::BufferPool;
use dht_proto::Cid;
use libp2p::{Multiaddr, PeerId};
use p2pd::network::Network;
use p2pd::options::DaemonArgs;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

use crate::announce::AnnouncementTracker;
use crate::node::{daemon_defaults, network_config, Role, SimNode};
use crate::probe::{Probe, QueryOutcome};

/// Memory ports start here (high, so that nothing else in the process collides).
const FIRST_PORT: u64 = 1 << 40;
/// Longest a lookup is waited for: past Kademlia's query timeout (30 s).
const LOOKUP_DEADLINE: Duration = Duration::from_secs(90);
/// Longest the seeding announcements are waited for.
const SEED_DEADLINE: Duration = Duration::from_secs(120);
/// Longest one node's first bootstrap is waited for while the network is built.
const JOIN_DEADLINE: Duration = Duration::from_secs(60);

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
}

/// One file: its key and who provides it.
struct FileRec {
    cid: Cid,
    provider: usize,
    /// An announcement of it completed at least once.
    announced: bool,
}

/// What one lookup got.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LookupRecord {
    /// Simulated minute it started in (0: before churn started).
    pub minute: u32,
    pub looker: Role,
    /// The role of the file's provider.
    pub provider: Role,
    /// It found a provider that was online when it started.
    pub ok: bool,
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

/// A set of node indices with O(1) insert, remove and random pick.
#[derive(Default)]
struct IndexSet {
    items: Vec<usize>,
    at: HashMap<usize, usize>,
}

impl IndexSet {
    fn insert(&mut self, n: usize) {
        if !self.at.contains_key(&n) {
            self.at.insert(n, self.items.len());
            self.items.push(n);
        }
    }

    fn remove(&mut self, n: usize) {
        if let Some(i) = self.at.remove(&n) {
            self.items.swap_remove(i);
            if let Some(moved) = self.items.get(i) {
                self.at.insert(*moved, i);
            }
        }
    }

    fn pick(&self, rng: &mut StdRng) -> Option<usize> {
        self.items.choose(rng).copied()
    }

    fn len(&self) -> usize {
        self.items.len()
    }
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
        Ok(Sim {
            rng: StdRng::seed_from_u64(params.seed),
            params,
            defaults: daemon_defaults()?,
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

    fn new_identity(&mut self) -> usize {
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
    fn pick_bootstrap(&mut self, except: usize) -> Vec<Multiaddr> {
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
    async fn start(&mut self, n: usize) -> anyhow::Result<()> {
        let bootstrap = self.pick_bootstrap(n);
        self.nodes[n].port = self.next_port;
        self.next_port += 1;
        let node = &self.nodes[n];
        let config = network_config(
            &self.defaults,
            node.role,
            self.params.relay_servers,
            node.addr(),
            bootstrap,
            self.buffers.clone(),
        );
        self.probe.forget_bootstrap(n);
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

    async fn stop(&mut self, n: usize) {
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
    fn end_joins(&self, joining: &mut Vec<(usize, Instant)>) -> usize {
        let mut slow = 0;
        joining.retain(|(n, at)| {
            let bootstrapped = self.probe.bootstrapped(*n);
            let waiting = !bootstrapped && at.elapsed() < JOIN_DEADLINE;
            if !waiting && !bootstrapped {
                slow += 1;
            }
            waiting
        });
        slow
    }

    fn new_file(&mut self, provider: usize) -> Cid {
        let mut bytes = [0u8; 32];
        self.rng.fill(&mut bytes);
        let cid = Cid::for_manifest_bytes(&bytes);
        let f = self.files.len();
        self.files.push(FileRec {
            cid,
            provider,
            announced: false,
        });
        self.file_by_cid.insert(cid, f);
        self.nodes[provider].files.push(f);
        cid
    }

    /// A random online node announces a new file.
    async fn publish(&mut self) -> bool {
        let Some(n) = self.online.pick(&mut self.rng) else {
            return false;
        };
        let cid = self.new_file(n);
        if let Some(running) = self.nodes[n].running() {
            running.net.start_providing(cid).await;
        }
        true
    }

    /// Counts the announcement rounds that ended on the online nodes that provide files
    /// (at most once a second unless `now`), and marks the files they announced.
    async fn collect_announcements(&mut self, now: bool) {
        let providers = self.online.items.iter().filter_map(|&n| {
            let node = &self.nodes[n];
            let running = node.running().filter(|_| !node.files.is_empty())?;
            Some((n, &running.net))
        });
        let announced = self.announcements.collect(providers, now).await;
        for cid in announced {
            if let Some(&f) = self.file_by_cid.get(&cid) {
                self.files[f].announced = true;
            }
        }
    }

    /// Seeds the network with `seed_files` files and waits for their announcements.
    pub async fn seed(&mut self) -> anyhow::Result<f64> {
        let started = Instant::now();
        for _ in 0..self.params.seed_files {
            self.publish().await;
        }
        loop {
            self.collect_announcements(false).await;
            let pending = self.files.iter().filter(|f| !f.announced).count();
            if pending == 0 || started.elapsed() > SEED_DEADLINE {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// Starts a lookup from a random idle online node for a random announced file
    /// whose provider is online (another node).
    fn lookup(&mut self, minute: u32) {
        let candidates: Vec<usize> = (0..self.files.len())
            .filter(|&f| {
                self.files[f].announced && self.online.at.contains_key(&self.files[f].provider)
            })
            .collect();
        let Some(&f) = candidates.choose(&mut self.rng) else {
            self.lookups_skipped += 1;
            return;
        };
        let provider = self.files[f].provider;
        let mut looker = None;
        for _ in 0..100 {
            if let Some(n) = self.online.pick(&mut self.rng) {
                if n != provider && !self.busy.contains(&n) {
                    looker = Some(n);
                    break;
                }
            }
        }
        let Some(n) = looker else {
            self.lookups_skipped += 1;
            return;
        };
        let Some(running) = self.nodes[n].running() else {
            return;
        };
        self.busy.insert(n);
        self.probe.hops.watch(n);
        let net = running.net.clone();
        let cid = self.files[f].cid;
        let online_provider = self.nodes[provider].peer_id;
        let roles = (self.nodes[n].role, self.nodes[provider].role);
        let probe = self.probe.clone();
        self.lookups.spawn(async move {
            let record =
                run_lookup(net, cid, online_provider, n, roles, minute, probe.clone()).await;
            probe.hops.unwatch(n);
            (n, record)
        });
    }

    fn collect_lookups(&mut self) {
        while let Some(done) = self.lookups.try_join_next() {
            if let Ok((n, record)) = done {
                self.busy.remove(&n);
                self.records.push(record);
            }
        }
    }

    /// One churn step: a random idle online node leaves, and one joins: a node that
    /// left earlier comes back (with probability `return_fraction`, same key, new
    /// address, its files announced again) or a new one.
    async fn churn(&mut self, minute: &mut MinuteRecord) -> anyhow::Result<()> {
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

/// Runs one provider lookup through the daemon's `find_providers` and waits until the
/// lookup ends (the channel closes), as a download waiting for sources would.
async fn run_lookup(
    net: Network,
    cid: Cid,
    provider: PeerId,
    node: usize,
    (looker, provider_role): (Role, Role),
    minute: u32,
    probe: Arc<Probe>,
) -> LookupRecord {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + LOOKUP_DEADLINE;
    let mut found = net.find_providers(cid).await;
    let mut latency = None;
    while let Ok(Some(peer)) = tokio::time::timeout_at(deadline, found.recv()).await {
        if peer == provider {
            latency.get_or_insert(started.elapsed());
        }
    }
    drop(found);
    let outcome: Option<QueryOutcome> = probe.take_lookup(node);
    LookupRecord {
        minute,
        looker,
        provider: provider_role,
        ok: latency.is_some(),
        latency_ms: latency.map(|d| d.as_secs_f64() * 1e3),
        hops: outcome.and_then(|o| o.hops),
        requests: outcome.map(|o| o.requests),
        failed_requests: outcome.map(|o| o.failures),
        query_ms: outcome
            .and_then(|o| o.duration)
            .map(|d| d.as_secs_f64() * 1e3),
        timed_out: outcome.is_some_and(|o| o.timed_out),
    }
}
