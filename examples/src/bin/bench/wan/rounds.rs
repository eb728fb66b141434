//! The repeated measurements of one profile (`--wan-repeat`): iperf3, the bare
//! transport's shapes and p2pd's single-source fetch, round by round on the same path;
//! and the fetch from four home seeders (`--wan-multi-repeat`).
//! Over a lossy link one run says little (iperf3 alone moved 158–511 Mbit/s in runs on
//! the same 1g-lossy path), so the report gives medians beside every round's figure.

pub(super) use crate::report::median;

use super::bare;

/// Bits per second of each round, per measurement.
#[derive(Default)]
pub(super) struct Rounds {
    pub(super) iperf: Vec<f64>,
    pub(super) single: Vec<f64>,
    /// The fetch from four home seeders (`--wan-multi-repeat` rounds).
    pub(super) multi: Vec<f64>,
    /// Per shape of [`bare::SHAPES`]; a shape that failed in a round has no figure for it.
    pub(super) bare: [Vec<f64>; bare::SHAPES.len()],
}

/// `412.3 Mbit/s`, or with several rounds `412.3 Mbit/s (median of 3: 398.0, 412.3, 450.1)`.
pub(super) fn show(rates: &[f64]) -> String {
    let m = format!("{:.1} Mbit/s", median(rates) / 1e6);
    if rates.len() < 2 {
        return m;
    }
    let all: Vec<String> = rates.iter().map(|r| format!("{:.1}", r / 1e6)).collect();
    format!("{m} (median of {}: {})", rates.len(), all.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_their_display() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(show(&[412.3e6]), "412.3 Mbit/s");
        assert_eq!(
            show(&[450.0e6, 398.0e6, 412.3e6]),
            "412.3 Mbit/s (median of 3: 450.0, 398.0, 412.3)"
        );
    }
}
