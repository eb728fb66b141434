//! The reprovider against a simulated DHT: servers at fixed points, lookups that return
//! the K closest of them exactly (what a converged Kademlia lookup returns), batches
//! that are written or, to a dead server, fail.

use std::collections::{HashMap, HashSet};

use libp2p::identity;

use super::super::add_provider::MAX_BATCH_KEYS;
use super::super::explore::KNOWN_FOR;
use super::super::keyspace::closest;
use super::*;

/// A DHT of `n` servers with deterministic peer ids.
struct FakeDht {
    servers: Vec<(Point, PeerId)>,
    dead: HashSet<PeerId>,
    /// What each server was sent, and in how many batches.
    received: HashMap<PeerId, (Vec<kad::RecordKey>, usize)>,
    lookups: usize,
}

impl FakeDht {
    fn new(n: u32) -> Self {
        let servers = (0..n)
            .map(|i| {
                let seed = *blake3::hash(&i.to_le_bytes()).as_bytes();
                let key = identity::Keypair::ed25519_from_bytes(seed).expect("a 32-byte seed");
                let peer = key.public().to_peer_id();
                (Point::of_peer(&peer), peer)
            })
            .collect();
        FakeDht {
            servers,
            dead: HashSet::new(),
            received: HashMap::new(),
            lookups: 0,
        }
    }

    fn closest(&self, point: &Point) -> Vec<PeerId> {
        closest(self.servers.iter().map(|(p, peer)| (p, *peer)), point, K)
    }

    /// Polls the reprovider at `now` and answers everything it asks until it is idle.
    fn run(&mut self, reprovider: &mut Reprovider, now: Instant) {
        let mut actions = Vec::new();
        reprovider.poll(now, &mut actions);
        while let Some(action) = actions.pop() {
            match action {
                Action::Lookup { id, target } => {
                    self.lookups += 1;
                    let found = self
                        .closest(&Point::of_bytes(&target))
                        .into_iter()
                        .map(|peer| (peer, vec![]))
                        .collect();
                    reprovider.on_lookup(id, found, 7, now, &mut actions);
                }
                Action::Send { id, peer, keys, .. } => {
                    assert!(!keys.is_empty() && keys.len() <= MAX_BATCH_KEYS);
                    let written = !self.dead.contains(&peer);
                    if written {
                        let got = self.received.entry(peer).or_default();
                        got.0.extend(keys);
                        got.1 += 1;
                    } else {
                        self.received.entry(peer).or_default().1 += 1;
                    }
                    reprovider.on_batch(id, written, now, &mut actions);
                }
            }
        }
    }
}

fn file(i: u32) -> ProviderKey {
    ProviderKey::File(dht_proto::Cid::for_manifest_bytes(&i.to_le_bytes()))
}

fn reached(reprovider: &Reprovider) -> Vec<Option<u32>> {
    reprovider
        .provided
        .keys
        .values()
        .map(|k| k.last.map(|(_, n)| n))
        .collect()
}

fn assert_idle(reprovider: &Reprovider) {
    let (queued, batches, jobs, lookups, _) = reprovider.in_flight();
    assert_eq!((queued, batches, jobs, lookups), (0, 0, 0, 0));
    assert!(reprovider.outboxes.is_empty());
}

