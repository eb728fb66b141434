//! Issue 11: start-up hardening. The data directory is private (0700, every file 0600,
//! an existing one fixed with a warning); the one-time web setup secret is never
//! logged; an unwritable data directory, a peer port another process listens on, and
//! nonsense option values each give one `error:` line and the documented exit code.
#![allow(clippy::unwrap_used)]

mod harness;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::http::request;
use harness::*;
use serde_json::json;

/// How long a daemon that must refuse to start may take to do so.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(30);

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Every directory and file under `dir` (not following symbolic links), with its mode.
fn modes_under(dir: &Path) -> Vec<(PathBuf, u32, bool)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if !meta.is_file() {
            continue;
        }
        out.push((path, meta.permissions().mode() & 0o7777, meta.is_dir()));
    }
    out
}

/// `p2pd daemon` on 127.0.0.1 with `args`, expected to refuse to start.
fn daemon_refusal(data_dir: &Path, args: &[&str]) -> CliResult {
    let mut all = vec![
        "--data-dir",
        data_dir.to_str().unwrap(),
        "daemon",
        "--api",
        "127.0.0.1:0",
        "--no-mdns",
        "--no-upnp",
    ];
    all.extend_from_slice(args);
    run_p2pd(&all, REFUSAL_TIMEOUT).into()
}

#[test]
fn the_data_directory_and_every_file_in_it_are_private() {
    let mut swarm = Swarm::new();
    let seeder = swarm.node(&[]);
    let fetcher = swarm.node(&[]);
    let src = swarm.path("private.bin");
    random_file(&src, 3 << 20, 71);
    let cid = add(&seeder, &src, &[]);
    fetch(&fetcher, &cid, &swarm.path("private.out"), 60).success();
    for node in [&seeder, &fetcher] {
        let entries = modes_under(&node.data_dir);
        assert!(
            entries.iter().any(|(p, _, _)| p.ends_with("p2pd.log")),
            "{entries:?}"
        );
        for (path, mode, is_dir) in entries {
            let wanted = if is_dir { 0o700 } else { 0o600 };
            assert_eq!(mode, wanted, "{} has mode {mode:o}", path.display());
        }
    }
}

#[test]
fn an_existing_data_directory_open_to_others_is_made_private_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("old");
    std::fs::create_dir_all(data.join("store")).unwrap();
    std::fs::write(data.join("p2pd.log"), "an old log\n").unwrap();
    std::fs::write(data.join("settings.json"), r#"{"display_name":null}"#).unwrap();
    for (path, m) in [
        (data.clone(), 0o755),
        (data.join("store"), 0o755),
        (data.join("p2pd.log"), 0o644),
        (data.join("settings.json"), 0o644),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
    }
    // Started by hand: the harness would make the directory private first.
    let mut node = Daemon::launch(&data, &[]);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    node.spawn_process();
    wait_until("the daemon's API", START_TIMEOUT, || {
        data.join("api.json").exists() && node.cli(&["id"]).code == 0
    });
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("store")), 0o700);
    assert_eq!(mode(&data.join("p2pd.log")), 0o600);
    assert_eq!(mode(&data.join("settings.json")), 0o600);
    let log = node.log();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("open to other users")),
        "{log}"
    );
}

#[test]
fn the_setup_secret_goes_to_a_private_file_and_never_into_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start(&dir.path().join("a"), &[]);
    let link_file = node.data_dir.join("setup-link");
    assert_eq!(mode(&link_file), 0o600);
    let link = node.setup_link();
    let token = link.rsplit('/').next().unwrap().to_string();
    assert_eq!(token.len(), 64, "{link}");
    // Neither the log file nor the daemon's stderr (journald's copy under systemd) holds
    // it; the log says where it is.
    let log_file = std::fs::read_to_string(node.data_dir.join("p2pd.log")).unwrap();
    for log in [&log_file, &node.log()] {
        assert!(!log.contains(&token), "the setup secret is in a log: {log}");
    }
    assert!(log_file.contains("setup-link"), "{log_file}");
    // It is the real link: it sets the first password.
    let (addr, _) = harness::http::endpoint(&node.data_dir);
    let r = request(&addr, "POST", "/api/setup")
        .json(&json!({"token": token, "password": "long enough password"}))
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A directory this process cannot create files in: mode 0500 for a normal user; for
/// root (whom modes do not stop) a read-only tmpfs, unmounted on drop.
struct ReadOnlyDir {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl ReadOnlyDir {
    /// `None` (the test is skipped, saying why) when it cannot be made.
    fn new() -> Option<ReadOnlyDir> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro");
        std::fs::create_dir(&path).unwrap();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n");
        if !root {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o500)).unwrap();
            return Some(ReadOnlyDir {
                dir,
                mounted: false,
            });
        }
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,mode=0700,size=64k", "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        if Needs::new()
            .that(
                mounted,
                "a read-only tmpfs mount (root without CAP_SYS_ADMIN cannot)",
            )
            .skip()
        {
            return None;
        }
        Some(ReadOnlyDir { dir, mounted })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("ro")
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(self.path()).status();
        } else {
            let _ = std::fs::set_permissions(self.path(), std::fs::Permissions::from_mode(0o700));
        }
    }
}

#[test]
fn a_read_only_data_directory_gives_one_error_line() {
    let Some(ro) = ReadOnlyDir::new() else {
        return;
    };
    let out = daemon_refusal(&ro.path(), &["--listen", "/ip4/127.0.0.1/tcp/0"]);
    out.assert_clean_error(1);
    assert!(out.stderr.contains(ro.path().to_str().unwrap()), "{out:?}");
    // A data directory that cannot even be made: the same.
    let file = ro.dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    daemon_refusal(&file.join("data"), &["--listen", "/ip4/127.0.0.1/tcp/0"]).assert_clean_error(1);
}

/// A port free on 127.0.0.1 for both TCP and UDP, as far as can be told.
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[test]
fn a_second_daemon_on_a_taken_peer_port_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tcp = format!("/ip4/127.0.0.1/tcp/{port}");
    let quic = format!("/ip4/127.0.0.1/udp/{port}/quic-v1");
    let first = Daemon::start(
        &dir.path().join("first"),
        &["--listen", &tcp, "--listen", &quic],
    );
    for taken in [&tcp, &quic] {
        let out = daemon_refusal(&dir.path().join("second"), &["--listen", taken]);
        out.assert_clean_error(1);
        assert!(out.stderr.contains("in use by another process"), "{out:?}");
        assert!(out.stderr.contains(taken.as_str()), "{out:?}");
    }
    // The first daemon still serves alone.
    assert_eq!(first.cli(&["id"]).code, 0);
    // Asked explicitly, a second daemon shares the port, and says so.
    let shared = Daemon::start(
        &dir.path().join("shared"),
        &["--listen", &tcp, "--allow-shared-port"],
    );
    assert!(
        shared
            .log()
            .lines()
            .any(|l| l.contains("WARN") && l.contains("listens on this port too")),
        "{}",
        shared.log()
    );
}

#[test]
fn nonsense_option_values_are_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never-made");
    for (flag, value) in [
        ("--upload-slots", "0"),
        ("--max-connections", "0"),
        ("--request-timeout", "0"),
        ("--max-provider-keys", "0"),
    ] {
        let out = daemon_refusal(&data, &[flag, value]);
        out.assert_clean_error(2);
        assert!(out.stderr.contains(flag), "{out:?}");
    }
    assert!(!data.exists(), "a refused start created {}", data.display());
}
