//! Skipping a test that needs what this machine lacks (root for network namespaces, a
//! browser, Node.js), visibly. A plain `cargo test` then passes on any machine and says
//! which tests it skipped and why; `scripts/test` installs everything and sets
//! `P2PD_REQUIRE_ALL=1`, which turns every skip into a failure.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The environment variable that makes a skip fail its test.
pub const REQUIRE_ALL: &str = "P2PD_REQUIRE_ALL";

/// What a test needs from the machine; collects what is missing.
#[derive(Debug, Default)]
pub struct Needs {
    missing: Vec<String>,
}

impl Needs {
    /// Nothing needed yet.
    pub fn new() -> Needs {
        Needs::default()
    }

    /// The process must run as root (network namespaces, iptables).
    pub fn root(mut self) -> Needs {
        let uid = Command::new("id")
            .arg("-u")
            .stderr(Stdio::null())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        if uid.as_deref() != Some("0") {
            self.missing.push("root (CI runs the tests as root)".into());
        }
        self
    }

    /// `program` must be on the PATH; `package` is the Debian package that has it.
    pub fn program(mut self, program: &str, package: &str) -> Needs {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            self.missing
                .push(format!("`{program}` (apt-get install {package})"));
        }
        self
    }

    /// `path` must exist; `what` says what it is and how to get it.
    pub fn file(mut self, path: &Path, what: &str) -> Needs {
        if !path.exists() {
            self.missing.push(format!("{} ({what})", path.display()));
        }
        self
    }

    /// `available` must hold; `what` says what it is.
    pub fn that(mut self, available: bool, what: &str) -> Needs {
        if !available {
            self.missing.push(what.to_string());
        }
        self
    }

    /// True when something is missing: the calling test should return at once. Says
    /// so on the terminal (written to stderr directly, past the test harness's output
    /// capture, so that it shows even when the test passes); panics instead when
    /// `P2PD_REQUIRE_ALL=1`.
    pub fn skip(self) -> bool {
        if self.missing.is_empty() {
            return false;
        }
        let test = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        let binary = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .map(|stem| stem.split('-').next().unwrap_or_default().to_string())
            .unwrap_or_default();
        let reason = format!("needs {}", self.missing.join(", "));
        if std::env::var(REQUIRE_ALL).is_ok_and(|v| v == "1") {
            panic!("{binary}::{test} {reason}; {REQUIRE_ALL}=1 forbids skipping it (scripts/test installs what the tests need)");
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {binary}::{test}: {reason}; scripts/test installs what the tests need"
        );
        true
    }
}
