//! The batched reprovider: announces every key we provide (files and keywords alike)
//! and announces it again every reprovide interval, without a DHT lookup per key.
//!
//! Keys are grouped by keyspace region (the keys whose points share a prefix; the
//! prefix length makes regions of K to 2K DHT servers for the estimated network size).
//! A region is explored once, by a few lookups that find all of its servers
//! (`explore.rs` says how it knows when it has them all), and every key of the region
//! is then sent to exactly its own K closest servers among those found. A server that
//! could not be reached is left out of the choice for a while, so the next closest one
//! takes its place. Each server gets all of its keys on a few streams, in batches of up
//! to [`MAX_BATCH_KEYS`](super::add_provider::MAX_BATCH_KEYS) `ADD_PROVIDER` messages.
//! What lookups found is reused for a few minutes
//! ([`KNOWN_FOR`](super::explore::KNOWN_FOR)), so keys added one by one in quick
//! succession share lookups too. This is go-libp2p's "reprovide sweep" in outline.
//!
//! Refreshes follow a timetable: region `r` has its turn at the fraction of every
//! interval that its prefix is of the keyspace, so the regions' refreshes are spread
//! evenly over the interval. A key announced at some time is refreshed at its region's
//! first turn at least half an interval later: between ½ and 1½ intervals apart.
//!
//! This module holds no swarm: it hands the actor [`Action`]s (lookups to start,
//! batches to send) and is told their outcomes, so its logic is tested on its own.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::{kad, Multiaddr, PeerId};

use super::add_provider::MAX_BATCH_KEYS;
use super::announce::{Provided, ProvidedKey, ProviderKey, Round};
use super::explore::{Knowledge, Target};
use super::keyspace::{prefix_len, Point, Prefix, SizeEstimate, Timetable};

/// How often every provided key is announced again. Provider records live 48 h on the
/// servers that hold them (`PROVIDER_RECORD_TTL`); refreshes come between 6 h and 18 h
/// apart, so a record outlives two missed refreshes, and servers that joined near a key
/// since its last announcement get its record within half a day.
pub const DEFAULT_REPROVIDE_INTERVAL: Duration = Duration::from_secs(12 * 3600);
/// Replication: each key is sent to this many closest servers.
const K: usize = kad::K_VALUE.get();
/// Up to this many keys due at once need no estimate of the network's size: a lookup
/// toward each finds its closest servers exactly.
const FEW_KEYS: usize = 2;
/// Lookups one region's exploration may take.
const MAX_JOB_LOOKUPS: usize = 64;
/// Regions being explored at once.
const MAX_JOBS: usize = 4;
/// Keys taken into one region's round at once (more wait for the next round, which
/// finds the region explored).
const MAX_JOB_KEYS: usize = 4096;
/// `ADD_PROVIDER`s waiting to be sent before no new region is started.
const MAX_QUEUED_SENDS: usize = MAX_JOBS * MAX_JOB_KEYS * K / 2;
/// Due keys looked at per poll.
const MAX_DUE_SCAN: usize = 65_536;
/// Batches being written at once, in all and to one peer.
const MAX_BATCHES_IN_FLIGHT: usize = 64;
const BATCHES_PER_PEER: usize = 2;
/// After a lookup that could not tell the network's size, how long before another.
const SIZING_RETRY: Duration = Duration::from_secs(30);
/// How long a server we could not reach is left out of the servers keys are sent to.
const UNREACHABLE_FOR: Duration = Duration::from_secs(60);
/// Unreachable servers remembered.
const MAX_UNREACHABLE: usize = 1024;

/// What the reprovider asks the swarm task to do.
#[derive(Debug)]
pub(super) enum Action {
    /// Find the closest DHT servers to the point of `target` (the bytes of a Kademlia
    /// key: a record key or a peer id); answer with [`Reprovider::on_lookup`].
    Lookup { id: u64, target: Vec<u8> },
    /// Write an `ADD_PROVIDER` for each of `keys` to `peer`; answer with
    /// [`Reprovider::on_batch`].
    Send {
        id: u64,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        keys: Vec<kad::RecordKey>,
    },
}

