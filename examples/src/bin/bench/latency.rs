//! Figure 6: how fast the control API answers while the daemon works hard. A client
//! asks the routes the web UI polls over and over, in turn (a new connection each time,
//! as the CLI does), on a daemon that is adding one file and fetching another at once,
//! [`LOAD_ROUNDS`] times; the same client against the same daemon while it is idle is
//! the baseline. Two more routes tell where the time goes: `GET /api/id` costs one
//! round trip to the swarm task and nothing else, `GET /api/settings` touches no lower
//! layer at all (its latency is the HTTP server's and the runtime's).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;

use crate::harness::{self, file_hash, random_file, CpuMeter};
use crate::report::size_label;
use crate::{Bench, LONG_TIMEOUT};
use p2pd_examples::procfs::load_average;

/// Pause between two requests of the client.
const PAUSE: Duration = Duration::from_millis(10);
/// Longest one request may take before the benchmark gives up on the figure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How many times the daemon adds and fetches while it is probed: each round gives
/// every route a few dozen requests, too few for a p99 alone.
const LOAD_ROUNDS: usize = 3;

/// The routes probed: those the web UI polls on a timer (`status`, `peers`,
/// `reputation`, `relays`) or asks again on every live event (`files`, `downloads`,
/// `stats`, `shares`, `catalog`), `folders`, which reads the store as `files` does, and
/// the two that tell where the time goes (see the module's comment).
const ROUTES: [&str; 12] = [
    "/api/status",
    "/api/files",
    "/api/downloads",
    "/api/peers",
    "/api/reputation",
    "/api/relays",
    "/api/stats",
    "/api/shares",
    "/api/catalog",
    "/api/folders",
    "/api/id",
    "/api/settings",
];

/// Routes whose p99 under load has a goal (≤ 50 ms): every one the web UI polls.
fn has_goal(path: &str) -> bool {
    !matches!(path, "/api/id" | "/api/settings" | "/api/folders")
}

/// Where a daemon's API listens and its token, from its `api.json`.
pub fn endpoint(data_dir: &Path) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(data_dir.join("api.json"))?;
    let v: Value = serde_json::from_str(&text)?;
    let addr = v["addr"].as_str().context("no addr in api.json")?;
    let token = v["token"].as_str().context("no token in api.json")?;
    Ok((addr.to_string(), token.to_string()))
}

/// One `GET path` with the bearer token: its latency, from connecting to the last
/// byte of the answer. Fails unless the answer is 200.
pub fn timed_get(addr: &str, token: &str, path: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_nodelay(true)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let took = start.elapsed();
    if !answer.starts_with(b"HTTP/1.1 200") {
        let head = String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned();
        bail!("GET {path} answered {head:?}");
    }
    Ok(took)
}

/// Latencies of one series of requests.
#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Adds another series of the same route.
    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// The `q` quantile (0..=1), nearest rank.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    /// Requests measured.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `p99 12.3 ms (p50 1.2 ms, max 40.1 ms, 812 requests)`.
    pub fn show(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "p99 {:.1} ms (p50 {:.1} ms, max {:.1} ms, {} requests)",
            ms(self.quantile(0.99)),
            ms(self.quantile(0.5)),
            ms(self.quantile(1.0)),
            self.len()
        )
    }
}

/// Asks each of `paths` in turn, one request every [`PAUSE`], until `done` is set (and
/// each at least `min` times); returns the latencies of each path.
pub fn probe(
    addr: &str,
    token: &str,
    paths: &[&str],
    min: usize,
    done: &AtomicBool,
) -> anyhow::Result<Vec<Latencies>> {
    let mut out = vec![Latencies::default(); paths.len()];
    let mut next = 0;
    while out.iter().any(|l| l.len() < min) || !done.load(Ordering::Relaxed) {
        out[next].0.push(timed_get(addr, token, paths[next])?);
        next = (next + 1) % paths.len();
        std::thread::sleep(PAUSE);
    }
    Ok(out)
}

