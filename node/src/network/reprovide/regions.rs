//! Refreshing one keyspace region: which regions are due, the lookups that find a
//! region's servers (and the network's size), and which servers each key goes to.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use libp2p::{Multiaddr, PeerId};

use super::{
    Action, Reprovider, FEW_KEYS, K, MAX_DUE_SCAN, MAX_JOBS, MAX_JOB_KEYS, MAX_JOB_LOOKUPS,
    MAX_QUEUED_SENDS, SIZING_RETRY,
};
use crate::network::announce::Round;
use crate::network::explore::Target;
use crate::network::keyspace::{Point, Prefix};

/// One region being refreshed: its keys due now and the lookups exploring it.
pub(super) struct Job {
    pub(super) prefix: Prefix,
    pub(super) keys: Vec<Point>,
    /// Lookups running for the job.
    pub(super) lookups: usize,
    /// Parts of the region a lookup was started for, and the keys that were targets
    /// (a lookup toward a key finds exactly that key's closest servers).
    pub(super) looked: HashSet<Prefix>,
    pub(super) targets: HashSet<Point>,
}

/// What a running lookup is for: the network's size, or a region's servers.
pub(super) enum LookupFor {
    Sizing { target: Point },
    Job { job: u64, target: Point },
}

impl Reprovider {
    pub(super) fn start_jobs(&mut self, now: Instant, actions: &mut Vec<Action>) {
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

    pub(super) fn start_job(
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
    pub(super) fn explore(&mut self, id: u64, now: Instant, actions: &mut Vec<Action>) {
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
    pub(in crate::network) fn on_lookup(
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
    pub(super) fn assign(&mut self, job: u64, now: Instant) {
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
}
