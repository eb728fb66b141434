//! The flood benchmark (issue 11, point 5): is a daemon bounded under load from many
//! connections? A seeder holds a file; 1,000 connections are opened to it over loopback,
//! of three kinds, each reopened at once when the seeder drops it (the raw ones come from
//! 250 source addresses in ten /24 subnets, since any 127.0.0.0/8 source can be bound on
//! Linux, the libp2p peers included; the honest daemons dial from 127.0.0.1):
//!
//! - idle: a TCP connection that never sends a byte;
//! - garbage: a TCP connection that sends random bytes as fast as it can;
//! - valid: a libp2p peer (TCP, Noise, Yamux, like the daemon) that sends well-formed
//!   requests for the seeder's file (`Manifest`, `Bitfield`, `Have`, `Chunk`) one after
//!   the other, as fast as they are answered.
//!
//! Measured in the same run: the seeder's resident memory before, during (peak) and after
//! the flood; an honest fetch of the file by a fresh daemon before the flood (the
//! baseline) and during it; whether more fresh daemons can connect to the seeder during
//! the flood; the machine's load and the CPU each side used.
//!
//! `cargo build --release -p p2pd -p p2pd-examples && nice target/release/flood`

#[allow(dead_code)]
#[path = "../bench/harness.rs"]
mod harness;

mod bound_tcp;
mod connections;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use connections::Flood;
use dht_proto::Cid;
use harness::{Daemon, MemSampler};
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use p2pd_examples::procfs::load_average;

const MIB: u64 = 1 << 20;
const LONG: Duration = Duration::from_secs(600);

#[derive(Parser)]
#[command(about = "Flood one p2pd daemon with 1,000 connections and measure it")]
struct Args {
    /// The daemon binary.
    #[arg(long, default_value = "target/release/p2pd")]
    p2pd: PathBuf,
    /// Size of the honest fetch, MiB.
    #[arg(long, default_value_t = 256)]
    size_mib: u64,
    /// Idle connections.
    #[arg(long, default_value_t = 400)]
    idle: usize,
    /// Connections sending garbage.
    #[arg(long, default_value_t = 300)]
    garbage: usize,
    /// libp2p peers sending valid requests.
    #[arg(long, default_value_t = 300)]
    valid: usize,
    /// Keep the daemons' data directories (and logs) in this directory instead of a
    /// temporary one.
    #[arg(long)]
    keep_in: Option<PathBuf>,
    /// `RUST_LOG` for the daemons (default: their own default level).
    #[arg(long)]
    daemon_log: Option<String>,
    /// Seconds to wait after the flood before measuring memory again.
    #[arg(long, default_value_t = 30)]
    settle_secs: u64,
}

fn rss_mib(pid: u32) -> f64 {
    harness::proc_status_bytes(pid, "VmRSS").unwrap_or(0) as f64 / MIB as f64
}

/// A fresh daemon bootstrapped from the seeder fetches `cid`; returns MiB/s.
fn honest_fetch(
    args: &Args,
    dir: &std::path::Path,
    name: &str,
    seeder_addr: &str,
    cid: &str,
) -> anyhow::Result<f64> {
    let node = Daemon::start(
        &args.p2pd,
        &dir.join(name),
        name,
        &["--bootstrap", seeder_addr],
    )?;
    let out = dir.join(format!("{name}.out"));
    let start = Instant::now();
    node.cli(
        &[
            "fetch",
            cid,
            "-o",
            out.to_str().unwrap_or_default(),
            "--timeout",
            "120",
        ],
        LONG,
    )?
    .ok(&format!("{name}'s fetch"))?;
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&out);
    Ok(args.size_mib as f64 / secs)
}

