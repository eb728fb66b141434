//! Running one scenario: a bootstrap node, one seeder, and downloaders, corrupters and
//! freeloaders as the mix asks, all real `p2pd` daemons on 127.0.0.1; every downloader
//! fetches the file at once; churn kills and restarts some of them (by pid, SIGKILL) at
//! random points of their progress; every node's ledger and progress are sampled
//! through its API until every downloader ended or the deadline passed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::api::Endpoint;
use crate::harness::{file_hash, Daemon};
use crate::report::{Measured, NodeResult, ProgressSample, RepSample, Role};

/// What one scenario runs.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// Daemons besides the bootstrap node (one of them the seeder).
    pub daemons: usize,
    pub freeloaders: f64,
    pub corrupters: f64,
    /// Fraction of the downloaders killed and restarted once during the transfer.
    pub churn: f64,
}

/// Settings shared by every scenario.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bin: PathBuf,
    pub source: PathBuf,
    pub file_size: u64,
    pub corrupt_rate: f64,
    /// Upload cap of every daemon, so that the seeder alone cannot serve everyone.
    pub upload_rate: String,
    pub sample_every: Duration,
    pub deadline: Duration,
    pub work: PathBuf,
    pub seed: u64,
}

struct Node {
    name: String,
    role: Role,
    dir: PathBuf,
    args: Vec<String>,
    daemon: Option<Daemon>,
    api: Option<Endpoint>,
    peer_id: String,
    fetch: Option<Child>,
    output: PathBuf,
    completed: Option<f64>,
    /// Kill when this fraction of the file is held (churn), once.
    kill_at: Option<f64>,
    /// Down until this time.
    down_until: Option<Instant>,
    restarts: u32,
    /// Verified bytes fetched by the runs of the download that ended (killed).
    fetched_before: u64,
    /// The current run's verified bytes fetched, as last sampled.
    fetched_now: u64,
}

impl Node {
    fn start(&mut self, bin: &Path) -> anyhow::Result<()> {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let daemon = Daemon::start(bin, &self.dir, &self.name, &args)?;
        self.api = Some(Endpoint::of(&self.dir)?);
        self.peer_id = daemon.peer_id()?;
        self.daemon = Some(daemon);
        Ok(())
    }

    fn start_fetch(&mut self, bin: &Path, cid: &str, deadline: Duration) -> anyhow::Result<()> {
        let child = Command::new(bin)
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["fetch", cid, "-o"])
            .arg(&self.output)
            .args(["--json", "--timeout", &deadline.as_secs().to_string()])
            .env_remove("P2PD_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning fetch")?;
        self.fetch = Some(child);
        Ok(())
    }

    fn stop_fetch(&mut self) {
        if let Some(mut child) = self.fetch.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_fetch();
    }
}

