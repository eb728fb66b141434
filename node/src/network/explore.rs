//! What the reprovider knows of the DHT servers around its keys, from its own lookups,
//! and what to look up next for a key whose closest servers are not all known.
//!
//! The rule it rests on: a server inside a part of the keyspace (the points that share
//! a prefix) is closer to every point of the part than any server outside it. So when a
//! lookup toward a point of a part returns its K closest servers and some of them lie
//! outside the part, every server of the part was found: the part is *complete*, and so
//! is every part inside it. When all K lie inside, the part may hold more: it is *full*,
//! and is covered once both its halves are. A key's K closest servers are all known
//! once some covered part around it holds at least K known servers (or the whole
//! keyspace is covered: the network is smaller than K).
//!
//! Knowledge is forgotten after [`KNOWN_FOR`], so servers that left stop being chosen
//! and new ones are found.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};

use super::keyspace::{Point, Prefix, MAX_PREFIX_LEN};

/// How long what a lookup found is trusted.
pub(super) const KNOWN_FOR: Duration = Duration::from_secs(5 * 60);
/// Servers remembered (the oldest are forgotten past this).
const MAX_KNOWN: usize = 65_536;
/// Complete and full parts remembered.
const MAX_PARTS: usize = 65_536;
/// Addresses kept per server.
const MAX_ADDRS_PER_PEER: usize = 8;

/// A known server.
struct Known {
    peer: PeerId,
    addrs: Vec<Multiaddr>,
    at: Instant,
}

/// What to look up for a key: a point in `part`, given by its Kademlia key bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// The key itself (the lookup then finds exactly its closest servers).
    Key,
    /// A known server inside the part (its peer id's bytes).
    Server(Vec<u8>),
}

/// Servers found by lookups and what they tell about parts of the keyspace.
#[derive(Default)]
pub(super) struct Knowledge {
    servers: BTreeMap<Point, Known>,
    complete: HashMap<Prefix, Instant>,
    full: HashMap<Prefix, Instant>,
}

impl Knowledge {
    /// Forgets what is older than [`KNOWN_FOR`], and the oldest past the bounds.
    pub(super) fn forget(&mut self, now: Instant) {
        let fresh = |at: &Instant| now.duration_since(*at) < KNOWN_FOR;
        self.servers.retain(|_, k| fresh(&k.at));
        self.complete.retain(|_, at| fresh(at));
        self.full.retain(|_, at| fresh(at));
        if self.servers.len() > MAX_KNOWN {
            let mut times: Vec<Instant> = self.servers.values().map(|k| k.at).collect();
            times.sort();
            let cut = times[times.len() - MAX_KNOWN];
            self.servers.retain(|_, k| k.at >= cut);
        }
        if self.complete.len() + self.full.len() > MAX_PARTS {
            self.complete.clear();
            self.full.clear();
        }
    }