/// Whether a fresh daemon bootstrapped from the seeder connects to it within 30 s.
fn new_peer_connects(
    args: &Args,
    dir: &std::path::Path,
    name: &str,
    seeder: &Daemon,
) -> anyhow::Result<f64> {
    let seeder_id = seeder.peer_id()?;
    let start = Instant::now();
    let node = Daemon::start(
        &args.p2pd,
        &dir.join(name),
        name,
        &["--bootstrap", &seeder.addr()?],
    )?;
    while start.elapsed() < Duration::from_secs(30) {
        let peers = node
            .cli(&["peers", "--json"], Duration::from_secs(30))?
            .json()?;
        if peers
            .as_array()
            .is_some_and(|list| list.iter().any(|p| p["peer_id"] == seeder_id.as_str()))
        {
            return Ok(start.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    anyhow::bail!("{name} did not connect to the seeder within 30 s")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(filter) = &args.daemon_log {
        let _ = harness::DAEMON_LOG.set(filter.clone());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = run(&args, &runtime);
    harness::kill_all_registered();
    result
}

fn run(args: &Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = match &args.keep_in {
        Some(keep) => {
            std::fs::create_dir_all(keep)?;
            tempfile::tempdir_in(keep)?.keep()
        }
        None => temp.path().to_path_buf(),
    };
    let dir = dir.as_path();
    println!("load average at start: {}", load_average());
    let seeder = Daemon::start(
        &args.p2pd,
        &dir.join("seeder"),
        "seeder",
        &["--dht-mode", "server"],
    )?;
    let src = dir.join("file.bin");
    harness::random_file(&src, args.size_mib * MIB, 1)?;
    let cid = seeder
        .cli(&["add", src.to_str().unwrap_or_default()], LONG)?
        .ok("add")?
        .stdout
        .trim()
        .to_string();
    let seeder_addr = seeder.addr()?;
    let tcp: SocketAddr = {
        let ma: Multiaddr = seeder_addr.parse()?;
        let mut ip = None;
        let mut port = None;
        for p in ma.iter() {
            match p {
                Protocol::Ip4(a) => ip = Some(IpAddr::V4(a)),
                Protocol::Tcp(p) => port = Some(p),
                _ => {}
            }
        }
        SocketAddr::new(ip.context("no IP")?, port.context("no port")?)
    };
    let pid = seeder.pid();
    let rss_idle = rss_mib(pid);

    // Baseline: the same fetch, unloaded.
    let cpu = harness::CpuMeter::start(&[pid]);
    let unloaded = honest_fetch(args, dir, "baseline", &seeder_addr, &cid)?;
    let unloaded_cpu = cpu.stop();
    let rss_before = rss_mib(pid);
    println!("unloaded fetch: {unloaded:.1} MiB/s ({}); seeder RSS idle {rss_idle:.1} MiB, after it {rss_before:.1} MiB", unloaded_cpu.show());

    let cid_parsed: Cid = cid.parse()?;
    let target_addr: Multiaddr = seeder_addr.parse()?;
    let mem = MemSampler::start(pid);
    let flood = {
        let _guard = runtime.enter();
        Flood::start(args, tcp, target_addr, cid_parsed)
    };
    // Let the flood build up before measuring.
    std::thread::sleep(Duration::from_secs(10));
    let load_during = load_average();
    let connected = seeder.status()?["node"]["connected_peers"].clone();
    let cpu = harness::CpuMeter::start(&[pid]);
    let loaded = honest_fetch(args, dir, "loaded", &seeder_addr, &cid);
    let loaded_cpu = cpu.stop();
    let joins: Vec<anyhow::Result<f64>> = (0..3)
        .map(|i| new_peer_connects(args, dir, &format!("newcomer{i}"), &seeder))
        .collect();
    let counts = runtime.block_on(flood.stop());
    let (rss_peak, threads_peak) = mem.stop();
    std::thread::sleep(Duration::from_secs(args.settle_secs));
    let rss_after = rss_mib(pid);

    println!();
    println!("| figure | value |");
    println!("| --- | --- |");
    println!(
        "| flood | {} idle, {} garbage, {} valid-request connections from 250 addresses in 10 /24s |",
        args.idle, args.garbage, args.valid
    );
    println!(
        "| connections opened by the flood in all | {} raw, {} libp2p |",
        counts.opened.load(Ordering::Relaxed),
        counts.valid_connects.load(Ordering::Relaxed)
    );
    println!(
        "| valid requests sent / answered | {} / {} |",
        counts.requests.load(Ordering::Relaxed),
        counts.answers.load(Ordering::Relaxed)
    );
    println!(
        "| garbage sent | {:.0} MiB |",
        counts.garbage_bytes.load(Ordering::Relaxed) as f64 / MIB as f64
    );
    println!("| seeder's connected peers 10 s into the flood | {connected} |");
    println!(
        "| seeder RSS: idle / after the unloaded fetch / peak during the flood / {} s after it | {rss_idle:.1} / {rss_before:.1} / {:.1} / {rss_after:.1} MiB |",
        args.settle_secs,
        rss_peak as f64 / MIB as f64
    );
    println!("| seeder threads, peak | {threads_peak} |");
    println!(
        "| {} MiB fetch, unloaded | {unloaded:.1} MiB/s |",
        args.size_mib
    );
    match &loaded {
        Ok(speed) => println!(
            "| {} MiB fetch during the flood | {speed:.1} MiB/s ({:.0}% of unloaded) |",
            args.size_mib,
            100.0 * speed / unloaded
        ),
        Err(e) => println!(
            "| {} MiB fetch during the flood | failed: {e:#} |",
            args.size_mib
        ),
    }
    let joined: Vec<String> = joins
        .iter()
        .map(|r| match r {
            Ok(secs) => format!("{secs:.1} s"),
            Err(e) => format!("failed ({e:#})"),
        })
        .collect();
    println!(
        "| new peers connecting during the flood | {} |",
        joined.join(", ")
    );
    println!("| seeder CPU, unloaded fetch | {} |", unloaded_cpu.show());
    println!(
        "| seeder CPU, fetch during the flood | {} |",
        loaded_cpu.show()
    );
    println!("| load average (1, 5, 15 min) during the flood | {load_during} |");
    println!("| load average at the end | {} |", load_average());
    loaded?;
    Ok(())
}
