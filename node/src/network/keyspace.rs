//! The Kademlia keyspace as the batched reprovide sees it: points (the SHA-256 of a key
//! or a peer id, on which libp2p-kad measures XOR distance), regions (the points that
//! share a prefix), how long a prefix makes regions of about K DHT servers, an estimate
//! of how many DHT servers there are, and where in the reprovide interval a region's
//! turn comes.
//!
//! Why regions: a DHT server whose point shares a region's prefix is closer to every key
//! of the region than any server outside it. Once a region holds at least K servers, the
//! K closest servers of each of its keys are all inside it, so finding the region's
//! servers once gives the closest peers of every key in it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use libp2p::{kad, PeerId};

/// Longest prefix used: regions of 2^-32 of the keyspace, enough for 2^32 × K servers.
pub(super) const MAX_PREFIX_LEN: u32 = 32;
/// Network size estimates kept (the median of them is used).
const ESTIMATES_KEPT: usize = 16;

/// A point of the keyspace.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub(super) struct Point([u8; 32]);

impl Point {
    /// Where a provider key lies.
    pub(super) fn of_key(key: &kad::RecordKey) -> Point {
        Point::from_hash(kad::KBucketKey::new(key.clone()).hashed_bytes())
    }

    /// Where a peer lies.
    pub(super) fn of_peer(peer: &PeerId) -> Point {
        Point::from_hash(kad::KBucketKey::from(*peer).hashed_bytes())
    }

    /// Where the Kademlia key with these bytes lies (a record key's or a peer id's).
    pub(super) fn of_bytes(bytes: &[u8]) -> Point {
        Point::from_hash(kad::KBucketKey::new(bytes.to_vec()).hashed_bytes())
    }

    fn from_hash(bytes: &[u8]) -> Point {
        let mut point = [0u8; 32];
        point.copy_from_slice(&bytes[..32]);
        Point(point)
    }

    /// The XOR distance to `other`, big-endian (so that comparing distances compares
    /// the arrays).
    pub(super) fn distance(&self, other: &Point) -> [u8; 32] {
        let mut d = [0u8; 32];
        for (i, byte) in d.iter_mut().enumerate() {
            *byte = self.0[i] ^ other.0[i];
        }
        d
    }

    /// The distance to `other` as a fraction of the whole keyspace, in [0, 1).
    fn distance_fraction(&self, other: &Point) -> f64 {
        let d = self.distance(other);
        let mut top = [0u8; 8];
        top.copy_from_slice(&d[..8]);
        u64::from_be_bytes(top) as f64 / 2f64.powi(64)
    }

    /// The first 64 bits.
    fn top(&self) -> u64 {
        let mut top = [0u8; 8];
        top.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(top)
    }

    /// Bit `index` (0: the first), for `index` below 64.
    pub(super) fn bit(&self, index: u32) -> bool {
        index < 64 && (self.top() >> (63 - index)) & 1 == 1
    }

    /// The region of length `len` this point lies in.
    pub(super) fn prefix(&self, len: u32) -> Prefix {
        let len = len.min(MAX_PREFIX_LEN);
        let bits = if len == 0 {
            0
        } else {
            self.top() >> (64 - len)
        };
        Prefix { bits, len }
    }
}

/// A region: the points whose first `len` bits are `bits`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub(super) struct Prefix {
    bits: u64,
    len: u32,
}

impl Prefix {
    /// The whole keyspace.
    pub(super) const ALL: Prefix = Prefix { bits: 0, len: 0 };

    /// Whether `point` lies in the region.
    pub(super) fn contains(&self, point: &Point) -> bool {
        point.prefix(self.len) == *self
    }

    /// The first and the last point of the region.
    pub(super) fn range(&self) -> (Point, Point) {
        let (low, high) = if self.len == 0 {
            (0, u64::MAX)
        } else {
            let low = self.bits << (64 - self.len);
            (low, low | (u64::MAX >> self.len))
        };
        let mut first = [0u8; 32];
        let mut last = [0xffu8; 32];
        first[..8].copy_from_slice(&low.to_be_bytes());
        last[..8].copy_from_slice(&high.to_be_bytes());
        (Point(first), Point(last))
    }

    /// Its two halves (none at the longest prefix).
    pub(super) fn halves(&self) -> Option<[Prefix; 2]> {
        if self.len >= MAX_PREFIX_LEN {
            return None;
        }
        let len = self.len + 1;
        Some([
            Prefix {
                bits: self.bits << 1,
                len,
            },
            Prefix {
                bits: (self.bits << 1) | 1,
                len,
            },
        ])
    }

