//! The live progress bar of `p2pd fetch` on a terminal: bytes, the download's rate and
//! ETA as the engine measures them, and its sources, direct or relayed (the daemon's
//! peer list, looked up every few seconds). Nothing is drawn when stderr is not a
//! terminal or with `--json`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::human_bytes;
use crate::api::types::PeerView;
use crate::client::ApiClient;

/// How often the sources' paths (direct or relayed) are looked up again.
const PATHS_EVERY: Duration = Duration::from_secs(2);

/// A fetch's bar, made once the file's size is known.
pub struct FetchBar {
    bar: Option<ProgressBar>,
    /// Whether each connected peer is reached directly, by peer id.
    direct: HashMap<String, bool>,
    paths_at: Option<Instant>,
    enabled: bool,
}

impl FetchBar {
    /// A bar that draws only on a terminal, and never with `--json`.
    pub fn new(json: bool) -> Self {
        FetchBar {
            bar: None,
            direct: HashMap::new(),
            paths_at: None,
            enabled: !json && std::io::stderr().is_terminal(),
        }
    }

    /// Whether the sources' paths are due for a new look-up.
    pub fn paths_due(&self) -> bool {
        self.enabled && self.paths_at.is_none_or(|t| t.elapsed() >= PATHS_EVERY)
    }

    /// Looks up which peers are reached directly (a failure leaves the last answer).
    pub async fn refresh_paths(&mut self, client: &ApiClient) {
        self.paths_at = Some(Instant::now());
        if let Ok(peers) = client.get::<Vec<PeerView>>("/api/peers").await {
            self.direct = peers
                .into_iter()
                .map(|p| (p.info.peer_id, p.info.direct))
                .collect();
        }
    }

    /// Shows a progress line of the download.
    pub fn update(&mut self, p: &Value) {
        if !self.enabled {
            return;
        }
        let size = p["size"].as_u64().unwrap_or(0);
        if size == 0 {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(size);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        bar.set_position(p["bytes_done"].as_u64().unwrap_or(0));
        bar.set_message(message(p, &self.direct));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `2.0 MiB/s, ETA 12s, 3 sources (2 direct, 1 relayed)`.
fn message(p: &Value, direct: &HashMap<String, bool>) -> String {
    let rate = p["rate"].as_f64().unwrap_or(0.0);
    let eta = p["eta_secs"]
        .as_f64()
        .map_or("-".to_string(), |s| format!("{}s", s.ceil() as u64));
    let sending = p["peers"].as_u64().unwrap_or(0);
    let sources: Vec<&str> = p["per_peer"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["peer_id"].as_str()).collect())
        .unwrap_or_default();
    let relayed = sources
        .iter()
        .filter(|id| direct.get(**id) == Some(&false))
        .count();
    format!(
        "{}/s, ETA {eta}, {} source{} ({} direct, {relayed} relayed), {sending} sending now",
        human_bytes(rate as u64),
        sources.len(),
        if sources.len() == 1 { "" } else { "s" },
        sources.len() - relayed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_counts_sources_by_path() {
        let p = serde_json::json!({
            "rate": 2097152.0, "eta_secs": 11.2, "peers": 2,
            "per_peer": [{"peer_id": "a", "bytes": 1}, {"peer_id": "b", "bytes": 2},
                         {"peer_id": "c", "bytes": 3}],
        });
        let direct = HashMap::from([("a".to_string(), true), ("b".to_string(), false)]);
        assert_eq!(
            message(&p, &direct),
            "2.0 MiB/s, ETA 12s, 3 sources (2 direct, 1 relayed), 2 sending now"
        );
    }
}