/// What the reprovider did since the daemon started, for operators and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReprovideStats {
    /// Lookups started to find regions' closest servers (and the network's size).
    pub lookups: u64,
    /// Kademlia requests those lookups sent (`FIND_NODE`), as libp2p-kad counts them.
    pub lookup_requests: u64,
    /// `ADD_PROVIDER` messages written to a peer.
    pub messages_sent: u64,
    /// `ADD_PROVIDER` messages whose peer could not be reached.
    pub messages_failed: u64,
    /// Streams (batches) opened to write them.
    pub batches: u64,
    /// Key announcement rounds finished (one per key per round).
    pub rounds: u64,
    /// Estimated number of DHT servers.
    pub network_size: Option<f64>,
    /// The prefix length of regions now.
    pub prefix_len: u32,
}

struct Job {
    prefix: Prefix,
    keys: Vec<Point>,
    /// Lookups running for the job.
    lookups: usize,
    /// Parts of the region a lookup was started for, and the keys that were targets
    /// (a lookup toward a key finds exactly that key's closest servers).
    looked: HashSet<Prefix>,
    targets: HashSet<Point>,
}

enum LookupFor {
    Sizing { target: Point },
    Job { job: u64, target: Point },
}

/// Keys waiting to be sent to one peer.
#[derive(Default)]
struct Outbox {
    keys: VecDeque<Point>,
    in_flight: usize,
    addrs: Vec<Multiaddr>,
}

/// Finished rounds not logged yet (logged once per poll, not once per key).
#[derive(Default)]
struct Tally {
    reached: u64,
    peers: u64,
    unreached: u64,
    last: Option<ProviderKey>,
}

/// The batched reprovider's state.
pub(super) struct Reprovider {
    pub(super) provided: Provided,
    timetable: Timetable,
    estimate: SizeEstimate,
    sizing: bool,
    sized_at: Option<Instant>,
    /// Keys not in a round, by when their next round is due.
    schedule: BTreeSet<(Instant, Point)>,
    jobs: HashMap<u64, Job>,
    lookups: HashMap<u64, LookupFor>,
    known: Knowledge,
    outboxes: HashMap<PeerId, Outbox>,
    /// Servers a batch could not reach, and when.
    unreachable: HashMap<PeerId, Instant>,
    queued_sends: usize,
    batches: HashMap<u64, (PeerId, Vec<Point>)>,
    next_id: u64,
    stats: ReprovideStats,
    tally: Tally,
}

impl Reprovider {
    pub(super) fn new(interval: Duration, now: Instant) -> Self {
        Reprovider {
            provided: Provided::default(),
            timetable: Timetable {
                origin: now,
                interval,
            },
            estimate: SizeEstimate::default(),
            sizing: false,
            sized_at: None,
            schedule: BTreeSet::new(),
            jobs: HashMap::new(),
            lookups: HashMap::new(),
            known: Knowledge::default(),
            outboxes: HashMap::new(),
            unreachable: HashMap::new(),
            queued_sends: 0,
            batches: HashMap::new(),
            next_id: 0,
            stats: ReprovideStats::default(),
            tally: Tally::default(),
        }
    }

    /// Changes the reprovide interval (benchmarks and tests shorten it); keys already
    /// scheduled keep their time.
    pub(super) fn set_interval(&mut self, interval: Duration) {
        self.timetable.interval = interval;
    }

    pub(super) fn stats(&self) -> ReprovideStats {
        ReprovideStats {
            network_size: self.estimate.servers(),
            prefix_len: self.prefix_len(),
            ..self.stats
        }
    }

