//! The WAN figures (`bench --wan`, issue 17): p2pd over emulated access links, each
//! figure beside iperf3 (and sendme, when installed) on the same path in the same run,
//! after the link emulation itself has been checked with ping and iperf3.
//!
//! One lab per profile (`deploy/lab/wan.sh`, 7 hosts): h1 the bootstrap node and h3 the
//! single seeder sit directly on the router (a well-connected server); h2, the fetcher,
//! sits behind the profile's access link; h4–h7, the seeders of the multi-source
//! figure, each sit behind a home link of 20 Mbit/s up (200 down, 5 ms each way).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::ValueEnum;
use serde_json::Value;

use crate::harness::{file_hash, random_file, CpuMeter, Daemon, Helper};
use crate::lab::{self, mbit, Access, WanLab};
use crate::report::{load, markdown_table, size_label};
use crate::sendme;
use crate::{Bench, LONG_TIMEOUT, MIB};
use p2pd_examples::procfs::CpuUse;

const BOOTSTRAP: usize = 1;
const FETCHER: usize = 2;
const SEEDER: usize = 3;
const HOME_SEEDERS: [usize; 4] = [4, 5, 6, 7];
const HOSTS: usize = 7;
/// Every node listens on the same ports: each host has its own namespace.
const LISTEN: [&str; 2] = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"];
const SENDME_PORT: u16 = 7001;
/// The home seeders' links.
const HOME_UP_BPS: u64 = 20_000_000;
const HOME_DOWN_BPS: u64 = 200_000_000;
const HOME_ONE_WAY: Duration = Duration::from_millis(5);
/// TCP payload of a full 1500-byte packet with timestamps (what the Mathis formula and
/// the goodput ceiling of a shaped link count).
const MSS: f64 = 1448.0;

/// The access links of the fetcher that issue 17 asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// 100 Mbit/s both ways, 40 ms round trip.
    #[value(name = "100m")]
    Fast,
    /// 1 Gbit/s both ways, 80 ms round trip, 0.5% loss each way.
    #[value(name = "1g-lossy")]
    LongFatLossy,
    /// A home link: 200 Mbit/s down, 20 Mbit/s up, 30 ms round trip.
    #[value(name = "home")]
    Home,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Profile::Fast => "100m",
            Profile::LongFatLossy => "1g-lossy",
            Profile::Home => "home",
        }
    }

    /// (down, up) bits per second, round trip, loss each way.
    fn shape(self) -> (u64, u64, Duration, f64) {
        match self {
            Profile::Fast => (100_000_000, 100_000_000, Duration::from_millis(40), 0.0),
            Profile::LongFatLossy => (
                1_000_000_000,
                1_000_000_000,
                Duration::from_millis(80),
                0.005,
            ),
            Profile::Home => (200_000_000, 20_000_000, Duration::from_millis(30), 0.0),
        }
    }

    fn fetcher_access(self) -> Access {
        let (down, up, rtt, loss) = self.shape();
        Access {
            up_bps: Some(up),
            down_bps: Some(down),
            one_way: rtt / 2,
            loss,
            queue_bytes: buffer_for(down, rtt),
        }
    }

    fn home_seeder_access(self) -> Access {
        let (_, _, rtt, _) = self.shape();
        Access {
            up_bps: Some(HOME_UP_BPS),
            down_bps: Some(HOME_DOWN_BPS),
            one_way: HOME_ONE_WAY,
            loss: 0.0,
            queue_bytes: buffer_for(HOME_UP_BPS, rtt + 2 * HOME_ONE_WAY),
        }
    }
}

/// A router buffer of one bandwidth-delay product (at least 20 ms and 64 KiB of it), the
/// usual rule of thumb for a bottleneck.
fn buffer_for(bps: u64, rtt: Duration) -> u64 {
    let secs = rtt.max(Duration::from_millis(20)).as_secs_f64();
    ((bps as f64 / 8.0 * secs) as u64).max(64 << 10)
}

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
    /// Seed of the emulator's loss draws.
    #[arg(long, default_value_t = 1)]
    pub wan_seed: u64,
}

