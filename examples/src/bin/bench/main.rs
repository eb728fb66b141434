//! The issue-3 benchmark: p2pd's add, single-source fetch, multi-source fetch, memory and
//! DHT cost, each measured in one run on 127.0.0.1 beside a baseline measured in the same
//! run. See `docs/benchmarks.md` for results and how to read them.
//!
//! ```sh
//! cargo build --release -p p2pd
//! cargo build --release -p p2pd-examples --bin bench
//! target/release/bench                      # full size (1 GiB, 256 MiB, 10 GiB)
//! target/release/bench --size-mib 64 --multi-size-mib 32 --dht-size-gib 1   # smoke run
//! ```
//!
//! Daemons are real `p2pd` processes (`target/release/p2pd` beside this program, or
//! `--p2pd PATH`), started like the multi-process tests start them. Data directories and
//! files live under `target/bench-tmp/` (same disk as the build) and are deleted at the
//! end. This is not a test: nothing runs it from CI or `cargo test`.

mod addspeed;
mod dht;
mod firstmib;
mod fixed;
mod harness;
mod lab;
mod latency;
mod memory;
mod nodes;
mod reference;
mod report;
mod runner;
mod sendme;
mod sources;
mod stacks;
mod throughput;
mod ticket;
mod transport;
mod wan;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Parser, ValueEnum};
use harness::Daemon;
use p2pd_examples::procfs::load_average;
use p2pd_examples::procfs::CpuUse;
use report::{machine, Row};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// Longest one `add` or `fetch` may take before the benchmark gives up.
const LONG_TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Figure {
    /// 1: `p2pd add` vs BLAKE3 on all cores vs a file copy.
    Add,
    /// 2: single-source fetch vs raw TCP vs the bare libp2p stream.
    Fetch,
    /// 3: multi-source fetch from rate-capped seeders.
    Multi,
    /// 4: peak RSS of the fetching daemon, small and large file.
    Rss,
    /// 5: DHT provider announcements for a large (sparse) file.
    Dht,
    /// 6: latency of the API routes the web UI polls while the daemon adds and fetches
    /// large files.
    Status,
    /// 7: one bare stream over each secure transport (the daemon's TLS, noise, libp2p-tls, QUIC) vs raw TCP.
    Transport,
    /// 8: `add --no-copy` vs sendme's import; copy mode vs the disk's direct writes.
    AddSpeed,
    /// 9: fetch of 1 KiB from a connected provider vs one CLI round trip.
    FixedCost,
    /// 10: fetch from many uncapped seeders vs from one.
    Sources,
    /// 11: `fetch` by ticket vs by CID through the DHT, fresh fetchers (`ticket.rs`).
    Ticket,
    /// 12: first 1 MiB by Range of a file nothing of which is local (`firstmib.rs`).
    FirstMib,
}

/// Benchmarks p2pd on 127.0.0.1 against baselines measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Args {
    /// File size for `add` and the single-source fetch (figures 1 and 2), MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// File size for the multi-source fetch (figure 3), MiB.
    #[arg(long, default_value_t = 256)]
    multi_size_mib: u64,
    /// Number of rate-capped seeders in figure 3.
    #[arg(long, default_value_t = 4)]
    seeders: usize,
    /// Uncapped seeders of figure 10.
    #[arg(long, default_value_t = 16)]
    many_seeders: usize,
    /// Upload cap R of each seeder in figure 3, MiB/s (passed as `--max-upload-rate RMiB`).
    #[arg(long, default_value_t = 25)]
    rate_mib: u64,
    /// Small fetch of figure 4, MiB.
    #[arg(long, default_value_t = 64)]
    rss_small_mib: u64,
    /// Large fetch of figure 4, MiB (default: --size-mib).
    #[arg(long)]
    rss_large_mib: Option<u64>,
    /// Largest fetch of figure 4, MiB (issue 3: "a 4 GiB fetch uses about as much as a
    /// 64 MiB one"); 0 skips it.
    #[arg(long, default_value_t = 4096)]
    rss_huge_mib: u64,
    /// Sparse file size of figure 5, GiB.
    #[arg(long, default_value_t = 10)]
    dht_size_gib: u64,
    /// Runs of each timed measurement of figures 1 and 2 (best and median reported).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Figures to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Figure::Add, Figure::Fetch, Figure::Multi, Figure::Rss, Figure::Dht, Figure::Status, Figure::Transport, Figure::AddSpeed, Figure::FixedCost, Figure::Sources, Figure::Ticket, Figure::FirstMib])]
    only: Vec<Figure>,
    /// The p2pd binary (default: `p2pd` beside this program).
    #[arg(long)]
    p2pd: Option<PathBuf>,
    /// Where to put data directories and files (default: `target/bench-tmp`).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Keep the temporary directory (and its daemon logs) at the end.
    #[arg(long)]
    keep: bool,
    /// `RUST_LOG` filter for the daemons (default: their own default level).
    #[arg(long, value_name = "FILTER")]
    daemon_log: Option<String>,
    /// Add files on seeders right after they start, without waiting for their address to
    /// be confirmed (shows the cold-start delay of provider records without addresses).
    #[arg(long)]
    cold_start: bool,
    #[command(flatten)]
    wan: wan::WanArgs,
}

