//! `dht-sim`: many real p2pd nodes in one process over libp2p's memory transport, each
//! the daemon's own network layer (`p2pd::network::build_in_memory`: its behaviour,
//! Kademlia configuration and swarm task) set up from the daemon's own defaults, driven
//! by a seeded random schedule: nodes join, leave and come back, announce files and
//! look them up. See `docs/scale.md` for the figures and how to read them.
//!
//! ```sh
//! cargo build --release -p p2pd-examples --bin dht-sim
//! nice -n 10 target/release/dht-sim --nodes 10000 --churn 0.2 --out docs/img --name n10k
//! ```
//!
//! It writes `<name>.json` (the figures), `<name>-lookups.jsonl` (one line per lookup)
//! and `<name>-{latency,minutes,hops}.{png,svg}` to `--out`.

mod announce;
mod hops;
mod node;
mod plot;
mod probe;
mod report;
mod sim;

use std::alloc::System;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use p2pd_examples::procfs::{load_average, proc_status_bytes, CpuMeter};
use serde_json::json;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

use node::Role;
use probe::Probe;
use sim::{Params, Sim};

/// Counts the bytes allocated and freed, for the heap figure.
#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Many p2pd nodes over libp2p's memory transport, with churn; prints and writes
/// lookup success, hops, latency, messages and memory per node.
#[derive(Debug, Parser)]
#[command(name = "dht-sim", version)]
struct Args {
    /// Nodes online at once.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Share of nodes that are DHT servers (public hosts); the rest are DHT clients
    /// (behind NAT, known unreachable).
    #[arg(long, default_value_t = 1.0)]
    servers: f64,
    /// Servers also relay for clients (`p2pd daemon --relay-server`), so clients hold
    /// relay reservations and announce their relayed addresses.
    #[arg(long)]
    relay_servers: bool,
    /// Simulated minutes with churn (after minute 0, which has none).
    #[arg(long, default_value_t = 5)]
    minutes: u32,
    /// Wall seconds per simulated minute (60: real time). A longer minute stretches the
    /// nodes' Kademlia query timeout, routing-table refresh interval, ping interval and
    /// timeout, and idle-connection timeout by as much (`--minute-secs 240`: 4 times), for networks too large to run
    /// in real time; a shorter minute leaves them as they are.
    #[arg(long, default_value_t = 60.0)]
    minute_secs: f64,
    /// Share of the nodes that leave per simulated minute (as many join).
    #[arg(long, default_value_t = 0.2)]
    churn: f64,
    /// Share of joins that are earlier nodes coming back (same key, new address); the
    /// rest are new nodes.
    #[arg(long, default_value_t = 0.5)]
    return_fraction: f64,
    /// Files announced before minute 0 (default: one per 10 nodes, at least 20).
    #[arg(long)]
    seed_files: Option<usize>,
    /// Files announced per simulated minute under churn.
    #[arg(long, default_value_t = 20.0)]
    files_per_minute: f64,
    /// Provider lookups started per simulated minute.
    #[arg(long, default_value_t = 300.0)]
    lookups_per_minute: f64,
    /// Bootstrap addresses each joining node gets (random online servers).
    #[arg(long, default_value_t = 2)]
    bootstrap_per_node: usize,
    /// Nodes bootstrapping at once while the network is built.
    #[arg(long, default_value_t = 8)]
    join_concurrency: usize,
    /// Seed of the schedule.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the report and plots go.
    #[arg(long, default_value = "target/dht-sim")]
    out: PathBuf,
    /// Name of this run (file names).
    #[arg(long, default_value = "run")]
    name: String,
    /// TTF font for the plots' text (default: a system font if one is found).
    #[arg(long)]
    font: Option<PathBuf>,
    /// Write no plots.
    #[arg(long)]
    no_plots: bool,
    /// A `p2pd daemon` option for every node, over the daemon's defaults (repeat for
    /// more), e.g. `--daemon-option=--max-connections=2048`.
    #[arg(long, value_name = "OPTION", allow_hyphen_values = true)]
    daemon_option: Vec<String>,
}

