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

mod batches;
mod regions;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use libp2p::{kad, Multiaddr, PeerId};

use super::announce::{Provided, ProvidedKey, ProviderKey};
use super::explore::Knowledge;
use super::keyspace::{prefix_len, Point, SizeEstimate, Timetable};
use batches::{Outbox, Tally};
use regions::{Job, LookupFor};

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
    /// Times every key was made due at once, outside the timetable (an external address
    /// confirmed for the first time, the first connection to a bootstrap node).
    pub announced_all: u64,
    /// Estimated number of DHT servers.
    pub network_size: Option<f64>,
    /// The prefix length of regions now.
    pub prefix_len: u32,
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
        self.reschedule(&moved, now);
        self.stats.announced_all += 1;
        self.provided.keys.len()
    }

    /// Makes due now only the keys whose last round reached nobody and that wait for a
    /// retry (a way into the DHT opened: a bootstrap node connected again). Keys that
    /// reached servers keep their turn in the timetable, so a reconnection never
    /// brings every refresh forward at once.
    pub(super) fn announce_unannounced(&mut self, now: Instant) -> usize {
        let mut moved = Vec::new();
        for (point, key) in &mut self.provided.keys {
            if let Some(at) = key.next_at.filter(|at| key.failures > 0 && *at > now) {
                moved.push((at, *point));
                key.next_at = Some(now);
            }
        }
        self.reschedule(&moved, now);
        moved.len()
    }

    fn reschedule(&mut self, moved: &[(Instant, Point)], now: Instant) {
        for (at, point) in moved {
            self.schedule.remove(&(*at, *point));
            self.schedule.insert((now, *point));
        }
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
mod tests;
