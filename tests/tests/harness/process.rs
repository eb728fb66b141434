//! Watching a daemon's process end: after a signal, or by itself.

use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use super::Daemon;

impl Daemon {
    /// Waits up to `timeout` for the process to exit by itself and returns its status;
    /// `None` if it still runs (it is then killed by its pid).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` (`TERM`, `INT`, …) to the process and waits up to `timeout` for it
    /// to exit; returns its status and how long it took after the signal, or `None` if
    /// it did not exit in time (it is then killed).
    pub fn signal_and_wait(
        &mut self,
        signal: &str,
        timeout: Duration,
    ) -> Option<(ExitStatus, Duration)> {
        let pid = self.pid();
        assert_ne!(pid, 0, "the daemon is not running");
        let sent = Instant::now();
        let delivered = Command::new("kill")
            .args(["-s", signal, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(delivered, "kill -s {signal} {pid} failed");
        let status = self.wait_exit(timeout)?;
        Some((status, sent.elapsed()))
    }
}
