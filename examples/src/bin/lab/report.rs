//! What one scenario measured, and the figures computed from it: completion times per
//! peer type, bans of corrupters, corrupt outputs, Jain's fairness index, bytes
//! downloaded twice. Written as CSV (every sample) and JSON (the summary).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

/// What a daemon of the lab is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Holds the file from the start and behaves.
    Seeder,
    /// Downloads the file and behaves.
    Honest,
    /// Downloads the file and refuses every upload (`--test-freeload`).
    Freeloader,
    /// Holds the file and serves some chunks corrupt (`--test-corrupt-rate`).
    Corrupter,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Seeder => "seeder",
            Role::Honest => "honest",
            Role::Freeloader => "freeloader",
            Role::Corrupter => "corrupter",
        }
    }

    /// Whether it downloads the file.
    pub fn downloads(self) -> bool {
        matches!(self, Role::Honest | Role::Freeloader)
    }

    /// Every role, in plot order.
    pub const ALL: [Role; 4] = [
        Role::Seeder,
        Role::Honest,
        Role::Freeloader,
        Role::Corrupter,
    ];
}

/// One daemon's results.
#[derive(Debug, Clone)]
pub struct NodeResult {
    pub name: String,
    pub role: Role,
    /// Seconds from the start of the transfer to the end of its fetch.
    pub completed_secs: Option<f64>,
    /// Whether its output has the source's bytes (`None`: it wrote none).
    pub intact: Option<bool>,
    /// Bytes it sent, and verified bytes it received, per its own ledger.
    pub up: u64,
    pub down: u64,
    /// Verified bytes received over the network, all runs of its fetch together.
    pub fetched: u64,
    /// Times it was killed and restarted.
    pub restarts: u32,
}

/// One observer's view of one peer at one time.
#[derive(Debug, Clone)]
pub struct RepSample {
    pub t: f64,
    pub observer: usize,
    pub peer: usize,
    pub score: f64,
    pub banned: bool,
    pub received: u64,
    /// Bytes the observer sent the peer.
    pub sent: u64,
    pub corrupt_chunks: u64,
    /// Chunk requests of the observer's that the peer answered `Choked`.
    pub chokes: u64,
    /// Whether the observer judges the peer a taker (optimistic slot only).
    pub taker: bool,
}

/// One daemon's progress at one time.
#[derive(Debug, Clone)]
pub struct ProgressSample {
    pub t: f64,
    pub node: usize,
    pub bytes_done: u64,
}

/// Everything one scenario measured.
#[derive(Debug, Default)]
pub struct Measured {
    pub scenario: String,
    pub file_size: u64,
    pub nodes: Vec<NodeResult>,
    pub reputation: Vec<RepSample>,
    pub progress: Vec<ProgressSample>,
    /// Wall time of the transfer (until every downloader ended).
    pub secs: f64,
}

