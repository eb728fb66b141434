//! Issue 5: the web UI end to end in a real headless Chromium (Debian's, driven by
//! playwright-core from `tests/web/e2e.mjs`). Two daemons run: A, whose UI is used, and
//! B, which shares a file. In the browser: set the password through the setup link, log
//! in, upload a file and see its CID, watch a CLI-shared file appear live, download B's
//! file (pausing and resuming it) with its progress bar reaching 100 % and save it, see
//! B among the peers, use a
//! phone-sized screen, log out and be refused. Screenshots of each page are saved under
//! `target/web-screenshots/`.
//!
//! `scripts/test` installs Node.js, the browsers and the npm packages; without them
//! each test is skipped and says so.
#![allow(clippy::unwrap_used)]

mod harness;

use std::path::{Path, PathBuf};

use harness::browser::*;
use harness::*;

const MIB: u64 = 1 << 20;
/// The two daemons of a browser test, in `dir`: B, a DHT server capped at `rate` that
/// shares `size` random bytes as `name`, and A, whose UI is driven, knowing only B.
/// Returns B, A, the shared file's CID and A's one-time setup link.
fn two_daemons(
    dir: &Path,
    rate: &str,
    name: &str,
    size: u64,
    seed: u64,
) -> (Daemon, Daemon, String, String) {
    let seeder = Daemon::start(
        &dir.join("b"),
        &["--dht-mode", "server", "--max-upload-rate", rate],
    );
    let shared = dir.join(name);
    random_file(&shared, size, seed);
    let remote_cid = add(&seeder, &shared, &[]);
    let node = Daemon::start(&dir.join("a"), &["--bootstrap", &seeder.addr()]);
    let link = node.setup_link();
    assert!(link.contains("/#/setup/"), "{link}");
    (seeder, node, remote_cid, link)
}

#[test]
fn the_web_ui_works_end_to_end_in_chromium() {
    let Some(Browser {
        web,
        executable: chromium,
        shots,
    }) = browser(
        "playwright-core",
        "CHROMIUM",
        "/usr/bin/chromium",
        "chromium",
        "web-screenshots",
    )
    else {
        return;
    };
    let bin = p2pd_bin();
    let _ = std::fs::remove_dir_all(&shots);

    let dir = tempfile::tempdir().unwrap();
    // B sends at 6 MiB/s, so the download runs for a few seconds: long enough to be
    // seen moving, paused and resumed.
    let (seeder, node, remote_cid, link) =
        two_daemons(dir.path(), "6MiB", "holiday-video.bin", 24 * MIB, 9);
    let shared = dir.path().join("holiday-video.bin");

    let upload = dir.path().join("notes from the browser.txt");
    std::fs::write(&upload, "shared from a web page\n".repeat(1000)).unwrap();
    let live = dir.path().join("added-from-the-cli.txt");
    std::fs::write(&live, "added while the page was open\n").unwrap();
    let saved = dir.path().join("saved");
    std::fs::create_dir_all(&saved).unwrap();
    let stderr_path = dir.path().join("e2e.stderr");

    let envs = vec![
        ("P2PD_SETUP_LINK", link.clone()),
        ("P2PD_PASSWORD", "a long web password".to_string()),
        ("P2PD_UPLOAD_FILE", path_str(&upload)),
        ("P2PD_LIVE_FILE", path_str(&live)),
        ("P2PD_REMOTE_CID", remote_cid.clone()),
        ("P2PD_REMOTE_PEER", seeder.peer_id()),
        ("P2PD_SCREENSHOTS", path_str(&shots)),
        ("P2PD_SAVE_DIR", path_str(&saved)),
        ("P2PD_BIN", path_str(&bin)),
        ("P2PD_DATA_DIR_A", path_str(&node.data_dir)),
        ("CHROMIUM", chromium.clone()),
    ];
    let results = run_node(&web, "e2e.mjs", &envs, &stderr_path);

    // What the page showed is what the daemon holds.
    assert_eq!(results["node_id"], node.peer_id().as_str());
    let files = node.cli(&["ls", "--json"]).success().json();
    let uploaded = results["uploaded_cid"].as_str().unwrap();
    let listed = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cid"] == uploaded)
        .unwrap_or_else(|| panic!("{uploaded} not listed: {files}"));
    assert_eq!(listed["name"], "notes from the browser.txt");
    assert_eq!(listed["size"], std::fs::metadata(&upload).unwrap().len());
    assert!(files.to_string().contains("added-from-the-cli.txt"));

    // The progress bar moved up to 100 %, and the saved file is B's, byte for byte.
    let seen: Vec<u64> = results["progress_seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(seen.last(), Some(&100), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    let paused_at = results["paused_at"].as_u64().unwrap();
    assert!((10..100).contains(&paused_at), "{paused_at}");
    let running = results["running_text"].as_str().unwrap();
    assert!(
        running.contains("/s") && running.contains("ETA") && running.contains("peer"),
        "{running}"
    );
    let saved_file = PathBuf::from(results["saved_path"].as_str().unwrap());
    assert_eq!(saved_file.file_name().unwrap(), "holiday-video.bin");
    assert_eq!(file_hash(&saved_file), file_hash(&shared));

    // B was in the peers list, connected directly.
    let row = results["peer_row"].as_str().unwrap();
    assert!(row.contains("direct"), "{row}");

    // Logged out: refused.
    assert_eq!(results["after_logout_status"], 401);
    assert_eq!(results["after_logout_unpublish"], 401);
    assert_eq!(results["problems"], serde_json::json!([]), "{results}");
    let status = node.status();
    assert_eq!(status["display_name"], "E2E laptop");

    for name in [
        "00-setup",
        "01-login",
        "02-dashboard",
        "03-files",
        "04-downloads-running",
        "04-downloads-paused",
        "04-downloads",
        "05-peers",
        "06-phone-dashboard",
        "06-phone-downloads",
        "07-logged-out",
    ] {
        let shot = shots.join(format!("{name}.png"));
        assert!(
            std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000),
            "{} missing",
            shot.display()
        );
    }
}