/// One line of the emulator check table.
struct Check {
    profile: &'static str,
    what: String,
    expected: String,
    measured: String,
    verdict: String,
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
    let rows: Vec<Vec<String>> = checks
        .into_iter()
        .map(|c| vec![c.profile.into(), c.what, c.expected, c.measured, c.verdict])
        .collect();
    println!("\nChecks of the link emulation (same runs):\n");
    print!(
        "{}",
        markdown_table(
            &[
                "profile",
                "check",
                "configured / expected",
                "measured",
                "verdict"
            ],
            &rows
        )
    );
    Ok(())
}

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
    let (down, _, rtt, loss) = profile.shape();
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

    // --- the emulation itself ---
    let pings = if loss > 0.0 { 2000 } else { 500 };
    let p = lab::ping(&lab, FETCHER, SEEDER, pings, Duration::from_millis(5))?;
    let rtt_ms = rtt.as_secs_f64() * 1e3;
    checks.push(rtt_check(name, "fetcher → seeder", rtt_ms, &p));
    let round_trip_loss = 1.0 - (1.0 - loss).powi(2);
    checks.push(binomial_check(
        name,
        "ping loss (both ways)",
        p.sent,
        p.sent - p.received,
        round_trip_loss,
    ));
    let home_rtt_ms = rtt_ms + 2.0 * HOME_ONE_WAY.as_secs_f64() * 1e3;
    let hp = lab::ping(
        &lab,
        FETCHER,
        HOME_SEEDERS[0],
        200,
        Duration::from_millis(5),
    )?;
    checks.push(rtt_check(name, "fetcher → home seeder", home_rtt_ms, &hp));

    // --- baselines on the same paths ---
    let timeout = LONG_TIMEOUT;
    let meter = CpuMeter::start(&[]);
    let iperf = lab::iperf3(
        &lab,
        SEEDER,
        FETCHER,
        ("-n", files.size.to_string()),
        None,
        timeout,
    )?;
    let iperf_load = meter.stop();
    let ceiling = down as f64 * MSS / 1500.0;
    checks.push(Check {
        profile: name,
        what: format!(
            "iperf3 seeder → fetcher, {} (kernel's congestion control)",
            size_label(files.size)
        ),
        expected: format!("≤ {:.1} Mbit/s (goodput of {})", ceiling / 1e6, mbit(down)),
        measured: format!(
            "{:.1} Mbit/s in {:.2} s, {} retransmits",
            iperf.bits_per_sec / 1e6,
            iperf.secs,
            iperf.retransmits
        ),
        verdict: format!(
            "{:.0}% of the goodput ceiling",
            100.0 * iperf.bits_per_sec / ceiling
        ),
    });
    if loss > 0.0 {
        let reno = lab::iperf3(
            &lab,
            SEEDER,
            FETCHER,
            ("-t", "30".into()),
            Some("cubic"),
            timeout,
        )?;
        let mathis = MSS * 8.0 / rtt.as_secs_f64() * (1.5f64).sqrt() / loss.sqrt();
        checks.push(Check {
            profile: name,
            what: "iperf3 with cubic, 30 s, against the Mathis formula MSS/RTT·√(3/2)/√p".into(),
            expected: format!(
                "{:.2} Mbit/s (MSS 1448, RTT {rtt_ms:.0} ms, p {loss})",
                mathis / 1e6
            ),
            measured: format!(
                "{:.2} Mbit/s, {} retransmits",
                reno.bits_per_sec / 1e6,
                reno.retransmits
            ),
            verdict: format!("{:.2} × the formula", reno.bits_per_sec / mathis),
        });
    }
    let uplink = lab::iperf3(
        &lab,
        HOME_SEEDERS[0],
        FETCHER,
        ("-t", "10".into()),
        None,
        timeout,
    )?;
    let uplink_ceiling = HOME_UP_BPS as f64 * MSS / 1500.0;
    checks.push(Check {
        profile: name,
        what: "iperf3 one home seeder → fetcher, 10 s".into(),
        expected: format!(
            "≤ {:.1} Mbit/s (goodput of 20 Mbit/s)",
            uplink_ceiling / 1e6
        ),
        measured: format!(
            "{:.1} Mbit/s, {} retransmits",
            uplink.bits_per_sec / 1e6,
            uplink.retransmits
        ),
        verdict: format!(
            "{:.0}% of the goodput ceiling",
            100.0 * uplink.bits_per_sec / uplink_ceiling
        ),
    });
    let iperf_bps = iperf.bits_per_sec;
    bench.note(format!(
        "{name}: iperf3 {:.1} Mbit/s ({}; machine {})",
        iperf_bps / 1e6,
        size_label(files.size),
        machine_busy(&iperf_load)
    ));

    let sendme_bps = match sendme {
        Some(bin) => match run_sendme(bench, &lab, bin, &files.single, &files.single_hash) {
            Ok((secs, cpu)) => {
                let bps = files.size as f64 * 8.0 / secs;
                bench.note(format!(
                    "{name}: sendme receive {:.1} Mbit/s (wall {secs:.2} s; machine {})",
                    bps / 1e6,
                    machine_busy(&cpu)
                ));
                Some(bps)
            }
            Err(e) => {
                bench.note(format!("{name}: sendme failed: {e:#}"));
                None
            }
        },
        None => None,
    };

    // --- p2pd ---
    let mut net = P2pNet::start(bench, &lab, name)?;
    let single = net.single_source(bench, &lab, files)?;
    let single_bps = files.size as f64 * 8.0 / single.0;
    bench.note(format!(
        "{name}: p2pd single-source {:.1} Mbit/s (fetch --json {:.2} s, over {}; {})",
        single_bps / 1e6,
        single.0,
        single.2,
        single.1.show()
    ));
    let multi = net.multi_source(bench, &lab, files)?;
    let multi_bps = files.size as f64 * 8.0 / multi.0;
    bench.note(format!(
        "{name}: p2pd from 4 home seeders {:.1} Mbit/s (fetch --json {:.2} s; bytes from each: {}; {})",
        multi_bps / 1e6,
        multi.0,
        multi.2,
        multi.1.show()
    ));
    drop(net);

    // --- what the emulator saw over the whole profile ---
    for s in lab.emulator_stats() {
        if s.received == 0 {
            continue;
        }
        if s.spec.loss > 0.0 {
            checks.push(binomial_check(
                name,
                &format!("emulator draws on {}", s.spec.device),
                s.received,
                s.lost,
                s.spec.loss,
            ));
        }
        if s.error.is_some() || s.late_over_1ms * 1000 > s.delivered {
            checks.push(Check {
                profile: name,
                what: format!("emulator timing on {}", s.spec.device),
                expected: "packets written when due".into(),
                measured: format!(
                    "{} packets, mean {:.0} µs late, max {} µs, {} over 1 ms{}",
                    s.delivered,
                    s.late_mean_us,
                    s.late_max_us,
                    s.late_over_1ms,
                    s.error
                        .as_deref()
                        .map(|e| format!("; error: {e}"))
                        .unwrap_or_default()
                ),
                verdict: "LATE".into(),
            });
        }
    }
    let late: Vec<String> = lab
        .emulator_stats()
        .iter()
        .filter(|s| s.delivered > 0)
        .map(|s| {
            format!(
                "{} {} pkts, {:.0} µs late on average, max {:.1} ms",
                s.spec.device,
                s.delivered,
                s.late_mean_us,
                s.late_max_us as f64 / 1e3
            )
        })
        .collect();
    bench.note(format!("{name}: emulator: {}", late.join("; ")));
    bench.note(format!(
        "{name}: packets dropped by the router's queues (tbf buffers, TUN queues): {}",
        lab.router_drops()?
    ));

    // --- the figures ---
    let label = size_label(files.size);
    let fig = format!("W · {name}: single-source fetch {label}");
    let value = format!("{:.1} Mbit/s", single_bps / 1e6);
    bench.row(
        &fig,
        &value,
        "iperf3 TCP, same path, same bytes",
        &format!("{:.1} Mbit/s", iperf_bps / 1e6),
        format!("{:.2}", single_bps / iperf_bps),
        "≥ 0.90",
    );
    match sendme_bps {
        Some(s) => bench.row(
            &fig,
            &value,
            "sendme, same path, same file",
            &format!("{:.1} Mbit/s", s / 1e6),
            format!("{:.2}", single_bps / s),
            "> 1 (ahead)",
        ),
        None => bench.row(
            &fig,
            &value,
            "sendme",
            "not measured",
            "—".into(),
            "> 1 (ahead)",
        ),
    }
    bench.row(
        &format!("W · {name}: fetch {label} from 4 home seeders (20 Mbit/s up each)"),
        &format!("{:.1} Mbit/s", multi_bps / 1e6),
        &format!(
            "one home uplink, 20 Mbit/s (iperf3 from one seeder: {:.1} Mbit/s)",
            uplink.bits_per_sec / 1e6
        ),
        "20 Mbit/s",
        format!("{:.2} × the uplink", multi_bps / HOME_UP_BPS as f64),
        "≥ 3.5 ×",
    );
    bench.cpu_row(
        &format!("W · {name}: p2pd single-source (seeder + fetcher)"),
        files.size,
        Some(single.1),
    );
    bench.cpu_row(
        &format!("W · {name}: p2pd 4 home seeders + fetcher"),
        files.size,
        Some(multi.1),
    );
    println!("    (load average now {})", load());
    Ok(())
}

