//! The daemons of one network size: started a batch at a time, the files each lists
//! (names drawn from a fixed vocabulary, and the one file the searches want), and the
//! wait until every node's keywords are announced.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::harness::{CliRun, Daemon};
use crate::SHORT;

/// Longest the keywords of every node may take to reach the DHT.
/// Every daemon dials from 127.0.0.1: without this, a node takes at most 32 of the others
/// (the default per-IP bound) and refuses the rest.
pub(crate) const SAME_HOST: [&str; 2] = ["--max-inbound-per-ip", "1024"];
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(300);
/// Daemons started at once.
const START_BATCH: usize = 8;

const ADJECTIVES: [&str; 16] = [
    "quiet", "golden", "northern", "broken", "hidden", "electric", "silver", "wild", "ancient",
    "frozen", "crimson", "lonely", "bright", "distant", "secret", "gentle",
];
const NOUNS: [&str; 16] = [
    "river", "mountain", "garden", "city", "harbor", "forest", "desert", "island", "station",
    "library", "market", "bridge", "valley", "castle", "meadow", "canyon",
];
const KINDS: [&str; 6] = ["mp4", "jpg", "flac", "pdf", "zip", "epub"];
pub(crate) const WANTED: &str = "Aurora Borealis Timelapse.mp4";

/// A deterministic file name for file `k` of node `i`.
pub(crate) fn background_name(i: usize, k: usize) -> String {
    let a = ADJECTIVES[(i * 7 + k * 3) % ADJECTIVES.len()];
    let n = NOUNS[(i * 5 + k * 11) % NOUNS.len()];
    let kind = KINDS[(i + k) % KINDS.len()];
    format!("{a} {n} {i}-{k}.{kind}")
}

/// Starts `count` nodes (all DHT servers bootstrapping from `boot`), a batch at a time.
pub(crate) fn start_nodes(
    bin: &Path,
    dir: &Path,
    boot: &str,
    count: usize,
) -> anyhow::Result<Vec<Daemon>> {
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
                            &[
                                "--dht-mode",
                                "server",
                                "--bootstrap",
                                boot,
                                SAME_HOST[0],
                                SAME_HOST[1],
                            ],
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

pub(crate) fn add(node: &Daemon, dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, bytes)?;
    let out = node
        .cli(&["add", path.to_str().context("path")?], SHORT)?
        .ok("add")?;
    Ok(out.stdout.trim().to_string())
}

/// Prints what a node whose keywords were not all announced says of them and of its DHT.
fn report_unannounced(node: &Daemon) {
    let catalog = node.cli(&["catalog", "--json"], SHORT);
    let status = node.cli(&["status", "--json"], SHORT);
    let json = |r: anyhow::Result<CliRun>| -> String {
        r.and_then(|o| o.json())
            .map_or_else(|e| format!("({e:#})"), |v| v.to_string())
    };
    let status = json(status);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap_or_default();
    eprintln!(
        "  not announced: {} catalog {} routing table {} peers, {} connected, {} files announced to no server",
        node.name,
        json(catalog),
        status["node"]["routing_table_peers"],
        status["node"]["connected_peers"],
        status["node"]["unannounced_files"],
    );
}

/// Waits until every node's keywords reached a DHT server; returns how long it took.
pub(crate) fn wait_keywords(nodes: &[&Daemon]) -> anyhow::Result<Duration> {
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
            for node in waiting.iter().take(3) {
                report_unannounced(node);
            }
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