impl Args {
    fn check(&self) -> Result<(), String> {
        let share = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("--{name} must be between 0 and 1, not {v}"))
            }
        };
        share("servers", self.servers)?;
        share("churn", self.churn)?;
        share("return-fraction", self.return_fraction)?;
        if self.nodes < 2 {
            return Err("--nodes must be at least 2".into());
        }
        if !(self.minute_secs > 0.0 && self.minute_secs.is_finite()) {
            return Err("--minute-secs must be a positive number".into());
        }
        for (name, v) in [
            ("files-per-minute", self.files_per_minute),
            ("lookups-per-minute", self.lookups_per_minute),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(format!("--{name} must be a number of at least 0"));
            }
        }
        if self.bootstrap_per_node == 0 {
            return Err("--bootstrap-per-node must be at least 1".into());
        }
        if self.name.is_empty() || self.name.contains('/') {
            return Err("--name must be a plain file name".into());
        }
        if let Err(e) = node::daemon_defaults(&self.daemon_option) {
            let reason = e.root_cause().to_string();
            let reason = reason.lines().next().unwrap_or_default();
            let reason = reason.trim_start_matches("error: ");
            return Err(format!(
                "--daemon-option {:?}: {reason}",
                self.daemon_option
            ));
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = args.check() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Resident memory and live heap bytes now.
fn memory() -> (u64, u64) {
    let rss = proc_status_bytes(std::process::id(), "VmRSS").unwrap_or(0);
    let stats = ALLOCATOR.stats();
    let heap = (stats.bytes_allocated as u64).saturating_sub(stats.bytes_deallocated as u64);
    (rss, heap)
}

fn run(args: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let font = if args.no_plots {
        None
    } else {
        Some(plot::load_font(args.font.as_deref())?)
    };
    let probe = Arc::new(Probe::default());
    tracing_subscriber::registry()
        .with(hops::HopLayer(probe.clone()).with_filter(hops::filter()))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
                ),
        )
        .try_init()
        .context("installing the trace subscriber")?;

    let params = Params {
        nodes: args.nodes,
        server_fraction: args.servers,
        relay_servers: args.relay_servers,
        minutes: args.minutes,
        minute_secs: args.minute_secs,
        churn: args.churn,
        return_fraction: args.return_fraction,
        seed_files: args.seed_files.unwrap_or((args.nodes / 10).max(20)),
        files_per_minute: args.files_per_minute,
        lookups_per_minute: args.lookups_per_minute,
        bootstrap_per_node: args.bootstrap_per_node,
        join_concurrency: args.join_concurrency,
        seed: args.seed,
        daemon_options: args.daemon_option.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let load_before = load_average();
    let cpu = CpuMeter::start(&[std::process::id()]);
    let mut sim = Sim::new(params.clone(), probe.clone())?;

    let (rss0, heap0) = memory();
    eprintln!("building a network of {} nodes…", params.nodes);
    let build = runtime.block_on(sim.build())?;
    let (rss1, heap1) = memory();
    let cpu_build = cpu.stop();
    eprintln!(
        "built in {:.0} s; RSS {} MiB → {} MiB ({:.0} KiB per node), heap {:.0} KiB per node",
        build.wall_secs,
        rss0 >> 20,
        rss1 >> 20,
        (rss1.saturating_sub(rss0)) as f64 / 1024.0 / params.nodes as f64,
        (heap1.saturating_sub(heap0)) as f64 / 1024.0 / params.nodes as f64,
    );
    let seed_secs = runtime.block_on(sim.seed())?;
    eprintln!("{} files announced in {seed_secs:.0} s", params.seed_files);
    runtime.block_on(sim.run())?;
    let tables = runtime.block_on(sim.routing_table_sizes());
    let (rss_end, heap_end) = memory();
    let cpu_all = cpu.stop();
    let load_after = load_average();
    runtime.block_on(sim.shutdown());
    runtime.shutdown_timeout(Duration::from_secs(5));

    let c = &probe.counters;
    let per_minute = report::per_minute(&sim.records, params.minutes);
    let table_mean = |role: Role| {
        let sizes: Vec<f64> = tables
            .iter()
            .filter(|(r, _)| *r == role)
            .map(|(_, s)| *s as f64)
            .collect();
        report::distribution(sizes.into_iter())
    };
    let ann = &sim.announcements.totals;
    let per_node = |after: u64, before: u64| after.saturating_sub(before) / params.nodes as u64;
    let report = json!({
        "params": params,
        "time": {
            "simulated_minute_wall_secs": params.minute_secs,
            "time_scale": params.time_scale(),
            "build_wall_secs": report::round(build.wall_secs),
            "slow_joins": build.slow_joins,
            "seed_wall_secs": report::round(seed_secs),
            "max_schedule_lag_ms": sim.minutes.iter().map(|m| m.max_lag_ms).fold(0.0, f64::max),
        },
        "lookups": report::lookups(&sim.records),
        "lookups_skipped_no_candidate": sim.lookups_skipped,
        "success_per_minute": per_minute.iter().map(|(m, r, n)| json!({"minute": m, "success_rate": r, "lookups": n})).collect::<Vec<_>>(),
        "minutes": sim.minutes,
        "announcements": {
            "ended": ann.ended,
            "completed": ann.completed,
            "messages_per_announcement": if ann.ended > 0 { Some(report::round(ann.requests as f64 / ann.ended as f64)) } else { None },
            "peers_reached_per_completed": if ann.completed > 0 { Some(report::round(ann.peers_reached as f64 / ann.completed as f64)) } else { None },
        },
        "kademlia_requests_served": {
            "find_node": c.inbound_find_node.load(Ordering::Relaxed),
            "get_providers": c.inbound_get_providers.load(Ordering::Relaxed),
            "add_provider": c.inbound_add_provider.load(Ordering::Relaxed),
            "bootstrap_requests_sent": c.bootstrap_requests.load(Ordering::Relaxed),
        },
        "inbound_connections_refused": {
            "at_max_connections": c.refused_at_max_established.load(Ordering::Relaxed),
            "other_limits": c.refused_other_limit.load(Ordering::Relaxed),
        },
        "client_server": {
            "routing_table_insertions": c.routing_insertions.load(Ordering::Relaxed),
            "clients_inserted": c.client_insertions.load(Ordering::Relaxed),
            "clients_turned_server": c.client_mode_changes.load(Ordering::Relaxed),
            "clients_with_direct_external_addr": c.client_direct_addrs.load(Ordering::Relaxed),
            "violation_examples": probe.violations(),
            "routing_table_size_servers": table_mean(Role::Server),
            "routing_table_size_clients": table_mean(Role::Client),
        },
        "memory": {
            "rss_before_bytes": rss0,
            "rss_built_bytes": rss1,
            "rss_end_bytes": rss_end,
            "rss_per_node_bytes": per_node(rss1, rss0),
            "heap_before_bytes": heap0,
            "heap_built_bytes": heap1,
            "heap_end_bytes": heap_end,
            "heap_per_node_bytes": per_node(heap1, heap0),
        },
        "identities": sim.identities(),
        "cpu": {
            "build": cpu_build.show(),
            "whole_run": cpu_all.show(),
            "own_cpu_secs": report::round(cpu_all.own),
            "wall_secs": report::round(cpu_all.wall),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
    });
    let json_path = args.out.join(format!("{}.json", args.name));
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    let lines_path = args.out.join(format!("{}-lookups.jsonl", args.name));
    let mut lines = std::io::BufWriter::new(
        std::fs::File::create(&lines_path)
            .with_context(|| format!("writing {}", lines_path.display()))?,
    );
    for r in &sim.records {
        serde_json::to_writer(&mut lines, r)?;
        lines.write_all(b"\n")?;
    }
    lines.flush()?;

    if font.is_some() {
        let latencies: Vec<f64> = report::under_churn(&sim.records)
            .filter(|r| r.ok)
            .filter_map(|r| r.latency_ms)
            .collect();
        let histogram = report::hop_histogram(report::under_churn(&sim.records));
        let title = format!(
            "{} nodes, {:.0}% churn/min",
            params.nodes,
            params.churn * 100.0
        );
        plot::draw_all(
            &args.out,
            &args.name,
            &plot::PlotData {
                title: &title,
                latencies_ms: latencies,
                minutes: &per_minute,
                hop_histogram: &histogram,
            },
        )?;
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&report["lookups"]["under_churn"])?
    );
    println!("report: {}", json_path.display());
    Ok(())
}
