//! What a run reports: the rows of the results table and of the CPU accounting, the
//! timed samples behind them, how sizes, rates and times are written, and the machine
//! and its load as printed in the header and footer.

use std::fmt::Write as _;
use std::time::Duration;

use p2pd_examples::procfs::CpuUse;

use crate::{Bench, GIB, MIB};

/// One line of the results table.
pub(crate) struct Row {
    pub(crate) figure: String,
    pub(crate) value: String,
    pub(crate) baseline: String,
    pub(crate) baseline_value: String,
    pub(crate) ratio: String,
    pub(crate) goal: String,
}

/// The median of `values` (NaN when there are none).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Timed samples of one measurement, with the CPU use of each run where measured.
#[derive(Clone, Default)]
pub(crate) struct Samples(pub(crate) Vec<f64>, pub(crate) Vec<Option<CpuUse>>);

impl Samples {
    pub(crate) fn push(&mut self, d: Duration, cpu: Option<CpuUse>) {
        self.0.push(d.as_secs_f64());
        self.1.push(cpu);
    }
    pub(crate) fn best(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }
    /// The CPU use of the fastest run.
    pub(crate) fn best_cpu(&self) -> Option<CpuUse> {
        let best = self.best();
        self.0
            .iter()
            .position(|s| *s == best)
            .and_then(|i| self.1.get(i).copied().flatten())
    }
    pub(crate) fn median(&self) -> f64 {
        median(&self.0)
    }
    /// `1.234 s · 870 MB/s` (best), with the median when there are several runs.
    pub(crate) fn show(&self, bytes: u64) -> String {
        let mut s = secs_rate(bytes, self.best());
        if self.0.len() > 1 {
            let _ = write!(s, " (median {:.3} s of {})", self.median(), self.0.len());
        }
        s
    }
}

pub(crate) fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

pub(crate) fn secs_rate(bytes: u64, secs: f64) -> String {
    format!("{secs:.3} s · {:.0} MB/s", mb_per_s(bytes, secs))
}

pub(crate) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

pub(crate) fn size_label(bytes: u64) -> String {
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else {
        format!("{} MiB", bytes / MIB)
    }
}

impl Bench {
    pub(crate) fn note(&mut self, line: String) {
        println!("    {line}");
        self.notes.push(line);
    }

    pub(crate) fn row(
        &mut self,
        figure: &str,
        value: &str,
        baseline: &str,
        baseline_value: &str,
        ratio: String,
        goal: &str,
    ) {
        self.rows.push(Row {
            figure: figure.into(),
            value: value.into(),
            baseline: baseline.into(),
            baseline_value: baseline_value.into(),
            ratio,
            goal: goal.into(),
        });
    }

    pub(crate) fn cpu_row(&mut self, what: &str, bytes: u64, cpu: Option<CpuUse>) {
        if let Some(cpu) = cpu {
            self.cpu_rows.push((what.to_string(), bytes, cpu));
        }
    }

    pub(crate) fn table(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.figure.clone(),
                    r.value.clone(),
                    r.baseline.clone(),
                    r.baseline_value.clone(),
                    r.ratio.clone(),
                    r.goal.clone(),
                ]
            })
            .collect();
        markdown_table(
            &[
                "figure",
                "p2pd",
                "baseline",
                "baseline value",
                "ratio (p2pd ÷ baseline, by speed)",
                "goal",
            ],
            &rows,
        )
    }

    pub(crate) fn cpu_table(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .cpu_rows
            .iter()
            .map(|(what, bytes, cpu)| {
                let capacity = cpu.wall * cpu.cores;
                vec![
                    what.clone(),
                    format!("{:.3} s", cpu.wall),
                    format!("{:.2}", cpu.own),
                    format!("{:.2}", cpu.own / (*bytes as f64 / GIB as f64)),
                    format!("{:.0}%", 100.0 * cpu.own / capacity),
                    format!(
                        "{:.0}%",
                        100.0 * (cpu.machine - cpu.own).max(0.0) / capacity
                    ),
                ]
            })
            .collect();
        markdown_table(
            &[
                "measurement (fastest run)",
                "wall",
                "CPU-s used",
                "CPU-s per GiB",
                "share of all cores",
                "other processes meanwhile",
            ],
            &rows,
        )
    }
}

/// A Markdown table with aligned columns (readable as plain text too).
pub(crate) fn markdown_table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::from("|");
        for (c, w) in cells.zip(&width) {
            let _ = write!(s, " {c}{} |", " ".repeat(w - c.chars().count()));
        }
        s.push('\n');
        s
    };
    let mut out = line(&mut head.iter().copied());
    out.push('|');
    for w in &width {
        let _ = write!(out, "{}|", "-".repeat(w + 2));
    }
    out.push('\n');
    for r in rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    out
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores, {cpu}, Linux {}", kernel.trim())
}
