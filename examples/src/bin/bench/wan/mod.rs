//! The WAN figures (`bench --wan`, issue 17): p2pd over emulated access links, each
//! figure beside iperf3 (and sendme, when installed) on the same path in the same run,
//! after the link emulation itself has been checked with ping and iperf3.
//!
//! One lab per profile (`deploy/lab/wan.sh`, 7 hosts): h1 the bootstrap node and h3 the
//! single seeder sit directly on the router (a well-connected server); h2, the fetcher,
//! sits behind the profile's access link; h4–h7, the seeders of the multi-source
//! figure, each sit behind a home link of 20 Mbit/s up (200 down, 5 ms each way).

mod bare;
mod baselines;
mod checks;
mod nodes;
mod profile;
mod rounds;

use std::path::{Path, PathBuf};

use anyhow::bail;

use p2pd_examples::procfs::{load_average, CpuUse};

use crate::harness::{file_hash, random_file};
use crate::lab::{self, WanLab};
use crate::report::size_label;
use crate::sendme;
use crate::{Bench, LONG_TIMEOUT, MIB};
use baselines::Baselines;
use checks::Check;
use nodes::P2pNet;
pub use profile::Profile;
use profile::HOME_UP_BPS;
use rounds::Rounds;

pub(super) const BOOTSTRAP: usize = 1;
pub(super) const FETCHER: usize = 2;
pub(super) const SEEDER: usize = 3;
pub(super) const HOME_SEEDERS: [usize; 4] = [4, 5, 6, 7];
pub(super) const HOSTS: usize = 7;
/// Every node listens on the same ports: each host has its own namespace.
pub(super) const LISTEN: [&str; 2] = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"];
pub(super) const SENDME_PORT: u16 = 7001;

/// What `--wan` needs that the loopback figures do not.
#[derive(Debug, Clone, clap::Args)]
pub struct WanArgs {
    /// Measure over emulated WAN links (needs root, iproute2, iperf3, ping, chrt)
    /// instead of the loopback figures.
    #[arg(long)]
    pub wan: bool,
    /// Profiles to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Profile::Fast, Profile::LongFatLossy, Profile::Home])]
    pub wan_profiles: Vec<Profile>,
    /// File size of the WAN fetches, MiB.
    #[arg(long, default_value_t = 256)]
    pub wan_size_mib: u64,
    /// The sendme binary (default: `sendme` on PATH or in ~/.cargo/bin; skipped, and
    /// said so, when there is none).
    #[arg(long)]
    pub sendme: Option<PathBuf>,
    /// Rounds of the single-source figure and its baselines (iperf3, the bare
    /// transport): the first before the multi-source figure, the others after it, each
    /// with a new fetcher; the report gives medians and every round's figure.
    #[arg(long, default_value_t = 1)]
    pub wan_repeat: usize,
    /// Rounds of the multi-source figure, one after the other, each with a new fetcher
    /// of the same four home seeders; the report gives the median and every round's
    /// figure.
    #[arg(long, default_value_t = 1)]
    pub wan_multi_repeat: usize,
    /// Seed of the emulator's loss draws.
    #[arg(long, default_value_t = 1)]
    pub wan_seed: u64,
}