/// Everything one run needs: the binary, the temporary directory, the bootstrap node and
/// the seeder of figures 1, 2 and 4, and the results so far.
struct Bench {
    args: Args,
    bin: PathBuf,
    dir: PathBuf,
    rt: tokio::runtime::Handle,
    bootstrap: Option<Daemon>,
    bootstrap_addr: String,
    seeder: Option<Daemon>,
    /// CID and BLAKE3 of the main file once the seeder holds it.
    seeded: Option<(String, String)>,
    next_node: usize,
    rows: Vec<Row>,
    /// CPU accounting: what, bytes moved, CPU use (of the fastest run).
    cpu_rows: Vec<(String, u64, CpuUse)>,
    notes: Vec<String>,
}

impl Bench {
    fn run(&mut self) -> anyhow::Result<()> {
        self.start_network()?;
        let only = self.args.only.clone();
        if only.contains(&Figure::Add) {
            self.figure_add()?;
        }
        if only.contains(&Figure::Fetch) {
            self.figure_fetch()?;
        }
        if only.contains(&Figure::Rss) {
            self.figure_rss()?;
        }
        if only.contains(&Figure::Multi) {
            self.figure_multi()?;
        }
        if only.contains(&Figure::Dht) {
            self.figure_dht()?;
        }
        if only.contains(&Figure::Status) {
            self.figure_status()?;
        }
        if only.contains(&Figure::Transport) {
            self.figure_transport()?;
        }
        if only.contains(&Figure::AddSpeed) {
            self.figure_add_speed()?;
        }
        if only.contains(&Figure::FixedCost) {
            self.figure_fixed_cost()?;
        }
        if only.contains(&Figure::Sources) {
            self.figure_many_sources()?;
        }
        if only.contains(&Figure::Ticket) {
            self.figure_ticket()?;
        }
        if only.contains(&Figure::FirstMib) {
            self.figure_first_mib()?;
        }
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let place = runner::RunPlace::new(args.p2pd.clone(), args.tmp_dir.clone(), "run");
    let (keep, daemon_log) = (args.keep, args.daemon_log.clone());
    let (bin, dir) = (place.bin.clone(), place.dir.clone());
    runner::run_benchmark(&place, keep, daemon_log, move |rt| run(args, bin, dir, rt))
}

fn run(args: Args, bin: PathBuf, dir: PathBuf, rt: tokio::runtime::Handle) -> anyhow::Result<()> {
    if !bin.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p p2pd) or pass --p2pd",
            bin.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let version = harness::run_cli(&bin, &dir, &["--version"], Duration::from_secs(10))?
        .stdout
        .trim()
        .to_string();
    let wan = args.wan.wan;
    if wan {
        println!(
            "p2pd benchmark over emulated WAN links (issue 17), in a lab of network namespaces"
        );
    } else {
        println!("p2pd benchmark (issue 3), everything on 127.0.0.1");
    }
    println!("  machine: {}", machine());
    println!("  binary:  {} ({version})", bin.display());
    println!("  temp:    {}", dir.display());
    println!("  load average at start: {}", load_average());
    println!(
        "  MB = 10^6 bytes; \"best\" of --repeat {} runs",
        args.repeat.max(1)
    );
    let started = Instant::now();
    let mut bench = Bench {
        args,
        bin,
        dir,
        rt,
        bootstrap: None,
        bootstrap_addr: String::new(),
        seeder: None,
        seeded: None,
        next_node: 0,
        rows: Vec::new(),
        cpu_rows: Vec::new(),
        notes: Vec::new(),
    };
    let result = if wan {
        wan::run(&mut bench)
    } else {
        bench.run()
    };
    println!(
        "\nResults ({:.0} s, load average at end: {}):\n",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    print!("{}", bench.table());
    println!("\nCPU accounting (the machine is shared; \"other processes\" is everything else that ran meanwhile):\n");
    print!("{}", bench.cpu_table());
    bench.seeder = None;
    bench.bootstrap = None;
    result
}