/// Runs one scenario and returns what it measured.
pub fn run(scenario: &Scenario, settings: &Settings) -> anyhow::Result<Measured> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(settings.seed);
    let dir = settings.work.join(&scenario.name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let bootstrap = Daemon::start(
        &settings.bin,
        &dir.join("bootstrap"),
        "bootstrap",
        &["--dht-mode", "server"],
    )?;
    let boot_addr = bootstrap.addr()?;

    let others = scenario.daemons.saturating_sub(1);
    let freeloaders = (scenario.freeloaders * scenario.daemons as f64).round() as usize;
    let corrupters = (scenario.corrupters * scenario.daemons as f64).round() as usize;
    let mut roles = vec![Role::Seeder];
    roles.extend(std::iter::repeat_n(Role::Corrupter, corrupters.min(others)));
    roles.extend(std::iter::repeat_n(
        Role::Freeloader,
        freeloaders.min(others - roles.len() + 1),
    ));
    while roles.len() < scenario.daemons {
        roles.push(Role::Honest);
    }
    let downloaders = roles.iter().filter(|r| r.downloads()).count();
    let churned = (scenario.churn * downloaders as f64).round() as usize;
    let mut churn_left = churned;

    let mut nodes = Vec::new();
    for (i, role) in roles.iter().enumerate() {
        let name = format!("{}{i}", role.name());
        let mut args = vec![
            "--bootstrap".to_string(),
            boot_addr.clone(),
            "--max-upload-rate".to_string(),
            settings.upload_rate.clone(),
        ];
        match role {
            Role::Freeloader => args.push("--test-freeload".into()),
            Role::Corrupter => {
                args.push("--test-corrupt-rate".into());
                args.push(settings.corrupt_rate.to_string());
            }
            Role::Seeder | Role::Honest => {}
        }
        let kill_at = (role.downloads() && churn_left > 0).then(|| {
            churn_left -= 1;
            rng.gen_range(0.1..0.8)
        });
        let mut node = Node {
            output: dir.join(format!("{name}.out")),
            dir: dir.join(&name),
            name,
            role: *role,
            args,
            daemon: None,
            api: None,
            peer_id: String::new(),
            fetch: None,
            completed: None,
            kill_at,
            down_until: None,
            restarts: 0,
            fetched_before: 0,
            fetched_now: 0,
        };
        node.start(&settings.bin)?;
        nodes.push(node);
    }
    let source = settings
        .source
        .to_str()
        .context("source path is not UTF-8")?;
    let mut cid = String::new();
    for node in nodes.iter().filter(|n| !n.role.downloads()) {
        let daemon = node.daemon.as_ref().context("daemon")?;
        let added = daemon
            .cli(&["add", source], Duration::from_secs(600))?
            .ok("add")?;
        cid = added.stdout.lines().last().unwrap_or("").trim().to_string();
    }
    // Let the seeders' announcements reach the DHT before anyone asks.
    wait_for_providers(&nodes, &cid)?;

    let start = Instant::now();
    let source_hash = file_hash(&settings.source)?;
    for node in nodes.iter_mut().filter(|n| n.role.downloads()) {
        node.start_fetch(&settings.bin, &cid, settings.deadline)?;
    }
    let peer_index = |nodes: &[Node], id: &str| nodes.iter().position(|n| n.peer_id == id);
    let mut measured = Measured {
        scenario: scenario.name.clone(),
        file_size: settings.file_size,
        ..Measured::default()
    };
    loop {
        let t = start.elapsed().as_secs_f64();
        // Sample every live node.
        for i in 0..nodes.len() {
            let Some(api) = nodes[i].api.clone() else {
                continue;
            };
            if nodes[i].daemon.is_none() {
                continue;
            }
            if let Ok(Value::Array(table)) = api.get("/api/reputation") {
                for entry in table {
                    let Some(peer) = entry["peer_id"]
                        .as_str()
                        .and_then(|id| peer_index(&nodes, id))
                    else {
                        continue;
                    };
                    measured.reputation.push(RepSample {
                        t,
                        observer: i,
                        peer,
                        score: entry["score"].as_f64().unwrap_or(0.0),
                        banned: entry["banned"].as_bool().unwrap_or(false),
                        received: entry["received"].as_u64().unwrap_or(0),
                        sent: entry["sent"].as_u64().unwrap_or(0),
                        corrupt_chunks: entry["corrupt_chunks"].as_u64().unwrap_or(0),
                        chokes: entry["chokes"].as_u64().unwrap_or(0),
                        taker: entry["taker"].as_bool().unwrap_or(false),
                    });
                }
            }
            if nodes[i].role.downloads() {
                if let Ok(Value::Array(downloads)) = api.get("/api/downloads") {
                    if let Some(d) = downloads.iter().find(|d| d["cid"] == cid.as_str()) {
                        let done = d["bytes_done"].as_u64().unwrap_or(0);
                        nodes[i].fetched_now = d["bytes_received"].as_u64().unwrap_or(0);
                        measured.progress.push(ProgressSample {
                            t,
                            node: i,
                            bytes_done: done,
                        });
                        churn(&mut nodes[i], done, settings, &mut rng);
                    }
                }
            }
        }
        // Restart the churned nodes whose downtime is over, and their fetch.
        for node in nodes.iter_mut() {
            if node.down_until.is_some_and(|t| t <= Instant::now()) {
                node.down_until = None;
                node.start(&settings.bin)?;
                node.start_fetch(&settings.bin, &cid, settings.deadline)?;
            }
        }
        // Ended fetches.
        for node in nodes.iter_mut() {
            if let Some(child) = node.fetch.as_mut() {
                if let Some(status) = child.try_wait()? {
                    node.fetch = None;
                    if status.success() {
                        node.completed = Some(start.elapsed().as_secs_f64());
                    } else if node.down_until.is_none() {
                        eprintln!("lab: {}: fetch failed ({status})", node.name);
                    }
                }
            }
        }
        let running = nodes
            .iter()
            .any(|n| n.fetch.is_some() || n.down_until.is_some());
        if !running || start.elapsed() > settings.deadline {
            break;
        }
        std::thread::sleep(settings.sample_every);
    }
    measured.secs = start.elapsed().as_secs_f64();
    // Each node's own totals, from its ledger.
    for node in &nodes {
        let (mut up, mut down) = (0, 0);
        if let Some(Ok(Value::Array(table))) = node.api.as_ref().map(|a| a.get("/api/reputation")) {
            for entry in table {
                up += entry["sent"].as_u64().unwrap_or(0);
                down += entry["received"].as_u64().unwrap_or(0);
            }
        }
        let intact = node
            .output
            .exists()
            .then(|| file_hash(&node.output).map(|h| h == source_hash))
            .transpose()?;
        measured.nodes.push(NodeResult {
            name: node.name.clone(),
            role: node.role,
            completed_secs: node.completed,
            intact,
            up,
            down,
            fetched: node.fetched_before + node.fetched_now,
            restarts: node.restarts,
        });
    }
    drop(nodes);
    drop(bootstrap);
    // Twenty daemons holding a 256 MiB file each fill gigabytes: gone once measured.
    // A killed daemon may still be closing its files: tried again for a few seconds.
    let mut tries = 0;
    while let Err(e) = std::fs::remove_dir_all(&dir) {
        tries += 1;
        if tries >= 10 {
            eprintln!("lab: warning: cannot delete {}: {e}", dir.display());
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(measured)
}

/// Churn: kills a node (SIGKILL, by pid) once it holds its chosen fraction of the file;
/// it comes back 2 to 5 s later.
fn churn(node: &mut Node, done: u64, settings: &Settings, rng: &mut impl Rng) {
    let Some(at) = node.kill_at else { return };
    if (done as f64) < at * settings.file_size as f64 || node.completed.is_some() {
        return;
    }
    node.kill_at = None;
    node.restarts += 1;
    node.fetched_before += node.fetched_now;
    node.fetched_now = 0;
    node.daemon = None; // Drop kills it by pid.
    node.stop_fetch();
    node.down_until = Some(Instant::now() + Duration::from_millis(rng.gen_range(2000..5000)));
}

/// Waits (at most 60 s) until every seeder's announcement of `cid` reached a DHT
/// server, as `GET /api/files` reports it.
fn wait_for_providers(nodes: &[Node], cid: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for node in nodes.iter().filter(|n| !n.role.downloads()) {
        let Some(api) = &node.api else { continue };
        loop {
            let files = api.get("/api/files")?;
            let announced =
                files.as_array().into_iter().flatten().any(|f| {
                    f["cid"] == cid && f["announcement"]["peers"].as_u64().unwrap_or(0) > 0
                });
            if announced {
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!("{} did not announce the file within 60 s", node.name);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}
