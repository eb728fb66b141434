//! Smoke test of `dht-sim`: a small network of real nodes (servers that relay, and
//! clients holding relay reservations) with churn for one short simulated minute.
//! Lookups must find their providers, hops must be measured, no DHT client may enter a
//! routing table or turn server, and the report and plots must be written. The heavy
//! runs of `docs/scale.md` stay out of the test suite.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest the run may take (it needs well under a minute on an idle machine; the
/// debug build's cryptography is slow and the machine is shared).
const DEADLINE: Duration = Duration::from_secs(600);
const FONT: &str = "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf";

#[test]
fn a_small_network_with_churn_finds_its_providers() {
    let out = tempfile::tempdir().expect("a temporary directory");
    let plots = Path::new(FONT).is_file();
    let mut command = Command::new(env!("CARGO_BIN_EXE_dht-sim"));
    command
        .args(["--nodes", "16", "--servers", "0.5", "--relay-servers"])
        .args(["--minutes", "1"])
        .args(["--minute-secs", "10", "--churn", "0.1"])
        .args(["--lookups-per-minute", "30", "--files-per-minute", "4"])
        .args(["--seed", "7", "--name", "smoke"])
        .arg("--out")
        .arg(out.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if plots {
        command.args(["--font", FONT]);
    } else {
        command.arg("--no-plots");
    }
    let mut child = command.spawn().expect("dht-sim starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for dht-sim") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dht-sim took longer than {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stderr = child
        .stderr
        .take()
        .map(|mut e| {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
            s
        })
        .unwrap_or_default();
    assert!(status.success(), "dht-sim failed: {stderr}");

    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("smoke.json")).expect("the report"),
    )
    .expect("the report is JSON");
    let lookups = &report["lookups"];
    for phase in ["baseline_minute_0", "under_churn"] {
        let phase = &lookups[phase];
        let total = phase["lookups"].as_u64().expect("a lookup count");
        assert!(total >= 10, "too few lookups ran: {phase}");
        assert_eq!(
            phase["succeeded"].as_u64(),
            Some(total),
            "lookups failed: {phase}\n{stderr}"
        );
    }
    // The hop count comes from libp2p-kad's trace events: if they change, this fails.
    let hops = lookups["hop_histogram"]
        .as_array()
        .expect("a hop histogram");
    assert!(
        hops.iter().skip(1).any(|c| c.as_u64() > Some(0)),
        "no lookup took a hop: {hops:?}"
    );
    assert!(lookups["messages_per_lookup"]["mean"].as_f64() > Some(0.0));
    // Announcements are read from the nodes' batched reprovider: every seeded file was
    // sent to DHT servers, and what that cost is counted.
    let announcements = &report["announcements"];
    assert!(
        announcements["completed"].as_u64() > Some(0),
        "{announcements}"
    );
    assert!(
        announcements["messages_per_announcement"].as_f64() > Some(0.0),
        "{announcements}"
    );
    assert!(
        announcements["peers_reached_per_completed"].as_f64() >= Some(1.0),
        "{announcements}"
    );
    let roles = &report["client_server"];
    assert!(roles["routing_table_insertions"].as_u64() > Some(0));
    assert_eq!(roles["clients_inserted"].as_u64(), Some(0), "{roles}");
    assert_eq!(roles["clients_turned_server"].as_u64(), Some(0), "{roles}");
    assert!(report["memory"]["rss_per_node_bytes"].as_u64() > Some(0));
    if plots {
        for plot in ["latency", "minutes", "hops"] {
            for ext in ["png", "svg"] {
                let file = out.path().join(format!("smoke-{plot}.{ext}"));
                let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                assert!(len > 1000, "{} missing or empty", file.display());
            }
        }
    }
}