/// The p2pd nodes of one profile: the bootstrap node and the single seeder stay up for
/// both figures; fetchers and home seeders come and go.
struct P2pNet {
    /// Kept alive for the DHT; dropped (killed) with the net.
    _bootstrap: Daemon,
    bootstrap_addr: String,
    seeder: Option<Daemon>,
    name: &'static str,
}

impl P2pNet {
    fn start(bench: &mut Bench, lab: &WanLab, name: &'static str) -> anyhow::Result<Self> {
        let bootstrap = lab_daemon(
            bench,
            lab,
            BOOTSTRAP,
            &format!("{name}-bootstrap"),
            &["--dht-mode", "server"],
        )?;
        let bootstrap_addr = format!(
            "/ip4/{}/tcp/4001/p2p/{}",
            lab.addr(BOOTSTRAP),
            bootstrap.peer_id()?
        );
        Ok(P2pNet {
            _bootstrap: bootstrap,
            bootstrap_addr,
            seeder: None,
            name,
        })
    }

    fn node(
        &self,
        bench: &mut Bench,
        lab: &WanLab,
        host: usize,
        role: &str,
    ) -> anyhow::Result<Daemon> {
        lab_daemon(
            bench,
            lab,
            host,
            &format!("{}-{role}", self.name),
            &["--bootstrap", &self.bootstrap_addr],
        )
    }

