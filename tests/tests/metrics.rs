//! Issue 16, metrics: `GET /metrics` (on the API behind the token, and on `--metrics
//! ADDR` without it) serves libp2p's families and the daemon's, and the values move
//! during a fetch; the Grafana dashboard in deploy/ asks only for metrics that exist.
#![allow(clippy::unwrap_used)]

mod harness;

use std::collections::HashSet;

use harness::http::{endpoint, request};
use harness::*;
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// A scrape: each sample's name and labels, with its value.
struct Scrape {
    text: String,
}

impl Scrape {
    /// The value of the sample written exactly `series` (name and labels), or 0.
    fn value(&self, series: &str) -> f64 {
        self.text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                (name == series).then(|| value.parse().unwrap())
            })
            .unwrap_or(0.0)
    }

    /// The sum of the samples of `name` whose labels contain `label`.
    fn sum(&self, name: &str, label: &str) -> f64 {
        self.text
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    }

    /// Every metric name a query may use: sample names, and the families declared
    /// (a family with no sample yet is still a metric), with their sample suffixes.
    fn names(&self) -> HashSet<String> {
        let mut names = HashSet::new();
        for line in self.text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (family, kind) = rest.split_once(' ').unwrap();
                names.insert(family.to_string());
                let suffixes: &[&str] = match kind {
                    "counter" => &["_total"],
                    "histogram" => &["_bucket", "_sum", "_count"],
                    _ => &[],
                };
                for suffix in suffixes {
                    names.insert(format!("{family}{suffix}"));
                }
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                names.insert(name.to_string());
            }
        }
        names
    }
}

fn scrape(node: &Daemon) -> Scrape {
    let (addr, token) = endpoint(&node.data_dir);
    let r = request(&addr, "GET", "/metrics").bearer(&token).send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        r.headers
    );
    Scrape { text: r.text() }
}

/// A free port on 127.0.0.1 for `--metrics`.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn metrics_move_during_a_fetch_and_need_the_token_on_the_api() {
    let mut swarm = Swarm::new();
    let src = swarm.path("metrics.bin");
    let size = 6 * MIB;
    random_file(&src, size, 81);
    let seeder = swarm.node(&[]);
    let cid = add(&seeder, &src, &[]);
    seeder.wait_announced(1);
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let fetcher = swarm.node(&["--metrics", &metrics_addr]);

    let (addr, _) = endpoint(&fetcher.data_dir);
    request(&addr, "GET", "/metrics").send().assert_error(401);
    let before = scrape(&fetcher);
    assert_eq!(before.value("p2pd_received_bytes_total"), 0.0);
    assert_eq!(before.value("p2pd_chunks_verified_total"), 0.0);
    assert_eq!(before.value("p2pd_downloads{state=\"done\"}"), 0.0);
    for family in [
        "p2pd_store_bytes",
        "p2pd_banned_peers",
        "libp2p_swarm_dial_attempt",
    ] {
        assert!(
            before.names().contains(family),
            "{family} in {}",
            before.text
        );
    }

    let out = swarm.path("metrics.out");
    fetch(&fetcher, &cid, &out, 60).success();
    let after = scrape(&fetcher);
    assert!(after.value("p2pd_received_bytes_total") >= size as f64);
    assert_eq!(
        after.value("p2pd_chunks_verified_total"),
        6.0,
        "1 MiB chunks"
    );
    assert_eq!(after.value("p2pd_chunks_corrupt_total"), 0.0);
    assert_eq!(after.value("p2pd_downloads{state=\"done\"}"), 1.0);
    assert_eq!(after.value("p2pd_store_files{state=\"complete\"}"), 1.0);
    assert_eq!(after.value("p2pd_store_bytes"), size as f64);
    assert!(after.value("p2pd_connected_peers{path=\"direct\"}") >= 1.0);
    assert!(after.value("p2pd_routing_table_peers") >= 1.0);
    // libp2p's own: the connections it made (by transport), its DHT queries, and the
    // bytes that crossed the transport, at least the file's.
    assert!(after.sum("libp2p_swarm_connections_established_total", "/tcp") >= 1.0);
    assert!(after.sum("libp2p_kad_query_result_num_requests_count", "") >= 1.0);
    let inbound = after.sum("libp2p_bandwidth_bytes_total", "direction=\"Inbound\"");
    assert!(inbound >= size as f64, "{}", after.text);

    let seen = scrape(&seeder);
    assert!(seen.value("p2pd_sent_bytes_total") >= size as f64);
    assert!(seen.value("p2pd_provider_announcements_total") >= 1.0);
    assert!(seen.value("p2pd_provided_files{announced=\"yes\"}") >= 1.0);
    assert!(seen.value("p2pd_announcement_peers") >= 1.0);

    // The Grafana dashboard in deploy/ asks only for metrics these daemons serve
    // (libp2p leaves a family out until it has a sample, hence after the fetch).
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/p2pd.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let wanted = dashboard_metrics(&dashboard);
    assert!(wanted.len() >= 15, "{wanted:?}");
    let served: HashSet<String> = after.names().union(&seen.names()).cloned().collect();
    let mut missing: Vec<&String> = wanted.iter().filter(|m| !served.contains(*m)).collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "the dashboard asks for {missing:?}, not served"
    );

    // The same metrics, without the token, on the --metrics address.
    let open = request(&metrics_addr, "GET", "/metrics").send();
    assert_eq!(open.status, 200);
    assert!(Scrape { text: open.text() }.value("p2pd_received_bytes_total") >= size as f64);
}

/// The names of the metrics a Grafana dashboard's queries use.
fn dashboard_metrics(dashboard: &Value) -> HashSet<String> {
    let mut exprs = Vec::new();
    fn walk(v: &Value, exprs: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", Value::String(e)) => exprs.push(e.clone()),
                        _ => walk(v, exprs),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, exprs)),
            _ => {}
        }
    }
    walk(dashboard, &mut exprs);
    assert!(exprs.len() >= 8, "the dashboard has too few queries");
    // Metric names are the identifiers with our prefixes (label names and functions
    // have none).
    let mut names = HashSet::new();
    for expr in exprs {
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
            names.insert(word.to_string());
        }
    }
    names.retain(|n| n.starts_with("p2pd_") || n.starts_with("libp2p_"));
    names
}
