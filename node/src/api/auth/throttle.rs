//! The login throttle: after [`FREE_ATTEMPTS`] failed logins in a row, each further
//! attempt must wait twice as long as the last, up to [`MAX_LOCKOUT`]. The budget is
//! counted when an attempt starts, not when its (slow, argon2) check ends, so however
//! many attempts arrive at once, no more than the budget of them is ever checked.

use std::time::{Duration, Instant};

/// Failed logins in a row answered without delay.
pub const FREE_ATTEMPTS: u32 = 3;
/// Longest wait imposed after failed logins.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(60);

/// The daemon's one login throttle.
#[derive(Debug, Default)]
pub struct Throttle {
    /// Failed logins in a row.
    failures: u32,
    /// No attempt is checked before this.
    until: Option<Instant>,
    /// Attempts being checked now.
    in_flight: u32,
}

/// An attempt may not be checked now; try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub Duration);

impl Throttle {
    /// Attempts that may be checked at once now: what is left of the free ones, or
    /// one once a wait is over.
    fn budget(&self) -> u32 {
        FREE_ATTEMPTS.saturating_sub(self.failures).max(1)
    }

    /// Starts an attempt at `now`, or says how long to wait. Each started attempt must
    /// be ended with [`Throttle::finish`] (or [`Throttle::abandon`]).
    pub fn start(&mut self, now: Instant) -> Result<(), Refused> {
        if let Some(until) = self.until {
            let wait = until.saturating_duration_since(now);
            if !wait.is_zero() {
                return Err(Refused(wait));
            }
        }
        if self.in_flight >= self.budget() {
            // The budget is taken by attempts still being checked: the wait after them
            // is at least the next lockout's.
            return Err(Refused(self.lockout(self.failures + self.in_flight)));
        }
        self.in_flight += 1;
        Ok(())
    }

    /// The wait imposed after `failures` failures in a row.
    fn lockout(&self, failures: u32) -> Duration {
        if failures < FREE_ATTEMPTS {
            return Duration::from_secs(1);
        }
        let doublings = (failures - FREE_ATTEMPTS).min(16);
        Duration::from_secs(1u64 << doublings).min(MAX_LOCKOUT)
    }

    /// Ends an attempt started with [`Throttle::start`]: a success clears the count; a
    /// failure counts, and from the [`FREE_ATTEMPTS`]th on imposes a wait.
    pub fn finish(&mut self, ok: bool, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if ok {
            self.failures = 0;
            self.until = None;
            return;
        }
        self.failures += 1;
        if self.failures >= FREE_ATTEMPTS {
            self.until = Some(now + self.lockout(self.failures));
        }
    }

    /// Ends an attempt that was never checked (its caller went away).
    pub fn abandon(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Failed logins in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_arriving_at_once_are_checked_no_more_than_the_budget() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let started = (0..50).filter(|_| t.start(now).is_ok()).count();
        assert_eq!(started, FREE_ATTEMPTS as usize);
        for _ in 0..started {
            t.finish(false, now);
        }
        // Locked for a second after the third failure; then one attempt at a time.
        assert_eq!(t.start(now), Err(Refused(Duration::from_secs(1))));
        let later = now + Duration::from_secs(1);
        assert!(t.start(later).is_ok());
        assert!(t.start(later).is_err());
        t.finish(false, later);
        assert_eq!(t.start(later), Err(Refused(Duration::from_secs(2))));
    }

    #[test]
    fn a_success_clears_the_count_and_waits_are_capped() {
        let mut t = Throttle::default();
        let mut now = Instant::now();
        for _ in 0..20 {
            now += MAX_LOCKOUT;
            assert!(t.start(now).is_ok());
            t.finish(false, now);
        }
        assert_eq!(t.start(now), Err(Refused(MAX_LOCKOUT)));
        now += MAX_LOCKOUT;
        assert!(t.start(now).is_ok());
        t.finish(true, now);
        assert_eq!(t.failures(), 0);
        assert!((0..3).all(|_| t.start(now).is_ok()));
        t.abandon();
        assert!(t.start(now).is_ok());
    }
}