    fn prefix_len(&self) -> u32 {
        prefix_len(self.estimate.servers().unwrap_or(0.0), K)
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Starts providing `subject`; its first round is due now. False if it was
    /// provided already.
    pub(super) fn provide(&mut self, subject: ProviderKey, now: Instant) -> bool {
        let point = Point::of_key(&subject.record_key());
        if self.provided.keys.contains_key(&point) {
            return false;
        }
        self.provided
            .keys
            .insert(point, ProvidedKey::new(subject, now));
        self.schedule.insert((now, point));
        true
    }

    /// Stops providing `subject`; sends of it still queued are skipped.
    pub(super) fn stop(&mut self, subject: &ProviderKey) -> Option<kad::RecordKey> {
        let point = Point::of_key(&subject.record_key());
        let key = self.provided.keys.remove(&point)?;
        if let Some(at) = key.next_at {
            self.schedule.remove(&(at, point));
        }
        Some(key.key)
    }

    /// Makes every key due now (a key in a round goes again when its round ends).
    pub(super) fn announce_all(&mut self, now: Instant) -> usize {
        let mut moved = Vec::new();
        for (point, key) in &mut self.provided.keys {
            match key.next_at {
                Some(at) => {
                    moved.push((at, *point));
                    key.next_at = Some(now);
                }
                None => key.again = true,
            }
        }
        for (at, point) in &moved {
            self.schedule.remove(&(*at, *point));
            self.schedule.insert((now, *point));
        }
        self.provided.keys.len()
    }

    /// Starts what is due and sends what can be sent.
    pub(super) fn poll(&mut self, now: Instant, actions: &mut Vec<Action>) {
        self.forget(now);
        self.start_jobs(now, actions);
        self.pump(actions);
        self.log_tally();
    }

    fn forget(&mut self, now: Instant) {
        self.unreachable
            .retain(|_, at| now.duration_since(*at) < UNREACHABLE_FOR);
        self.known.forget(now);
    }

    fn start_jobs(&mut self, now: Instant, actions: &mut Vec<Action>) {
        if self.sizing || self.jobs.len() >= MAX_JOBS || self.queued_sends >= MAX_QUEUED_SENDS {
            return;
        }
        let due: Vec<Point> = self
            .schedule
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(MAX_DUE_SCAN)
            .map(|(_, point)| *point)
            .collect();
        if due.is_empty() {
            return;
        }
        let sizing_allowed = self
            .sized_at
            .is_none_or(|at| now.duration_since(at) >= SIZING_RETRY);
        if self.estimate.servers().is_none() && due.len() > FEW_KEYS && sizing_allowed {
            // Regions need the network's size: one lookup toward a random point first.
            let target = rand::random::<[u8; 32]>().to_vec();
            let id = self.next_id();
            self.lookups.insert(
                id,
                LookupFor::Sizing {
                    target: Point::of_bytes(&target),
                },
            );
            self.sizing = true;
            self.stats.lookups += 1;
            actions.push(Action::Lookup { id, target });
            return;
        }
        let len = self.prefix_len();
        let free = MAX_JOBS - self.jobs.len();
        let mut groups: BTreeMap<Prefix, Vec<Point>> = BTreeMap::new();
        for point in due {
            let prefix = point.prefix(len);
            if groups.len() == free && !groups.contains_key(&prefix) {
                continue;
            }
            let group = groups.entry(prefix).or_default();
            if group.len() < MAX_JOB_KEYS {
                group.push(point);
            }
        }
        for (prefix, keys) in groups {
            for point in &keys {
                if let Some(key) = self.provided.keys.get_mut(point) {
                    if let Some(at) = key.next_at.take() {
                        self.schedule.remove(&(at, *point));
                    }
                }
            }
            self.provided.started += keys.len() as u64;
            self.start_job(prefix, keys, now, actions);
        }
    }

    fn start_job(
        &mut self,
        prefix: Prefix,
        keys: Vec<Point>,
        now: Instant,
        actions: &mut Vec<Action>,
    ) {
        let id = self.next_id();
        self.jobs.insert(
            id,
            Job {
                prefix,
                keys,
                lookups: 0,
                looked: HashSet::new(),
                targets: HashSet::new(),
            },
        );
        self.explore(id, now, actions);
    }

    /// Starts the lookups a job still needs: for each key whose closest servers are not
    /// all known, one for the part of the keyspace to learn next (one per part). With
    /// none left to wait for, the keys are assigned.
    fn explore(&mut self, id: u64, now: Instant, actions: &mut Vec<Action>) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let mut lookups = Vec::new();
        for point in &job.keys {
            if job.looked.len() >= MAX_JOB_LOOKUPS {
                break;
            }
            if job.targets.contains(point) {
                continue;
            }
            let Some((part, target)) = self.known.next_lookup(point, K) else {
                continue;
            };
            if !job.looked.insert(part) {
                continue;
            }
            let target = match target {
                Target::Key => {
                    let Some(key) = self.provided.keys.get(point) else {
                        continue;
                    };
                    job.targets.insert(*point);
                    (*point, key.key.to_vec())
                }
                Target::Server(peer) => (Point::of_bytes(&peer), peer),
            };
            lookups.push(target);
        }
        job.lookups += lookups.len();
        let done = job.lookups == 0;
        for (point, target) in lookups {
            let lookup = self.next_id();
            self.lookups.insert(
                lookup,
                LookupFor::Job {
                    job: id,
                    target: point,
                },
            );
            self.stats.lookups += 1;
            actions.push(Action::Lookup { id: lookup, target });
        }
        if done {
            self.assign(id, now);
        }
    }

