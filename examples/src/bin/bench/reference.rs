//! The machine's speed at a moment: a fixed single-threaded job (BLAKE3 over 256 MiB
//! held in memory) timed before and after each round of the loopback figures. This
//! machine is shared; the same job has taken from one to nearly two times as long a
//! few minutes apart, so each round's figures are printed beside the speed the machine
//! had for it.

use std::time::Instant;

/// Bytes hashed by one reference job.
const JOB_BYTES: usize = 256 << 20;
/// The job hashes this buffer again and again, so memory bandwidth and page faults
/// weigh as little as they can.
const BUFFER_BYTES: usize = 4 << 20;

/// Runs the reference job once and returns its speed in GB/s (10⁹ bytes per second).
pub(crate) fn cpu_speed_gbps() -> f64 {
    let buffer: Vec<u8> = (0..BUFFER_BYTES).map(|i| (i * 31 % 251) as u8).collect();
    let start = Instant::now();
    let mut hasher = blake3::Hasher::new();
    for _ in 0..JOB_BYTES / BUFFER_BYTES {
        hasher.update(&buffer);
    }
    std::hint::black_box(hasher.finalize());
    JOB_BYTES as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// The reference speeds measured around the rounds of one figure.
#[derive(Default)]
pub(crate) struct Speeds(Vec<f64>);

impl Speeds {
    /// Measures once and returns the speed, keeping it.
    pub(crate) fn measure(&mut self) -> f64 {
        let speed = cpu_speed_gbps();
        self.0.push(speed);
        speed
    }

    /// "machine reference (…): a–b GB/s over n measurements".
    pub(crate) fn summary(&self) -> String {
        let min = self.0.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.0.iter().copied().fold(0.0, f64::max);
        format!(
            "machine reference (BLAKE3 on one thread, {} MiB in memory): {min:.2}–{max:.2} GB/s over {} measurements ({:.2} × from slowest to fastest)",
            JOB_BYTES >> 20,
            self.0.len(),
            max / min
        )
    }
}
