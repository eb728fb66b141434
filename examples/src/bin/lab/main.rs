//! The adversarial lab (docs/lab.md): real `p2pd` daemons on 127.0.0.1, honest and
//! misbehaving (built with the `test-faults` feature), sharing one file in five
//! scenarios: all honest, 30% freeloaders, 20% corrupters, churn (30% of the
//! downloaders killed and restarted during the transfer), and all of it at once. It
//! samples every node's ledger and progress through the API, writes CSV and a JSON
//! summary, and draws the figures (PNG and SVG).
//!
//! ```text
//! cargo build --release -p p2pd --features test-faults
//! cargo run --release -p p2pd-examples --bin lab -- --daemons 20 --size 256MiB
//! ```

#[path = "../bench/harness.rs"]
#[allow(dead_code, unused_imports)]
mod harness;

mod api;
mod plot;
mod report;
mod run;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser;
use serde_json::json;

use run::{Scenario, Settings};

#[derive(Parser, Debug)]
#[command(about = "p2pd's adversarial lab: honest and misbehaving daemons on loopback")]
struct Args {
    /// The p2pd binary, built with `--features test-faults`.
    #[arg(long, default_value = "target/release/p2pd")]
    p2pd: PathBuf,
    /// Daemons per scenario, the seeder included (plus one bootstrap node).
    #[arg(long, default_value_t = 20)]
    daemons: usize,
    /// Size of the shared file (bytes, or with KiB/MiB/GiB).
    #[arg(long, default_value = "256MiB")]
    size: String,
    /// Scenarios to run, by number (1 honest, 2 freeloaders, 3 corrupters, 4 churn,
    /// 5 all), comma-separated.
    #[arg(long, default_value = "1,2,3,4,5")]
    scenarios: String,
    /// Fraction of chunks a corrupter serves corrupt.
    #[arg(long, default_value_t = 0.5)]
    corrupt_rate: f64,
    /// Upload cap of every daemon (as `--max-upload-rate` takes it).
    #[arg(long, default_value = "4MiB")]
    upload_rate: String,
    /// Milliseconds between two samples of every node.
    #[arg(long, default_value_t = 1000)]
    sample_ms: u64,
    /// Longest a scenario's transfer may take, in seconds.
    #[arg(long, default_value_t = 1800)]
    deadline: u64,
    /// Where the CSV, JSON and figures go.
    #[arg(long, default_value = "lab-out")]
    out: PathBuf,
    /// A TTF font for the figures (default: DejaVu Sans or Liberation Sans if found).
    #[arg(long)]
    font: Option<PathBuf>,
    /// Seed of the random choices (churn points, the file's bytes).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn parse_size(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let n: u64 = number.parse().with_context(|| format!("bad size {s:?}"))?;
    let mult = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => bail!("bad size unit in {s:?} (B, KiB, MiB, GiB)"),
    };
    n.checked_mul(mult).context("size too large")
}

fn scenario(n: u32, daemons: usize) -> anyhow::Result<Scenario> {
    let (name, freeloaders, corrupters, churn) = match n {
        1 => ("1-honest", 0.0, 0.0, 0.0),
        2 => ("2-freeloaders", 0.3, 0.0, 0.0),
        3 => ("3-corrupters", 0.0, 0.2, 0.0),
        4 => ("4-churn", 0.0, 0.0, 0.3),
        5 => ("5-all", 0.3, 0.2, 0.3),
        _ => bail!("no scenario {n} (1 to 5)"),
    };
    Ok(Scenario {
        name: name.into(),
        daemons,
        freeloaders,
        corrupters,
        churn,
    })
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run_lab(&args) {
        harness::kill_all_registered();
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run_lab(args: &Args) -> anyhow::Result<()> {
    if args.daemons < 3 {
        bail!("--daemons must be at least 3");
    }
    if !(0.0..=1.0).contains(&args.corrupt_rate) {
        bail!("--corrupt-rate must be from 0 to 1");
    }
    if !args.p2pd.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p p2pd --features test-faults`",
            args.p2pd.display()
        );
    }
    let scenarios: Vec<Scenario> = args
        .scenarios
        .split(',')
        .map(|n| {
            let n: u32 = n
                .trim()
                .parse()
                .with_context(|| format!("bad scenario {n:?}"))?;
            scenario(n, args.daemons)
        })
        .collect::<anyhow::Result<_>>()?;
    plot::register_font(args.font.as_deref())?;
    std::fs::create_dir_all(&args.out)?;
    let out = args.out.canonicalize()?;
    let work = tempfile::tempdir()?;
    let file_size = parse_size(&args.size)?;
    let source = work.path().join("shared.bin");
    harness::random_file(&source, file_size, args.seed)?;
    let settings = Settings {
        bin: args.p2pd.canonicalize()?,
        source,
        file_size,
        corrupt_rate: args.corrupt_rate,
        upload_rate: args.upload_rate.clone(),
        sample_every: Duration::from_millis(args.sample_ms.max(100)),
        deadline: Duration::from_secs(args.deadline),
        work: work.path().to_path_buf(),
        seed: args.seed,
    };
    let mut summaries = Vec::new();
    let mut fairness = Vec::new();
    for scenario in &scenarios {
        eprintln!(
            "lab: scenario {} ({} daemons)",
            scenario.name, scenario.daemons
        );
        let measured = run::run(scenario, &settings)?;
        measured.write_csv(&out)?;
        plot::scenario_figures(&out, &measured)?;
        let summary = measured.summary();
        eprintln!("{}", serde_json::to_string_pretty(&summary)?);
        fairness.push((scenario.name.clone(), summary["jain_honest_ratio"].as_f64()));
        summaries.push(summary);
    }
    plot::fairness_figure(&out, &fairness)?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let summary = json!({
        "daemons": args.daemons,
        "file_size": file_size,
        "upload_rate": args.upload_rate,
        "corrupt_rate": args.corrupt_rate,
        "load_average_at_end": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "scenarios": summaries,
    });
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    eprintln!("lab: results in {}", out.display());
    Ok(())
}
