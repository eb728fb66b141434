//! The batched-reprovide benchmark (issue 15): a network of in-memory nodes, each the
//! daemon's own network layer (`p2pd::network::build_in_memory`: its behaviour, its
//! Kademlia, its actor, over libp2p's memory transport with noise and yamux), in one
//! process. One node announces many files; the benchmark reports how long until every
//! file's announcement ended, the DHT messages per file, whether other nodes find the
//! files, and the traffic of the first refresh cycle per time bucket. The baseline, in
//! the same run, is libp2p-kad's own per-key `start_providing` (one lookup per key) from
//! a node with the same Kademlia configuration (`p2pd::network::kad_behaviour`) in the
//! same network.
//!
//! ```sh
//! cargo build --release -p p2pd-examples --bin reprovide-bench
//! target/release/reprovide-bench            # 100 nodes, 10,000 files, a 120 s cycle
//! ```
//!
//! This is not a test: nothing runs it from CI or `cargo test`. Results and how to read
//! them: `docs/benchmarks.md`.

#[path = "../bench/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chunk_store::BufferPool;
use clap::Parser;
use dht_proto::Cid;
use futures::StreamExt;
use harness::CpuMeter;
use libp2p::swarm::SwarmEvent;
use libp2p::{identity, kad, Multiaddr, PeerId};
use p2pd::network::{
    build_in_memory, kad_behaviour, memory_transport, BehaviourConfig, DhtMode, InboundRequest,
    Network, NetworkConfig, ReprovideStats, Timers,
};
use p2pd_examples::procfs::{load_average, CpuUse};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Measures batched reprovide in an in-memory network of daemon network layers.
#[derive(Debug, Parser)]
#[command(name = "reprovide-bench")]
struct Args {
    /// Nodes in the network (all DHT servers; one of them is the provider).
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Files the provider announces.
    #[arg(long, default_value_t = 10_000)]
    files: usize,
    /// The provider's reprovide interval, seconds (the daemon's is 12 h; shortened so
    /// that a whole refresh cycle is observed).
    #[arg(long, default_value_t = 120)]
    interval_secs: u64,
    /// Width of the refresh cycle's time buckets, seconds.
    #[arg(long, default_value_t = 10)]
    bucket_secs: u64,
    /// Keys the baseline (libp2p-kad's per-key provide) announces; 0 skips it.
    #[arg(long, default_value_t = 10_000)]
    baseline_keys: usize,
    /// Files another node looks up afterwards to check they can be found.
    #[arg(long, default_value_t = 200)]
    lookups: usize,
}

/// Longest any phase may take.
const PHASE_TIMEOUT: Duration = Duration::from_secs(900);

