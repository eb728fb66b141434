//! Bandwidth caps: a token bucket shared by every transfer in one direction. Callers
//! `acquire` the bytes they are about to move and sleep until the bucket allows it, so
//! a cap never blocks the swarm task: only the task moving the bytes waits.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A byte-rate cap (or no cap).
#[derive(Debug)]
pub struct RateLimiter {
    bytes_per_sec: Option<u64>,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes that may be sent now; negative when callers are queued behind the cap.
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// A limiter of `bytes_per_sec` (`None`: unlimited). The bucket holds at most a
    /// quarter second of traffic, so bursts stay short.
    pub fn new(bytes_per_sec: Option<u64>) -> Self {
        RateLimiter {
            bytes_per_sec: bytes_per_sec.filter(|r| *r > 0),
            state: Mutex::new(Bucket {
                tokens: 0.0,
                last: Instant::now(),
            }),
        }
    }

    /// The cap in bytes per second, if any.
    pub fn rate(&self) -> Option<u64> {
        self.bytes_per_sec
    }

    /// Whether there is a cap at all.
    pub fn is_limited(&self) -> bool {
        self.bytes_per_sec.is_some()
    }

    /// How long the caller must wait before moving `bytes` (and books them).
    fn reserve(&self, bytes: u64) -> Duration {
        let Some(rate) = self.bytes_per_sec else {
            return Duration::ZERO;
        };
        let rate = rate as f64;
        let mut bucket = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let burst = rate / 4.0;
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.last).as_secs_f64() * rate).min(burst);
        bucket.last = now;
        bucket.tokens -= bytes as f64;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / rate)
        }
    }

    /// Gives back `bytes` acquired but never moved (an upload cancelled while it waited).
    pub fn refund(&self, bytes: u64) {
        let Some(rate) = self.bytes_per_sec else {
            return;
        };
        let mut bucket = self.state.lock().unwrap_or_else(|p| p.into_inner());
        bucket.tokens = (bucket.tokens + bytes as f64).min(rate as f64 / 4.0);
    }

    /// Waits until `bytes` may be moved.
    pub async fn acquire(&self, bytes: u64) {
        let wait = self.reserve(bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Parses a rate such as `10MiB`, `500KiB`, `1.5MB`, `2000000` (bytes per second).
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid rate {text:?} (expected e.g. 10MiB)"))?;
    let unit = unit.trim().trim_end_matches("/s");
    let multiplier: f64 = match unit {
        "" | "B" => 1.0,
        "K" | "KB" | "k" | "kB" => 1e3,
        "KiB" => 1024.0,
        "M" | "MB" => 1e6,
        "MiB" => 1024.0 * 1024.0,
        "G" | "GB" => 1e9,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown unit {other:?} in rate {text:?}")),
    };
    let bytes = value * multiplier;
    if !(1.0..=1e13).contains(&bytes) {
        return Err(format!("rate {text:?} out of range"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(parse_rate("10MiB"), Ok(10 << 20));
        assert_eq!(parse_rate("500KiB/s"), Ok(500 << 10));
        assert_eq!(parse_rate("1.5MB"), Ok(1_500_000));
        assert_eq!(parse_rate("2000"), Ok(2000));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10XB").is_err());
        assert!(parse_rate("0").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn holds_the_average_rate() {
        let limiter = RateLimiter::new(Some(1 << 20));
        let start = tokio::time::Instant::now();
        for _ in 0..8 {
            limiter.acquire(1 << 20).await;
        }
        let secs = start.elapsed().as_secs_f64();
        // 8 MiB at 1 MiB/s, less at most the quarter-second burst.
        assert!((7.5..=8.5).contains(&secs), "{secs}");
    }

    #[tokio::test(start_paused = true)]
    async fn refunded_bytes_are_not_waited_for_again() {
        let limiter = RateLimiter::new(Some(1 << 20));
        // Booked 4 MiB (4 s of traffic) that were never sent: given back, the next
        // caller waits for its own MiB only, not behind them.
        assert!(limiter.reserve(4 << 20) > Duration::from_secs(3));
        limiter.refund(4 << 20);
        let wait = limiter.reserve(1 << 20);
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        // A refund never grows the burst past a quarter second.
        limiter.refund(100 << 20);
        assert!(limiter.reserve(1 << 20) >= Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_limiter_saves_up_only_a_quarter_second() {
        let limiter = RateLimiter::new(Some(1 << 20));
        tokio::time::advance(Duration::from_secs(10)).await;
        // 10 s idle allow a burst of 256 KiB, not 10 MiB: a 1 MiB chunk still waits
        // 0.75 s.
        let wait = limiter.reserve(1 << 20);
        assert!(wait >= Duration::from_millis(700), "{wait:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_never_waits() {
        let limiter = RateLimiter::new(None);
        let start = tokio::time::Instant::now();
        limiter.acquire(u64::MAX / 2).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
