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
mod firstmib;
mod fixed;
mod harness;
mod lab;
mod latency;
mod sendme;
mod sources;
mod stacks;
mod ticket;
mod transport;
mod wan;

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Parser, ValueEnum};
use harness::{file_hash, random_file, CpuMeter, Daemon, MemSampler};
use p2pd_examples::procfs::CpuUse;
use serde_json::Value;

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
    /// 6: `GET /api/status` latency while the daemon adds and fetches large files.
    Status,
    /// 7: one bare stream over each secure transport (noise, TLS, QUIC) vs raw TCP.
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

/// One line of the results table.
struct Row {
    figure: String,
    value: String,
    baseline: String,
    baseline_value: String,
    ratio: String,
    goal: String,
}

/// Timed samples of one measurement, with the CPU use of each run where measured.
#[derive(Clone, Default)]
struct Samples(Vec<f64>, Vec<Option<CpuUse>>);

impl Samples {
    fn push(&mut self, d: Duration, cpu: Option<CpuUse>) {
        self.0.push(d.as_secs_f64());
        self.1.push(cpu);
    }
    fn best(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }
    /// The CPU use of the fastest run.
    fn best_cpu(&self) -> Option<CpuUse> {
        let best = self.best();
        self.0
            .iter()
            .position(|s| *s == best)
            .and_then(|i| self.1.get(i).copied().flatten())
    }
    fn median(&self) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
    /// `1.234 s · 870 MB/s` (best), with the median when there are several runs.
    fn show(&self, bytes: u64) -> String {
        let mut s = secs_rate(bytes, self.best());
        if self.0.len() > 1 {
            let _ = write!(s, " (median {:.3} s of {})", self.median(), self.0.len());
        }
        s
    }
}

fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

fn secs_rate(bytes: u64, secs: f64) -> String {
    format!("{secs:.3} s · {:.0} MB/s", mb_per_s(bytes, secs))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

fn size_label(bytes: u64) -> String {
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else {
        format!("{} MiB", bytes / MIB)
    }
}

/// Runs `f` and measures its wall time and the CPU time of this process meanwhile.
fn measure_self<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, Duration, CpuUse)> {
    let meter = CpuMeter::start(&[std::process::id()]);
    let t = Instant::now();
    let out = f()?;
    let elapsed = t.elapsed();
    Ok((out, elapsed, meter.stop()))
}

/// One fetch's results.
struct Fetched {
    /// `fetch --json` seconds.
    secs: f64,
    /// The CLI's wall time.
    wall: Duration,
    /// The `--json` summary.
    json: Value,
    /// CPU of the fetcher and the providers during the fetch.
    cpu: CpuUse,
    /// The fetcher's `VmHWM` after the fetch.
    hwm: u64,
    /// Most threads of the fetcher seen (sampled every 10 ms).
    max_threads: u64,
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
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn main_size(&self) -> u64 {
        self.args.size_mib * MIB
    }

    fn note(&mut self, line: String) {
        println!("    {line}");
        self.notes.push(line);
    }

