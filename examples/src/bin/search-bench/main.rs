//! The issue-12 benchmark: keyword search across N real daemons on 127.0.0.1 (all DHT
//! servers, as on a public network): time to the first result and to the final result,
//! and the messages one search sends, beside a baseline measured in the same run (a
//! browse of one publisher by its address: one dial and one catalog request, no DHT).
//! See `docs/benchmarks.md` for results and how to read them.
//!
//! ```sh
//! cargo build --release -p p2pd
//! cargo build --release -p p2pd-examples --bin search-bench
//! target/release/search-bench                     # 20 and 100 daemons
//! target/release/search-bench --nodes 8 --searches 4   # smoke run
//! ```
//!
//! Each node lists a few files with names drawn from a fixed vocabulary; `--publishers`
//! nodes also list the same "Aurora Borealis Timelapse.mp4" and one more lists "aurora
//! over the lake.jpg". Searches for `aurora borealis` and `aurora` run one after
//! another, each from a node that publishes neither, over the control API (the streamed
//! answer's lines are timed as they arrive). Daemons are killed by pid at the end, also
//! on Ctrl-C; data lives under `target/bench-tmp/` and is deleted.

#[path = "../bench/harness.rs"]
#[allow(dead_code)]
mod harness;
mod network;
#[path = "../bench/runner.rs"]
mod runner;
mod stream;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use harness::{CpuMeter, Daemon};
use network::{add, background_name, start_nodes, wait_keywords, SAME_HOST, WANTED};
use p2pd_examples::procfs::load_average;
use serde_json::{json, Value};
use stream::post_stream;

const SHORT: Duration = Duration::from_secs(60);

/// Benchmarks keyword search on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "search-bench")]
struct Args {
    /// Network sizes to measure, in daemons (bootstrap node included).
    #[arg(long, value_delimiter = ',', default_values_t = [20, 100])]
    nodes: Vec<usize>,
    /// Nodes that list the same wanted file.
    #[arg(long, default_value_t = 5)]
    publishers: usize,
    /// Other files each node lists (names from a fixed vocabulary).
    #[arg(long, default_value_t = 3)]
    files: usize,
    /// Searches per network size (each from another node).
    #[arg(long, default_value_t = 10)]
    searches: usize,
    /// Timeout of each search, seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// The p2pd binary (default: `p2pd` beside this program).
    #[arg(long)]
    p2pd: Option<PathBuf>,
    /// Where to put data directories (default: `target/bench-tmp`).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Keep the temporary directory (and its daemon logs) at the end.
    #[arg(long)]
    keep: bool,
    /// `RUST_LOG` filter for the daemons (default: their own default level).
    #[arg(long, value_name = "FILTER")]
    daemon_log: Option<String>,
}

