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

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use harness::{CpuMeter, Daemon};
use p2pd_examples::procfs::load_average;
use serde_json::{json, Value};

/// Longest the keywords of every node may take to reach the DHT.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(600);
const SHORT: Duration = Duration::from_secs(60);
/// Daemons started at once.
const START_BATCH: usize = 8;

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

const ADJECTIVES: [&str; 16] = [
    "quiet", "golden", "northern", "broken", "hidden", "electric", "silver", "wild", "ancient",
    "frozen", "crimson", "lonely", "bright", "distant", "secret", "gentle",
];
const NOUNS: [&str; 16] = [
    "river", "mountain", "garden", "city", "harbor", "forest", "desert", "island", "station",
    "library", "market", "bridge", "valley", "castle", "meadow", "canyon",
];
const KINDS: [&str; 6] = ["mp4", "jpg", "flac", "pdf", "zip", "epub"];
const WANTED: &str = "Aurora Borealis Timelapse.mp4";

/// A deterministic file name for file `k` of node `i`.
fn background_name(i: usize, k: usize) -> String {
    let a = ADJECTIVES[(i * 7 + k * 3) % ADJECTIVES.len()];
    let n = NOUNS[(i * 5 + k * 11) % NOUNS.len()];
    let kind = KINDS[(i + k) % KINDS.len()];
    format!("{a} {n} {i}-{k}.{kind}")
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

/// `POST path` with a JSON body to a daemon's API; returns the status, the answer's
/// lines (de-chunked), the time the first `progress` line arrived and the total time.
fn post_stream(
    data_dir: &Path,
    path: &str,
    body: &Value,
) -> anyhow::Result<(u16, Vec<Value>, Option<f64>, f64)> {
    let api: Value = serde_json::from_slice(&std::fs::read(data_dir.join("api.json"))?)?;
    let addr = api["addr"].as_str().context("addr in api.json")?;
    let token = api["token"].as_str().context("token in api.json")?;
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let started = Instant::now();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    let mut first = None;
    let mut buf = [0u8; 16 << 10];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if first.is_none() && contains(&raw, b"\"event\":\"progress\"") {
            first = Some(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let total = started.elapsed().as_secs_f64() * 1000.0;
    let head_end = find(&raw, b"\r\n\r\n").context("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let mut body = raw[head_end + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body)?;
    }
    let lines = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(serde_json::from_slice)
        .collect::<Result<Vec<Value>, _>>()?;
    Ok((status, lines, first, total))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

fn dechunk(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(body, b"\r\n").context("truncated chunk header")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.trim(), 16).context("bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// Starts `count` nodes (all DHT servers bootstrapping from `boot`), a batch at a time.
fn start_nodes(bin: &Path, dir: &Path, boot: &str, count: usize) -> anyhow::Result<Vec<Daemon>> {
    let mut nodes = Vec::with_capacity(count);
    for batch in (0..count).collect::<Vec<_>>().chunks(START_BATCH) {
        let started: Vec<anyhow::Result<Daemon>> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|i| {
                    let data = dir.join(format!("n{i}"));
                    s.spawn(move || {
                        Daemon::start(
                            bin,
                            &data,
                            &format!("n{i}"),
                            &["--dht-mode", "server", "--bootstrap", boot],
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("start thread panicked")))
                })
                .collect()
        });
        for node in started {
            nodes.push(node?);
        }
    }
    Ok(nodes)
}

fn add(node: &Daemon, dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, bytes)?;
    let out = node
        .cli(&["add", path.to_str().context("path")?], SHORT)?
        .ok("add")?;
    Ok(out.stdout.trim().to_string())
}

/// Waits until every node's keywords reached a DHT server; returns how long it took.
fn wait_keywords(nodes: &[&Daemon]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut waiting: Vec<&Daemon> = nodes.to_vec();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for node in waiting {
            let c = node
                .cli(&["catalog", "--json"], SHORT)?
                .ok("catalog")?
                .json()?;
            let keywords = c["keywords"].as_u64().unwrap_or(0);
            if keywords == 0 || c["keywords_announced"].as_u64() != Some(keywords) {
                still.push(node);
            }
        }
        waiting = still;
        if start.elapsed() > ANNOUNCE_TIMEOUT {
            bail!(
                "{} nodes' keywords were not announced after {ANNOUNCE_TIMEOUT:?}",
                waiting.len()
            );
        }
        if !waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    Ok(start.elapsed())
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
    let boot = Daemon::start(bin, &dir.join("boot"), "boot", &["--dht-mode", "server"])?;
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
    let dir = tmp_root.join(format!("search-{}", std::process::id()));
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
        let dir2 = dir.clone();
        let work = tokio::task::spawn_blocking(move || run(&args, &bin, &dir2));
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
