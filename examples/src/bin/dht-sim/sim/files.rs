//! The files of the simulation: seeding them, publishing new ones, following their
//! announcements, and the lookups whose outcomes are recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dht_proto::Cid;
use libp2p::PeerId;
use p2pd::network::Network;
use rand::seq::SliceRandom;
use rand::Rng;

use super::{LookupRecord, Sim};
use crate::node::Role;
use crate::probe::{Probe, QueryOutcome};

/// Longest a lookup is waited for: past Kademlia's query timeout (30 s).
const LOOKUP_DEADLINE: Duration = Duration::from_secs(90);
/// Longest the seeding announcements are waited for.
const SEED_DEADLINE: Duration = Duration::from_secs(120);

/// One file: its key and who provides it.
pub(super) struct FileRec {
    pub(super) cid: Cid,
    pub(super) provider: usize,
    /// An announcement of it completed at least once.
    pub(super) announced: bool,
    /// An announcement of it completed since its provider last started: until then
    /// the DHT may hold only the addresses the provider had before it left.
    pub(super) announced_since_start: bool,
}

impl Sim {
    pub(super) fn new_file(&mut self, provider: usize) -> Cid {
        let mut bytes = [0u8; 32];
        self.rng.fill(&mut bytes);
        let cid = Cid::for_manifest_bytes(&bytes);
        let f = self.files.len();
        self.files.push(FileRec {
            cid,
            provider,
            announced: false,
            announced_since_start: false,
        });
        self.file_by_cid.insert(cid, f);
        self.nodes[provider].files.push(f);
        cid
    }

    /// A random online node announces a new file.
    pub(super) async fn publish(&mut self) -> bool {
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
    pub(super) async fn collect_announcements(&mut self, now: bool) {
        let providers = self.online.items.iter().filter_map(|&n| {
            let node = &self.nodes[n];
            let running = node.running().filter(|_| !node.files.is_empty())?;
            Some((n, &running.net))
        });
        let announced = self.announcements.collect(providers, now).await;
        for cid in announced {
            if let Some(&f) = self.file_by_cid.get(&cid) {
                self.files[f].announced = true;
                self.files[f].announced_since_start = true;
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
    pub(super) fn lookup(&mut self, minute: u32) {
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
        let target = Target {
            cid: self.files[f].cid,
            provider: self.nodes[provider].peer_id,
            provider_role: self.nodes[provider].role,
            announced_since_start: self.files[f].announced_since_start,
        };
        let looker = self.nodes[n].role;
        let probe = self.probe.clone();
        self.lookups.spawn(async move {
            let record = run_lookup(net, target, n, looker, minute, probe.clone()).await;
            probe.hops.unwatch(n);
            (n, record)
        });
    }

    pub(super) fn collect_lookups(&mut self) {
        while let Some(done) = self.lookups.try_join_next() {
            if let Ok((n, record)) = done {
                self.busy.remove(&n);
                self.records.push(record);
            }
        }
    }
}

/// What a lookup looks for, as the schedule knew it when the lookup started.
pub(super) struct Target {
    pub(super) cid: Cid,
    /// The file's provider (online when the lookup started).
    pub(super) provider: PeerId,
    pub(super) provider_role: Role,
    /// See [`FileRec::announced_since_start`].
    pub(super) announced_since_start: bool,
}

/// Runs one provider lookup through the daemon's `find_providers` and waits until the
/// lookup ends (the channel closes), as a download waiting for sources would.
pub(super) async fn run_lookup(
    net: Network,
    target: Target,
    node: usize,
    looker: Role,
    minute: u32,
    probe: Arc<Probe>,
) -> LookupRecord {
    let Target {
        cid,
        provider,
        provider_role,
        announced_since_start,
    } = target;
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
        named: outcome
            .as_ref()
            .is_some_and(|o| o.named.contains(&provider)),
        announced_since_start,
        latency_ms: latency.map(|d| d.as_secs_f64() * 1e3),
        hops: outcome.as_ref().and_then(|o| o.hops),
        requests: outcome.as_ref().map(|o| o.requests),
        failed_requests: outcome.as_ref().map(|o| o.failures),
        query_ms: outcome
            .as_ref()
            .and_then(|o| o.duration)
            .map(|d| d.as_secs_f64() * 1e3),
        timed_out: outcome.as_ref().is_some_and(|o| o.timed_out),
    }
}