    fn row(
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

    fn cpu_row(&mut self, what: &str, bytes: u64, cpu: Option<CpuUse>) {
        if let Some(cpu) = cpu {
            self.cpu_rows.push((what.to_string(), bytes, cpu));
        }
    }

    /// Starts a node that knows only the bootstrap address.
    fn node(&mut self, name: &str, extra: &[&str]) -> anyhow::Result<Daemon> {
        self.next_node += 1;
        let dir = self.path(&format!("node{}-{name}", self.next_node));
        let mut args = vec!["--bootstrap", self.bootstrap_addr.as_str()];
        args.extend_from_slice(extra);
        Daemon::start(&self.bin, &dir, name, &args)
    }

    /// Starts a node that will provide files: unless `--cold-start`, waits until its
    /// address is confirmed, so that its provider records carry its addresses and a
    /// fetch measures the transfer rather than the node's start-up.
    fn provider_node(&mut self, name: &str, extra: &[&str]) -> anyhow::Result<Daemon> {
        let node = self.node(name, extra)?;
        if !self.args.cold_start {
            let took = node.wait_public(Duration::from_secs(60))?;
            println!(
                "    ({name}: address confirmed {:.1} s after start)",
                took.as_secs_f64()
            );
        }
        Ok(node)
    }

    fn start_network(&mut self) -> anyhow::Result<()> {
        let bootstrap = Daemon::start(
            &self.bin,
            &self.path("bootstrap"),
            "bootstrap",
            &["--dht-mode", "server"],
        )?;
        self.bootstrap_addr = bootstrap.addr()?;
        self.bootstrap = Some(bootstrap);
        let seeder = self.provider_node("seeder", &[])?;
        self.seeder = Some(seeder);
        Ok(())
    }

    fn seeder(&self) -> anyhow::Result<&Daemon> {
        self.seeder.as_ref().context("no seeder")
    }

    /// The main test file (created once).
    fn main_file(&self) -> anyhow::Result<PathBuf> {
        let path = self.path("main.bin");
        if !path.exists() {
            println!(
                "  writing {} of pseudo-random bytes…",
                size_label(self.main_size())
            );
            random_file(&path, self.main_size(), 1)?;
        }
        Ok(path)
    }

    /// `p2pd add --json` on a node; returns the CID, the chunk count, the CLI's wall time
    /// and the daemon's CPU use meanwhile.
    fn add(
        &self,
        node: &Daemon,
        path: &Path,
        extra: &[&str],
    ) -> anyhow::Result<(String, u64, Duration, CpuUse)> {
        let path_str = path.to_str().context("non-UTF-8 path")?;
        let mut args = vec!["add", path_str, "--json"];
        args.extend_from_slice(extra);
        let meter = CpuMeter::start(&[node.pid()]);
        let run = node.cli(&args, LONG_TIMEOUT)?.ok("p2pd add")?;
        let cpu = meter.stop();
        let json = run.json()?;
        let cid = json["cid"]
            .as_str()
            .context("no cid in `add --json`")?
            .to_string();
        let chunks = json["chunks"]
            .as_u64()
            .context("no chunks in `add --json`")?;
        Ok((cid, chunks, run.wall, cpu))
    }

    /// Makes sure the seeder holds the main file; returns its CID and BLAKE3.
    fn ensure_seeded(&mut self) -> anyhow::Result<(String, String)> {
        if let Some(s) = &self.seeded {
            return Ok(s.clone());
        }
        let file = self.main_file()?;
        let (cid, ..) = self.add(self.seeder()?, &file, &[])?;
        let seeded = (cid, file_hash(&file)?);
        self.seeded = Some(seeded.clone());
        Ok(seeded)
    }

    /// Fetches `cid` on `node` into a new file, checks it against `expected_hash` and
    /// deletes it. CPU is counted for the fetcher and `providers`.
    fn fetch(
        &self,
        node: &Daemon,
        providers: &[&Daemon],
        cid: &str,
        expected_hash: &str,
        label: &str,
    ) -> anyhow::Result<Fetched> {
        let out = self.path(&format!("fetched-{label}.bin"));
        let _ = std::fs::remove_file(&out);
        let out_str = out.to_str().context("non-UTF-8 path")?;
        let mut pids = vec![node.pid()];
        pids.extend(providers.iter().map(|p| p.pid()));
        let meter = CpuMeter::start(&pids);
        let sampler = MemSampler::start(node.pid());
        let run = node.cli(
            &["fetch", cid, "-o", out_str, "--json", "--timeout", "120"],
            LONG_TIMEOUT,
        );
        let cpu = meter.stop();
        let (_, max_threads) = sampler.stop();
        let run = run?.ok("p2pd fetch")?;
        let hwm = node.proc_status_bytes("VmHWM")?;
        let json = run.json()?;
        let secs = json["seconds"]
            .as_f64()
            .context("no seconds in `fetch --json`")?;
        let got = file_hash(&out)?;
        std::fs::remove_file(&out)?;
        if got != expected_hash {
            bail!("fetched file differs from the source (BLAKE3 {got}, expected {expected_hash})");
        }
        Ok(Fetched {
            secs,
            wall: run.wall,
            json,
            cpu,
            hwm,
            max_threads,
        })
    }

    // ----- figure 1 -----

    fn figure_add(&mut self) -> anyhow::Result<()> {
        let size = self.main_size();
        let label = size_label(size);
        println!("\n[1] add {label}: p2pd add vs BLAKE3 (all cores) vs file copy");
        let file = self.main_file()?;
        let repeat = self.args.repeat.max(1);

        let mut b3_rayon = Samples::default();
        let mut b3_single = Samples::default();
        for _ in 0..repeat {
            let (rayon_hash, t, cpu) = measure_self(|| {
                let mut h = blake3::Hasher::new();
                h.update_mmap_rayon(&file)?;
                Ok(h.finalize())
            })?;
            b3_rayon.push(t, Some(cpu));
            let (single_hash, t, cpu) = measure_self(|| {
                let mut h = blake3::Hasher::new();
                h.update_mmap(&file)?;
                Ok(h.finalize())
            })?;
            b3_single.push(t, Some(cpu));
            if rayon_hash != single_hash {
                bail!("BLAKE3 with and without rayon disagree");
            }
        }
        self.note(format!("BLAKE3 update_mmap_rayon: {}", b3_rayon.show(size)));
        self.note(format!(
            "BLAKE3 update_mmap, one thread: {}",
            b3_single.show(size)
        ));

        let mut copy = Samples::default();
        let mut copy_sync = Samples::default();
        let target = self.path("copy.bin");
        for _ in 0..repeat {
            let _ = std::fs::remove_file(&target);
            let meter = CpuMeter::start(&[std::process::id()]);
            let t = Instant::now();
            std::fs::copy(&file, &target)?;
            copy.push(t.elapsed(), Some(meter.stop()));
            File::open(&target)?.sync_all()?;
            copy_sync.push(t.elapsed(), Some(meter.stop()));
            std::fs::remove_file(&target)?;
        }
        self.note(format!("std::fs::copy: {}", copy.show(size)));
        self.note(format!("std::fs::copy + fsync: {}", copy_sync.show(size)));

        let mut add = Samples::default();
        let mut cid = String::new();
        let mut chunks = 0;
        for run in 0..repeat {
            if run > 0 {
                // Forget the file so the next add does the whole job again.
                self.seeder()?
                    .cli(&["rm", &cid], LONG_TIMEOUT)?
                    .ok("p2pd rm")?;
            }
            let (c, n, wall, cpu) = self.add(self.seeder()?, &file, &[])?;
            add.push(wall, Some(cpu));
            cid = c;
            chunks = n;
        }
        self.note(format!("p2pd add ({chunks} chunks): {}", add.show(size)));
        self.seeded = Some((cid, file_hash(&file)?));

        let fig = format!("1 · `p2pd add` {label} (CLI start → CID)");
        let value = add.show(size);
        let ratio = |b: &Samples| format!("{:.2}", b.best() / add.best());
        self.row(
            &fig,
            &value,
            "BLAKE3 all cores (`update_mmap_rayon`)",
            &b3_rayon.show(size),
            ratio(&b3_rayon),
            "—",
        );
        self.row(
            &fig,
            &value,
            "BLAKE3 one core (`update_mmap`)",
            &b3_single.show(size),
            ratio(&b3_single),
            "—",
        );
        self.row(
            &fig,
            &value,
            "`std::fs::copy`",
            &copy.show(size),
            ratio(&copy),
            "—",
        );
        self.row(
            &fig,
            &value,
            "`std::fs::copy` + fsync",
            &copy_sync.show(size),
            ratio(&copy_sync),
            "—",
        );
        self.cpu_row("1 · `p2pd add` (daemon)", size, add.best_cpu());
        self.cpu_row("1 · BLAKE3 `update_mmap_rayon`", size, b3_rayon.best_cpu());
        self.cpu_row("1 · BLAKE3 `update_mmap`", size, b3_single.best_cpu());
        self.cpu_row("1 · `std::fs::copy` + fsync", size, copy_sync.best_cpu());
        Ok(())
    }

    // ----- figure 2 -----

    fn figure_fetch(&mut self) -> anyhow::Result<()> {
        let size = self.main_size();
        let label = size_label(size);
        println!("\n[2] single-source fetch of {label}: p2pd vs raw TCP vs bare libp2p stream");
        let file = self.main_file()?;
        let repeat = self.args.repeat.max(1);

        // The measurements are interleaved, one of each per round, so that a machine
        // whose speed drifts (it is shared) slows each side alike; the ratio of each
        // round is reported beside the ratio of the best runs.
        let (cid, hash) = self.ensure_seeded()?;
        let mut tcp = Samples::default();
        let mut bare = Samples::default();
        let mut per_chunk = Samples::default();
        let mut retried = 0;
        let mut cli_secs = Samples::default();
        let mut wall = Samples::default();
        let mut round_ratios = Vec::new();
        for run in 0..repeat {
            let (t, _, cpu) = measure_self(|| transport::raw_tcp(&file))?;
            tcp.push(t, Some(cpu));

            let rt = self.rt.clone();
            let (bare_t, _, cpu) = measure_self(|| {
                rt.block_on(transport::bare_libp2p(&file, transport::Stack::TcpNoise))
            })?;
            bare.push(bare_t, Some(cpu));

            let rt = self.rt.clone();
            let ((t, r), _, cpu) =
                measure_self(|| rt.block_on(transport::bare_libp2p_per_chunk(&file, MIB, 8)))?;
            per_chunk.push(t, Some(cpu));
            retried += r;

            let fetcher = self.node("fetcher", &[])?;
            let f = self.fetch(
                &fetcher,
                &[self.seeder()?],
                &cid,
                &hash,
                &format!("single-{run}"),
            )?;
            cli_secs.push(Duration::from_secs_f64(f.secs), Some(f.cpu));
            wall.push(f.wall, Some(f.cpu));
            let ratio = bare_t.as_secs_f64() / f.secs;
            round_ratios.push(ratio);
            self.note(format!(
                "round {}: bare stream {:.3} s; p2pd fetch --json seconds {:.3}, wall {:.3} s (ratio {ratio:.2}), fetcher VmHWM {} (at most {} threads); seeder + fetcher {}; file identical",
                run + 1,
                bare_t.as_secs_f64(),
                f.secs,
                f.wall.as_secs_f64(),
                mib(f.hwm),
                f.max_threads,
                f.cpu.show()
            ));
            drop(fetcher);
        }
        self.note(format!("raw TCP over loopback: {}", tcp.show(size)));
        self.note(format!(
            "bare libp2p stream (TCP+noise+yamux): {}",
            bare.show(size)
        ));
        self.note(format!(
            "bare libp2p, one stream per 1 MiB chunk, 8 in flight: {} ({retried} requests retried in all)",
            per_chunk.show(size)
        ));
        round_ratios.sort_by(f64::total_cmp);
        let round_ratio = format!(
            "per round {:.2}–{:.2}, median {:.2}",
            round_ratios.first().copied().unwrap_or(0.0),
            round_ratios.last().copied().unwrap_or(0.0),
            round_ratios[round_ratios.len() / 2]
        );
        self.note(format!(
            "p2pd ÷ bare stream by speed, {round_ratio} (of {repeat} rounds)"
        ));
        let fig = format!("2 · single-source fetch {label} (`fetch --json` seconds)");
        let value = cli_secs.show(size);
        let ratio = |b: &Samples, s: &Samples| format!("{:.2}", b.best() / s.best());
        self.row(
            &fig,
            &value,
            "raw TCP over loopback",
            &tcp.show(size),
            ratio(&tcp, &cli_secs),
            "—",
        );
        self.row(
            &fig,
            &value,
            "bare libp2p stream (TCP+noise+yamux)",
            &bare.show(size),
            format!("{} ({round_ratio})", ratio(&bare, &cli_secs)),
            "≥ 0.80",
        );
        self.row(
            &fig,
            &value,
            "bare libp2p, one stream per 1 MiB chunk, 8 in flight (p2pd's request pattern, no store, CBOR or hashing)",
            &per_chunk.show(size),
            ratio(&per_chunk, &cli_secs),
            "—",
        );
        let fig = format!("2 · single-source fetch {label} (CLI wall time)");
        let value = wall.show(size);
        self.row(
            &fig,
            &value,
            "bare libp2p stream (TCP+noise+yamux)",
            &bare.show(size),
            ratio(&bare, &wall),
            "≥ 0.80",
        );
        self.cpu_row("2 · raw TCP (both ends)", size, tcp.best_cpu());
        self.cpu_row("2 · bare libp2p stream (both ends)", size, bare.best_cpu());
        self.cpu_row(
            "2 · bare libp2p, stream per chunk (both ends)",
            size,
            per_chunk.best_cpu(),
        );
        self.cpu_row(
            "2 · p2pd fetch (seeder + fetcher)",
            size,
            cli_secs.best_cpu(),
        );
        Ok(())
    }

    // ----- figure 3 -----

    fn figure_multi(&mut self) -> anyhow::Result<()> {
        let size = self.args.multi_size_mib * MIB;
        let n = self.args.seeders;
        let r = self.args.rate_mib;
        let rate_bytes = r * MIB;
        let label = size_label(size);
        println!("\n[3] multi-source fetch of {label} from {n} seeders capped at {r} MiB/s each");
        let file = self.path("multi.bin");
        random_file(&file, size, 2)?;
        let hash = file_hash(&file)?;
        let cap = format!("{r}MiB");
        let mut seeders = Vec::new();
        let mut cid = String::new();
        for i in 0..n {
            let s = self.provider_node(
                &format!("capped-seeder{}", i + 1),
                &["--max-upload-rate", &cap],
            )?;
            cid = self.add(&s, &file, &[])?.0;
            seeders.push(s);
        }
        // Let the announcements reach the DHT before asking.
        std::thread::sleep(Duration::from_secs(2));
        let fetcher = self.node("multi-fetcher", &[])?;
        let providers: Vec<&Daemon> = seeders.iter().collect();
        let f = self.fetch(&fetcher, &providers, &cid, &hash, "multi")?;
        let rate = size as f64 / f.secs;
        let ratio = rate / rate_bytes as f64;
        let ids: Vec<String> = seeders
            .iter()
            .map(Daemon::peer_id)
            .collect::<anyhow::Result<_>>()?;
        let mut shares = Vec::new();
        for p in f.json["peers"].as_array().into_iter().flatten() {
            let id = p["peer_id"].as_str().unwrap_or("?");
            let who = ids
                .iter()
                .position(|s| s == id)
                .map_or_else(|| "other".to_string(), |i| format!("seeder{}", i + 1));
            shares.push(format!("{who} {}", mib(p["bytes"].as_u64().unwrap_or(0))));
        }
        self.note(format!(
            "fetch --json seconds {:.3} ({:.1} MiB/s = {ratio:.2} × R), wall {:.3} s; bytes from {}; fetcher VmHWM {}; file identical",
            f.secs,
            rate / MIB as f64,
            f.wall.as_secs_f64(),
            shares.join(", "),
            mib(f.hwm)
        ));
        self.row(
            &format!("3 · multi-source fetch {label}, {n} seeders at R = {r} MiB/s"),
            &format!("{:.3} s · {:.1} MiB/s", f.secs, rate / MIB as f64),
            &format!("R (one seeder's cap); {n} × R = {} MiB/s", n as u64 * r),
            &format!("{r} MiB/s"),
            format!("{ratio:.2} × R"),
            "≥ 3.5 × R",
        );
        drop(fetcher);
        drop(seeders);
        std::fs::remove_file(&file)?;
        Ok(())
    }

    // ----- figure 4 -----

    fn figure_rss(&mut self) -> anyhow::Result<()> {
        let small = self.args.rss_small_mib * MIB;
        let large = self.args.rss_large_mib.unwrap_or(self.args.size_mib) * MIB;
        let mut sizes = vec![small, large];
        if self.args.rss_huge_mib > 0 {
            sizes.push(self.args.rss_huge_mib * MIB);
        }
        println!(
            "\n[4] peak RSS of the fetching daemon: {}",
            sizes
                .iter()
                .map(|s| size_label(*s))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut files = Vec::new();
        for (bytes, seed) in sizes.iter().copied().zip(3..) {
            if bytes == self.main_size() {
                files.push(self.ensure_seeded()?);
            } else {
                let path = self.path(&format!("rss-{}.bin", bytes / MIB));
                random_file(&path, bytes, seed)?;
                let (cid, ..) = self.add(self.seeder()?, &path, &[])?;
                files.push((cid, file_hash(&path)?));
                std::fs::remove_file(&path)?;
            }
        }
        let mut peaks = Vec::new();
        for ((cid, hash), bytes) in files.iter().zip(sizes.iter().copied()) {
            let fetcher = self.node(&format!("rss-fetcher-{}", bytes / MIB), &[])?;
            let idle = fetcher.proc_status_bytes("VmHWM")?;
            let f = self.fetch(
                &fetcher,
                &[self.seeder()?],
                cid,
                hash,
                &format!("rss-{}", bytes / MIB),
            )?;
            let rss = fetcher.proc_status_bytes("VmRSS")?;
            self.note(format!(
                "{} fetch: {:.3} s; fetcher VmHWM {} after the fetch ({} after start-up), VmRSS now {}, at most {} threads; file identical",
                size_label(bytes),
                f.secs,
                mib(f.hwm),
                mib(idle),
                mib(rss),
                f.max_threads
            ));
            peaks.push((bytes, f.hwm, idle));
        }
        let small_peak = peaks.first().map_or(0, |p| p.1);
        for (bytes, hwm, idle) in peaks {
            self.row(
                &format!(
                    "4 · peak RSS (VmHWM) of the fetching daemon, {} fetch",
                    size_label(bytes)
                ),
                &mib(hwm),
                "same daemon right after start-up",
                &mib(idle),
                format!(
                    "{:.2} × the {} fetch",
                    hwm as f64 / small_peak as f64,
                    size_label(small)
                ),
                "≤ 64 MiB, the same for every size",
            );
        }
        Ok(())
    }

    // ----- figure 5 -----

    fn figure_dht(&mut self) -> anyhow::Result<()> {
        let size = self.args.dht_size_gib * GIB;
        println!(
            "\n[5] DHT announcements for a sparse {} file added with --no-copy",
            size_label(size)
        );
        let node = self.provider_node("dht", &[])?;
        // Let start-up traffic (bootstrap, address confirmation) settle.
        std::thread::sleep(Duration::from_secs(2));
        let count = |node: &Daemon| -> anyhow::Result<u64> {
            node.status()?["node"]["provider_announcements"]
                .as_u64()
                .context("no node.provider_announcements in `status --json`")
        };
        let before = count(&node)?;
        let path = self.path("sparse.bin");
        File::create(&path)?.set_len(size)?;
        let (_, chunks, wall, _) = self.add(&node, &path, &["--no-copy"])?;
        let right_after = count(&node)?;
        std::thread::sleep(Duration::from_secs(5));
        let after = count(&node)?;
        let delta = after - before;
        self.note(format!(
            "add --no-copy: {chunks} chunks in {}; provider_announcements {before} before, {right_after} right after, {after} 5 s later",
            secs_rate(size, wall.as_secs_f64())
        ));
        self.row(
            &format!(
                "5 · DHT provider announcements for a {} file ({chunks} chunks)",
                size_label(size)
            ),
            &delta.to_string(),
            "chunks in the file",
            &chunks.to_string(),
            format!("{delta} per file"),
            "1 per file",
        );
        drop(node);
        std::fs::remove_file(&path)?;
        Ok(())
    }

    // ----- figure 6 -----

    fn figure_status(&mut self) -> anyhow::Result<()> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let size = self.main_size();
        let label = size_label(size);
        println!("\n[6] GET /api/status while a daemon adds {label} and fetches {label}");
        let (cid, hash) = self.ensure_seeded()?;
        let to_add = self.path("status-add.bin");
        if !to_add.exists() {
            random_file(&to_add, size, 6)?;
        }
        let node = self.node("status", &[])?;
        let (addr, token) = latency::endpoint(&node.data_dir)?;

        // `status` asks the swarm task and the store; `id` only the swarm task;
        // `settings` neither.
        let paths = ["/api/status", "/api/id", "/api/settings"];
        // The baseline: the same client, the same daemon, idle.
        let idle = latency::probe(&addr, &token, &paths, 300, &AtomicBool::new(true))?;
        for (path, l) in paths.iter().zip(&idle) {
            self.note(format!("idle daemon, GET {path}: {}", l.show()));
        }

        // Probed from when both start until the first of them ends.
        let out = self.path("fetched-status.bin");
        let _ = std::fs::remove_file(&out);
        let add_path = to_add.to_str().context("non-UTF-8 path")?;
        let out_path = out.to_str().context("non-UTF-8 path")?;
        let one_ended = AtomicBool::new(false);
        let meter = CpuMeter::start(&[node.pid(), self.seeder()?.pid()]);
        let (busy, add, fetch) = std::thread::scope(|s| {
            let add = s.spawn(|| {
                let r = node.cli(&["add", add_path, "--json"], LONG_TIMEOUT);
                one_ended.store(true, Ordering::Relaxed);
                r
            });
            let fetch = s.spawn(|| {
                let r = node.cli(
                    &["fetch", &cid, "-o", out_path, "--json", "--timeout", "120"],
                    LONG_TIMEOUT,
                );
                one_ended.store(true, Ordering::Relaxed);
                r
            });
            let busy = latency::probe(&addr, &token, &paths, 1, &one_ended);
            let joined = |h: std::thread::ScopedJoinHandle<'_, anyhow::Result<harness::CliRun>>| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread panicked")))
            };
            (busy, joined(add), joined(fetch))
        });
        let cpu = meter.stop();
        let busy = busy?;
        let add = add?.ok("p2pd add")?;
        let fetch = fetch?.ok("p2pd fetch")?;
        if file_hash(&out)? != hash {
            bail!("the file fetched during figure 6 differs from its source");
        }
        std::fs::remove_file(&out)?;
        self.note(format!(
            "under load (add {:.1} s, fetch {:.1} s; {})",
            add.wall.as_secs_f64(),
            fetch.wall.as_secs_f64(),
            cpu.show()
        ));
        let p99 = |l: &latency::Latencies| l.quantile(0.99).as_secs_f64();
        for ((path, busy), idle) in paths.iter().zip(&busy).zip(&idle) {
            self.note(format!("under load, GET {path}: {}", busy.show()));
            self.row(
                &format!("6 · `GET {path}` during a {label} add and a {label} fetch"),
                &busy.show(),
                "the same daemon, idle",
                &idle.show(),
                format!("{:.2}", p99(idle) / p99(busy)),
                if *path == "/api/status" {
                    "p99 ≤ 50 ms"
                } else {
                    "—"
                },
            );
        }
        self.cpu_row(
            "6 · status under load (daemon + seeder)",
            2 * size,
            Some(cpu),
        );
        drop(node);
        std::fs::remove_file(&to_add)?;
        Ok(())
    }

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