struct Node {
    net: Network,
    addr: Multiaddr,
    task: JoinHandle<()>,
    _inbound: mpsc::Receiver<InboundRequest>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn config(bootstrap: Option<&Multiaddr>) -> NetworkConfig {
    NetworkConfig {
        listen: vec!["/memory/0".parse().expect("a memory address")],
        bootstrap: bootstrap.into_iter().cloned().collect(),
        external: vec![],
        relays: vec![],
        dht_mode: DhtMode::Server,
        behaviour: BehaviourConfig {
            display_name: None,
            mdns: false,
            // The daemon's defaults (--max-provider-keys, --max-connections).
            max_provider_keys: 65_536,
            max_connections: 512,
            max_inbound_per_ip: p2pd::network::DEFAULT_MAX_INBOUND_PER_IP,
            request_timeout: Duration::from_secs(30),
            relay_server: None,
            upnp: false,
            chunk_buffers: BufferPool::new(1 << 20),
            timers: Timers::default(),
        },
        idle_timeout: Duration::from_secs(120),
        test_panic_after: None,
    }
}

async fn start(config: NetworkConfig, interval: Option<Duration>) -> anyhow::Result<Node> {
    let (inbound_tx, inbound) = mpsc::channel(16);
    let (mut actor, net) =
        build_in_memory(identity::Keypair::generate_ed25519(), config, inbound_tx)?;
    if let Some(interval) = interval {
        actor.set_reprovide_interval(interval);
    }
    let task = tokio::spawn(actor.run());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = net.info().await?;
        if let Some(addr) = info.listen_addrs.into_iter().next() {
            return Ok(Node {
                net,
                addr,
                task,
                _inbound: inbound,
            });
        }
        if Instant::now() > deadline {
            bail!("a node got no listen address");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn file(set: u32, i: usize) -> Cid {
    let mut bytes = set.to_le_bytes().to_vec();
    bytes.extend_from_slice(&(i as u64).to_le_bytes());
    Cid::for_manifest_bytes(&bytes)
}

/// Waits until every node has at least `want` peers in its routing table.
async fn wait_for_routing(nodes: &[Node], want: usize) -> anyhow::Result<(usize, f64)> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        let mut sizes = Vec::with_capacity(nodes.len());
        for node in nodes {
            sizes.push(node.net.info().await?.routing_table_peers);
        }
        let min = sizes.iter().copied().min().unwrap_or(0);
        let avg = sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64;
        if min >= want {
            return Ok((min, avg));
        }
        if Instant::now() > deadline {
            bail!("routing tables did not fill (smallest {min}, average {avg:.1})");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Announces `files` from `provider` and waits until every announcement ended.
async fn announce(provider: &Network, files: usize) -> anyhow::Result<(Duration, CpuUse, usize)> {
    let meter = CpuMeter::start(&[std::process::id()]);
    let started = Instant::now();
    for i in 0..files {
        provider.start_providing(file(0, i)).await;
    }
    loop {
        let all = provider.announcements().await?;
        let ended = all
            .iter()
            .filter(|a| a.last_announced.is_some() && !a.announcing)
            .count();
        if ended == files {
            let reached_k = all.iter().filter(|a| a.peers == Some(20)).count();
            return Ok((started.elapsed(), meter.stop(), reached_k));
        }
        if started.elapsed() > PHASE_TIMEOUT {
            bail!("{ended} of {files} announcements ended in {PHASE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Looks up `count` of the files from `finder`; how many found `provider`.
async fn check_findable(finder: &Network, provider: PeerId, files: usize, count: usize) -> usize {
    let step = (files / count.max(1)).max(1);
    let lookups = (0..files).step_by(step).take(count).map(|i| async move {
        let mut found = finder.find_providers(file(0, i)).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while let Ok(Some(peer)) = tokio::time::timeout_at(deadline, found.recv()).await {
            if peer == provider {
                return true;
            }
        }
        false
    });
    futures::future::join_all(lookups)
        .await
        .into_iter()
        .filter(|found| *found)
        .count()
}

/// Samples the provider's counters every second for `length`, and sums them per bucket.
async fn observe(
    provider: &Network,
    length: Duration,
    bucket: Duration,
) -> anyhow::Result<Vec<(u64, ReprovideStats)>> {
    let started = tokio::time::Instant::now();
    let mut last = provider.reprovide_stats().await?;
    let mut buckets = Vec::new();
    let mut current = ReprovideStats::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut bucket_end = bucket;
    while started.elapsed() < length {
        tick.tick().await;
        let now = provider.reprovide_stats().await?;
        current.lookups += now.lookups - last.lookups;
        current.lookup_requests += now.lookup_requests - last.lookup_requests;
        current.messages_sent += now.messages_sent - last.messages_sent;
        current.messages_failed += now.messages_failed - last.messages_failed;
        current.batches += now.batches - last.batches;
        current.rounds += now.rounds - last.rounds;
        last = now;
        if started.elapsed() >= bucket_end {
            buckets.push((
                bucket_end.as_secs() - bucket.as_secs(),
                std::mem::take(&mut current),
            ));
            bucket_end += bucket;
        }
    }
    Ok(buckets)
}

/// What the baseline measured.
struct Baseline {
    keys: usize,
    wall: Duration,
    cpu: CpuUse,
    requests: u64,
    completed: usize,
    reached: u64,
}

/// libp2p-kad's own provide: a swarm with the daemon's Kademlia configuration (and
/// nothing else) joins the network through `boot` and calls `start_providing` per key.
async fn baseline(boot: &Multiaddr, keys: usize) -> anyhow::Result<Baseline> {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(memory_transport)?
        .with_behaviour(|key| kad_behaviour(key.public().to_peer_id(), 65_536, Timers::default()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    let mut boot = boot.clone();
    let Some(libp2p::multiaddr::Protocol::P2p(boot_id)) = boot.pop() else {
        bail!("the bootstrap address has no peer id");
    };
    swarm.behaviour_mut().add_address(&boot_id, boot);
    swarm.behaviour_mut().bootstrap().context("bootstrap")?;
    let deadline = tokio::time::Instant::now() + PHASE_TIMEOUT;
    // Until the bootstrap lookup ended.
    loop {
        let event = tokio::time::timeout_at(deadline, swarm.select_next_some()).await?;
        if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
            result: kad::QueryResult::Bootstrap(_),
            step,
            ..
        }) = event
        {
            if step.last {
                break;
            }
        }
    }
    let meter = CpuMeter::start(&[std::process::id()]);
    let started = Instant::now();
    let mut running = HashSet::new();
    for i in 0..keys {
        let key = kad::RecordKey::new(&file(1, i).multihash_bytes());
        running.insert(swarm.behaviour_mut().start_providing(key)?);
    }
    let (mut requests, mut completed, mut reached) = (0, 0, 0);
    while !running.is_empty() {
        let event = tokio::time::timeout_at(deadline, swarm.select_next_some())
            .await
            .context("the baseline's announcements did not end")?;
        if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
            id,
            result: kad::QueryResult::StartProviding(result),
            stats,
            ..
        }) = event
        {
            running.remove(&id);
            requests += u64::from(stats.num_requests());
            if result.is_ok() {
                completed += 1;
                // Each send counts once as a request and once as a success, after the
                // lookup's own successes (see p2pd's announce history in the docs).
                reached += u64::from((stats.num_successes() / 2).min(20));
            }
        }
    }
    Ok(Baseline {
        keys,
        wall: started.elapsed(),
        cpu: meter.stop(),
        requests,
        completed,
        reached,
    })
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.nodes < 3 {
        bail!("--nodes must be at least 3");
    }
    println!("reprovide benchmark (issue 15): {} in-memory nodes of the daemon's network layer in one process", args.nodes);
    println!("  load average at start: {}", load_average());
    let interval = Duration::from_secs(args.interval_secs.max(1));

    let setup = Instant::now();
    let boot = start(config(None), None).await?;
    let mut nodes = vec![];
    for i in 1..args.nodes {
        let interval = (i == 1).then_some(interval);
        nodes.push(start(config(Some(&boot.addr)), interval).await?);
    }
    let want = 20.min(args.nodes - 1);
    let (min, avg) = wait_for_routing(&nodes, want).await?;
    println!(
        "  network up in {:.1} s; routing tables: smallest {min}, average {avg:.1} peers",
        setup.elapsed().as_secs_f64()
    );
    let provider = &nodes[0];
    let finder = &nodes[nodes.len() - 1];

    // Announce.
    let (wall, cpu, reached_k) = announce(&provider.net, args.files).await?;
    let announced = Instant::now();
    let stats = provider.net.reprovide_stats().await?;
    let files = args.files as f64;
    println!("\n## Announcing {} files (batched reprovide)\n", args.files);
    println!("| | |\n| --- | --- |");
    println!(
        "| wall time until every announcement ended | {:.2} s |",
        wall.as_secs_f64()
    );
    println!(
        "| files whose record reached K = 20 servers | {reached_k} of {} |",
        args.files
    );
    println!(
        "| lookups | {} ({} FIND_NODE requests) |",
        stats.lookups, stats.lookup_requests
    );
    println!(
        "| ADD_PROVIDER messages | {} written, {} to unreachable peers, on {} streams |",
        stats.messages_sent, stats.messages_failed, stats.batches
    );
    println!(
        "| messages per file | {:.2} (FIND_NODE {:.4} + ADD_PROVIDER {:.2}) |",
        (stats.lookup_requests + stats.messages_sent + stats.messages_failed) as f64 / files,
        stats.lookup_requests as f64 / files,
        (stats.messages_sent + stats.messages_failed) as f64 / files
    );
    println!(
        "| estimated DHT servers; region prefix | {:.0}; {} bits |",
        stats.network_size.unwrap_or(0.0),
        stats.prefix_len
    );
    println!("| CPU (the whole network, this process) | {} |", cpu.show());
    println!("| load average after | {} |", load_average());

    let found = check_findable(
        &finder.net,
        provider.net.local_peer_id(),
        args.files,
        args.lookups,
    )
    .await;
    println!(
        "\nFindability: another node looked up {} of the files: {found} found the provider.",
        args.lookups.min(args.files)
    );

    // The first refresh cycle: every key is due between ½ and 1½ intervals after its
    // announcement.
    let length = interval + interval / 2 + Duration::from_secs(args.bucket_secs);
    println!(
        "\n## The first refresh cycle (interval {} s), per {} s bucket from {:.1} s after the announcement ended (after the findability check)\n",
        interval.as_secs(),
        args.bucket_secs,
        announced.elapsed().as_secs_f64()
    );
    let before = provider.net.reprovide_stats().await?;
    let meter = CpuMeter::start(&[std::process::id()]);
    let buckets = observe(
        &provider.net,
        length,
        Duration::from_secs(args.bucket_secs.max(1)),
    )
    .await?;
    let cycle_cpu = meter.stop();
    println!("| from (s) | ADD_PROVIDER | streams | lookups | FIND_NODE | keys refreshed |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut total = ReprovideStats::default();
    for (from, b) in &buckets {
        println!(
            "| {from} | {} | {} | {} | {} | {} |",
            b.messages_sent + b.messages_failed,
            b.batches,
            b.lookups,
            b.lookup_requests,
            b.rounds
        );
        total.messages_sent += b.messages_sent + b.messages_failed;
        total.batches += b.batches;
        total.lookups += b.lookups;
        total.lookup_requests += b.lookup_requests;
        total.rounds += b.rounds;
    }
    println!(
        "| all | {} | {} | {} | {} | {} |",
        total.messages_sent, total.batches, total.lookups, total.lookup_requests, total.rounds
    );
    let after = provider.net.reprovide_stats().await?;
    println!(
        "\nEvery key made due at once, outside the timetable, during the cycle: {} times.",
        after.announced_all - before.announced_all
    );
    println!(
        "\nCPU during the cycle: {}; load average after: {}",
        cycle_cpu.show(),
        load_average()
    );

    // Baseline: libp2p-kad's own provide, one lookup per key.
    if args.baseline_keys > 0 {
        let b = baseline(&boot.addr, args.baseline_keys).await?;
        let keys = b.keys as f64;
        println!("\n## Baseline: libp2p-kad start_providing per key, same network, same Kademlia configuration\n");
        println!("| | |\n| --- | --- |");
        println!("| keys | {} ({} completed) |", b.keys, b.completed);
        println!(
            "| wall time until every announcement ended | {:.2} s |",
            b.wall.as_secs_f64()
        );
        println!(
            "| requests (FIND_NODE and ADD_PROVIDER, as libp2p-kad counts them) | {} |",
            b.requests
        );
        println!("| messages per key | {:.2} |", b.requests as f64 / keys);
        println!(
            "| servers reached per key (average) | {:.1} |",
            b.reached as f64 / keys
        );
        println!(
            "| CPU (the whole network, this process) | {} |",
            b.cpu.show()
        );
        println!("| load average after | {} |", load_average());
    }
    drop(nodes);
    drop(boot);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
