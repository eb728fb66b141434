//! How fast one IP address, and one subnet, may open inbound TCP connections: a token
//! bucket each. A connection past its bucket is closed as soon as it is accepted, before
//! any handshake work. Measured on the flood bench: connections that send garbage and are
//! reopened as soon as they are dropped arrived at about 5,700 a second from 250
//! addresses, and answering each with a handshake took the seeder 8 times the CPU of the
//! honest fetch it was serving. An honest peer opens one connection, or a few in a row.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::gate::{subnet_of, Subnet};

/// New inbound connections allowed per second; each bucket holds two seconds' worth.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// From one IP address.
    pub per_ip: f64,
    /// From one /24 (IPv4) or /64 (IPv6).
    pub per_subnet: f64,
}

impl RateLimits {
    /// The rates for a node that takes at most `max_inbound_per_ip` connections from one
    /// address (`--max-inbound-per-ip`): half of that per second, at least 16, and four
    /// times as many from a subnet. The default (32) gives 16 and 64 a second.
    pub fn for_inbound_per_ip(max_inbound_per_ip: u32) -> Self {
        let per_ip = (f64::from(max_inbound_per_ip) / 2.0).max(16.0);
        RateLimits {
            per_ip,
            per_subnet: per_ip * 4.0,
        }
    }
}

/// Addresses (and subnets) tracked at once. Past that, a new one gets no connection
/// until the buckets of idle ones have refilled and are forgotten.
const MAX_TRACKED: usize = 8192;
/// How often a full map may be scanned for idle entries.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn level(&self, rate: f64, now: Instant) -> f64 {
        let burst = 2.0 * rate;
        (self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * rate).min(burst)
    }
}

#[derive(Debug)]
struct Buckets<K> {
    rate: f64,
    by_key: HashMap<K, Bucket>,
    /// When the full map was last scanned for idle entries: at most once a second, so
    /// that a flood from many new addresses does not scan it on every connection.
    pruned_at: Option<Instant>,
}

impl<K: Hash + Eq + Copy> Buckets<K> {
    fn new(rate: f64) -> Self {
        Buckets {
            rate,
            by_key: HashMap::new(),
            pruned_at: None,
        }
    }

    /// The tokens `key` has now, or `None` when it is new and no room can be made for it.
    fn level(&mut self, key: K, now: Instant) -> Option<f64> {
        if let Some(b) = self.by_key.get(&key) {
            return Some(b.level(self.rate, now));
        }
        if self.by_key.len() >= MAX_TRACKED {
            if self
                .pruned_at
                .is_some_and(|at| now.saturating_duration_since(at) < PRUNE_EVERY)
            {
                return None;
            }
            self.pruned_at = Some(now);
            let rate = self.rate;
            // A full bucket says nothing a new one would not.
            self.by_key.retain(|_, b| b.level(rate, now) < 2.0 * rate);
            if self.by_key.len() >= MAX_TRACKED {
                return None;
            }
        }
        Some(2.0 * self.rate)
    }

    fn take(&mut self, key: K, level: f64, now: Instant) {
        self.by_key.insert(
            key,
            Bucket {
                tokens: level - 1.0,
                at: now,
            },
        );
    }
}

/// The buckets of every address and subnet that connected lately.
#[derive(Debug)]
pub(crate) struct AcceptRate {
    ips: Buckets<IpAddr>,
    subnets: Buckets<Subnet>,
}

impl AcceptRate {
    pub(crate) fn new(limits: RateLimits) -> Self {
        AcceptRate {
            ips: Buckets::new(limits.per_ip),
            subnets: Buckets::new(limits.per_subnet),
        }
    }

    /// Whether a connection from `ip` may go on to its handshake; if so it is counted.
    pub(crate) fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let subnet = subnet_of(ip);
        let (Some(from_ip), Some(from_subnet)) =
            (self.ips.level(ip, now), self.subnets.level(subnet, now))
        else {
            return false;
        };
        if from_ip < 1.0 || from_subnet < 1.0 {
            return false;
        }
        self.ips.take(ip, from_ip, now);
        self.subnets.take(subnet, from_subnet, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn allowed(rate: &mut AcceptRate, from: &str, n: usize, now: Instant) -> usize {
        (0..n).filter(|_| rate.allow(ip(from), now)).count()
    }

    #[test]
    fn one_address_gets_its_burst_then_its_rate() {
        let mut rate = AcceptRate::new(RateLimits {
            per_ip: 8.0,
            per_subnet: 32.0,
        });
        let t0 = Instant::now();
        assert_eq!(allowed(&mut rate, "10.0.0.1", 100, t0), 16);
        // Half a second later: 4 more.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(allowed(&mut rate, "10.0.0.1", 100, t1), 4);
        // Another address of the same subnet still has its own burst.
        assert_eq!(allowed(&mut rate, "10.0.0.2", 100, t1), 16);
    }

    #[test]
    fn a_subnet_is_bounded_whatever_its_addresses() {
        let mut rate = AcceptRate::new(RateLimits {
            per_ip: 8.0,
            per_subnet: 32.0,
        });
        let t0 = Instant::now();
        let from_subnet: usize = (1..=40)
            .map(|h| allowed(&mut rate, &format!("10.0.0.{h}"), 100, t0))
            .sum();
        assert_eq!(from_subnet, 64);
        // Other subnets (an honest newcomer's) are not held back by it.
        assert_eq!(allowed(&mut rate, "10.0.1.1", 1, t0), 1);
        assert_eq!(allowed(&mut rate, "127.0.0.1", 1, t0), 1);
    }

    #[test]
    fn tracking_is_bounded_and_idle_entries_make_room() {
        let mut rate = AcceptRate::new(RateLimits {
            per_ip: 1.0,
            per_subnet: 1000.0,
        });
        let t0 = Instant::now();
        // MAX_TRACKED addresses each take one connection (their buckets are not full).
        for i in 0..MAX_TRACKED as u32 {
            assert!(rate.allow(IpAddr::V4((0x0a00_0000 + i * 256).into()), t0));
        }
        // A new one finds no room while they are all recent, and within the same second
        // the map is not scanned again...
        assert!(!rate.allow(ip("192.168.0.1"), t0));
        let scanned = rate.ips.pruned_at;
        assert!(!rate.allow(ip("192.168.0.2"), t0 + Duration::from_millis(500)));
        assert_eq!(rate.ips.pruned_at, scanned);
        // ... and gets in once their buckets have refilled.
        assert!(rate.allow(ip("192.168.0.1"), t0 + Duration::from_secs(2)));
        assert!(rate.ips.by_key.len() <= MAX_TRACKED);
        assert!(rate.subnets.by_key.len() <= MAX_TRACKED);
    }

    #[test]
    fn the_rates_follow_the_per_address_bound() {
        let default = RateLimits::for_inbound_per_ip(32);
        assert_eq!((default.per_ip, default.per_subnet), (16.0, 64.0));
        let raised = RateLimits::for_inbound_per_ip(1024);
        assert_eq!((raised.per_ip, raised.per_subnet), (512.0, 2048.0));
        assert_eq!(RateLimits::for_inbound_per_ip(2).per_ip, 16.0);
    }
}