    fn table(&self) -> String {
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

    fn cpu_table(&self) -> String {
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
fn markdown_table(head: &[&str], rows: &[Vec<String>]) -> String {
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

fn machine() -> String {
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

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let bin = args.p2pd.clone().unwrap_or_else(|| exe_dir.join("p2pd"));
    let tmp_root = args
        .tmp_dir
        .clone()
        .or_else(|| exe_dir.parent().map(|t| t.join("bench-tmp")))
        .unwrap_or_else(|| PathBuf::from("bench-tmp"));
    let dir = tmp_root.join(format!("run-{}", std::process::id()));
    let keep = args.keep;
    if let Some(filter) = &args.daemon_log {
        let _ = harness::DAEMON_LOG.set(filter.clone());
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let handle = tokio::runtime::Handle::current();
        let dir2 = dir.clone();
        let work = tokio::task::spawn_blocking(move || run(args, bin, dir2, handle));
        tokio::select! {
            r = work => r.unwrap_or_else(|e| Err(anyhow::anyhow!("benchmark thread failed: {e}"))),
            _ = harness::interrupted() => {
                harness::kill_all_registered();
                Err(anyhow::anyhow!("interrupted"))
            }
        }
    });
    harness::kill_all_registered();
    if keep {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir(&tmp_root); // only if empty
    }
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
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
    println!("  load average at start: {}", load());
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
        load()
    );
    print!("{}", bench.table());
    println!("\nCPU accounting (the machine is shared; \"other processes\" is everything else that ran meanwhile):\n");
    print!("{}", bench.cpu_table());
    bench.seeder = None;
    bench.bootstrap = None;
    result
}
