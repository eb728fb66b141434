//! sendme (iroh's file sender), the peer tool p2pd is measured against: finding the
//! binary, and `sendme send`, whose import of the file ends when it prints the ticket.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::harness::Helper;

/// The options of every `sendme send` of the bench: no relay, a ticket of direct
/// addresses only, no progress bars.
pub const SEND_OPTIONS: [&str; 5] = [
    "--relay",
    "disabled",
    "--ticket-type",
    "addresses",
    "--no-progress",
];
/// The options of every `sendme receive` of the bench.
pub const RECEIVE_OPTIONS: [&str; 3] = ["--relay", "disabled", "--no-progress"];

/// `sendme` (`bin`) to be run in a network namespace of its own with loopback only
/// (`unshare -n`; the machine's bench runs as root), so that it reaches nothing beyond
/// 127.0.0.1; add its arguments. A receiver joins that namespace with
/// `nsenter --net=/proc/<pid>/ns/net` ([`Sender::pid`]).
pub fn isolated(bin: &Path) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(bin);
    command
}

/// Longest `sendme send` may take to import a file and print its ticket.
const TICKET_TIMEOUT: Duration = Duration::from_secs(300);

/// `explicit`, else `sendme` on PATH or in ~/.cargo/bin.
pub fn find(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit.or_else(|| {
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("sendme"))
                .find(|p| p.is_file())
        });
        on_path.or_else(|| {
            let home = std::env::var_os("HOME")?;
            let p = Path::new(&home).join(".cargo/bin/sendme");
            p.is_file().then_some(p)
        })
    })
}

/// A running `sendme send`: it serves the file until dropped (killed by its pid).
pub struct Sender {
    helper: Helper,
    /// What `sendme receive` needs.
    pub ticket: String,
    /// From spawn to the ticket printed: sendme's import of the file.
    pub import: Duration,
}

impl Sender {
    /// The process id of `sendme send` (or of what execs it: its network namespace is
    /// the one a receiver joins).
    #[allow(dead_code)]
    pub fn pid(&mut self) -> u32 {
        self.helper.child().id()
    }
}

/// Spawns `command` (a `sendme send …` with its arguments and working directory set)
/// and waits for its ticket.
pub fn send(command: &mut Command) -> anyhow::Result<Sender> {
    let started = Instant::now();
    let mut helper = Helper::spawn(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )?;
    let stdout = helper.child().stdout.take().context("sendme stdout")?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(ticket) = line.strip_prefix("sendme receive ") {
                let _ = tx.try_send(ticket.trim().to_string());
            }
        }
    });
    let ticket = rx
        .recv_timeout(TICKET_TIMEOUT)
        .with_context(|| format!("sendme send printed no ticket within {TICKET_TIMEOUT:?}"))?;
    Ok(Sender {
        helper,
        ticket,
        import: started.elapsed(),
    })
}