/// Runs every selected profile.
pub fn run(bench: &mut Bench) -> anyhow::Result<()> {
    for program in ["ip", "tc", "iperf3", "ping", "chrt"] {
        if !on_path(program) {
            bail!("{program} is not installed (the WAN lab needs iproute2, iperf3, iputils-ping and util-linux)");
        }
    }
    if !nix_is_root() {
        bail!("the WAN lab builds network namespaces: run as root");
    }
    let sendme = sendme::find(bench.args.wan.sendme.clone());
    match &sendme {
        Some(path) => println!("  sendme:  {}", path.display()),
        None => println!(
            "  sendme:  not found (install with `cargo install sendme`); its figures are skipped"
        ),
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/lab/wan.sh");
    let size = bench.args.wan.wan_size_mib * MIB;
    let single = bench.path("wan-single.bin");
    let multi = bench.path("wan-multi.bin");
    println!(
        "  writing two files of {} of pseudo-random bytes…",
        size_label(size)
    );
    random_file(&single, size, 17)?;
    random_file(&multi, size, 18)?;
    let files = Files {
        single_hash: file_hash(&single)?,
        multi_hash: file_hash(&multi)?,
        single,
        multi,
        size,
    };
    let mut checks = Vec::new();
    for profile in bench.args.wan.wan_profiles.clone() {
        run_profile(
            bench,
            &script,
            profile,
            &files,
            sendme.as_deref(),
            &mut checks,
        )?;
    }
    checks::print_table(checks);
    Ok(())
}

/// The two files every profile fetches, and their BLAKE3.
struct Files {
    single: PathBuf,
    multi: PathBuf,
    single_hash: String,
    multi_hash: String,
    size: u64,
}

fn run_profile(
    bench: &mut Bench,
    script: &Path,
    profile: Profile,
    files: &Files,
    sendme: Option<&Path>,
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
    let name = profile.name();
    let fetcher_access = profile.fetcher_access();
    let home = profile.home_seeder_access();
    println!(
        "\n[W] profile {name}: fetcher's link {}; home seeders' links {}",
        fetcher_access.describe(),
        home.describe()
    );
    let id = format!("{}", std::process::id() % 10_000);
    let mut lab = WanLab::up(script, &id, HOSTS)?;
    lab.link(FETCHER, fetcher_access)?;
    for host in HOME_SEEDERS {
        lab.link(host, home)?;
    }
    lab.start_emulator(bench.args.wan.wan_seed)?;

    checks::check_emulation(&lab, profile, checks)?;
    let baselines = baselines::measure(bench, &lab, profile, files, sendme, checks)?;
    let push = bare::find();
    if push.is_none() {
        bench.note(format!(
            "{name}: bare transport skipped: wan-push is not built beside the bench \
             (cargo build --release -p p2pd-examples --bin wan-push)"
        ));
    }
    let mut rounds = Rounds::default();
    rounds.iperf.push(baselines.iperf_bps);
    bare_round(bench, &lab, push.as_deref(), files.size, &mut rounds)?;

    // --- p2pd ---
    let mut net = P2pNet::start(bench, &lab, name)?;
    let single = net.single_source(bench, &lab, files)?;
    single_round(bench, name, files, &single, &mut rounds);
    let mut multi_cpu = None;
    for round in 1..=bench.args.wan.wan_multi_repeat.max(1) {
        let (secs, cpu, shares) = net.multi_source(bench, &lab, files)?;
        let bps = files.size as f64 * 8.0 / secs;
        bench.note(format!(
            "{name}: multi-source round {round}: p2pd from 4 home seeders {:.1} Mbit/s \
             (fetch --json {secs:.2} s; bytes from each: {shares}; {})",
            bps / 1e6,
            cpu.show()
        ));
        rounds.multi.push(bps);
        multi_cpu.get_or_insert(cpu);
    }
    for round in 2..=bench.args.wan.wan_repeat.max(1) {
        let iperf = lab::iperf3(
            &lab,
            SEEDER,
            FETCHER,
            ("-n", files.size.to_string()),
            None,
            LONG_TIMEOUT,
        )?;
        bench.note(format!(
            "{name}: round {round}: iperf3 {:.1} Mbit/s",
            iperf.bits_per_sec / 1e6
        ));
        rounds.iperf.push(iperf.bits_per_sec);
        bare_round(bench, &lab, push.as_deref(), files.size, &mut rounds)?;
        let single = net.single_source(bench, &lab, files)?;
        single_round(bench, name, files, &single, &mut rounds);
    }
    drop(net);

    checks::emulator_checks(bench, &lab, name, checks)?;
    figure_rows(
        bench,
        name,
        files,
        &baselines,
        &rounds,
        (single.1, multi_cpu.expect("at least one round")),
    );
    println!("    (load average now {})", load_average());
    Ok(())
}

/// One round of the bare transport's shapes, when `wan-push` is built.
fn bare_round(
    bench: &mut Bench,
    lab: &WanLab,
    push: Option<&Path>,
    size: u64,
    rounds: &mut Rounds,
) -> anyhow::Result<()> {
    let Some(push) = push else {
        return Ok(());
    };
    let rates = bare::measure(lab, push, size)?;
    for ((shape, rate), kept) in bare::SHAPES.iter().zip(rates).zip(&mut rounds.bare) {
        match rate {
            Ok(bps) => kept.push(bps),
            Err(e) => bench.note(format!(
                "bare transport, {}: {e:#}",
                bare::shape_label(*shape)
            )),
        }
    }
    Ok(())
}

/// Notes one single-source fetch and keeps its rate.
fn single_round(
    bench: &mut Bench,
    name: &str,
    files: &Files,
    (secs, cpu, transport): &(f64, CpuUse, String),
    rounds: &mut Rounds,
) {
    let bps = files.size as f64 * 8.0 / secs;
    bench.note(format!(
        "{name}: p2pd single-source {:.1} Mbit/s (fetch --json {secs:.2} s, over {transport}; {})",
        bps / 1e6,
        cpu.show()
    ));
    rounds.single.push(bps);
}

/// The results-table and CPU rows of one profile: p2pd beside its baselines.
fn figure_rows(
    bench: &mut Bench,
    name: &str,
    files: &Files,
    baselines: &Baselines,
    rounds: &Rounds,
    (single_cpu, multi_cpu): (CpuUse, CpuUse),
) {
    let multi_bps = rounds::median(&rounds.multi);
    let single_bps = rounds::median(&rounds.single);
    // Every round's iperf3, the first (in `baselines`) included.
    let iperf_bps = rounds::median(&rounds.iperf);
    let Baselines {
        iperf_bps: _,
        uplink_bps,
        sendme_bps,
    } = *baselines;
    let label = size_label(files.size);
    let fig = format!("W · {name}: single-source fetch {label}");
    let value = rounds::show(&rounds.single);
    let iperf = rounds::show(&rounds.iperf);
    bench.row(
        &fig,
        &value,
        "iperf3 TCP, same path, same bytes",
        &iperf,
        format!("{:.2}", single_bps / iperf_bps),
        "≥ 0.90",
    );
    for (shape, rates) in bare::SHAPES.iter().zip(&rounds.bare) {
        if rates.is_empty() {
            continue;
        }
        bench.row(
            &format!(
                "W · {name}: bare daemon TCP stack, {} (no p2pd)",
                bare::shape_label(*shape)
            ),
            &rounds::show(rates),
            "iperf3 TCP, same path, same bytes",
            &iperf,
            format!("{:.2}", rounds::median(rates) / iperf_bps),
            "—",
        );
    }
    let (sendme, sendme_value, sendme_ratio) = match sendme_bps {
        Some(s) => (
            "sendme, same path, same file",
            format!("{:.1} Mbit/s", s / 1e6),
            format!("{:.2}", single_bps / s),
        ),
        None => ("sendme", "not measured".to_string(), "—".to_string()),
    };
    bench.row(
        &fig,
        &value,
        sendme,
        &sendme_value,
        sendme_ratio,
        "> 1 (ahead)",
    );
    bench.row(
        &format!("W · {name}: fetch {label} from 4 home seeders (20 Mbit/s up each)"),
        &rounds::show(&rounds.multi),
        &format!(
            "one home uplink, 20 Mbit/s (iperf3 from one seeder: {:.1} Mbit/s)",
            uplink_bps / 1e6
        ),
        "20 Mbit/s",
        format!("{:.2} × the uplink", multi_bps / HOME_UP_BPS as f64),
        "≥ 3.5 ×",
    );
    bench.cpu_row(
        &format!("W · {name}: p2pd single-source (seeder + fetcher)"),
        files.size,
        Some(single_cpu),
    );
    bench.cpu_row(
        &format!("W · {name}: p2pd 4 home seeders + fetcher"),
        files.size,
        Some(multi_cpu),
    );
    println!("    (load average now {})", load_average());
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
