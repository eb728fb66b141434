//! A small harness for multi-process tests: start real `p2pd` daemons in temporary data
//! directories on 127.0.0.1, run CLI commands against them, wait for conditions with
//! deadlines, and inject failures (kill, restart). Every daemon is killed by its pid when
//! its [`Daemon`] value is dropped, so a failing test leaves no process behind.
//!
//! Each test file under `tests/tests/` is an integration test of the `p2pd` package (a
//! `[[test]]` entry in `node/Cargo.toml`) and includes this module with `mod harness;`.
//! That is what gives it `CARGO_BIN_EXE_p2pd`: the path of the binary cargo built for
//! this very test run, so a stale `target/*/p2pd` is never what is tested.
// Each test file uses part of the harness; the rest is dead code in that test binary.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod http;
mod process;
pub mod skip;

pub use skip::Needs;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest a single CLI command may run in a test.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest a daemon may take to answer its API after start.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `p2pd` binary under test: the one cargo built for this test run, with the
/// `test-faults` feature (node/Cargo.toml turns it on for the package's tests).
pub fn p2pd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_p2pd"))
}

/// A command that runs `p2pd`, inside network namespace `netns` if given. The test
/// run's environment does not configure it: no `P2PD_*` variable reaches it (each sets
/// a daemon option) and no configuration file from the user's config directory.
pub fn p2pd_command(netns: Option<&str>) -> Command {
    let mut command = match netns {
        None => Command::new(p2pd_bin()),
        Some(ns) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", ns]).arg(p2pd_bin());
            command
        }
    };
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("P2PD_") {
            command.env_remove(name);
        }
    }
    command.env("XDG_CONFIG_HOME", no_config_dir());
    command
}

/// A configuration directory with no p2pd file in it.
pub fn no_config_dir() -> PathBuf {
    std::env::temp_dir().join("p2pd-tests-without-config")
}

/// Runs `p2pd` with `args`, killing it after `timeout`.
pub fn run_p2pd(args: &[&str], timeout: Duration) -> Output {
    run_p2pd_in(None, args, timeout)
}

/// Runs `p2pd` with `args` in a network namespace, killing it after `timeout`.
pub fn run_p2pd_in(netns: Option<&str>, args: &[&str], timeout: Duration) -> Output {
    wait_output(spawn_p2pd(netns, args), timeout)
}

/// Starts `p2pd` with `args` (inside `netns` if given), its output captured.
fn spawn_p2pd(netns: Option<&str>, args: &[&str]) -> Child {
    p2pd_command(netns)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn p2pd")
}