impl Bench {
    pub(crate) fn figure_status(&mut self) -> anyhow::Result<()> {
        let size = self.main_size();
        let label = size_label(size);
        println!(
            "\n[6] the polled API routes while a daemon adds {label} and fetches {label} ({LOAD_ROUNDS} rounds)"
        );
        let (cid, hash) = self.ensure_seeded()?;
        let to_add = self.path("status-add.bin");
        if !to_add.exists() {
            random_file(&to_add, size, 6)?;
        }
        let node = self.node("status", &[])?;
        let (addr, token) = endpoint(&node.data_dir)?;

        let paths = ROUTES;
        // The baseline: the same client, the same daemon, idle.
        let idle = probe(&addr, &token, &paths, 100, &AtomicBool::new(true))?;
        for (path, l) in paths.iter().zip(&idle) {
            self.note(format!("idle daemon, GET {path}: {}", l.show()));
        }

        let out = self.path("fetched-status.bin");
        let add_path = to_add.to_str().context("non-UTF-8 path")?;
        let out_path = out.to_str().context("non-UTF-8 path")?;
        let mut busy = vec![Latencies::default(); paths.len()];
        for round in 1..=LOAD_ROUNDS {
            let _ = std::fs::remove_file(&out);
            // Probed from when both start until the first of them ends.
            let one_ended = AtomicBool::new(false);
            let meter = CpuMeter::start(&[node.pid(), self.seeder()?.pid()]);
            let (probed, add, fetch) = std::thread::scope(|s| {
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
                let probed = probe(&addr, &token, &paths, 1, &one_ended);
                let joined =
                    |h: std::thread::ScopedJoinHandle<'_, anyhow::Result<harness::CliRun>>| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread panicked")))
                    };
                (probed, joined(add), joined(fetch))
            });
            let cpu = meter.stop();
            let add = add?.ok("p2pd add")?;
            let fetch = fetch?.ok("p2pd fetch")?;
            if file_hash(&out)? != hash {
                bail!("the file fetched during figure 6 differs from its source");
            }
            std::fs::remove_file(&out)?;
            self.note(format!(
                "round {round} under load (add {:.1} s, fetch {:.1} s; {}; load average {})",
                add.wall.as_secs_f64(),
                fetch.wall.as_secs_f64(),
                cpu.show(),
                load_average()
            ));
            for (all, one) in busy.iter_mut().zip(probed?) {
                all.extend(one);
            }
            self.cpu_row(
                &format!("6 · round {round} of the polled routes under load (daemon + seeder)"),
                2 * size,
                Some(cpu),
            );
            if round < LOAD_ROUNDS {
                // The next round adds and fetches the same bytes anew.
                let added = add.json()?["cid"]
                    .as_str()
                    .context("no cid in `add --json`")?
                    .to_string();
                for gone in [added.as_str(), cid.as_str()] {
                    node.cli(&["rm", gone], LONG_TIMEOUT)?.ok("p2pd rm")?;
                }
            }
        }
        let p99 = |l: &Latencies| l.quantile(0.99).as_secs_f64();
        for ((path, busy), idle) in paths.iter().zip(&busy).zip(&idle) {
            self.note(format!("under load, GET {path}: {}", busy.show()));
            self.row(
                &format!("6 · `GET {path}` during a {label} add and a {label} fetch"),
                &busy.show(),
                "the same daemon, idle",
                &idle.show(),
                format!("{:.2}", p99(idle) / p99(busy)),
                if has_goal(path) {
                    "p99 ≤ 50 ms"
                } else {
                    "—"
                },
            );
        }
        drop(node);
        std::fs::remove_file(&to_add)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let l = Latencies((1..=100).map(Duration::from_millis).collect());
        assert_eq!(l.quantile(0.99), Duration::from_millis(99));
        assert_eq!(l.quantile(0.5), Duration::from_millis(50));
        assert_eq!(l.quantile(1.0), Duration::from_millis(100));
        assert_eq!(Latencies::default().quantile(0.99), Duration::ZERO);
    }
}