    /// The outcome of a lookup: the servers it found (closest first), and how many
    /// requests it sent.
    pub(super) fn on_lookup(
        &mut self,
        id: u64,
        found: Vec<(PeerId, Vec<Multiaddr>)>,
        requests: u32,
        now: Instant,
        actions: &mut Vec<Action>,
    ) {
        self.stats.lookup_requests += u64::from(requests);
        let found: Vec<(PeerId, Point, Vec<Multiaddr>)> = found
            .into_iter()
            .map(|(peer, addrs)| (peer, Point::of_peer(&peer), addrs))
            .collect();
        let points: Vec<Point> = found.iter().map(|(_, p, _)| *p).collect();
        match self.lookups.remove(&id) {
            None => return,
            Some(LookupFor::Sizing { target }) => {
                self.estimate.add_lookup(&target, &points, K);
                self.sizing = false;
                self.sized_at = Some(now);
            }
            Some(LookupFor::Job { job, target }) => {
                self.estimate.add_lookup(&target, &points, K);
                self.known.learn(&target, found, K, now);
                if let Some(running) = self.jobs.get_mut(&job) {
                    running.lookups -= 1;
                    if running.lookups == 0 {
                        self.explore(job, now, actions);
                    }
                }
            }
        }
        self.poll(now, actions);
    }

    /// Chooses each key's closest servers among the region's and queues the sends.
    fn assign(&mut self, job: u64, now: Instant) {
        let Some(job) = self.jobs.remove(&job) else {
            return;
        };
        let unreachable: HashSet<PeerId> = self.unreachable.keys().copied().collect();
        let mut servers = HashSet::new();
        let mut unreached = Vec::new();
        for point in &job.keys {
            let Some(key) = self.provided.keys.get_mut(point) else {
                continue;
            };
            let targets = self.known.closest(point, K, &unreachable);
            if targets.is_empty() {
                unreached.push(*point);
                continue;
            }
            key.round = Some(Round {
                outstanding: targets.len() as u32,
                reached: 0,
            });
            for (peer, addrs) in targets {
                servers.insert(peer);
                let outbox = self.outboxes.entry(peer).or_default();
                if outbox.addrs.is_empty() {
                    outbox.addrs = addrs;
                }
                outbox.keys.push_back(*point);
                self.queued_sends += 1;
            }
        }
        tracing::debug!(
            region = %job.prefix,
            keys = job.keys.len(),
            lookups = job.looked.len(),
            servers = servers.len(),
            "provider records of a keyspace region queued"
        );
        for point in unreached {
            self.finish(&point, 0, now);
        }
    }

    /// Hands out batches while the limits allow.
    fn pump(&mut self, actions: &mut Vec<Action>) {
        let mut emptied = Vec::new();
        for (peer, outbox) in &mut self.outboxes {
            while outbox.in_flight < BATCHES_PER_PEER
                && self.batches.len() < MAX_BATCHES_IN_FLIGHT
                && !outbox.keys.is_empty()
            {
                let take = outbox.keys.len().min(MAX_BATCH_KEYS);
                self.queued_sends -= take;
                let points: Vec<Point> = outbox.keys.drain(..take).collect();
                let (points, keys): (Vec<Point>, Vec<kad::RecordKey>) = points
                    .into_iter()
                    .filter_map(|p| {
                        let key = self.provided.keys.get(&p)?;
                        key.round.is_some().then(|| (p, key.key.clone()))
                    })
                    .unzip();
                if keys.is_empty() {
                    continue;
                }
                self.next_id += 1;
                let id = self.next_id;
                self.batches.insert(id, (*peer, points));
                outbox.in_flight += 1;
                self.stats.batches += 1;
                actions.push(Action::Send {
                    id,
                    peer: *peer,
                    addrs: outbox.addrs.clone(),
                    keys,
                });
            }
            if outbox.keys.is_empty() && outbox.in_flight == 0 {
                emptied.push(*peer);
            }
        }
        for peer in emptied {
            self.outboxes.remove(&peer);
        }
    }