#[test]
fn ten_thousand_keys_reach_their_own_closest_servers_with_a_few_lookups() {
    let mut dht = FakeDht::new(100);
    let now = Instant::now();
    let interval = Duration::from_secs(3600);
    let mut reprovider = Reprovider::new(interval, now);
    for i in 0..10_000 {
        assert!(reprovider.provide(file(i), now));
    }
    assert!(!reprovider.provide(file(0), now), "provided once");
    dht.run(&mut reprovider, now);

    assert!(reached(&reprovider).iter().all(|r| *r == Some(K as u32)));
    let stats = reprovider.stats();
    // One lookup for the network's size, then a few per region (4 regions of about 25
    // servers): never one per key.
    assert!(dht.lookups <= 1 + 4 * 4, "{} lookups", dht.lookups);
    assert_eq!(stats.lookups, dht.lookups as u64);
    assert_eq!(stats.lookup_requests, 7 * dht.lookups as u64);
    assert_eq!(stats.messages_sent, 10_000 * K as u64);
    assert_eq!(stats.rounds, 10_000);
    assert_eq!(stats.prefix_len, 2);
    assert_eq!(reprovider.provided.started, 10_000);
    // Each key went to exactly its own K closest servers, once each.
    let mut sent_to: HashMap<kad::RecordKey, HashSet<PeerId>> = HashMap::new();
    for (peer, (keys, _)) in &dht.received {
        for key in keys {
            assert!(sent_to.entry(key.clone()).or_default().insert(*peer));
        }
    }
    let mut wrong = 0;
    for key in sent_to.keys() {
        let best: HashSet<PeerId> = dht.closest(&Point::of_key(key)).into_iter().collect();
        wrong += sent_to[key].difference(&best).count();
    }
    assert_eq!(
        wrong, 0,
        "sends to a server that is not among the key's closest"
    );
    // A server's keys came in few batches: full ones of 256 but for the last of each
    // region's round.
    for (keys, batches) in dht.received.values() {
        assert!(
            *batches <= keys.len().div_ceil(MAX_BATCH_KEYS) + 2,
            "{batches} batches for {}",
            keys.len()
        );
    }
    assert_idle(&reprovider);

    // Each region's next turn is one time, and the four are spread over the interval,
    // at least half an interval from now.
    let turns: HashSet<Instant> = reprovider
        .provided
        .keys
        .values()
        .map(|k| k.next_at.expect("scheduled"))
        .collect();
    assert_eq!(turns.len(), 4);
    for at in &turns {
        assert!(*at >= now + interval / 2 && *at <= now + interval * 3 / 2);
    }

    // At the first turn only that region goes again, exploring it afresh.
    let first = *turns.iter().min().unwrap();
    dht.lookups = 0;
    dht.received.clear();
    dht.run(&mut reprovider, first);
    let again: usize = dht.received.values().map(|(keys, _)| keys.len()).sum();
    assert!(again > 0 && again < 10_000 * K / 2, "{again} sends");
    assert!(dht.lookups <= 4, "{} lookups", dht.lookups);
    assert_idle(&reprovider);
}

#[test]
fn a_dead_server_costs_one_failed_batch_and_the_keys_still_reach_the_others() {
    let mut dht = FakeDht::new(60);
    let now = Instant::now();
    let mut reprovider = Reprovider::new(DEFAULT_REPROVIDE_INTERVAL, now);
    for i in 0..3000 {
        reprovider.provide(file(i), now);
    }
    let dead = dht.servers[0].1;
    dht.dead.insert(dead);
    dht.run(&mut reprovider, now);
    let keys_of_dead = reprovider
        .provided
        .keys
        .keys()
        .filter(|p| dht.closest(p).contains(&dead))
        .count();
    assert!(
        keys_of_dead > MAX_BATCH_KEYS * BATCHES_PER_PEER,
        "{keys_of_dead}"
    );
    // Its first batches failed, and the rest of its queue with them; later regions
    // chose the next closest server instead.
    assert!(dht.received[&dead].1 <= BATCHES_PER_PEER);
    let failed = reprovider.stats().messages_failed;
    assert!(failed > 0 && failed <= keys_of_dead as u64);
    for key in reprovider.provided.keys.values() {
        let n = key.last.expect("finished").1;
        assert!(n == K as u32 || n == K as u32 - 1, "{n}");
    }
    assert_idle(&reprovider);
}

#[test]
fn a_key_alone_gets_a_lookup_of_its_own() {
    let mut dht = FakeDht::new(200);
    let now = Instant::now();
    let mut reprovider = Reprovider::new(DEFAULT_REPROVIDE_INTERVAL, now);
    reprovider.provide(file(1), now);
    dht.run(&mut reprovider, now);
    assert_eq!(dht.lookups, 1);
    let key = file(1).record_key();
    let best: HashSet<PeerId> = dht.closest(&Point::of_key(&key)).into_iter().collect();
    let sent: HashSet<PeerId> = dht.received.keys().copied().collect();
    assert_eq!(sent, best);
    // A second key soon after needs at most one lookup more.
    let point = Point::of_key(&key);
    let neighbour = (2..)
        .map(file)
        .find(|f| Point::of_key(&f.record_key()).prefix(0) == point.prefix(0))
        .unwrap();
    reprovider.provide(neighbour, now + Duration::from_secs(1));
    dht.run(&mut reprovider, now + Duration::from_secs(1));
    assert!(dht.lookups <= 2);
    assert_idle(&reprovider);
}

