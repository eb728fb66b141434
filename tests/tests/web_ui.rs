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

/// Chromium driven by playwright-core, its screenshots under `shots`; `None` (the test
/// skipped, and why said) when it or node is not installed.
fn find_chromium(shots: &str) -> Option<Browser> {
    browser(
        "playwright-core",
        "CHROMIUM",
        "/usr/bin/chromium",
        "chromium",
        shots,
    )
}

#[test]
fn the_web_ui_works_end_to_end_in_chromium() {
    let Some(Browser {
        web,
        executable: chromium,
        shots,
    }) = find_chromium("web-screenshots")
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
    // And in the reputation table, with a score and a trend line.
    let row = results["reputation_row"].as_str().unwrap();
    assert!(row.contains("MiB"), "{row}");
    assert_eq!(results["reputation_trend"], 1, "{results}");

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

/// Issue 13 in Chromium (`tests/web/e2e-share.mjs`): make a ticket for a file of A's in
/// the UI and see it with its QR code and copy button; unpublish and publish again; fetch
/// C's password-protected file by its ticket in the UI. Then B, another daemon that
/// knows no one, fetches A's file by the ticket the page showed.
#[test]
fn sharing_by_ticket_works_in_chromium() {
    let Some(Browser {
        web,
        executable: chromium,
        shots,
    }) = find_chromium("web-screenshots-share")
    else {
        return;
    };
    let _ = std::fs::remove_dir_all(&shots);
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start(&dir.path().join("a"), &[]);
    let local = dir.path().join("slides.pdf");
    random_file(&local, 2 * MIB + 5, 31);
    let local_cid = add(&node, &local, &[]);
    let remote = Daemon::start(&dir.path().join("c"), &[]);
    let remote_file = dir.path().join("private notes.txt");
    random_file(&remote_file, MIB, 32);
    let remote_cid = add(&remote, &remote_file, &[]);
    let remote_ticket = cli_with_stdin(
        &remote.data_dir,
        &["share", &remote_cid, "--password"],
        "open sesame\n",
    )
    .success()
    .last_line()
    .to_string();
    let envs = vec![
        ("P2PD_SETUP_LINK", node.setup_link()),
        ("P2PD_PASSWORD", "a long web password".to_string()),
        ("P2PD_LOCAL_CID", local_cid.clone()),
        ("P2PD_REMOTE_TICKET", remote_ticket),
        ("P2PD_REMOTE_PASSWORD", "open sesame".to_string()),
        ("P2PD_REMOTE_CID", remote_cid.clone()),
        ("P2PD_SCREENSHOTS", path_str(&shots)),
        ("CHROMIUM", chromium),
    ];
    let results = run_node(
        &web,
        "e2e-share.mjs",
        &envs,
        &dir.path().join("e2e-share.stderr"),
    );
    assert_eq!(results["problems"], serde_json::json!([]), "{results}");

    // The page showed this node's ticket for the file, its QR code, and copied it.
    let ticket = results["ticket"].as_str().unwrap();
    let listed = node.cli(&["shares", "--json"]).success().json();
    assert_eq!(listed[0]["ticket"], ticket, "{listed}");
    assert_eq!(listed[0]["cid"], local_cid.as_str());
    assert!(listed[0]["expires_unix"].as_u64().is_some());
    assert!(results["ends"].as_str().unwrap().starts_with("ends in"));
    assert_eq!(results["copied"], ticket);
    let qr = dht_proto::qr::qr_svg(&ticket.to_ascii_uppercase()).unwrap();
    assert_eq!(
        results["qr_svg"],
        qr.as_str(),
        "the QR code is the ticket's"
    );
    assert!(results["wrong_password_error"]
        .as_str()
        .unwrap()
        .contains("wrong password"));
    // Published again after the round trip.
    let files = node.cli(&["ls", "--json"]).success().json();
    assert_eq!(files[0]["published"], true, "{files}");

    // C's private file arrived in A's store through the ticket box.
    let files = files.as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["cid"] == remote_cid.as_str() && f["state"] == "complete"),
        "{files:?}"
    );

    // Another daemon that knows no one fetches A's file with the ticket from the page.
    let other = Daemon::start(&dir.path().join("b"), &[]);
    let copy = dir.path().join("slides.copy.pdf");
    other
        .cli(&["fetch", ticket, "-o", &path_str(&copy), "--timeout", "30"])
        .success();
    assert_eq!(file_hash(&copy), file_hash(&local));
    assert!(shots.join("10-shares.png").exists());
}
