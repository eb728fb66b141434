//! How a benchmark program runs: where its binary and temporary directory are, and its
//! work on a blocking thread with Ctrl-C/SIGTERM handling, every daemon killed and the
//! directory deleted at the end, and the exit code. `bench` and `search-bench` share it.

use std::path::{Path, PathBuf};

use crate::harness;

/// Where a benchmark program's daemons and files go: the `p2pd` binary (`--p2pd`, or
/// `p2pd` beside the program) and a fresh directory `<run>-<pid>` under `--tmp-dir`
/// (default: `bench-tmp` beside the build's profile directory, on the build's disk).
pub struct RunPlace {
    pub bin: PathBuf,
    pub tmp_root: PathBuf,
    pub dir: PathBuf,
}

impl RunPlace {
    pub fn new(p2pd: Option<PathBuf>, tmp_dir: Option<PathBuf>, run: &str) -> Self {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let bin = p2pd.unwrap_or_else(|| exe_dir.join("p2pd"));
        let tmp_root = tmp_dir
            .or_else(|| exe_dir.parent().map(|t| t.join("bench-tmp")))
            .unwrap_or_else(|| PathBuf::from("bench-tmp"));
        let dir = tmp_root.join(format!("{run}-{}", std::process::id()));
        RunPlace { bin, tmp_root, dir }
    }
}

/// Runs a benchmark's `work` on a blocking thread of a new runtime (handing it the
/// runtime's handle) until it ends or Ctrl-C/SIGTERM arrives; then kills every daemon
/// still registered, deletes the run's directory unless `keep`, and turns the outcome
/// into the exit code, with an `error: …` line on failure.
pub fn run_benchmark(
    place: &RunPlace,
    keep: bool,
    daemon_log: Option<String>,
    work: impl FnOnce(tokio::runtime::Handle) -> anyhow::Result<()> + Send + 'static,
) -> std::process::ExitCode {
    if let Some(filter) = daemon_log {
        let _ = harness::DAEMON_LOG.set(filter);
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let handle = tokio::runtime::Handle::current();
        let work = tokio::task::spawn_blocking(move || work(handle));
        tokio::select! {
            r = work => r.unwrap_or_else(|e| Err(anyhow::anyhow!("benchmark thread failed: {e}"))),
            _ = harness::interrupted() => {
                harness::kill_all_registered();
                Err(anyhow::anyhow!("interrupted"))
            }
        }
    });
    harness::kill_all_registered();
    if keep {
        eprintln!("kept {}", place.dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&place.dir);
        let _ = std::fs::remove_dir(&place.tmp_root); // only if empty
    }
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
