//! How many chunk requests one download keeps in flight to one peer: enough to cover
//! the bandwidth-delay product of the path to it, measured per peer, rather than one
//! fixed depth for every peer. A peer keeps sending without a pause only while the
//! next request reaches it before it finished the chunks asked before: the requests
//! out must cover its rate × the round trip, plus the chunk being sent. Too few leave a
//! long fat path idle; too many only queue at the peer, which lengthens the endgame
//! (the last chunks wait behind that queue) and holds the download's budget that
//! faster peers could use.
//!
//! The round trip is the smallest the network's pings measured on the connection to
//! the peer during the download (a ping waits behind the chunks queued on the
//! connection, so later pings read high; the first, sent as the connection opens, is
//! clean). It is not timed on chunk requests: a peer serves the requests in flight to
//! it at once, each at a share of its rate, so a request's time says more about the
//! depth than about the path. The rate is what the peer delivered recently.

use std::time::{Duration, Instant};

/// Requests in flight to a peer before anything is measured (the former fixed depth:
/// enough for the loopback figures, where the fetch is CPU-bound).
pub(super) const START_DEPTH: usize = 6;
/// The fewest: one chunk being sent and the next already asked.
pub(super) const MIN_DEPTH: usize = 2;
/// The most: below the 32 MiB of reads a p2pd seeder takes on at once (past that it
/// answers `Choked`), and with 1 MiB chunks 16 MiB in flight, enough for 1 Gbit/s over
/// a round trip of more than 100 ms.
pub(super) const MAX_DEPTH: usize = 16;
/// The window is sized for this many times the measured rate, so that a rate held
/// back by the window itself can grow (the window doubles each round trip until the
/// path, not the window, limits).
const GROWTH: f64 = 2.0;
/// Bytes a request may have on the way before the fetcher's window update: each chunk
/// request is its own yamux stream, whose receive window starts at 256 KiB, so a chunk
/// larger than that takes more than one round trip even alone.
const STREAM_WINDOW: u64 = 256 << 10;
/// Added to the round trip: the time the fetcher itself may take to send the next
/// request after a chunk arrived (verifying, writing, and a busy machine's scheduling).
const SLACK: Duration = Duration::from_millis(50);
/// Delivery rates are averaged over about this long.
const RATE_WINDOW: Duration = Duration::from_secs(2);

/// The requests in flight to keep to a peer that delivers `rate` bytes per second with
/// a round trip of `rtt`, for chunks of `chunk_len` bytes.
pub(super) fn depth_for(rate: f64, rtt: Duration, chunk_len: u64) -> usize {
    if !rate.is_finite() || rate <= 0.0 || chunk_len == 0 {
        return START_DEPTH;
    }
    let bdp = rate * (rtt + SLACK).as_secs_f64();
    // The chunk being sent, and the rate × round trip behind it (with room to grow),
    // each request carrying at most a stream window per round trip.
    let per_request = chunk_len.min(STREAM_WINDOW) as f64;
    let chunks = 1.0 + (GROWTH * bdp / per_request).ceil();
    (chunks.min(MAX_DEPTH as f64) as usize).clamp(MIN_DEPTH, MAX_DEPTH)
}

/// What one download measured of one peer's path: its round trip and delivery rate.
#[derive(Debug, Default, Clone)]
pub(super) struct PathMeter {
    /// Smallest round trip the network measured.
    rtt: Option<Duration>,
    /// Bytes per second, smoothed over about [`RATE_WINDOW`].
    rate: Option<f64>,
    /// Bytes delivered since `since`, not yet folded into `rate`.
    pending_bytes: u64,
    since: Option<Instant>,
}

impl PathMeter {
    /// A round trip the network measured to the peer.
    pub(super) fn round_trip(&mut self, rtt: Duration) {
        self.rtt = Some(self.rtt.map_or(rtt, |r| r.min(rtt)));
    }

    /// A chunk of `len` bytes arrived at `now`.
    pub(super) fn delivered(&mut self, len: u64, now: Instant) {
        let since = *self.since.get_or_insert(now);
        self.pending_bytes += len;
        let span = now.saturating_duration_since(since);
        // Rates over short spans are noise (a few chunks arriving at once).
        if span >= RATE_WINDOW / 4 {
            let sample = self.pending_bytes as f64 / span.as_secs_f64();
            let weight = (span.as_secs_f64() / RATE_WINDOW.as_secs_f64()).min(1.0);
            self.rate = Some(match self.rate {
                Some(rate) => rate + weight * (sample - rate),
                None => sample,
            });
            self.pending_bytes = 0;
            self.since = Some(now);
        }
    }

