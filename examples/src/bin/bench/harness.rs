//! Starting real `p2pd` daemons on 127.0.0.1 and running CLI commands against them, the
//! same way the multi-process test harness (`tests/tests/harness/`) does, but returning
//! errors instead of panicking. Every daemon is killed by its pid when its [`Daemon`] is
//! dropped, and its pid is registered so that an interrupted benchmark can kill it too.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
pub use p2pd_examples::procfs::{proc_status_bytes, proc_status_value, CpuMeter};
use serde_json::Value;

/// Longest a daemon may take to answer its API after start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a short CLI command (`id`, `status`) may take.
const SHORT_TIMEOUT: Duration = Duration::from_secs(30);

/// `RUST_LOG` for the daemons (`--daemon-log`); unset: the daemon's default level.
pub static DAEMON_LOG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Pids of the daemons alive now, for the interrupt handler.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<u32>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Kills every daemon still registered (by pid, SIGKILL). For the interrupt handler.
pub fn kill_all_registered() {
    for pid in live().drain(..) {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
    }
}

/// Completes on Ctrl-C or SIGTERM (the benchmark then kills its daemons and stops).
pub async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A helper process (iperf3 server, sendme sender…): registered like a daemon so that an
/// interrupted benchmark kills it, and killed by its pid when dropped.
pub struct Helper {
    child: Child,
}

impl Helper {
    /// Spawns `command` (its stdout and stderr as the command sets them).
    pub fn spawn(command: &mut Command) -> anyhow::Result<Self> {
        let child = command
            .spawn()
            .with_context(|| format!("spawning {:?}", command.get_program()))?;
        live().push(child.id());
        Ok(Helper { child })
    }

    /// The child, to take its pipes or wait for it.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for it to exit on its own, up to `timeout`; kills it after that.
    pub fn wait(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("{} did not finish within {timeout:?}", self.child.id());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = self.child.kill();
        let _ = self.child.wait();
        live().retain(|p| *p != pid);
    }
}

/// The output of a CLI command, and how long it ran (from spawn to exit).
#[derive(Debug)]
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub wall: Duration,
}

impl CliRun {
    /// Fails with the output unless the command exited 0.
    pub fn ok(self, what: &str) -> anyhow::Result<Self> {
        if self.code != 0 {
            bail!(
                "{what} failed (exit {}): {}{}",
                self.code,
                self.stderr.trim(),
                self.stdout.trim()
            );
        }
        Ok(self)
    }

    /// Stdout parsed as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(self.stdout.trim())
            .with_context(|| format!("stdout is not JSON: {}", self.stdout))
    }
}

/// Runs `bin --data-dir dir args…`, killing it after `timeout`.
pub fn run_cli(
    bin: &Path,
    data_dir: &Path,
    args: &[&str],
    timeout: Duration,
) -> anyhow::Result<CliRun> {
    run_cli_in(None, bin, data_dir, args, timeout)
}

/// A command that runs `bin`, inside network namespace `netns` if given (`ip netns exec`
/// enters the namespace and then executes `bin` in the same process, so the child's pid
/// is `bin`'s).
pub fn command_in(netns: Option<&str>, bin: &Path) -> Command {
    match netns {
        None => Command::new(bin),
        Some(ns) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", ns]).arg(bin);
            command
        }
    }
}

/// [`run_cli`] inside network namespace `netns` (a daemon's control API listens on the
/// loopback of its own namespace).
pub fn run_cli_in(
    netns: Option<&str>,
    bin: &Path,
    data_dir: &Path,
    args: &[&str],
    timeout: Duration,
) -> anyhow::Result<CliRun> {
    let start = Instant::now();
    let mut child = command_in(netns, bin)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("P2PD_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {}", bin.display()))?;
    // Read the pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().context("stdout pipe")?;
    let mut err = child.stderr.take().context("stderr pipe")?;
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("p2pd {} timed out after {timeout:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = start.elapsed();
    Ok(CliRun {
        code: status.code().unwrap_or(-1),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        wall,
    })
}

/// A running `p2pd daemon`.
pub struct Daemon {
    child: Child,
    bin: PathBuf,
    /// The network namespace it runs in (`None`: this process's).
    netns: Option<String>,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// A short name for messages.
    pub name: String,
}

impl Daemon {
    /// Starts a daemon in `data_dir` listening on 127.0.0.1 (ephemeral ports, no mDNS)
    /// with `extra` arguments, and waits until its API answers.
    pub fn start(bin: &Path, data_dir: &Path, name: &str, extra: &[&str]) -> anyhow::Result<Self> {
        Self::start_in(None, &["/ip4/127.0.0.1/tcp/0"], bin, data_dir, name, extra)
    }

