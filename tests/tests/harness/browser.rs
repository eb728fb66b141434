//! Running the headless-browser drivers of `tests/web` (Node.js scripts): finding what
//! they need (or skipping the test, saying why), running one in its own process group
//! with a deadline, and reading the JSON line of results it prints.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{p2pd_bin, Needs};

/// Longest the browser script may run (it gives up by itself at 150 s).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);

/// A process started in its own process group; dropping it kills the whole group (the
/// driver and the browser it started) by the group's id.
struct Group(Child);

impl Group {
    fn kill(&mut self) {
        let pgid = self.0.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A path as a string (for the scripts' environment).
pub fn path_str(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

/// Runs a Node.js script of tests/web in its own process group with `envs`, kills the
/// whole group (browser included) when it ends or after [`BROWSER_TIMEOUT`], and
/// returns the JSON results it printed last; panics with its output if it failed.
pub fn run_node(web: &Path, script: &str, envs: &[(&str, String)], stderr_path: &Path) -> Value {
    let mut command = Command::new("node");
    command
        .arg(script)
        .current_dir(web)
        .env_remove("P2PD_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr_path).unwrap())
        .process_group(0);
    for (key, value) in envs {
        command.env(key, value);
    }
    let child = command.spawn().expect("run node (Node.js 18 or later)");
    let mut group = Group(child);
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(status) = group.0.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            group.kill();
            panic!(
                "the browser test timed out after {BROWSER_TIMEOUT:?}:\n{}",
                std::fs::read_to_string(stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(group.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    drop(group); // the browser is gone with its driver
    let stderr = std::fs::read_to_string(stderr_path).unwrap_or_default();
    assert!(
        status.success(),
        "the browser test failed ({status}):\n{stderr}"
    );
    let results: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no results ({e}): {stdout}\n{stderr}"));
    eprintln!("{script} results: {results:#}");
    results
}

/// What a browser test needs: the tests/web folder with `module` installed, the browser
/// binary (`$env_var`, else `default`), and the folder `shots` for its screenshots
/// beside the binary under test (target/<profile>/p2pd → target/<shots>).
pub struct Browser {
    /// The tests/web folder.
    pub web: PathBuf,
    /// The browser binary.
    pub executable: String,
    /// Where screenshots go.
    pub shots: PathBuf,
}

/// What a browser test needs, or `None` (the test is skipped, saying why) when this
/// machine lacks Node.js, the npm package `module` or the browser.
pub fn browser(
    module: &str,
    env_var: &str,
    default: &str,
    package: &str,
    shots: &str,
) -> Option<Browser> {
    let web = workspace_root().join("tests/web");
    let executable = std::env::var(env_var).unwrap_or_else(|_| default.into());
    if Needs::new()
        .program("node", "nodejs")
        .file(
            &web.join("node_modules").join(module),
            "`npm ci` in tests/web",
        )
        .file(
            Path::new(&executable),
            &format!("apt-get install {package}, or set {env_var}"),
        )
        .skip()
    {
        return None;
    }
    let shots = p2pd_bin().parent().unwrap().parent().unwrap().join(shots);
    Some(Browser {
        web,
        executable,
        shots,
    })
}

/// What a test in Debian's headless Chromium (driven by playwright-core) needs, its
/// screenshots going to `target/<shots>` (emptied first); `None` when the test is
/// skipped.
pub fn chromium(shots: &str) -> Option<Browser> {
    let found = browser(
        "playwright-core",
        "CHROMIUM",
        "/usr/bin/chromium",
        "chromium",
        shots,
    )?;
    let _ = std::fs::remove_dir_all(&found.shots);
    Some(found)
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}
