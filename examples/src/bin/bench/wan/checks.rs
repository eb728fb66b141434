//! The checks of the link emulation itself, printed as their own table: ping's round
//! trip and loss against the configured links, and what the emulator saw over a whole
//! profile (its loss draws and how late it wrote packets).

use std::time::Duration;

use super::profile::{Profile, HOME_ONE_WAY};
use super::{FETCHER, HOME_SEEDERS, SEEDER};
use crate::lab::{self, WanLab};
use crate::report::markdown_table;
use crate::Bench;

/// One line of the emulator check table.
pub(super) struct Check {
    pub(super) profile: &'static str,
    pub(super) what: String,
    pub(super) expected: String,
    pub(super) measured: String,
    pub(super) verdict: String,
}

/// Prints the checks of every profile.
pub(super) fn print_table(checks: Vec<Check>) {
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
}

/// Pings over the fetcher's link and a home seeder's: the round trip and the loss
/// against what the profile configured.
pub(super) fn check_emulation(
    lab: &WanLab,
    profile: Profile,
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
    let name = profile.name();
    let (_, _, rtt, loss) = profile.shape();
    let pings = if loss > 0.0 { 2000 } else { 500 };
    let p = lab::ping(lab, FETCHER, SEEDER, pings, Duration::from_millis(5))?;
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
    let hp = lab::ping(lab, FETCHER, HOME_SEEDERS[0], 200, Duration::from_millis(5))?;
    checks.push(rtt_check(name, "fetcher → home seeder", home_rtt_ms, &hp));
    Ok(())
}

/// What the emulator saw over the whole profile: its loss draws, packets written late,
/// and the packets the router's queues dropped.
pub(super) fn emulator_checks(
    bench: &mut Bench,
    lab: &WanLab,
    name: &'static str,
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
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
    Ok(())
}

/// The round trip `ping` measured on `path` against the configured `expected_ms`: the
/// mean within 3%, and no answer faster than configured.
pub(super) fn rtt_check(
    profile: &'static str,
    path: &str,
    expected_ms: f64,
    p: &lab::Ping,
) -> Check {
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
pub(super) fn within(ratio: f64, target: f64, tolerance: f64, also: bool) -> String {
    if (ratio - target).abs() <= tolerance && also {
        format!("ok (within {:.0}%)", tolerance * 100.0)
    } else {
        format!("OFF ({:+.1}%)", (ratio - target) * 100.0)
    }
}

/// Whether `lost` of `n` is within 3 standard deviations of Binomial(n, p).
pub(super) fn binomial_check(
    profile: &'static str,
    what: &str,
    n: u64,
    lost: u64,
    p: f64,
) -> Check {
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
