//! The baselines each profile's figures stand beside, measured on the same paths in the
//! same run: iperf3 (and, over a lossy link, iperf3 against the Mathis formula), one home
//! seeder's uplink, and sendme when it is installed.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{bail, Context as _};
use p2pd_examples::procfs::CpuUse;

use super::checks::Check;
use super::profile::{Profile, HOME_UP_BPS, MSS};
use super::{Files, FETCHER, HOME_SEEDERS, SEEDER, SENDME_PORT};
use crate::harness::{file_hash, CpuMeter, Helper};
use crate::lab::{self, mbit, WanLab};
use crate::report::size_label;
use crate::{sendme, Bench, LONG_TIMEOUT};

/// The baselines of one profile, in bits per second.
#[derive(Clone, Copy)]
pub(super) struct Baselines {
    /// iperf3 from the seeder to the fetcher, the same bytes as the fetch.
    pub(super) iperf_bps: f64,
    /// iperf3 from one home seeder to the fetcher, 10 s.
    pub(super) uplink_bps: f64,
    /// sendme's receive, when sendme is installed and did not fail.
    pub(super) sendme_bps: Option<f64>,
}

/// Measures the baselines of `profile`, adding the iperf3 checks to `checks`.
pub(super) fn measure(
    bench: &mut Bench,
    lab: &WanLab,
    profile: Profile,
    files: &Files,
    sendme: Option<&Path>,
    checks: &mut Vec<Check>,
) -> anyhow::Result<Baselines> {
    let name = profile.name();
    let (down, _, rtt, loss) = profile.shape();
    let rtt_ms = rtt.as_secs_f64() * 1e3;
    let timeout = LONG_TIMEOUT;
    let meter = CpuMeter::start(&[]);
    let iperf = lab::iperf3(
        lab,
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
            lab,
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
        lab,
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
        Some(bin) => match run_sendme(bench, lab, bin, &files.single, &files.single_hash) {
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
    Ok(Baselines {
        iperf_bps,
        uplink_bps: uplink.bits_per_sec,
        sendme_bps,
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
            .args(sendme::SEND_OPTIONS)
            .args(["--magic-ipv4-addr", &bind])
            .current_dir(&send_dir),
    )?;
    let ticket = sender.ticket.clone();
    let meter = CpuMeter::start(&[]);
    let started = Instant::now();
    let mut receiver = Helper::spawn(
        lab.command(FETCHER, bin.to_str().context("non-UTF-8 path")?)
            .args(["receive", &ticket])
            .args(sendme::RECEIVE_OPTIONS)
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

fn machine_busy(cpu: &CpuUse) -> String {
    format!("{:.0}% busy", 100.0 * cpu.machine / (cpu.wall * cpu.cores))
}
