//! Issue 11, crash consistency: a daemon SIGKILLed at random moments, 50 times during
//! adds (copy and `--no-copy` in turn) and 50 times during fetches. After each kill the
//! restarted daemon's `p2pd verify` finds nothing wrong, an interrupted add succeeds
//! when run again, and an interrupted fetch resumes to the right bytes. Small files keep
//! it to a few minutes; every daemon listens on ports the system picks.
//!
//! The kill moments are drawn uniformly over an uninterrupted run's duration (measured
//! first, in the same run), from a seed printed at the start; `P2PD_CRASH_SEED=<n>`
//! replays one. The figures (how many kills landed in which phase) are printed.
#![allow(clippy::unwrap_used)]

mod harness;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::*;

const MIB: u64 = 1 << 20;
const KILLS: usize = 50;

/// A small deterministic generator (xorshift64*), seeded per run.
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("P2PD_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        println!("crash seed: P2PD_CRASH_SEED={seed}");
        Rng(seed | 1)
    }

    /// A duration drawn uniformly from `0..=max`.
    fn upto(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        max.mul_f64((x >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// The restarted daemon's store verifies clean.
fn assert_verifies(node: &Daemon, what: &str) {
    let r = node.cli(&["verify"]);
    assert_eq!(r.code, 0, "verify after a kill {what}: {r:?}");
}

/// How long `work` takes, uninterrupted.
fn timed(work: impl FnOnce()) -> Duration {
    let started = Instant::now();
    work();
    started.elapsed()
}

fn print_figures(what: &str, phases: &BTreeMap<String, usize>, took: Duration) {
    let list: Vec<String> = phases.iter().map(|(p, n)| format!("{n} {p}")).collect();
    println!(
        "crash figures: {KILLS} kills during {what}: {}; verify clean after each; {:.0} s",
        list.join(", "),
        took.as_secs_f64()
    );
}

#[test]
fn sigkill_during_adds_leaves_a_store_that_verifies() {
    let mut rng = Rng::from_env();
    let dir = tempfile::tempdir().unwrap();
    let mut node = Daemon::start(&dir.path().join("node"), &[]);
    let sample = dir.path().join("sample.bin");
    random_file(&sample, 8 * MIB, 0);
    let full = timed(|| {
        add(&node, &sample, &[]);
    });
    let started = Instant::now();
    let mut phases = BTreeMap::new();
    for i in 0..KILLS {
        let no_copy = i % 2 == 1;
        let mode = if no_copy { "--no-copy" } else { "copy" };
        let src = dir.path().join(format!("add-{i}.bin"));
        random_file(&src, 8 * MIB, i as u64 + 1);
        let mut args = vec!["add", src.to_str().unwrap()];
        if no_copy {
            args.push("--no-copy");
        }
        let child = spawn_cli(&node.data_dir, &args);
        std::thread::sleep(rng.upto(full.mul_f64(1.2)));
        node.kill();
        let added = finish(child).code == 0;
        let phase = if added { "after the add" } else { "mid-add" };
        *phases.entry(format!("{phase} ({mode})")).or_default() += 1;
        node.restart();
        assert_verifies(&node, &format!("{phase} #{i} ({mode})"));
        // Adding it again works, and gives a complete file.
        let cid = add(&node, &src, if no_copy { &["--no-copy"] } else { &[] });
        let listed = node.cli(&["ls", "--json"]).success().json();
        let entry = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["cid"] == cid.as_str())
            .cloned()
            .unwrap();
        assert_eq!(entry["state"], "complete", "#{i}: {entry}");
        if !no_copy {
            let _ = std::fs::remove_file(&src);
        }
    }
    assert_verifies(&node, "at the end");
    print_figures("adds", &phases, started.elapsed());
}

#[test]
fn sigkill_during_fetches_leaves_a_store_that_verifies_and_fetches_resume() {
    let mut rng = Rng::from_env();
    let mut swarm = Swarm::new();
    // Capped so that a fetch lasts long enough to be cut at every stage.
    let seeder = swarm.node(&["--max-upload-rate", "8MiB"]);
    let src = swarm.path("served.bin");
    random_file(&src, 12 * MIB + 333, 1);
    let cid = add(&seeder, &src, &[]);
    let expected = file_hash(&src);
    let mut fetcher = swarm.node(&[]);
    let first = swarm.path("first.out");
    let full = timed(|| {
        fetch(&fetcher, &cid, &first, 60).success();
    });
    fetcher.cli(&["rm", &cid]).success();
    let started = Instant::now();
    let mut phases = BTreeMap::new();
    for i in 0..KILLS {
        let out = swarm.path(&format!("fetch-{i}.out"));
        let child = spawn_cli(
            &fetcher.data_dir,
            &["fetch", &cid, "-o", out.to_str().unwrap(), "--json"],
        );
        std::thread::sleep(rng.upto(full.mul_f64(1.2)));
        fetcher.kill();
        let _ = finish(child);
        fetcher.restart();
        let listed = fetcher.cli(&["ls", "--json"]).success().json();
        let held = listed.as_array().unwrap().first().cloned();
        let phase = match held {
            None => "before the manifest".to_string(),
            Some(f) if f["state"] == "complete" => "after completion".to_string(),
            Some(f) => {
                let have = f["have_chunks"].as_u64().unwrap();
                let total = f["chunks"].as_u64().unwrap().max(1);
                format!("mid-transfer ({}% of chunks)", bucket(have * 100 / total))
            }
        };
        *phases.entry(phase.clone()).or_default() += 1;
        assert_verifies(&fetcher, &format!("{phase} #{i}"));
        // The same fetch again resumes (or finds it done) and ends with the right bytes.
        if !out.exists() {
            fetch(&fetcher, &cid, &out, 60).success();
        }
        assert_eq!(file_hash(&out), expected, "#{i} ({phase})");
        assert_verifies(&fetcher, &format!("after the resumed fetch #{i}"));
        fetcher.cli(&["rm", &cid]).success();
        std::fs::remove_file(&out).unwrap();
    }
    print_figures("fetches", &phases, started.elapsed());
    // Nothing is left behind in the store's directories.
    let leftovers = Command::new("find")
        .arg(fetcher.data_dir.join("store/partial"))
        .args(["-type", "f"])
        .output()
        .unwrap();
    assert!(leftovers.stdout.is_empty(), "{leftovers:?}");
}

/// A percentage rounded down to a quarter, for the figures.
fn bucket(percent: u64) -> u64 {
    percent / 25 * 25
}
