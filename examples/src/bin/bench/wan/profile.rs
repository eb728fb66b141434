//! The emulated links: the fetcher's access link of each profile that issue 17 asks
//! for, the home seeders' links, and the router buffer each gets.

use std::time::Duration;

use clap::ValueEnum;

use crate::lab::Access;

/// The home seeders' links.
pub(super) const HOME_UP_BPS: u64 = 20_000_000;
pub(super) const HOME_DOWN_BPS: u64 = 200_000_000;
pub(super) const HOME_ONE_WAY: Duration = Duration::from_millis(5);
/// TCP payload of a full 1500-byte packet with timestamps (what the Mathis formula and
/// the goodput ceiling of a shaped link count).
pub(super) const MSS: f64 = 1448.0;

/// The access links of the fetcher that issue 17 asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// 100 Mbit/s both ways, 40 ms round trip.
    #[value(name = "100m")]
    Fast,
    /// 1 Gbit/s both ways, 80 ms round trip, 0.5% loss each way.
    #[value(name = "1g-lossy")]
    LongFatLossy,
    /// A home link: 200 Mbit/s down, 20 Mbit/s up, 30 ms round trip.
    #[value(name = "home")]
    Home,
}

impl Profile {
    pub(super) fn name(self) -> &'static str {
        match self {
            Profile::Fast => "100m",
            Profile::LongFatLossy => "1g-lossy",
            Profile::Home => "home",
        }
    }

    /// (down, up) bits per second, round trip, loss each way.
    pub(super) fn shape(self) -> (u64, u64, Duration, f64) {
        match self {
            Profile::Fast => (100_000_000, 100_000_000, Duration::from_millis(40), 0.0),
            Profile::LongFatLossy => (
                1_000_000_000,
                1_000_000_000,
                Duration::from_millis(80),
                0.005,
            ),
            Profile::Home => (200_000_000, 20_000_000, Duration::from_millis(30), 0.0),
        }
    }

    pub(super) fn fetcher_access(self) -> Access {
        let (down, up, rtt, loss) = self.shape();
        Access {
            up_bps: Some(up),
            down_bps: Some(down),
            one_way: rtt / 2,
            loss,
            queue_bytes: buffer_for(down, rtt),
        }
    }

    pub(super) fn home_seeder_access(self) -> Access {
        let (_, _, rtt, _) = self.shape();
        Access {
            up_bps: Some(HOME_UP_BPS),
            down_bps: Some(HOME_DOWN_BPS),
            one_way: HOME_ONE_WAY,
            loss: 0.0,
            queue_bytes: buffer_for(HOME_UP_BPS, rtt + 2 * HOME_ONE_WAY),
        }
    }
}

/// A router buffer of one bandwidth-delay product (at least 20 ms and 64 KiB of it), the
/// usual rule of thumb for a bottleneck.
fn buffer_for(bps: u64, rtt: Duration) -> u64 {
    let secs = rtt.max(Duration::from_millis(20)).as_secs_f64();
    ((bps as f64 / 8.0 * secs) as u64).max(64 << 10)
}