    /// Where the region starts, as a fraction of the keyspace in [0, 1).
    pub(super) fn position(&self) -> f64 {
        if self.len == 0 {
            0.0
        } else {
            self.bits as f64 / 2f64.powi(self.len as i32)
        }
    }

    /// The prefix length.
    pub(super) fn len(&self) -> u32 {
        self.len
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.len == 0 {
            return f.write_str("(whole keyspace)");
        }
        write!(f, "{:0width$b}", self.bits, width = self.len as usize)
    }
}

/// The prefix length that cuts a network of `servers` DHT servers into regions of `k`
/// to `2k` servers each on average. Regions are the unit of the reprovide timetable:
/// the smaller they are, the more evenly refreshes spread over the interval, while a
/// region still holds about the `k` closest servers of its keys, so exploring it finds
/// little that a neighbouring region needs (`explore.rs` finds every key's closest
/// servers whatever the region's size).
pub(super) fn prefix_len(servers: f64, k: usize) -> u32 {
    if !servers.is_finite() || servers < 2.0 * k as f64 {
        return 0;
    }
    ((servers / k as f64).log2().floor() as u32).min(MAX_PREFIX_LEN)
}

/// The `k` candidates closest to `target`, closest first.
pub(super) fn closest<'a, T>(
    candidates: impl IntoIterator<Item = (&'a Point, T)>,
    target: &Point,
    k: usize,
) -> Vec<T> {
    let mut by_distance: Vec<([u8; 32], T)> = candidates
        .into_iter()
        .map(|(point, item)| (point.distance(target), item))
        .collect();
    by_distance.sort_by_key(|(distance, _)| *distance);
    by_distance.truncate(k);
    by_distance.into_iter().map(|(_, item)| item).collect()
}

/// How many DHT servers the network holds, estimated from lookups: the i-th closest of
/// `n` uniformly placed servers lies at about i / n of the keyspace from any target, so
/// the distances a lookup finds give `n` (a least-squares fit of `d_i = i / n`). The
/// median of the last few estimates is used, so one odd lookup does not move it.
#[derive(Default)]
pub(super) struct SizeEstimate {
    recent: VecDeque<f64>,
}

impl SizeEstimate {
    /// Takes the servers a lookup toward `target` found. A lookup asks for `k`; finding
    /// fewer means the network holds no more (it found them all).
    pub(super) fn add_lookup(&mut self, target: &Point, found: &[Point], k: usize) {
        if found.is_empty() {
            return;
        }
        let estimate = if found.len() < k {
            found.len() as f64
        } else {
            let mut distances: Vec<f64> =
                found.iter().map(|p| p.distance_fraction(target)).collect();
            distances.sort_by(f64::total_cmp);
            let (mut ii, mut id) = (0.0, 0.0);
            for (i, d) in distances.iter().enumerate() {
                let i = (i + 1) as f64;
                ii += i * i;
                id += i * d;
            }
            if id <= 0.0 {
                return;
            }
            ii / id
        };
        if self.recent.len() == ESTIMATES_KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(estimate);
    }

    /// The current estimate, once a lookup gave one.
    pub(super) fn servers(&self) -> Option<f64> {
        if self.recent.is_empty() {
            return None;
        }
        let mut sorted: Vec<f64> = self.recent.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        Some(sorted[sorted.len() / 2])
    }
}

/// The reprovide timetable: region `r` has its turn at `origin + (n + position(r)) ×
/// interval` for every whole `n`, so the regions' turns are spread evenly over each
/// interval instead of coming all at once.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timetable {
    pub(super) origin: Instant,
    pub(super) interval: Duration,
}