#[test]
fn the_web_ui_works_in_firefox() {
    // Screenshots apart from the Chromium test's folder, which that test empties.
    let Some(Browser {
        web,
        executable: firefox,
        shots,
    }) = browser(
        "puppeteer-core",
        "FIREFOX",
        "/usr/bin/firefox-esr",
        "firefox-esr",
        "web-screenshots-firefox",
    )
    else {
        return;
    };

    let dir = tempfile::tempdir().unwrap();
    let (seeder, node, remote_cid, link) =
        two_daemons(dir.path(), "8MiB", "photos.tar", 16 * MIB, 10);
    let upload = dir.path().join("from firefox.txt");
    std::fs::write(&upload, "shared from Firefox\n".repeat(500)).unwrap();

    let envs = vec![
        ("P2PD_SETUP_LINK", link),
        ("P2PD_PASSWORD", "another long password".to_string()),
        ("P2PD_UPLOAD_FILE", path_str(&upload)),
        ("P2PD_REMOTE_CID", remote_cid.clone()),
        ("P2PD_REMOTE_PEER", seeder.peer_id()),
        ("P2PD_SCREENSHOTS", path_str(&shots)),
        ("FIREFOX", firefox),
    ];
    let results = run_node(
        &web,
        "e2e-firefox.mjs",
        &envs,
        &dir.path().join("ff.stderr"),
    );

    assert_eq!(results["node_id"], node.peer_id().as_str());
    let uploaded = results["uploaded_cid"].as_str().unwrap();
    let files = node.cli(&["ls", "--json"]).success().json();
    assert!(
        files
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["cid"] == uploaded && f["name"] == "from firefox.txt"),
        "{files}"
    );
    let seen: Vec<u64> = results["progress_seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(seen.last(), Some(&100), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    let listed = node.cli(&["ls", "--json"]).success().json();
    assert!(listed.to_string().contains(&remote_cid), "{listed}");
    assert!(
        results["peer_row"].as_str().unwrap().contains("direct"),
        "{results}"
    );
    assert!(
        results["phone_overflow"].as_i64().unwrap() <= 2,
        "{results}"
    );
    assert_eq!(results["after_logout_status"], 401);
    assert_eq!(results["problems"], serde_json::json!([]), "{results}");
}
