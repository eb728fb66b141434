//! What `/proc` tells about a process and the machine: memory fields, CPU time, and
//! CPU use over a measurement on a shared machine. Linux only.

use std::process::Command;
use std::time::Instant;

use anyhow::Context as _;

/// A field of `/proc/<pid>/status` in bytes (the kB figures, e.g. `VmHWM`, `VmRSS`).
pub fn proc_status_bytes(pid: u32, field: &str) -> anyhow::Result<u64> {
    Ok(proc_status_value(pid, field)? * 1024)
}

/// The number in a field of `/proc/<pid>/status` as written (kB for memory fields).
pub fn proc_status_value(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("malformed /proc status line")?
        .parse()?)
}

/// CPU time (user + system, all threads, exited ones included) of a process, seconds.
pub fn process_cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields
        .get(11..13)
        .context("short /proc stat")?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    Ok(ticks as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The machine's CPU time so far from `/proc/stat`: (busy, total) seconds over all cores.
fn machine_cpu_secs() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8) // user nice system idle iowait irq softirq steal
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let total: f64 = values.iter().sum();
    let idle = values.get(3).copied().unwrap_or(0.0) + values.get(4).copied().unwrap_or(0.0);
    ((total - idle) / clock_ticks(), total / clock_ticks())
}

/// CPU use over one measurement: the CPU seconds of the processes measured, and how busy
/// the whole machine was meanwhile (the machine is shared: other processes count too).
pub struct CpuMeter {
    pids: Vec<u32>,
    start_own: f64,
    start_machine: (f64, f64),
    start: Instant,
}

/// What a [`CpuMeter`] saw.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    /// Wall time, seconds.
    pub wall: f64,
    /// CPU seconds of the measured processes.
    pub own: f64,
    /// CPU seconds of the whole machine (all processes, all cores).
    pub machine: f64,
    /// Cores of the machine (CPU seconds available per wall second).
    pub cores: f64,
}

impl CpuUse {
    /// `3.1 CPU-s; machine 93% busy (others 12%)`.
    pub fn show(&self) -> String {
        let capacity = self.wall * self.cores;
        format!(
            "{:.2} CPU-s ({:.0}% of {} cores); machine {:.0}% busy, of which other processes {:.0}%",
            self.own,
            100.0 * self.own / capacity,
            self.cores,
            100.0 * self.machine / capacity,
            100.0 * (self.machine - self.own).max(0.0) / capacity
        )
    }
}

impl CpuMeter {
    /// Starts measuring the given processes (use `std::process::id()` for this one).
    pub fn start(pids: &[u32]) -> Self {
        CpuMeter {
            pids: pids.to_vec(),
            start_own: pids.iter().filter_map(|p| process_cpu_secs(*p).ok()).sum(),
            start_machine: machine_cpu_secs(),
            start: Instant::now(),
        }
    }

    /// Stops measuring.
    pub fn stop(&self) -> CpuUse {
        let own: f64 = self
            .pids
            .iter()
            .filter_map(|p| process_cpu_secs(*p).ok())
            .sum();
        let machine = machine_cpu_secs();
        let wall = self.start.elapsed().as_secs_f64();
        let elapsed_total = machine.1 - self.start_machine.1;
        let cores = if wall > 0.0 {
            (elapsed_total / wall).round().max(1.0)
        } else {
            1.0
        };
        CpuUse {
            wall,
            own: own - self.start_own,
            machine: machine.0 - self.start_machine.0,
            cores,
        }
    }
}

/// The load averages over 1, 5 and 15 minutes, as `/proc/loadavg` gives them (empty if
/// it cannot be read).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