/// Jain's fairness index of `xs`: 1 when all are equal, 1/n when one has everything.
pub fn jain(xs: &[f64]) -> Option<f64> {
    let sum: f64 = xs.iter().sum();
    let squares: f64 = xs.iter().map(|x| x * x).sum();
    (!xs.is_empty() && squares > 0.0).then(|| sum * sum / (xs.len() as f64 * squares))
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

impl Measured {
    fn role_of(&self, node: usize) -> Role {
        self.nodes[node].role
    }

    /// Completion times of the downloaders of `role`.
    /// Completion times of the `role`'s downloaders, counting one that did not finish
    /// with the scenario's whole duration (a lower bound of its time).
    pub fn completion_or_end(&self, role: Role) -> Vec<f64> {
        self.nodes
            .iter()
            .filter(|n| n.role == role)
            .map(|n| n.completed_secs.unwrap_or(self.secs))
            .collect()
    }

    pub fn completion(&self, role: Role) -> Vec<f64> {
        self.nodes
            .iter()
            .filter(|n| n.role == role)
            .filter_map(|n| n.completed_secs)
            .collect()
    }

    /// The last sample of each (observer, peer) pair.
    fn last_views(&self) -> BTreeMap<(usize, usize), &RepSample> {
        let mut last = BTreeMap::new();
        for s in &self.reputation {
            last.insert((s.observer, s.peer), s);
        }
        last
    }

    /// Corrupter bans: (honest observers that received a chunk from a corrupter,
    /// of which banned it, most bad chunks any needed before the ban).
    pub fn corrupter_bans(&self) -> (usize, usize, u64) {
        let (mut exposed, mut banned, mut worst) = (0, 0, 0);
        for ((observer, peer), s) in self.last_views() {
            if self.role_of(observer) != Role::Honest || self.role_of(peer) != Role::Corrupter {
                continue;
            }
            if s.corrupt_chunks == 0 && s.received == 0 {
                continue;
            }
            exposed += 1;
            if s.banned {
                banned += 1;
            }
            worst = worst.max(s.corrupt_chunks);
        }
        (exposed, banned, worst)
    }

    /// Honest downloaders' upload/download ratios.
    pub fn honest_ratios(&self) -> Vec<f64> {
        self.nodes
            .iter()
            .filter(|n| n.role == Role::Honest && n.down > 0)
            .map(|n| n.up as f64 / n.down as f64)
            .collect()
    }

    /// Bytes fetched over the network beyond one copy per downloader, as a fraction of
    /// those copies.
    pub fn downloaded_twice(&self) -> Option<f64> {
        let downloaders: Vec<&NodeResult> =
            self.nodes.iter().filter(|n| n.role.downloads()).collect();
        let needed = self.file_size * downloaders.len() as u64;
        let fetched: u64 = downloaders.iter().map(|n| n.fetched).sum();
        (needed > 0).then(|| fetched.saturating_sub(needed) as f64 / needed as f64)
    }

    /// The scenario's figures, and whether each target of docs/lab.md is reached.
    pub fn summary(&self) -> Value {
        let (exposed, banned, worst) = self.corrupter_bans();
        let honest = self.completion(Role::Honest);
        let freeloaders = self.completion_or_end(Role::Freeloader);
        let freeloaders_completed = self.completion(Role::Freeloader).len();
        let honest_total = self.nodes.iter().filter(|n| n.role == Role::Honest).count();
        let corrupt_outputs = self
            .nodes
            .iter()
            .filter(|n| n.intact == Some(false))
            .count();
        let ratio = match (mean(&freeloaders), mean(&honest)) {
            (Some(f), Some(h)) if h > 0.0 => Some(f / h),
            _ => None,
        };
        let fairness = jain(&self.honest_ratios());
        let twice = self.downloaded_twice();
        let restarts: u32 = self.nodes.iter().map(|n| n.restarts).sum();
        json!({
            "scenario": self.scenario,
            "daemons": self.nodes.len(),
            "file_size": self.file_size,
            "secs": self.secs,
            "mean_completion_secs": Role::ALL.iter().filter_map(|r| {
                mean(&self.completion(*r)).map(|m| (r.name().to_string(), json!(m)))
            }).collect::<serde_json::Map<_, _>>(),
            "honest_completed": honest.len(),
            "freeloaders_completed": freeloaders_completed,
            "honest_total": honest_total,
            "corrupt_outputs": corrupt_outputs,
            "corrupter_exposures": exposed,
            "corrupter_bans": banned,
            "most_bad_chunks_before_ban": worst,
            "freeloader_to_honest_time": ratio,
            "jain_honest_ratio": fairness,
            "downloaded_twice": twice,
            "restarts": restarts,
            "targets": {
                "no_corrupt_byte": corrupt_outputs == 0,
                "every_exposed_honest_peer_banned_each_corrupter_within_3": banned == exposed && worst <= 3,
                "every_honest_peer_completed": honest.len() == honest_total,
                "freeloaders_at_least_twice_as_slow": ratio.map(|r| r >= 2.0),
                "jain_at_least_0_9": fairness.map(|j| j >= 0.9),
                "at_most_10_percent_twice": if restarts > 0 { twice.map(|t| t <= 0.10) } else { None },
            },
        })
    }

    /// Writes `<scenario>-reputation.csv`, `-progress.csv` and `-nodes.csv` in `dir`.
    pub fn write_csv(&self, dir: &Path) -> anyhow::Result<()> {
        let mut rep = String::from(
            "t,observer,observer_role,peer,peer_role,score,banned,received,sent,corrupt_chunks,chokes,taker\n",
        );
        for s in &self.reputation {
            let _ = writeln!(
                rep,
                "{:.1},{},{},{},{},{},{},{},{},{},{},{}",
                s.t,
                self.nodes[s.observer].name,
                self.role_of(s.observer).name(),
                self.nodes[s.peer].name,
                self.role_of(s.peer).name(),
                s.score,
                s.banned,
                s.received,
                s.sent,
                s.corrupt_chunks,
                s.chokes,
                s.taker
            );
        }
        std::fs::write(dir.join(format!("{}-reputation.csv", self.scenario)), rep)?;
        let mut progress = String::from("t,node,role,bytes_done\n");
        for s in &self.progress {
            let _ = writeln!(
                progress,
                "{:.1},{},{},{}",
                s.t,
                self.nodes[s.node].name,
                self.role_of(s.node).name(),
                s.bytes_done
            );
        }
        std::fs::write(
            dir.join(format!("{}-progress.csv", self.scenario)),
            progress,
        )?;
        let mut nodes =
            String::from("node,role,completed_secs,intact,bytes_up,bytes_down,fetched,restarts\n");
        for n in &self.nodes {
            let _ = writeln!(
                nodes,
                "{},{},{},{},{},{},{},{}",
                n.name,
                n.role.name(),
                n.completed_secs
                    .map_or(String::new(), |s| format!("{s:.1}")),
                n.intact.map_or(String::new(), |b| b.to_string()),
                n.up,
                n.down,
                n.fetched,
                n.restarts
            );
        }
        std::fs::write(dir.join(format!("{}-nodes.csv", self.scenario)), nodes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_is_one_when_equal_and_one_over_n_when_one_takes_all() {
        assert_eq!(jain(&[2.0, 2.0, 2.0]), Some(1.0));
        assert!((jain(&[1.0, 0.0, 0.0, 0.0]).unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(jain(&[]), None);
        assert_eq!(jain(&[0.0]), None);
    }

    #[test]
    fn bans_are_counted_only_for_exposed_honest_observers() {
        let node = |role| NodeResult {
            name: format!("{role:?}"),
            role,
            completed_secs: None,
            intact: None,
            up: 0,
            down: 0,
            fetched: 0,
            restarts: 0,
        };
        let sample = |observer, peer, banned, received, corrupt_chunks| RepSample {
            t: 1.0,
            observer,
            peer,
            score: 0.0,
            banned,
            received,
            sent: 0,
            corrupt_chunks,
            chokes: 0,
            taker: false,
        };
        let m = Measured {
            nodes: vec![
                node(Role::Honest),
                node(Role::Honest),
                node(Role::Corrupter),
            ],
            reputation: vec![
                // Observer 0 got a bad chunk and banned; observer 1 never got a chunk.
                sample(0, 2, false, 0, 0),
                sample(0, 2, true, 0, 2),
                sample(1, 2, false, 0, 0),
            ],
            ..Measured::default()
        };
        assert_eq!(m.corrupter_bans(), (1, 1, 2));
    }
}