impl Timetable {
    /// The first turn of `region` at or after `not_before`.
    pub(super) fn next_turn(&self, region: &Prefix, not_before: Instant) -> Instant {
        let offset = self.interval.mul_f64(region.position());
        let first = self.origin + offset;
        if not_before <= first {
            return first;
        }
        let interval = self.interval.as_secs_f64().max(1e-3);
        let cycles = ((not_before - first).as_secs_f64() / interval).ceil();
        first + Duration::from_secs_f64(cycles * interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(first: u8, second: u8) -> Point {
        let mut p = [0u8; 32];
        p[0] = first;
        p[1] = second;
        Point(p)
    }

    #[test]
    fn prefixes_halves_and_positions() {
        let p = point(0b1011_0000, 0xff);
        assert_eq!(p.prefix(0).position(), 0.0);
        let r = p.prefix(3);
        assert_eq!(r.to_string(), "101");
        assert!(p.bit(0) && !p.bit(1) && p.bit(2) && p.bit(8) && !p.bit(99));
        assert_eq!(r.position(), 5.0 / 8.0);
        assert_eq!(p.prefix(0).to_string(), "(whole keyspace)");
        assert_eq!(p.prefix(0), Prefix::ALL);
        assert!(r.contains(&p) && !r.contains(&point(0b1001_0000, 0)));
        let (first, last) = r.range();
        assert_eq!(first, point(0b1010_0000, 0));
        assert!(first <= p && p <= last && last.prefix(3) == r);
        assert_eq!(last.0[0], 0b1011_1111);
        assert_eq!(Prefix::ALL.range().0, Point([0; 32]));
        assert_eq!(Prefix::ALL.range().1, Point([0xff; 32]));
        let [low, high] = r.halves().unwrap();
        assert_eq!(
            (low.to_string(), high.to_string()),
            ("1010".into(), "1011".into())
        );
        assert!(p.prefix(MAX_PREFIX_LEN).halves().is_none());
        assert_eq!(p.prefix(99).len(), MAX_PREFIX_LEN);
    }

    #[test]
    fn prefix_lengths_make_regions_of_k_to_2k_servers() {
        assert_eq!(prefix_len(10.0, 20), 0);
        assert_eq!(prefix_len(39.0, 20), 0);
        assert_eq!(prefix_len(40.0, 20), 1);
        assert_eq!(prefix_len(100.0, 20), 2);
        assert_eq!(prefix_len(10_000.0, 20), 8);
        assert_eq!(prefix_len(f64::NAN, 20), 0);
        assert_eq!(prefix_len(1e30, 20), MAX_PREFIX_LEN);
        for n in [40.0, 100.0, 1000.0, 1e5] {
            let per_region = n / 2f64.powi(prefix_len(n, 20) as i32);
            assert!((20.0..40.0).contains(&per_region), "{n}: {per_region}");
        }
    }

    #[test]
    fn closest_sorts_by_xor_distance() {
        let target = point(0b1000_0000, 0);
        let a = point(0b1000_0001, 0); // distance 1 in the first byte
        let b = point(0b0000_0000, 0); // differs in the top bit: farthest
        let c = point(0b1000_0000, 7); // equal first byte: closest
        let found = closest([(&a, 'a'), (&b, 'b'), (&c, 'c')], &target, 2);
        assert_eq!(found, vec!['c', 'a']);
    }

    #[test]
    fn the_size_estimate_finds_the_number_of_uniform_servers() {
        // 1,000 servers at random points: lookups toward random targets see the 20
        // closest; the estimate lands near 1,000.
        let servers: Vec<Point> = (0..1000)
            .map(|_| Point::of_peer(&PeerId::random()))
            .collect();
        let mut estimate = SizeEstimate::default();
        assert_eq!(estimate.servers(), None);
        for _ in 0..ESTIMATES_KEPT {
            let target = Point::of_peer(&PeerId::random());
            let found = closest(servers.iter().map(|p| (p, *p)), &target, 20);
            estimate.add_lookup(&target, &found, 20);
        }
        let n = estimate.servers().unwrap();
        assert!((600.0..1600.0).contains(&n), "estimate {n}");
        // A lookup that finds fewer than K found the whole network.
        let mut small = SizeEstimate::default();
        small.add_lookup(&servers[0], &servers[..7], 20);
        assert_eq!(small.servers(), Some(7.0));
    }

    #[test]
    fn turns_are_spread_over_the_interval_by_region() {
        let origin = Instant::now();
        let table = Timetable {
            origin,
            interval: Duration::from_secs(800),
        };
        let region = point(0b0110_0000, 0).prefix(2); // "01": a quarter in
        assert_eq!(
            table.next_turn(&region, origin),
            origin + Duration::from_secs(200)
        );
        assert_eq!(
            table.next_turn(&region, origin + Duration::from_secs(201)),
            origin + Duration::from_secs(1000)
        );
        assert_eq!(
            table.next_turn(&region, origin + Duration::from_secs(1000)),
            origin + Duration::from_secs(1000)
        );
        let last = point(0b1100_0000, 0).prefix(2);
        assert_eq!(
            table.next_turn(&last, origin),
            origin + Duration::from_secs(600)
        );
    }
}