/// Waits for a child with a deadline; kills it if the deadline passes. Its stdout and
/// stderr are read while it runs, so a child that writes more than a pipe holds (64 KiB)
/// is not blocked waiting for a reader.
pub fn wait_output(mut child: Child, timeout: Duration) -> Output {
    fn drain(
        pipe: Option<impl std::io::Read + Send + 'static>,
    ) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let (status, timed_out) = loop {
        match child.try_wait().expect("wait for child") {
            Some(status) => break (status, false),
            None if Instant::now() > deadline => {
                let _ = child.kill();
                break (child.wait().expect("wait for killed child"), true);
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let output = Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    assert!(
        !timed_out,
        "command timed out after {timeout:?}; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Polls `condition` every 100 ms until it holds; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts a CLI command in the background (for a fetch to interrupt); finish it with
/// [`finish`].
pub fn spawn_cli(data_dir: &Path, args: &[&str]) -> Child {
    let mut all = vec!["--data-dir", data_dir.to_str().unwrap()];
    all.extend_from_slice(args);
    spawn_p2pd(None, &all)
}

/// Waits for a background CLI command.
pub fn finish(child: Child) -> CliResult {
    wait_output(child, CLI_TIMEOUT).into()
}

/// A CLI command's result.
#[derive(Debug)]
pub struct CliResult {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliResult {
    /// Panics with the output unless the command succeeded.
    pub fn success(self) -> Self {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self
    }

    /// The last line of stdout.
    pub fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or("").trim()
    }

    /// Stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// Asserts the error contract: the given exit code, one `error: …` line on stderr,
    /// no panic or backtrace.
    pub fn assert_clean_error(&self, code: i32) {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "expected one error line: {self:?}");
        assert!(
            lines[0].starts_with("error: "),
            "not an error line: {self:?}"
        );
        assert!(!self.stderr.contains("panicked"), "panic: {self:?}");
    }
}

impl From<Output> for CliResult {
    fn from(out: Output) -> CliResult {
        CliResult {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs the CLI against a data directory.
pub fn cli(data_dir: &Path, args: &[&str]) -> CliResult {
    cli_in(None, data_dir, args)
}

/// Runs the CLI against a data directory with `stdin` as its standard input (how a
/// password is given without a terminal).
pub fn cli_with_stdin(data_dir: &Path, args: &[&str], stdin: &str) -> CliResult {
    use std::io::Write as _;
    let mut child = p2pd_command(None)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn p2pd");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    wait_output(child, CLI_TIMEOUT).into()
}

/// Runs the CLI against a data directory, inside a network namespace if given (the
/// daemon's API is on the loopback of its namespace).
pub fn cli_in(netns: Option<&str>, data_dir: &Path, args: &[&str]) -> CliResult {
    let mut all = vec!["--data-dir", data_dir.to_str().unwrap()];
    all.extend_from_slice(args);
    run_p2pd_in(netns, &all, CLI_TIMEOUT).into()
}

/// A running `p2pd daemon` process.
pub struct Daemon {
    child: Option<Child>,
    /// Its data directory.
    pub data_dir: PathBuf,
    args: Vec<String>,
    netns: Option<String>,
    listen: Vec<String>,
    mdns: bool,
    stderr: Option<std::fs::File>,
}

impl Daemon {
    /// Starts a daemon on 127.0.0.1 (ephemeral ports, no mDNS) in `data_dir` with extra
    /// `args`, and waits until its API answers.
    pub fn start(data_dir: &Path, args: &[&str]) -> Daemon {
        let mut daemon = Daemon::launch(data_dir, args);
        daemon.spawn();
        daemon
    }

    /// Starts a daemon inside network namespace `netns` (if given), listening on
    /// `listen`, and waits until its API answers.
    pub fn start_in(
        netns: Option<&str>,
        listen: &[&str],
        data_dir: &Path,
        args: &[&str],
    ) -> Daemon {
        let mut daemon = Daemon::launch(data_dir, args);
        daemon.netns = netns.map(str::to_string);
        daemon.listen = listen.iter().map(|s| s.to_string()).collect();
        daemon.spawn();
        daemon
    }

    /// A daemon on 127.0.0.1 like [`Daemon::start`]'s, not started yet: call
    /// [`Daemon::spawn_process`] (returns at once) or [`Daemon::restart`] (waits for the
    /// API).
    pub fn launch(data_dir: &Path, args: &[&str]) -> Daemon {
        Daemon {
            child: None,
            data_dir: data_dir.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            netns: None,
            listen: vec!["/ip4/127.0.0.1/tcp/0".to_string()],
            mdns: false,
            stderr: None,
        }
    }

    fn spawn(&mut self) {
        self.spawn_process();
        self.wait_ready();
    }

    /// Starts the process and returns at once; its stderr goes to `stderr.log` in the
    /// data directory.
    pub fn spawn_process(&mut self) {
        // Private, as the daemon wants its data directory (it would fix and warn).
        {
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.data_dir)
                .unwrap();
            let _ = std::fs::remove_file(self.data_dir.join("api.json"));
            let log = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(self.data_dir.join("stderr.log"))
                .unwrap();
            self.stderr = Some(log);
        }
        let log = self.stderr.take().unwrap();
        let mut command = p2pd_command(self.netns.as_deref());
        command.arg("--data-dir").arg(&self.data_dir).arg("daemon");
        for addr in &self.listen {
            command.args(["--listen", addr]);
        }
        // No UPnP: its gateway search multicasts on the host's network, and tests keep
        // their traffic on loopback and their own namespaces.
        command.args(["--api", "127.0.0.1:0", "--no-upnp"]);
        if !self.mdns {
            command.arg("--no-mdns");
        }
        let child = command
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("P2PD_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn p2pd daemon");
        self.child = Some(child);
    }

    /// Waits until the daemon's API answers; panics with its log if it exits first.
    fn wait_ready(&mut self) {
        let dir = self.data_dir.clone();
        let netns = self.netns.clone();
        wait_until("the daemon's API", START_TIMEOUT, || {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("daemon exited early ({status}): {}", self.log());
                }
            }
            dir.join("api.json").exists() && cli_in(netns.as_deref(), &dir, &["id"]).code == 0
        });
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("stderr.log")).unwrap_or_default()
    }

    /// The one-time web setup link of a daemon without a password: it is in the data
    /// directory's `setup-link` file, never in a log.
    pub fn setup_link(&self) -> String {
        let path = self.data_dir.join("setup-link");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        text.trim().to_string()
    }

    /// Runs a CLI command against this daemon.
    pub fn cli(&self, args: &[&str]) -> CliResult {
        cli_in(self.netns.as_deref(), &self.data_dir, args)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Its peer id.
    pub fn peer_id(&self) -> String {
        self.cli(&["id", "--json"]).success().json()["peer_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Its first TCP listen address with `/p2p/<id>`, to bootstrap others from.
    pub fn addr(&self) -> String {
        let id = self.cli(&["id", "--json"]).success().json();
        id["addrs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .find(|a| a.contains("/tcp/"))
            .expect("a TCP address")
            .to_string()
    }

    /// The progress of this node's download of `cid`, if it runs one.
    pub fn download(&self, cid: &str) -> Option<Value> {
        let status = self.cli(&["status", "--json"]);
        if status.code != 0 {
            return None;
        }
        status.json()["downloads"]
            .as_array()?
            .iter()
            .find(|d| d["cid"] == cid)
            .cloned()
    }

    /// Verified bytes of `cid` this node holds in its running download (0 if none).
    pub fn bytes_done(&self, cid: &str) -> u64 {
        self.download(cid)
            .and_then(|d| d["bytes_done"].as_u64())
            .unwrap_or(0)
    }

    /// `status --json`.
    pub fn status(&self) -> Value {
        self.cli(&["status", "--json"]).success().json()
    }

    /// This daemon's `peers --json` entry for `peer_id`, if connected.
    pub fn peer_entry(&self, peer_id: &str) -> Option<Value> {
        self.row_of(&["peers", "--json"], peer_id)
    }

    /// The entry for `peer_id` in the JSON array a command prints (`peers --json`,
    /// `reputation --json`, `reputation --mine --json`), if there is one.
    pub fn row_of(&self, args: &[&str], peer_id: &str) -> Option<Value> {
        self.cli(args)
            .success()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["peer_id"] == peer_id)
            .cloned()
    }

    /// Waits until `files` of this node's files have been announced to at least one DHT
    /// server (`announcement.peers` in `p2pd ls --json`), so that a fetcher started next
    /// finds it as a provider.
    pub fn wait_announced(&self, files: usize) {
        wait_until(
            &format!("{files} file(s) announced to a DHT server"),
            START_TIMEOUT,
            || {
                let ls = self.cli(&["ls", "--json"]);
                ls.code == 0
                    && ls.json().as_array().is_some_and(|list| {
                        list.iter()
                            .filter(|f| f["announcement"]["peers"].as_u64().unwrap_or(0) > 0)
                            .count()
                            >= files
                    })
            },
        );
    }

    /// Waits until the node's own address is confirmed and it holds no relay
    /// reservation (on loopback a node may take one while its reach is unknown, and
    /// gives it back once its address is confirmed).
    pub fn wait_reachable_without_reservations(&self) {
        wait_until(
            "a reachable node without relay reservations",
            START_TIMEOUT,
            || {
                let status = self.status();
                status["node"]["nat_status"] == "public"
                    && status["node"]["relay_reservations"]
                        .as_array()
                        .unwrap()
                        .is_empty()
            },
        );
    }

    /// Kills the process with SIGKILL (no clean shutdown) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts the process with other extra arguments, with or without mDNS (tests
    /// start daemons without it so that only what a test sets up connects them).
    pub fn set_args_and_restart(&mut self, args: &[&str], no_mdns: bool) {
        self.args = args.iter().map(|s| s.to_string()).collect();
        self.mdns = !no_mdns;
        self.restart();
    }

    /// Starts the process again with the same data directory and arguments.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- log of daemon in {} ---\n{}",
                self.data_dir.display(),
                log_digest(&self.log())
            );
        }
    }
}

/// A failed test's daemon log, short enough that the logs of all its daemons fit in
/// what CI shows: the start and the last lines, which are where a failure shows.
fn log_digest(log: &str) -> String {
    const HEAD: usize = 8;
    const TAIL: usize = 40;
    let lines: Vec<&str> = log.lines().collect();
    if lines.len() <= HEAD + TAIL {
        return log.to_string();
    }
    let skipped = lines.len() - HEAD - TAIL;
    format!(
        "{}\n[… {skipped} lines …]\n{}",
        lines[..HEAD].join("\n"),
        lines[lines.len() - TAIL..].join("\n")
    )
}

/// A bootstrap node and a way to start nodes that know only its address.
pub struct Swarm {
    /// The bootstrap node (a DHT server). Declared before `dir`, so it is dropped (and
    /// its log shown, if the test failed) before the directory is deleted.
    pub bootstrap: Daemon,
    /// Temporary directory holding every node's data directory.
    pub dir: tempfile::TempDir,
    bootstrap_addr: String,
    next: usize,
}

impl Swarm {
    /// Starts a bootstrap node.
    pub fn new() -> Swarm {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = Daemon::start(&dir.path().join("bootstrap"), &["--dht-mode", "server"]);
        let bootstrap_addr = bootstrap.addr();
        Swarm {
            dir,
            bootstrap,
            bootstrap_addr,
            next: 0,
        }
    }

    /// Starts a node that knows only the bootstrap address.
    pub fn node(&mut self, extra: &[&str]) -> Daemon {
        self.next += 1;
        let mut args = vec!["--bootstrap", self.bootstrap_addr.as_str()];
        args.extend_from_slice(extra);
        Daemon::start(&self.dir.path().join(format!("node{}", self.next)), &args)
    }

    /// A path inside the swarm's temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Default for Swarm {
    fn default() -> Self {
        Swarm::new()
    }
}

/// Writes `len` pseudo-random bytes (deterministic in `seed`) to `path`, streaming.
pub fn random_file(path: &Path, len: u64, seed: u64) {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let mut buf = vec![0u8; 1 << 16];
    let mut left = len;
    while left > 0 {
        for b in buf.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = (state >> 24) as u8;
        }
        let n = left.min(buf.len() as u64) as usize;
        file.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    file.flush().unwrap();
}

/// BLAKE3 of a file's bytes, hex.
pub fn file_hash(path: &Path) -> String {
    let mut hasher = blake3::Hasher::new();
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::io::copy(&mut file, &mut hasher).unwrap();
    hasher.finalize().to_hex().to_string()
}

/// Adds a file on a node and returns its CID.
pub fn add(node: &Daemon, path: &Path, extra: &[&str]) -> String {
    let mut args = vec!["add", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = node.cli(&args).success();
    out.last_line().to_string()
}

/// Starts `fetch <cid> -o <output> --json` on a node in the background and waits until
/// the node holds `at_least` verified bytes of it; finish the fetch with [`finish`].
pub fn fetch_in_background(node: &Daemon, cid: &str, output: &Path, at_least: u64) -> Child {
    let child = spawn_cli(
        &node.data_dir,
        &["fetch", cid, "-o", output.to_str().unwrap(), "--json"],
    );
    wait_until(
        &format!("{at_least} bytes of {cid} fetched"),
        Duration::from_secs(60),
        || node.bytes_done(cid) >= at_least,
    );
    child
}

/// Bytes a fetch's `--json` summary says the peers sent, in all.
pub fn bytes_from_peers(summary: &Value) -> u64 {
    summary["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["bytes"].as_u64().unwrap())
        .sum()
}

/// Fetches a CID on a node into `output` and returns the `--json` summary.
pub fn fetch(node: &Daemon, cid: &str, output: &Path, timeout_secs: u64) -> CliResult {
    node.cli(&[
        "fetch",
        cid,
        "-o",
        output.to_str().unwrap(),
        "--timeout",
        &timeout_secs.to_string(),
        "--json",
    ])
}
