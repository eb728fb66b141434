//! Turning what the simulation recorded into figures: success rates, percentiles,
//! hop histograms, per-minute series, and the JSON report.

use serde_json::{json, Value};

use crate::node::Role;
use crate::sim::LookupRecord;

/// The `q` quantile (0..=1) of sorted values, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Mean and percentiles of some values.
pub fn distribution(values: impl Iterator<Item = f64>) -> Value {
    let v = sorted(values);
    if v.is_empty() {
        return json!({ "count": 0 });
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    json!({
        "count": v.len(),
        "mean": round(mean),
        "p50": quantile(&v, 0.50).map(round),
        "p90": quantile(&v, 0.90).map(round),
        "p99": quantile(&v, 0.99).map(round),
        "p999": quantile(&v, 0.999).map(round),
        "max": v.last().copied().map(round),
    })
}

pub fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Lookups measured under churn (minute 1 on) or all of them.
pub fn under_churn(records: &[LookupRecord]) -> impl Iterator<Item = &LookupRecord> {
    records.iter().filter(|r| r.minute > 0)
}

/// Success figures of a set of lookups.
pub fn success<'a>(records: impl Iterator<Item = &'a LookupRecord>) -> Value {
    let mut total = 0u64;
    let mut ok = 0u64;
    let mut timed_out = 0u64;
    let mut named = 0u64;
    for r in records {
        total += 1;
        ok += u64::from(r.ok);
        timed_out += u64::from(r.timed_out);
        named += u64::from(r.named);
    }
    let rate = |n: u64| (total > 0).then(|| n as f64 / total as f64);
    json!({
        "lookups": total,
        "succeeded": ok,
        "failed": total - ok,
        "success_rate": rate(ok),
        "queries_timed_out": timed_out,
        "provider_named_by_dht": named,
        "named_rate": rate(named),
    })
}

/// Hop counts of successful lookups: count per hop.
pub fn hop_histogram<'a>(records: impl Iterator<Item = &'a LookupRecord>) -> Vec<u64> {
    let mut histogram: Vec<u64> = Vec::new();
    for hops in records.filter(|r| r.ok).filter_map(|r| r.hops) {
        let h = hops as usize;
        if histogram.len() <= h {
            histogram.resize(h + 1, 0);
        }
        histogram[h] += 1;
    }
    histogram
}

/// Everything about the lookups of a run.
pub fn lookups(records: &[LookupRecord]) -> Value {
    let churn: Vec<&LookupRecord> = under_churn(records).collect();
    let ok = || churn.iter().copied().filter(|r| r.ok);
    json!({
        "baseline_minute_0": success(records.iter().filter(|r| r.minute == 0)),
        "under_churn": success(churn.iter().copied()),
        "under_churn_by_looker": {
            "server": success(churn.iter().copied().filter(|r| r.looker == Role::Server)),
            "client": success(churn.iter().copied().filter(|r| r.looker == Role::Client)),
        },
        "under_churn_by_record": {
            "announced_since_provider_started": success(churn.iter().copied().filter(|r| r.announced_since_start)),
            "announced_before_provider_left": success(churn.iter().copied().filter(|r| !r.announced_since_start)),
        },
        "under_churn_by_provider": {
            "server": success(churn.iter().copied().filter(|r| r.provider == Role::Server)),
            "client": success(churn.iter().copied().filter(|r| r.provider == Role::Client)),
        },
        "latency_ms_to_provider": distribution(ok().filter_map(|r| r.latency_ms)),
        "query_duration_ms": distribution(churn.iter().filter_map(|r| r.query_ms)),
        "hops": distribution(ok().filter_map(|r| r.hops.map(f64::from))),
        "hop_histogram": hop_histogram(churn.iter().copied()),
        "messages_per_lookup": distribution(churn.iter().filter_map(|r| r.requests.map(f64::from))),
        "failed_requests_per_lookup": distribution(churn.iter().filter_map(|r| r.failed_requests.map(f64::from))),
    })
}

/// Success rate per simulated minute, as (minute, rate, lookups).
pub fn per_minute(records: &[LookupRecord], minutes: u32) -> Vec<(u32, Option<f64>, u64)> {
    (0..=minutes)
        .map(|m| {
            let (mut total, mut ok) = (0u64, 0u64);
            for r in records.iter().filter(|r| r.minute == m) {
                total += 1;
                ok += u64::from(r.ok);
            }
            let rate = (total > 0).then(|| ok as f64 / total as f64);
            (m, rate, total)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(500.0));
        assert_eq!(quantile(&v, 0.999), Some(999.0));
        assert_eq!(quantile(&v, 1.0), Some(1000.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