#[test]
fn with_no_server_the_keys_are_retried_with_growing_pauses() {
    let mut dht = FakeDht::new(0);
    let now = Instant::now();
    let mut reprovider = Reprovider::new(DEFAULT_REPROVIDE_INTERVAL, now);
    for i in 0..5 {
        reprovider.provide(file(i), now);
    }
    dht.run(&mut reprovider, now);
    assert!(reached(&reprovider).iter().all(|r| *r == Some(0)));
    assert_eq!(reprovider.provided.unannounced(), 5);
    let snapshot = reprovider.provided.snapshot();
    assert!(snapshot.iter().all(|a| !a.announcing
        && a.retry_in
            .is_some_and(|d| d <= Duration::from_secs(5) && d > Duration::from_secs(4))));
    // Servers appear: the retry reaches them.
    dht = FakeDht::new(30);
    dht.run(&mut reprovider, now + Duration::from_secs(3));
    assert_eq!(dht.lookups, 0, "not due yet");
    dht.run(&mut reprovider, now + Duration::from_secs(5));
    assert!(reached(&reprovider).iter().all(|r| *r == Some(K as u32)));
    assert_eq!(reprovider.provided.unannounced(), 0);
    assert!(reprovider
        .provided
        .snapshot()
        .iter()
        .all(|a| a.retry_in.is_none()));
    assert_idle(&reprovider);
}

#[test]
fn announcing_all_during_a_round_runs_another_round_after_it() {
    let dht = FakeDht::new(30);
    let now = Instant::now();
    let mut reprovider = Reprovider::new(DEFAULT_REPROVIDE_INTERVAL, now);
    reprovider.provide(file(1), now);
    reprovider.provide(file(2), now);
    let mut actions = Vec::new();
    reprovider.poll(now, &mut actions);
    assert!(actions.iter().all(|a| matches!(a, Action::Lookup { .. })));
    assert!(reprovider.provided.snapshot().iter().all(|a| a.announcing));
    assert_eq!(reprovider.announce_all(now), 2);
    // Stopping one mid-round: its sends are skipped.
    reprovider.stop(&file(2));
    let mut sends = 0;
    while let Some(action) = actions.pop() {
        match action {
            Action::Lookup { id, target } => {
                let found = dht
                    .closest(&Point::of_bytes(&target))
                    .into_iter()
                    .map(|p| (p, vec![]))
                    .collect();
                reprovider.on_lookup(id, found, 1, now, &mut actions);
            }
            Action::Send { id, keys, .. } => {
                assert_eq!(keys, vec![file(1).record_key()]);
                sends += 1;
                reprovider.on_batch(id, true, now, &mut actions);
            }
        }
    }
    // Two rounds of the one key left: the second found the region explored.
    assert_eq!(sends, 2 * K);
    assert_eq!(reprovider.provided.started, 3);
    assert_eq!(reprovider.provided.keys.len(), 1);
    assert_idle(&reprovider);
}

#[test]
fn explored_regions_are_forgotten_after_their_time() {
    let mut dht = FakeDht::new(50);
    let now = Instant::now();
    let mut reprovider = Reprovider::new(DEFAULT_REPROVIDE_INTERVAL, now);
    for i in 0..100 {
        reprovider.provide(file(i), now);
    }
    dht.run(&mut reprovider, now);
    assert!(reprovider.in_flight().4);
    let mut actions = Vec::new();
    reprovider.poll(now + KNOWN_FOR, &mut actions);
    assert!(actions.is_empty());
    assert!(!reprovider.in_flight().4);
}