/// One search as measured.
#[derive(Debug, Clone)]
struct Searched {
    query: &'static str,
    /// When the first result line reached the client (ms after the request was sent).
    client_first_ms: Option<f64>,
    /// When the answer ended, at the client.
    client_total_ms: f64,
    /// The daemon's `done` line.
    done: Value,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// Everything measured for one network size.
fn measure(args: &Args, bin: &Path, dir: &Path, n: usize) -> anyhow::Result<String> {
    if n < args.publishers + 3 {
        bail!(
            "--nodes {n} is too few for --publishers {} (and a searcher)",
            args.publishers
        );
    }
    let dir = dir.join(format!("net-{n}"));
    let files = dir.join("files");
    std::fs::create_dir_all(&files)?;
    let started = Instant::now();
    let boot = Daemon::start(
        bin,
        &dir.join("boot"),
        "boot",
        &["--dht-mode", "server", SAME_HOST[0], SAME_HOST[1]],
    )?;
    let boot_addr = boot.addr()?;
    let nodes = start_nodes(bin, &dir, &boot_addr, n - 1)?;
    let start_secs = started.elapsed().as_secs_f64();
    eprintln!("{n} daemons up in {start_secs:.0} s");

    // What they list.
    let wanted_bytes =
        b"the aurora borealis timelapse, the same bytes on every publisher\n".repeat(64);
    let mut wanted_cid = String::new();
    for (i, node) in nodes.iter().enumerate() {
        let own = files.join(format!("n{i}"));
        std::fs::create_dir_all(&own)?;
        for k in 0..args.files {
            let name = background_name(i, k);
            add(node, &own, &name, name.repeat(100).as_bytes())?;
        }
        if i < args.publishers {
            wanted_cid = add(node, &own, WANTED, &wanted_bytes)?;
        } else if i == args.publishers {
            add(
                node,
                &own,
                "aurora over the lake.jpg",
                b"a lake under the aurora\n",
            )?;
        }
    }
    let mut all: Vec<&Daemon> = nodes.iter().collect();
    all.push(&boot);
    let announce = wait_keywords(&nodes.iter().collect::<Vec<_>>())?;
    eprintln!(
        "{n} daemons: every keyword announced {:.0} s after the files were added",
        announce.as_secs_f64()
    );
    let publisher_ids: Vec<String> = nodes[..args.publishers]
        .iter()
        .map(Daemon::peer_id)
        .collect::<anyhow::Result<_>>()?;
    let load_before = load_average();

    // Baseline: browse one publisher by its address (one dial, one catalog request).
    let searchers: Vec<&Daemon> = nodes[args.publishers + 1..].iter().collect();
    let mut baseline = Vec::new();
    for (k, searcher) in searchers.iter().take(3).enumerate() {
        let target = nodes[k % args.publishers].addr()?;
        let (status, lines, _, total) = post_stream(
            &searcher.data_dir,
            "/api/browse",
            &json!({ "peer": target }),
        )?;
        if status != 200 || lines.first().and_then(|l| l["files"].as_array()).is_none() {
            bail!("browse failed: HTTP {status} {lines:?}");
        }
        baseline.push(total);
    }

    // The searches, one after another.
    let pids: Vec<u32> = all.iter().map(|d| d.pid()).collect();
    let meter = CpuMeter::start(&pids);
    let mut runs = Vec::new();
    for s in 0..args.searches {
        let searcher = searchers[(s * 7) % searchers.len()];
        let query = if s % 2 == 0 {
            "aurora borealis"
        } else {
            "aurora"
        };
        let (status, lines, first, total) = post_stream(
            &searcher.data_dir,
            "/api/search",
            &json!({ "query": query, "timeout_secs": args.timeout }),
        )?;
        let done = lines
            .iter()
            .find(|l| l["event"] == "done")
            .cloned()
            .with_context(|| format!("search ended without done (HTTP {status}): {lines:?}"))?;
        runs.push(Searched {
            query,
            client_first_ms: first,
            client_total_ms: total,
            done,
        });
    }
    let cpu = meter.stop();
    let load_after = load_average();

    // Recall: did each search find the wanted file with all its publishers?
    let mut found_all = 0;
    for r in &runs {
        let hit = r.done["results"]
            .as_array()
            .and_then(|rs| rs.iter().find(|x| x["cid"] == wanted_cid.as_str()));
        let publishers = hit
            .and_then(|h| h["publishers"].as_array())
            .map(|p| {
                p.iter()
                    .filter(|x| publisher_ids.iter().any(|id| x == &id.as_str()))
                    .count()
            })
            .unwrap_or(0);
        let expected = if r.query == "aurora" { 2 } else { 1 };
        let results = r.done["results"].as_array().map_or(0, Vec::len);
        if publishers == args.publishers && results == expected {
            found_all += 1;
        }
    }
    let ms = |f: &dyn Fn(&Searched) -> Option<f64>| runs.iter().filter_map(f).collect::<Vec<f64>>();
    let first_daemon = ms(&|r| r.done["first_result_ms"].as_f64());
    let first_client = ms(&|r| r.client_first_ms);
    let last = ms(&|r| r.done["last_result_ms"].as_f64());
    let elapsed = ms(&|r| r.done["elapsed_ms"].as_f64());
    let dht = ms(&|r| r.done["dht_requests"].as_f64());
    let catalog = ms(&|r| r.done["catalog_requests"].as_f64());
    let messages =
        ms(&|r| Some(r.done["dht_requests"].as_f64()? + r.done["catalog_requests"].as_f64()?));
    let timed_out = runs.iter().filter(|r| r.done["timed_out"] == true).count();
    let asked = ms(&|r| r.done["peers_asked"].as_f64());

    let mut out = String::new();
    out.push_str(&format!(
        "| {n} | first result (daemon) | {:.0} ms | {:.0} ms | baseline: browse one publisher by address | {:.0} ms |\n",
        median(first_daemon.clone()), max(&first_daemon), median(baseline.clone())
    ));
    out.push_str(&format!(
        "| {n} | first result line at the client | {:.0} ms | {:.0} ms | | |\n",
        median(first_client.clone()),
        max(&first_client)
    ));
    out.push_str(&format!(
        "| {n} | last new result (daemon) | {:.0} ms | {:.0} ms | | |\n",
        median(last.clone()),
        max(&last)
    ));
    out.push_str(&format!(
        "| {n} | search ended (daemon; {timed_out} of {} at the {} s timeout) | {:.0} ms | {:.0} ms | | |\n",
        runs.len(), args.timeout, median(elapsed.clone()), max(&elapsed)
    ));
    out.push_str(&format!(
        "| {n} | messages sent: DHT requests + catalog requests | {:.0} ({:.0} + {:.0}) | {:.0} | peers asked (median) | {:.0} |\n",
        median(messages.clone()), median(dht), median(catalog), max(&messages), median(asked)
    ));
    out.push_str(&format!(
        "| {n} | searches that found the file with all {} publishers and nothing else | {found_all} of {} | | | |\n",
        args.publishers, runs.len()
    ));
    out.push_str(&format!(
        "| {n} | CPU of all {n} daemons during the searches | {} | | load average before → after | {load_before} → {load_after} |\n",
        cpu.show()
    ));
    for r in &runs {
        eprintln!(
            "  {:<16} first {:>6} ms (client {:>6} ms), last {:>6} ms, ended {:>6} ms, {} DHT + {} catalog requests, {} results, timed out {}",
            r.query,
            r.done["first_result_ms"],
            r.client_first_ms.map_or("-".into(), |m| format!("{m:.0}")),
            r.done["last_result_ms"],
            r.done["elapsed_ms"],
            r.done["dht_requests"],
            r.done["catalog_requests"],
            r.done["results"].as_array().map_or(0, Vec::len),
            r.done["timed_out"],
        );
    }
    eprintln!(
        "  client totals: {:?}",
        runs.iter()
            .map(|r| r.client_total_ms.round())
            .collect::<Vec<_>>()
    );
    drop(all);
    drop(nodes);
    drop(boot);
    Ok(out)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let place = runner::RunPlace::new(args.p2pd.clone(), args.tmp_dir.clone(), "search");
    let (keep, daemon_log) = (args.keep, args.daemon_log.clone());
    let (bin, dir) = (place.bin.clone(), place.dir.clone());
    runner::run_benchmark(&place, keep, daemon_log, move |_| run(&args, &bin, &dir))
}

fn run(args: &Args, bin: &Path, dir: &Path) -> anyhow::Result<()> {
    if !bin.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p p2pd`",
            bin.display()
        );
    }
    println!("| daemons | figure | median | worst | baseline | baseline value |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for &n in &args.nodes {
        let rows = measure(args, bin, dir, n)?;
        print!("{rows}");
    }
    Ok(())
}
