//! Issue 10 point 6: the daemon's task tree. An essential task that dies takes the
//! daemon down with a reason and a non-zero exit (so systemd restarts it); SIGTERM and
//! Ctrl-C stop it within 5 s, with its store and reputation ledger saved.
#![allow(clippy::unwrap_used)]

mod harness;

use std::time::Duration;

use harness::*;

const MIB: u64 = 1 << 20;
/// What the daemon promises: stopped within this long after SIGTERM or Ctrl-C.
const STOP_WITHIN: Duration = Duration::from_secs(5);

#[test]
fn a_panicking_network_task_stops_the_daemon_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // Not Daemon::start: on a busy machine the daemon may take longer than the fault's
    // delay to answer its API, and this test is about what happens after.
    let mut node = Daemon::launch(&dir.path().join("a"), &["--test-panic-network-after", "1"]);
    node.spawn_process();
    let status = node.wait_exit(Duration::from_secs(60)).unwrap_or_else(|| {
        panic!(
            "the daemon kept running with a dead network: {}",
            node.log()
        )
    });
    assert_eq!(status.code(), Some(1), "{}", node.log());
    // The log file says which task ended and why; stderr ends with the one error line.
    let log = std::fs::read_to_string(node.data_dir.join("p2pd.log")).unwrap();
    assert!(
        log.lines().any(|l| l.contains("ERROR")
            && l.contains("the network task panicked: test fault")
            && l.contains("the daemon stops")),
        "{log}"
    );
    let stderr = node.log();
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert!(
        last.starts_with("error: the network task panicked: test fault"),
        "{stderr}"
    );
    // It cleaned up as on any stop: the CLI does not find a daemon that is gone.
    assert!(!node.data_dir.join("api.json").exists());
}

#[test]
fn sigterm_during_a_fetch_stops_within_5_s_and_the_download_resumes() {
    let mut swarm = Swarm::new();
    let src = swarm.path("big.bin");
    let size = 24 * MIB;
    random_file(&src, size, 61);
    let seeder = swarm.node(&["--max-upload-rate", "4MiB"]);
    let cid = add(&seeder, &src, &[]);
    seeder.wait_announced(1);
    let mut fetcher = swarm.node(&[]);
    let out = swarm.path("big.out");
    let cli = fetch_in_background(&fetcher, &cid, &out, 4 * MIB);
    let done_before = fetcher.bytes_done(&cid);

    let (status, took) = fetcher
        .signal_and_wait("TERM", Duration::from_secs(30))
        .expect("the daemon did not stop within 30 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", fetcher.log());
    eprintln!("stopped {took:?} after SIGTERM during a fetch");
    assert!(
        took <= STOP_WITHIN,
        "stopped {took:?} after SIGTERM: {}",
        fetcher.log()
    );
    assert!(!fetcher.data_dir.join("api.json").exists());
    // The CLI's fetch ends with an error, and nothing appears at the output path.
    let interrupted = finish(cli);
    eprintln!("the CLI's fetch: {}", interrupted.stderr.trim());
    interrupted.assert_clean_error(1);
    assert!(!out.exists());

    // The store kept every chunk verified before the signal, the ledger the bytes the
    // seeder sent, and the download resumes from there.
    fetcher.restart();
    let listed = fetcher.cli(&["ls", "--json"]).success().json();
    assert_eq!(listed[0]["state"], "partial", "{listed}");
    let kept = listed[0]["have_chunks"].as_u64().unwrap() * MIB;
    assert!(kept >= done_before, "kept {kept} bytes of {done_before}");
    let seeder_id = seeder.peer_id();
    let ledger = fetcher.cli(&["reputation", "--json"]).success().json();
    let received = ledger
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer_id"] == seeder_id.as_str())
        .and_then(|p| p["received"].as_u64())
        .unwrap_or(0);
    assert!(received >= done_before, "{ledger}");
    let summary = fetch(&fetcher, &cid, &out, 60).success().json();
    assert_eq!(file_hash(&out), file_hash(&src));
    let fetched_again = bytes_from_peers(&summary);
    assert!(
        fetched_again <= size - kept,
        "fetched {fetched_again} bytes again, with {kept} of {size} kept"
    );
}

#[test]
fn ctrl_c_stops_an_idle_daemon_within_5_s() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Daemon::start(&dir.path().join("a"), &[]);
    let (status, took) = node
        .signal_and_wait("INT", Duration::from_secs(30))
        .expect("the daemon did not stop within 30 s of SIGINT");
    assert_eq!(status.code(), Some(0), "{}", node.log());
    assert!(took <= STOP_WITHIN, "stopped {took:?} after SIGINT");
    assert!(node.log().contains("p2pd daemon stopped"), "{}", node.log());
    assert!(!node.data_dir.join("api.json").exists());
}