    /// The outcome of a batch. A peer that could not be reached is not tried again
    /// this round: the rest of its queue fails with it.
    pub(super) fn on_batch(
        &mut self,
        id: u64,
        written: bool,
        now: Instant,
        actions: &mut Vec<Action>,
    ) {
        let Some((peer, mut points)) = self.batches.remove(&id) else {
            return;
        };
        if !written && self.unreachable.len() < MAX_UNREACHABLE {
            self.unreachable.insert(peer, now);
        }
        if let Some(outbox) = self.outboxes.get_mut(&peer) {
            outbox.in_flight -= 1;
            if !written {
                self.queued_sends -= outbox.keys.len();
                points.extend(outbox.keys.drain(..));
            }
        }
        if written {
            self.stats.messages_sent += points.len() as u64;
        } else {
            tracing::debug!(%peer, keys = points.len(), "ADD_PROVIDER batch not delivered");
            self.stats.messages_failed += points.len() as u64;
        }
        for point in points {
            let Some(round) = self
                .provided
                .keys
                .get_mut(&point)
                .and_then(|k| k.round.as_mut())
            else {
                continue;
            };
            round.outstanding = round.outstanding.saturating_sub(1);
            if written {
                round.reached += 1;
            }
            if round.outstanding == 0 {
                let reached = round.reached;
                self.finish(&point, reached, now);
            }
        }
        self.poll(now, actions);
    }

    /// Ends a key's round and schedules its next one.
    fn finish(&mut self, point: &Point, reached: u32, now: Instant) {
        let len = self.prefix_len();
        let Some(key) = self.provided.keys.get_mut(point) else {
            return;
        };
        self.stats.rounds += 1;
        let retry = key.finish_round(reached, now);
        let at = if key.again {
            key.again = false;
            now
        } else {
            retry.unwrap_or_else(|| {
                self.timetable
                    .next_turn(&point.prefix(len), now + self.timetable.interval / 2)
            })
        };
        key.next_at = Some(at);
        self.schedule.insert((at, *point));
        if reached > 0 {
            self.tally.reached += 1;
            self.tally.peers += u64::from(reached);
        } else {
            self.tally.unreached += 1;
        }
        self.tally.last = Some(key.subject.clone());
    }

    fn log_tally(&mut self) {
        let tally = std::mem::take(&mut self.tally);
        let single = |n: u64| if n == 1 { tally.last.clone() } else { None };
        if tally.reached > 0 {
            let subject = single(tally.reached + tally.unreached).map(|s| s.to_string());
            tracing::info!(
                keys = tally.reached,
                peers = tally.peers / tally.reached,
                subject,
                "provider records sent to DHT servers"
            );
        }
        if tally.unreached > 0 {
            let subject = single(tally.reached + tally.unreached).map(|s| s.to_string());
            tracing::warn!(
                keys = tally.unreached,
                subject,
                "provider records reached no DHT server: they cannot be found yet (retried)"
            );
        }
    }

    /// Queued `ADD_PROVIDER`s, batches in flight, regions being explored, lookups
    /// running, and whether anything found by lookups is remembered.
    #[cfg(test)]
    pub(super) fn in_flight(&self) -> (usize, usize, usize, usize, bool) {
        (
            self.queued_sends,
            self.batches.len(),
            self.jobs.len(),
            self.lookups.len(),
            !self.known.is_empty(),
        )
    }
}

#[cfg(test)]
#[path = "reprovide_tests.rs"]
mod tests;