/// Keys refreshed per 10 s bucket of the 190 s after 10,000 keys were announced into a
/// DHT of 100 servers with a 120 s interval (the setting of `reprovide-bench`), the
/// clock stepped a second at a time; `reconnect` is called 121 s in (a bootstrap
/// node's idle connection, closed after 120 s, opened again by a refresh).
fn refresh_cycle(reconnect: fn(&mut Reprovider, Instant) -> usize) -> Vec<u64> {
    let interval = Duration::from_secs(120);
    let mut dht = FakeDht::new(100);
    let start = Instant::now();
    let mut reprovider = Reprovider::new(interval, start);
    for i in 0..10_000 {
        reprovider.provide(file(i), start);
    }
    dht.run(&mut reprovider, start);
    let mut last = reprovider.stats().rounds;
    assert_eq!(last, 10_000);
    let mut buckets = vec![0; 19];
    for second in 1..190 {
        let now = start + Duration::from_secs(second);
        if second == 121 {
            reconnect(&mut reprovider, now);
        }
        dht.run(&mut reprovider, now);
        let rounds = reprovider.stats().rounds;
        buckets[second as usize / 10] += rounds - last;
        last = rounds;
    }
    assert_idle(&reprovider);
    buckets
}

#[test]
fn a_refresh_cycle_is_spread_over_the_interval_and_a_reconnection_does_not_bunch_it() {
    // What a reconnection to a bootstrap node did before: every key at once. This is
    // the shape of the 2026-12-06 bench run's burst: three regions' turns (60 s, 90 s,
    // 120 s) and all 10,000 keys in the 120 s bucket, none after: 17,500 rounds in 1.5
    // intervals (the bench: 2,529, 2,421, 12,470).
    let burst = refresh_cycle(Reprovider::announce_all);
    assert!(burst[12] > 12_000, "{burst:?}");
    assert!(burst[13..].iter().all(|keys| *keys == 0), "{burst:?}");
    assert!(burst.iter().sum::<u64>() > 17_000, "{burst:?}");

    // What it does now: only keys that reached nobody (none here) go early. The 4
    // regions (2 bits for 100 servers) take turns a quarter of an interval apart, every
    // key is refreshed once within an interval, and the first region to go comes again
    // one interval later, at 180 s.
    let spread = refresh_cycle(Reprovider::announce_unannounced);
    let busy: Vec<usize> = (0..spread.len()).filter(|b| spread[*b] > 0).collect();
    assert_eq!(busy, vec![6, 9, 12, 15, 18], "{spread:?}");
    assert!(spread.iter().all(|keys| *keys < 3000), "{spread:?}");
    assert_eq!(spread[6..16].iter().sum::<u64>(), 10_000);
    assert_eq!(spread[18], spread[6]);
}

#[test]
fn a_reconnection_brings_forward_only_the_keys_that_reached_nobody() {
    let now = Instant::now();
    let mut reprovider = Reprovider::new(DEFAULT_REPROVIDE_INTERVAL, now);
    for i in 0..5 {
        reprovider.provide(file(i), now);
    }
    FakeDht::new(0).run(&mut reprovider, now);
    assert_eq!(reprovider.provided.unannounced(), 5);
    // Servers appear; keys added now reach them.
    let mut dht = FakeDht::new(30);
    let later = now + Duration::from_secs(1);
    for i in 5..10 {
        reprovider.provide(file(i), later);
    }
    dht.run(&mut reprovider, later);
    let turns = |r: &Reprovider| -> HashMap<Point, Instant> {
        r.provided
            .keys
            .iter()
            .filter(|(_, k)| k.failures == 0)
            .map(|(p, k)| (*p, k.next_at.expect("scheduled")))
            .collect()
    };
    let announced = turns(&reprovider);
    assert_eq!(announced.len(), 5);

    // A bootstrap node connects again 2 s in, before the 5 s retry: the five that
    // reached nobody go now, the others keep their turn.
    let reconnected = now + Duration::from_secs(2);
    assert_eq!(reprovider.announce_unannounced(reconnected), 5);
    assert_eq!(reprovider.stats().announced_all, 0);
    dht.run(&mut reprovider, reconnected);
    assert!(reached(&reprovider).iter().all(|r| *r == Some(K as u32)));
    assert_eq!(reprovider.provided.unannounced(), 0);
    let sent: usize = dht.received.values().map(|(keys, _)| keys.len()).sum();
    assert_eq!(sent, 10 * K, "5 keys at 1 s, 5 at 2 s");
    let now_turns = turns(&reprovider);
    for (point, at) in &announced {
        assert_eq!(now_turns[point], *at);
    }
    assert_eq!(reprovider.announce_unannounced(reconnected), 0);
    assert_idle(&reprovider);
}