    /// Returns the fetch's `--json` seconds, the CPU of seeder and fetcher, and the
    /// transport of the fetcher's connection to the seeder.
    fn single_source(
        &mut self,
        bench: &mut Bench,
        lab: &WanLab,
        files: &Files,
    ) -> anyhow::Result<(f64, CpuUse, String)> {
        let seeder = self.node(bench, lab, SEEDER, "seeder")?;
        let (cid, ..) = bench.add(&seeder, &files.single, &[])?;
        seeder.wait_announced(Duration::from_secs(60))?;
        let fetcher = self.node(bench, lab, FETCHER, "fetcher")?;
        let f = bench.fetch(
            &fetcher,
            &[&seeder],
            &cid,
            &files.single_hash,
            &format!("{}-single", self.name),
        )?;
        let transport = transport_to(&fetcher, &seeder.peer_id()?)?;
        self.seeder = Some(seeder);
        Ok((f.secs, f.cpu, transport))
    }

    /// Returns the fetch's seconds, the CPU of the seeders and the fetcher, and the
    /// bytes each seeder sent.
    fn multi_source(
        &mut self,
        bench: &mut Bench,
        lab: &WanLab,
        files: &Files,
    ) -> anyhow::Result<(f64, CpuUse, String)> {
        let mut seeders = Vec::new();
        let mut cid = String::new();
        for (i, host) in HOME_SEEDERS.iter().enumerate() {
            let seeder = self.node(bench, lab, *host, &format!("home{}", i + 1))?;
            cid = bench.add(&seeder, &files.multi, &[])?.0;
            seeders.push(seeder);
        }
        for seeder in &seeders {
            seeder.wait_announced(Duration::from_secs(60))?;
        }
        let fetcher = self.node(bench, lab, FETCHER, "multi-fetcher")?;
        let providers: Vec<&Daemon> = seeders.iter().collect();
        let f = bench.fetch(
            &fetcher,
            &providers,
            &cid,
            &files.multi_hash,
            &format!("{}-multi", self.name),
        )?;
        let ids: Vec<String> = seeders
            .iter()
            .map(Daemon::peer_id)
            .collect::<anyhow::Result<_>>()?;
        let shares: Vec<String> = f.json["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let who = ids
                    .iter()
                    .position(|id| p["peer_id"] == id.as_str())
                    .map_or("other".to_string(), |i| format!("home{}", i + 1));
                format!(
                    "{who} {:.1} MiB",
                    p["bytes"].as_u64().unwrap_or(0) as f64 / MIB as f64
                )
            })
            .collect();
        Ok((f.secs, f.cpu, shares.join(", ")))
    }
}

/// A daemon on host `host`, listening on the lab's ports, announcing its lab address.
fn lab_daemon(
    bench: &mut Bench,
    lab: &WanLab,
    host: usize,
    name: &str,
    extra: &[&str],
) -> anyhow::Result<Daemon> {
    bench.next_node += 1;
    let dir = bench.path(&format!("node{}-{name}", bench.next_node));
    let tcp = format!("/ip4/{}/tcp/4001", lab.addr(host));
    let quic = format!("/ip4/{}/udp/4001/quic-v1", lab.addr(host));
    let mut args = vec!["--external-addr", &tcp, "--external-addr", &quic];
    args.extend_from_slice(extra);
    Daemon::start_in(Some(&lab.ns(host)), &LISTEN, &bench.bin, &dir, name, &args)
}