    /// [`Daemon::start`] inside network namespace `netns`, listening on `listen`.
    pub fn start_in(
        netns: Option<&str>,
        listen: &[&str],
        bin: &Path,
        data_dir: &Path,
        name: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let _ = std::fs::remove_file(data_dir.join("api.json"));
        let log = File::create(data_dir.join("stderr.log"))?;
        let mut command = command_in(netns, bin);
        match DAEMON_LOG.get() {
            Some(filter) => command.env("RUST_LOG", filter),
            // The daemon's default log level, as a user would run it.
            None => command.env_remove("RUST_LOG"),
        };
        let child = command
            .arg("--data-dir")
            .arg(data_dir)
            .arg("daemon")
            .args(listen.iter().flat_map(|addr| ["--listen", addr]))
            .args(["--api", "127.0.0.1:0", "--no-mdns", "--no-upnp"])
            .args(extra)
            .env_remove("P2PD_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        live().push(child.id());
        let mut daemon = Daemon {
            child,
            bin: bin.to_path_buf(),
            netns: netns.map(str::to_string),
            data_dir: data_dir.to_path_buf(),
            name: name.to_string(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = daemon.child.try_wait()? {
                bail!(
                    "daemon {name} exited early ({status}): {}",
                    daemon.log_tail()
                );
            }
            if data_dir.join("api.json").exists() && daemon.cli(&["id"], SHORT_TIMEOUT)?.code == 0 {
                return Ok(daemon);
            }
            if Instant::now() > deadline {
                bail!("daemon {name} did not answer within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs a CLI command against this daemon.
    pub fn cli(&self, args: &[&str], timeout: Duration) -> anyhow::Result<CliRun> {
        run_cli_in(
            self.netns.as_deref(),
            &self.bin,
            &self.data_dir,
            args,
            timeout,
        )
    }

    /// Its first TCP listen address with `/p2p/<id>`, to bootstrap others from.
    pub fn addr(&self) -> anyhow::Result<String> {
        let id = self
            .cli(&["id", "--json"], SHORT_TIMEOUT)?
            .ok("id")?
            .json()?;
        id["addrs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|a| a.contains("/tcp/"))
            .map(str::to_string)
            .context("the daemon has no TCP address")
    }

    /// Its peer id.
    pub fn peer_id(&self) -> anyhow::Result<String> {
        let id = self
            .cli(&["id", "--json"], SHORT_TIMEOUT)?
            .ok("id")?
            .json()?;
        id["peer_id"]
            .as_str()
            .map(str::to_string)
            .context("no peer_id in `id --json`")
    }

    /// `status --json`.
    pub fn status(&self) -> anyhow::Result<Value> {
        self.cli(&["status", "--json"], SHORT_TIMEOUT)?
            .ok("status")?
            .json()
    }

    /// Waits until the node has a confirmed external address (`status` says
    /// `nat_status: public`), so that what it announces carries its addresses. Returns
    /// how long that took.
    pub fn wait_public(&self, timeout: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        loop {
            if self.status()?["node"]["nat_status"] == "public" {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                bail!("{} had no confirmed address after {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every file it holds is announced to at least one DHT server.
    pub fn wait_announced(&self, timeout: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            let ls = self
                .cli(&["ls", "--json"], Duration::from_secs(30))?
                .ok("ls")?
                .json()?;
            let done = ls.as_array().is_some_and(|l| {
                !l.is_empty()
                    && l.iter()
                        .all(|f| f["announcement"]["peers"].as_u64().unwrap_or(0) > 0)
            });
            if done {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("{}: files not announced within {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A field of `/proc/<pid>/status` in bytes (e.g. `VmHWM`, `VmRSS`).
    pub fn proc_status_bytes(&self, field: &str) -> anyhow::Result<u64> {
        proc_status_bytes(self.pid(), field)
    }

    /// The last lines of its log, for error messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.data_dir.join("stderr.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        format!(
            "last lines of {}'s log:\n{}",
            self.name,
            lines[lines.len().saturating_sub(20)..].join("\n")
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = self.child.kill();
        let _ = self.child.wait();
        live().retain(|p| *p != pid);
    }
}

/// Writes `len` pseudo-random bytes, deterministic in `seed` (xorshift64), to `path`.
pub fn random_file(path: &Path, len: u64, seed: u64) -> anyhow::Result<()> {
    fill_random(path, len, seed)?.sync_all()?;
    Ok(())
}

/// [`random_file`] without the final `fsync`: the file's pages may still be dirty when
/// this returns (as right after a user wrote it). Returns the open file.
pub fn fill_random(path: &Path, len: u64, seed: u64) -> anyhow::Result<File> {
    let mut file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(file)
}

/// BLAKE3 of a file on all cores, hex.
pub fn file_hash(path: &Path) -> anyhow::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_mmap_rayon(path)
        .with_context(|| format!("hashing {}", path.display()))?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Samples a process's resident memory and thread count every 10 ms until stopped.
pub struct MemSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<(u64, u64)>,
}

impl MemSampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let (mut rss, mut threads) = (0, 0);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                rss = rss.max(proc_status_bytes(pid, "VmRSS").unwrap_or(0));
                threads = threads.max(proc_status_value(pid, "Threads").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(10));
            }
            (rss, threads)
        });
        MemSampler { stop, handle }
    }

    /// Stops; returns the largest RSS (bytes) and thread count seen.
    pub fn stop(self) -> (u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap_or((0, 0))
    }
}