    /// Whether nothing is known.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.complete.is_empty() && self.full.is_empty()
    }

    /// Takes what a lookup toward `target` found (its closest servers, with their
    /// points), asking for `k`. A lookup that found nobody tells nothing.
    pub(super) fn learn(
        &mut self,
        target: &Point,
        found: Vec<(PeerId, Point, Vec<Multiaddr>)>,
        k: usize,
        now: Instant,
    ) {
        if found.is_empty() {
            return;
        }
        for len in 0..=MAX_PREFIX_LEN {
            let part = target.prefix(len);
            let inside = found.iter().filter(|(_, p, _)| part.contains(p)).count();
            if inside < k {
                self.complete.insert(part, now);
                break;
            }
            self.full.insert(part, now);
        }
        for (peer, point, mut addrs) in found {
            addrs.truncate(MAX_ADDRS_PER_PEER);
            self.servers.insert(
                point,
                Known {
                    peer,
                    addrs,
                    at: now,
                },
            );
        }
    }

    /// Whether every server of `part` is known (it or a part around it is complete).
    fn is_complete(&self, part: &Prefix) -> bool {
        (0..=part.len()).any(|len| {
            let (first, _) = part.range();
            self.complete.contains_key(&first.prefix(len))
        })
    }

    /// Known servers in `part`, counted up to `at_most`, leaving out `excluded`.
    fn count(&self, part: &Prefix, at_most: usize, excluded: &HashSet<PeerId>) -> usize {
        let (first, last) = part.range();
        self.servers
            .range(first..=last)
            .filter(|(_, k)| !excluded.contains(&k.peer))
            .take(at_most)
            .count()
    }

    /// The deepest part around `point` holding at least `k` known servers not
    /// `excluded`, if any: the `k` known servers closest to `point` are all inside it.
    fn deepest_with(&self, point: &Point, k: usize, excluded: &HashSet<PeerId>) -> Option<Prefix> {
        // Counts only shrink with depth: search the length.
        if self.count(&Prefix::ALL, k, excluded) < k {
            return None;
        }
        let (mut low, mut high) = (0, MAX_PREFIX_LEN);
        while low < high {
            let mid = (low + high).div_ceil(2);
            if self.count(&point.prefix(mid), k, excluded) >= k {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        Some(point.prefix(low))
    }

    /// The part to look up next so that `point`'s `k` closest servers are all known,
    /// and the point to aim at; `None` once they are.
    pub(super) fn next_lookup(&self, point: &Point, k: usize) -> Option<(Prefix, Target)> {
        let part = self.settle(&Prefix::ALL, k, point).err()?;
        if !part.contains(point) {
            let (first, last) = part.range();
            if let Some((_, server)) = self.servers.range(first..=last).next() {
                return Some((part, Target::Server(server.peer.to_bytes())));
            }
        }
        // The key itself: its lookup finds exactly its closest servers.
        Some((part, Target::Key))
    }

    /// Whether the `want` servers of `part` closest to `point` are all known: `Ok` with
    /// how many of them are (fewer if the part holds fewer), or the first part whose
    /// servers must be learned. Inside a full part, the half on `point`'s side holds
    /// the closer servers, so it is settled first and the other half only for the rest.
    fn settle(&self, part: &Prefix, want: usize, point: &Point) -> Result<usize, Prefix> {
        if want == 0 {
            return Ok(0);
        }
        if self.is_complete(part) {
            return Ok(self.count(part, want, &HashSet::new()));
        }
        match part.halves() {
            Some([low, high]) if self.full.contains_key(part) => {
                let (near, far) = if point.bit(part.len()) {
                    (high, low)
                } else {
                    (low, high)
                };
                let n = self.settle(&near, want, point)?;
                if n >= want {
                    return Ok(n);
                }
                Ok(n + self.settle(&far, want - n, point)?)
            }
            _ => Err(*part),
        }
    }

    /// The `k` known servers closest to `point`, leaving out `excluded`, with their
    /// addresses.
    pub(super) fn closest(
        &self,
        point: &Point,
        k: usize,
        excluded: &HashSet<PeerId>,
    ) -> Vec<(PeerId, Vec<Multiaddr>)> {
        // Every server inside the part is closer than any outside it.
        let part = self.deepest_with(point, k, excluded).unwrap_or(Prefix::ALL);
        let (first, last) = part.range();
        let candidates = self
            .servers
            .range(first..=last)
            .filter(|(_, known)| !excluded.contains(&known.peer));
        super::keyspace::closest(candidates, point, k)
            .into_iter()
            .map(|known| (known.peer, known.addrs.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: usize = 4;

    fn servers(n: usize) -> Vec<(PeerId, Point)> {
        (0..n)
            .map(|_| {
                let peer = PeerId::random();
                (peer, Point::of_peer(&peer))
            })
            .collect()
    }

    fn lookup(all: &[(PeerId, Point)], target: &Point) -> Vec<(PeerId, Point, Vec<Multiaddr>)> {
        super::super::keyspace::closest(all.iter().map(|(peer, p)| (p, (*peer, *p))), target, K)
            .into_iter()
            .map(|(peer, p)| (peer, p, vec![]))
            .collect()
    }

    /// Explores as the reprovider does, until `point`'s closest are known; returns the
    /// lookups it took.
    fn explore(
        knowledge: &mut Knowledge,
        all: &[(PeerId, Point)],
        point: &Point,
        now: Instant,
    ) -> usize {
        let mut lookups = 0;
        while let Some((_, target)) = knowledge.next_lookup(point, K) {
            let aim = match &target {
                Target::Key => *point,
                Target::Server(bytes) => Point::of_bytes(bytes),
            };
            knowledge.learn(&aim, lookup(all, &aim), K, now);
            lookups += 1;
            if target == Target::Key {
                // Its own lookup found exactly its closest.
                break;
            }
            assert!(lookups < 20, "exploration does not end");
        }
        lookups
    }

    #[test]
    fn exploring_finds_each_keys_exact_closest_servers() {
        let all = servers(200);
        let now = Instant::now();
        let mut knowledge = Knowledge::default();
        let mut lookups = 0;
        let keys: Vec<Point> = (0..500u32)
            .map(|i| Point::of_bytes(&i.to_le_bytes()))
            .collect();
        for key in &keys {
            lookups += explore(&mut knowledge, &all, key, now);
            let expected: HashSet<PeerId> =
                lookup(&all, key).into_iter().map(|(p, ..)| p).collect();
            let found: HashSet<PeerId> = knowledge
                .closest(key, K, &HashSet::new())
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            assert_eq!(found, expected);
        }
        // Far fewer lookups than keys: knowledge is shared.
        assert!(lookups < 200, "{lookups} lookups for 500 keys");
    }

    #[test]
    fn a_network_smaller_than_k_is_known_after_one_lookup() {
        let all = servers(K - 1);
        let mut knowledge = Knowledge::default();
        let key = Point::of_bytes(b"key");
        assert_eq!(
            knowledge.next_lookup(&key, K),
            Some((Prefix::ALL, Target::Key))
        );
        assert_eq!(explore(&mut knowledge, &all, &key, Instant::now()), 1);
        assert_eq!(knowledge.closest(&key, K, &HashSet::new()).len(), K - 1);
        assert_eq!(knowledge.next_lookup(&Point::of_bytes(b"other"), K), None);
    }

    #[test]
    fn excluded_servers_give_way_to_the_next_closest() {
        let all = servers(50);
        let now = Instant::now();
        let mut knowledge = Knowledge::default();
        // Lookups toward every server: every server is known.
        for (_, point) in &all {
            knowledge.learn(point, lookup(&all, point), K, now);
        }
        let key = Point::of_bytes(b"key");
        let best = knowledge.closest(&key, K, &HashSet::new());
        let excluded: HashSet<PeerId> = [best[0].0].into();
        let next = knowledge.closest(&key, K, &excluded);
        let others: Vec<(PeerId, Point)> = all
            .iter()
            .filter(|(p, _)| *p != best[0].0)
            .copied()
            .collect();
        let expected: Vec<PeerId> = lookup(&others, &key).into_iter().map(|(p, ..)| p).collect();
        assert_eq!(
            next.into_iter().map(|(p, _)| p).collect::<Vec<_>>(),
            expected
        );
    }

    #[test]
    fn knowledge_is_forgotten_in_time() {
        let all = servers(30);
        let now = Instant::now();
        let mut knowledge = Knowledge::default();
        knowledge.learn(&all[0].1, lookup(&all, &all[0].1), K, now);
        knowledge.learn(&all[1].1, vec![], K, now);
        assert!(!knowledge.is_empty());
        knowledge.forget(now + KNOWN_FOR);
        assert!(knowledge.is_empty());
    }
}