/// `tcp` or `quic`: how the fetcher is connected to `peer` (from `peers --json`).
fn transport_to(fetcher: &Daemon, peer: &str) -> anyhow::Result<String> {
    let peers = fetcher
        .cli(&["peers", "--json"], Duration::from_secs(30))?
        .ok("peers")?
        .json()?;
    let entry = peers
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["peer_id"] == peer)
        .cloned()
        .unwrap_or(Value::Null);
    let addrs: Vec<&str> = entry["addrs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    Ok(if addrs.is_empty() {
        "an unknown transport (no longer connected)".into()
    } else {
        addrs.join(" + ")
    })
}

/// sendme on the same path: `send` on the seeder (direct addresses only, relays off),
/// `receive` on the fetcher. Returns the receiver's wall time and the machine's load.
fn run_sendme(
    bench: &Bench,
    lab: &WanLab,
    bin: &Path,
    file: &Path,
    hash: &str,
) -> anyhow::Result<(f64, CpuUse)> {
    let send_dir = bench.path("sendme-send");
    let recv_dir = bench.path("sendme-recv");
    for dir in [&send_dir, &recv_dir] {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
    }
    let bind = format!("{}:{SENDME_PORT}", lab.addr(SEEDER));
    let sender = sendme::send(
        lab.command(SEEDER, bin.to_str().context("non-UTF-8 path")?)
            .args(["send", file.to_str().context("non-UTF-8 path")?])
            .args([
                "--relay",
                "disabled",
                "--ticket-type",
                "addresses",
                "--no-progress",
            ])
            .args(["--magic-ipv4-addr", &bind])
            .current_dir(&send_dir),
    )?;
    let ticket = sender.ticket.clone();
    let meter = CpuMeter::start(&[]);
    let started = Instant::now();
    let mut receiver = Helper::spawn(
        lab.command(FETCHER, bin.to_str().context("non-UTF-8 path")?)
            .args(["receive", &ticket, "--relay", "disabled", "--no-progress"])
            .current_dir(&recv_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )?;
    let status = receiver.wait(LONG_TIMEOUT)?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = meter.stop();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = receiver.child().stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        bail!("sendme receive failed ({status}): {}", err.trim());
    }
    let name = file.file_name().context("file name")?;
    let got = file_hash(&recv_dir.join(name))?;
    drop(sender);
    for dir in [&send_dir, &recv_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
    if got != hash {
        bail!("sendme delivered a different file");
    }
    Ok((secs, cpu))
}

/// The round trip `ping` measured on `path` against the configured `expected_ms`: the
/// mean within 3%, and no answer faster than configured.
fn rtt_check(profile: &'static str, path: &str, expected_ms: f64, p: &lab::Ping) -> Check {
    Check {
        profile,
        what: format!("ping RTT {path} ({} pings)", p.sent),
        expected: format!("{expected_ms:.1} ms"),
        measured: format!(
            "min {:.2} / avg {:.2} / max {:.2} ms",
            p.min_ms, p.avg_ms, p.max_ms
        ),
        verdict: within(p.avg_ms / expected_ms, 1.0, 0.03, p.min_ms >= expected_ms),
    }
}

/// `ok` when `ratio` is within `tolerance` of `target` (and `also` holds).
fn within(ratio: f64, target: f64, tolerance: f64, also: bool) -> String {
    if (ratio - target).abs() <= tolerance && also {
        format!("ok (within {:.0}%)", tolerance * 100.0)
    } else {
        format!("OFF ({:+.1}%)", (ratio - target) * 100.0)
    }
}

/// Whether `lost` of `n` is within 3 standard deviations of Binomial(n, p).
fn binomial_check(profile: &'static str, what: &str, n: u64, lost: u64, p: f64) -> Check {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    let z = if sd > 0.0 {
        (lost as f64 - mean) / sd
    } else if lost == 0 {
        0.0
    } else {
        f64::INFINITY
    };
    Check {
        profile,
        what: what.to_string(),
        expected: format!("{mean:.1} of {n} (p = {p:.4}, σ = {sd:.1})"),
        measured: format!("{lost} ({:.3}%)", 100.0 * lost as f64 / n.max(1) as f64),
        verdict: if z.abs() <= 3.0 {
            format!("ok ({z:+.1} σ)")
        } else {
            format!("OFF ({z:+.1} σ)")
        },
    }
}

fn machine_busy(cpu: &CpuUse) -> String {
    format!("{:.0}% busy", 100.0 * cpu.machine / (cpu.wall * cpu.cores))
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
