//! What every figure does with nodes: start the bootstrap node, the seeder and further
//! nodes, write the main test file, add a file and fetch one (checked against its
//! BLAKE3), measuring time and CPU as it goes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use p2pd_examples::procfs::CpuUse;
use serde_json::Value;

use crate::harness::{file_hash, random_file, CpuMeter, Daemon, MemSampler};
use crate::report::size_label;
use crate::{Bench, LONG_TIMEOUT, MIB};

/// Runs `f` and measures its wall time and the CPU time of this process meanwhile.
pub(crate) fn measure_self<T>(
    f: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(T, Duration, CpuUse)> {
    let meter = CpuMeter::start(&[std::process::id()]);
    let t = Instant::now();
    let out = f()?;
    let elapsed = t.elapsed();
    Ok((out, elapsed, meter.stop()))
}

/// One fetch's results.
pub(crate) struct Fetched {
    /// `fetch --json` seconds.
    pub(crate) secs: f64,
    /// The CLI's wall time.
    pub(crate) wall: Duration,
    /// The `--json` summary.
    pub(crate) json: Value,
    /// CPU of the fetcher and the providers during the fetch.
    pub(crate) cpu: CpuUse,
    /// The fetcher's `VmHWM` after the fetch.
    pub(crate) hwm: u64,
    /// Most threads of the fetcher seen (sampled every 10 ms).
    pub(crate) max_threads: u64,
}

impl Bench {
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub(crate) fn main_size(&self) -> u64 {
        self.args.size_mib * MIB
    }

    /// Starts a node that knows only the bootstrap address.
    pub(crate) fn node(&mut self, name: &str, extra: &[&str]) -> anyhow::Result<Daemon> {
        self.next_node += 1;
        let dir = self.path(&format!("node{}-{name}", self.next_node));
        let mut args = vec!["--bootstrap", self.bootstrap_addr.as_str()];
        args.extend_from_slice(extra);
        Daemon::start(&self.bin, &dir, name, &args)
    }

    /// Starts a node that will provide files: unless `--cold-start`, waits until its
    /// address is confirmed, so that its provider records carry its addresses and a
    /// fetch measures the transfer rather than the node's start-up.
    pub(crate) fn provider_node(&mut self, name: &str, extra: &[&str]) -> anyhow::Result<Daemon> {
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

    pub(crate) fn start_network(&mut self) -> anyhow::Result<()> {
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

    pub(crate) fn seeder(&self) -> anyhow::Result<&Daemon> {
        self.seeder.as_ref().context("no seeder")
    }

    /// The main test file (created once).
    pub(crate) fn main_file(&self) -> anyhow::Result<PathBuf> {
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
    pub(crate) fn add(
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
    pub(crate) fn ensure_seeded(&mut self) -> anyhow::Result<(String, String)> {
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
    pub(crate) fn fetch(
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
}
