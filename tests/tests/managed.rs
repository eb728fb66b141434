//! Issue 16, daemon-managed downloads: `fetch --detach` starts one and returns at once;
//! after a SIGKILL of the daemon it resumes by itself on the next start and completes
//! with the right bytes; `downloads`, `pause`, `resume` and `cancel` drive it from the
//! CLI, a paused one stays paused across a restart, and the history of ended ones can
//! be cleared.
#![allow(clippy::unwrap_used)]

mod harness;

use std::time::Duration;

use harness::*;
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// This node's `downloads --json` entry for `cid`.
fn listed(node: &Daemon, cid: &str) -> Option<Value> {
    let out = node.cli(&["downloads", "--json"]);
    if out.code != 0 {
        return None;
    }
    out.json()
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["cid"] == cid)
        .cloned()
}

fn state(node: &Daemon, cid: &str) -> String {
    listed(node, cid)
        .and_then(|d| d["state"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn wait_state(node: &Daemon, cid: &str, wanted: &str, within: Duration) -> Value {
    wait_until(&format!("{cid} {wanted}"), within, || {
        state(node, cid) == wanted
    });
    listed(node, cid).unwrap()
}

#[test]
fn a_detached_download_survives_sigkill_of_the_daemon_and_completes_by_itself() {
    let mut swarm = Swarm::new();
    let src = swarm.path("detached.bin");
    let size = 16 * MIB + 5;
    random_file(&src, size, 71);
    let seeder = swarm.node(&["--max-upload-rate", "2MiB"]);
    let cid = add(&seeder, &src, &[]);
    seeder.wait_announced(1);
    let mut fetcher = swarm.node(&[]);

    // Returns at once, with the download running in the daemon.
    let started = std::time::Instant::now();
    let out = fetcher
        .cli(&["fetch", &cid, "--detach", "--json"])
        .success()
        .json();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(out["cid"], cid.as_str(), "{out}");
    let text = fetcher.cli(&["downloads"]).success().stdout;
    assert!(text.contains(&cid), "{text}");

    wait_until("4 MiB fetched", Duration::from_secs(60), || {
        listed(&fetcher, &cid)
            .and_then(|d| d["bytes_done"].as_u64())
            .unwrap_or(0)
            >= 4 * MIB
    });
    fetcher.kill();
    // No command after this: the restarted daemon resumes on its own.
    fetcher.restart();
    let first_seen = listed(&fetcher, &cid).expect("the download is listed after the restart");
    assert_ne!(first_seen["state"], "done", "{first_seen}");
    let done = wait_state(&fetcher, &cid, "done", Duration::from_secs(120));
    assert_eq!(done["size"], size, "{done}");
    // It resumed from the chunks verified before the kill instead of starting over.
    let received = done["bytes_received"].as_u64().unwrap();
    assert!(received < size, "fetched all {size} bytes again: {done}");

    // The right bytes are in the store: a copy out of it needs no peer.
    let copy = swarm.path("detached.out");
    drop(seeder);
    fetch(&fetcher, &cid, &copy, 10).success();
    assert_eq!(file_hash(&copy), file_hash(&src));
}

#[test]
fn pause_resume_cancel_and_the_history_from_the_cli_across_restarts() {
    let mut swarm = Swarm::new();
    let src = swarm.path("paused.bin");
    let size = 12 * MIB;
    random_file(&src, size, 72);
    let seeder = swarm.node(&["--max-upload-rate", "2MiB"]);
    let cid = add(&seeder, &src, &[]);
    seeder.wait_announced(1);
    let mut fetcher = swarm.node(&[]);
    fetcher.cli(&["fetch", &cid, "--detach"]).success();
    wait_until("1 MiB fetched", Duration::from_secs(60), || {
        listed(&fetcher, &cid)
            .and_then(|d| d["bytes_done"].as_u64())
            .unwrap_or(0)
            >= MIB
    });
    let paused = fetcher.cli(&["pause", &cid]).success().stdout;
    assert!(paused.starts_with("paused "), "{paused}");
    assert_eq!(state(&fetcher, &cid), "paused");

    // Paused stays paused, even after a SIGKILL, with what it verified.
    fetcher.kill();
    fetcher.restart();
    let after = listed(&fetcher, &cid).expect("listed after the restart");
    assert_eq!(after["state"], "paused", "{after}");
    assert!(after["bytes_done"].as_u64().unwrap() >= MIB, "{after}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(state(&fetcher, &cid), "paused");

    // A clean stop (SIGTERM) of a running download also resumes it on the next start.
    fetcher.cli(&["resume", &cid, "--json"]).success();
    wait_until("running again", Duration::from_secs(30), || {
        matches!(state(&fetcher, &cid).as_str(), "downloading" | "done")
    });
    fetcher.stop();
    fetcher.restart();
    wait_state(&fetcher, &cid, "done", Duration::from_secs(120));

    // Cancelling a finished download changes nothing; an unknown one is not found.
    let again = fetcher.cli(&["cancel", &cid, "--json"]).success().json();
    assert_eq!(again["state"], "done");
    let unknown = format!("bafyr4i{}", "a".repeat(52));
    fetcher.cli(&["pause", &unknown]).assert_clean_error(1);
    fetcher.cli(&["pause", "not-a-cid"]).assert_clean_error(2);

    // Clearing forgets the ended ones, now and after a restart.
    let cleared = fetcher
        .cli(&["downloads", "--clear", "--json"])
        .success()
        .json();
    assert_eq!(cleared["cleared"], 1, "{cleared}");
    assert!(listed(&fetcher, &cid).is_none());
    fetcher.restart();
    assert!(listed(&fetcher, &cid).is_none());
    assert_eq!(
        fetcher.cli(&["downloads"]).success().stdout.trim(),
        "no downloads"
    );
}

/// `GET /api/files/{cid}/content` with `Range`.
fn get_range(node: &Daemon, cid: &str, range: Option<&str>) -> harness::http::Response {
    let (addr, token) = harness::http::endpoint(&node.data_dir);
    let mut req =
        harness::http::request(&addr, "GET", &format!("/api/files/{cid}/content")).bearer(&token);
    if let Some(range) = range {
        req = req.header("Range", range);
    }
    req.send()
}

#[test]
fn a_range_of_a_downloading_file_comes_first_and_ranges_of_a_complete_one_are_exact() {
    let mut swarm = Swarm::new();
    let src = swarm.path("video.bin");
    let size = 24 * MIB;
    random_file(&src, size, 73);
    let bytes = std::fs::read(&src).unwrap();
    let seeder = swarm.node(&["--max-upload-rate", "4MiB"]);
    let cid = add(&seeder, &src, &[]);
    seeder.wait_announced(1);

    // A complete file: exact slices, 206 with Content-Range, 416 past the end.
    let r = get_range(&seeder, &cid, Some("bytes=1000-1999"));
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 1000-1999/{size}").as_str())
    );
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.body, &bytes[1000..2000]);
    let r = get_range(&seeder, &cid, Some("bytes=-10"));
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &bytes[bytes.len() - 10..]);
    let across = format!("bytes={}-{}", MIB - 5, 3 * MIB + 4);
    let r = get_range(&seeder, &cid, Some(&across));
    assert_eq!(r.body, &bytes[(MIB - 5) as usize..=(3 * MIB + 4) as usize]);
    let r = get_range(&seeder, &cid, Some(&format!("bytes={size}-")));
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{size}").as_str())
    );
    // Without a Range, the whole file (a small one: the test client is slow on big
    // bodies).
    let small_src = swarm.path("small.bin");
    random_file(&small_src, 100_000, 74);
    let small = add(&seeder, &small_src, &[]);
    let r = get_range(&seeder, &small, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(r.body == std::fs::read(&small_src).unwrap());

    // Downloading: the last three chunks are asked for at once, before the rest.
    let fetcher = swarm.node(&[]);
    fetcher.cli(&["fetch", &cid, "--detach"]).success();
    let tail = format!("bytes={}-{}", 21 * MIB + 7, size - 1);
    let r = get_range(&fetcher, &cid, Some(&tail));
    let held_then = listed(&fetcher, &cid).unwrap()["bytes_done"]
        .as_u64()
        .unwrap();
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(r.body, &bytes[(21 * MIB + 7) as usize..]);
    eprintln!("the range arrived with {held_then} of {size} bytes held");
    assert!(
        held_then <= 16 * MIB,
        "the range's chunks were not fetched first: {held_then} bytes held when it arrived"
    );
    // Another range, across chunks, read while the file downloads.
    let middle = format!("bytes={}-{}", 5 * MIB - 3, 7 * MIB + 2);
    let r = get_range(&fetcher, &cid, Some(&middle));
    assert_eq!(r.status, 206);
    assert!(r.body == bytes[(5 * MIB - 3) as usize..=(7 * MIB + 2) as usize]);
    wait_state(&fetcher, &cid, "done", Duration::from_secs(60));
}

#[test]
fn fetch_draws_its_progress_bar_on_a_terminal_and_stays_quiet_in_a_pipe() {
    if harness::skip::Needs::new()
        .program("script", "bsdutils")
        .skip()
    {
        return;
    }
    let mut swarm = Swarm::new();
    let src = swarm.path("bar.bin");
    random_file(&src, 6 * MIB, 75);
    let seeder = swarm.node(&["--max-upload-rate", "2MiB"]);
    let cid = add(&seeder, &src, &[]);
    seeder.wait_announced(1);
    let fetcher = swarm.node(&[]);

    // On a terminal (a pseudo-terminal that script(1) makes): the bar, with the rate,
    // the ETA and the sources by path.
    let out = swarm.path("bar.out");
    let command = format!(
        "{} --data-dir {} fetch {cid} -o {}",
        p2pd_bin().display(),
        fetcher.data_dir.display(),
        out.display()
    );
    let mut script = std::process::Command::new("script");
    script.args(["-qefc", &command, "/dev/null"]);
    let child = script
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let shown = CliResult::from(wait_output(child, CLI_TIMEOUT)).success();
    assert_eq!(file_hash(&out), file_hash(&src));
    assert!(shown.stdout.contains("/s, ETA "), "{shown:?}");
    assert!(
        shown.stdout.contains("1 source (1 direct, 0 relayed)"),
        "{shown:?}"
    );

    // In a pipe: the summary line alone, nothing on stderr.
    let piped = swarm.path("bar-piped.out");
    let quiet = fetch_text(&fetcher, &cid, &piped);
    assert!(quiet.stderr.is_empty(), "{quiet:?}");
    assert!(quiet.stdout.starts_with("saved "), "{quiet:?}");
}

fn fetch_text(node: &Daemon, cid: &str, output: &std::path::Path) -> CliResult {
    node.cli(&["fetch", cid, "-o", output.to_str().unwrap()])
        .success()
}

#[test]
fn the_same_fetch_run_again_after_a_restart_finds_its_resumed_download_done() {
    let mut swarm = Swarm::new();
    let src = swarm.path("again.bin");
    random_file(&src, 8 * MIB + 3, 72);
    let seeder = swarm.node(&["--max-upload-rate", "2MiB"]);
    let cid = add(&seeder, &src, &[]);
    seeder.wait_announced(1);
    let mut fetcher = swarm.node(&[]);
    let out = swarm.path("again.out");
    let child = spawn_cli(
        &fetcher.data_dir,
        &["fetch", &cid, "-o", out.to_str().unwrap()],
    );
    wait_until("2 MiB fetched", Duration::from_secs(60), || {
        listed(&fetcher, &cid)
            .and_then(|d| d["bytes_done"].as_u64())
            .unwrap_or(0)
            >= 2 * MIB
    });
    fetcher.kill();
    let _ = finish(child);
    fetcher.restart();
    // The daemon resumes the download by itself and puts the file in place...
    wait_state(&fetcher, &cid, "done", Duration::from_secs(120));
    assert!(out.is_file());
    // ...and the user's same command, run again, is told it is done, not refused.
    let again = fetch(&fetcher, &cid, &out, 30);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("again.out"), "{again:?}");
    assert_eq!(file_hash(&out), file_hash(&src));
    // Any other existing file is still never overwritten.
    let other = swarm.path("other.out");
    std::fs::write(&other, b"keep me").unwrap();
    let refused = fetch(&fetcher, &cid, &other, 30);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("already exists"), "{refused:?}");
    assert_eq!(std::fs::read(&other).unwrap(), b"keep me");
}