    /// The peer sent nothing for a while (it was idle, not slow): the next delivery
    /// starts a new rate sample rather than averaging the idle time in.
    pub(super) fn idle(&mut self) {
        self.pending_bytes = 0;
        self.since = None;
    }

    /// The requests in flight to keep to this peer.
    pub(super) fn depth(&self, chunk_len: u64) -> usize {
        match (self.rate, self.rtt) {
            (Some(rate), Some(rtt)) => depth_for(rate, rtt, chunk_len),
            _ => START_DEPTH,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn depth_covers_twice_the_bandwidth_delay_product_plus_the_chunk_being_sent() {
        // A home uplink: 20 Mbit/s (2.5 MB/s), 50 ms (+ 50 ms slack): 250 kB, twice that
        // is 1.9 stream windows → 1 + 2.
        assert_eq!(depth_for(2.5e6, Duration::from_millis(50), MIB), 3);
        // A slow peer on a short path: the fewest.
        assert_eq!(depth_for(0.2e6, Duration::from_millis(10), MIB), MIN_DEPTH);
        // 1 Gbit/s (125 MB/s) over 80 ms: far more than the most.
        assert_eq!(depth_for(125e6, Duration::from_millis(80), MIB), MAX_DEPTH);
        // 100 Mbit/s over 40 ms: 1.125 MB, twice that is 8.6 stream windows → 1 + 9.
        assert_eq!(depth_for(12.5e6, Duration::from_millis(40), MIB), 10);
        // Chunks smaller than a stream window: counted by the chunk.
        assert_eq!(depth_for(2.5e6, Duration::from_millis(50), 64 << 10), 9);
        // Nothing measured (or nonsense): the starting depth.
        assert_eq!(depth_for(0.0, Duration::from_millis(80), MIB), START_DEPTH);
        assert_eq!(
            depth_for(f64::NAN, Duration::from_millis(80), MIB),
            START_DEPTH
        );
        assert_eq!(depth_for(1e6, Duration::from_millis(80), 0), START_DEPTH);
    }

    #[test]
    fn a_window_that_limits_the_rate_doubles_each_round() {
        // The path takes 100 MB/s over 100 ms; a window of d requests delivers at most
        // d stream windows per round trip (and slack).
        let (path_rate, rtt) = (100e6, Duration::from_millis(100));
        let mut depth = MIN_DEPTH;
        let mut rounds = 0;
        while depth < MAX_DEPTH {
            let rate =
                (depth as f64 * STREAM_WINDOW as f64 / (rtt + SLACK).as_secs_f64()).min(path_rate);
            let next = depth_for(rate, rtt, MIB);
            assert!(next >= 2 * depth || next == MAX_DEPTH, "{depth} → {next}");
            depth = next;
            rounds += 1;
        }
        assert!(rounds <= 4);
    }

    #[test]
    fn meter_takes_the_smallest_round_trip_and_a_smoothed_rate() {
        let mut meter = PathMeter::default();
        let t0 = Instant::now();
        assert_eq!(meter.depth(MIB), START_DEPTH);
        // 1 MiB chunks every 100 ms (10 MiB/s); pings of 150, 120 and (behind queued
        // chunks) 400 ms.
        meter.delivered(MIB, t0);
        assert_eq!(meter.depth(MIB), START_DEPTH);
        for i in 1..=40 {
            meter.delivered(MIB, t0 + Duration::from_millis(100 * i));
        }
        for rtt in [150, 120, 400] {
            meter.round_trip(Duration::from_millis(rtt));
        }
        assert_eq!(meter.rtt, Some(Duration::from_millis(120)));
        let rate = meter.rate.unwrap_or(0.0);
        assert!(
            (rate - 10.0 * MIB as f64).abs() < 0.15 * 10.0 * MIB as f64,
            "{rate}"
        );
        // About 10.8 MB/s × 170 ms × 2 = 3.7 MB = 14 stream windows → 1 + 14.
        let depth = meter.depth(MIB);
        assert!((14..=MAX_DEPTH).contains(&depth), "{depth}");
        // After a pause the rate is measured anew, not averaged with the idle time.
        meter.idle();
        let later = t0 + Duration::from_secs(60);
        for i in 0..=20 {
            meter.delivered(MIB, later + Duration::from_millis(100 * i));
        }
        let rate = meter.rate.unwrap_or(0.0);
        assert!(rate > 8.0 * MIB as f64, "{rate}");
    }
}
