//! Issue 11: the store's integrity as an operator sees it, with real daemons on
//! 127.0.0.1. `p2pd verify [--repair]` finds and drops damage; a `--no-copy` file that
//! changes on disk is noticed by the daemon on its own; a full disk fails a fetch before
//! it starts and `rm`/`cancel` give the space back; a bad output path is refused before
//! anything is downloaded.
#![allow(clippy::unwrap_used)]

mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::*;
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// The only file in a directory of the store (`blobs`, `partial`).
fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

fn listed(node: &Daemon, cid: &str) -> Value {
    node.cli(&["ls", "--json"])
        .success()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cid"] == cid)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn verify_reports_damage_and_repair_drops_it_so_a_fetch_restores_it() {
    let mut swarm = Swarm::new();
    let holder = swarm.node(&[]);
    let src = swarm.path("copied.bin");
    random_file(&src, 3 * MIB + 100, 1);
    let cid = add(&holder, &src, &[]);
    let in_place = swarm.path("in-place.bin");
    random_file(&in_place, MIB, 2);
    add(&holder, &in_place, &["--no-copy"]);
    // Another copy on the network, to fetch the dropped chunks back from.
    let other = swarm.node(&[]);
    fetch(&other, &cid, &swarm.path("other.out"), 60).success();

    let clean = holder.cli(&["verify"]).success();
    assert!(
        clean.last_line().starts_with(
            "checked 2 file(s): 0 bad chunk(s), 0 missing chunk(s), 0 changed on disk, 0 repaired"
        ),
        "{clean:?}"
    );

    // One flipped byte in chunk 1 of the holder's copy, and its last chunk cut off.
    let blob = only_file(&holder.data_dir.join("store/blobs"));
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[(MIB + 7) as usize] ^= 0x40;
    bytes.truncate(3 * MIB as usize);
    std::fs::write(&blob, &bytes).unwrap();

    let found = holder.cli(&["verify"]);
    found.assert_clean_error(1);
    let line = found
        .stdout
        .lines()
        .find(|l| l.starts_with(&cid))
        .unwrap_or_else(|| panic!("no line for {cid}: {found:?}"));
    assert!(
        line.contains("1 bad chunk(s) [1]") && line.contains("1 missing chunk(s) [3]"),
        "{line}"
    );
    let report = holder.cli(&["verify", "--json"]);
    assert_eq!(report.code, 1);
    let report = report.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["files_checked"], 2);
    assert_eq!(report["bad_chunks"], 1);
    assert_eq!(report["missing_chunks"], 1);
    assert_eq!(report["damaged"][0]["bad_chunks"], serde_json::json!([1]));
    assert_eq!(report["damaged"][0]["repair"], Value::Null);
    // Verifying changed nothing.
    assert_eq!(listed(&holder, &cid)["state"], "complete");

    let repaired = holder.cli(&["verify", "--repair"]);
    repaired.assert_clean_error(1);
    assert!(
        repaired.stdout.contains("repaired: now a partial download"),
        "{repaired:?}"
    );
    let file = listed(&holder, &cid);
    assert_eq!(file["state"], "partial", "{file}");
    assert_eq!(file["have_chunks"], 2, "{file}");
    // What is left verifies.
    holder.cli(&["verify"]).success();

    // Fetching again gets the dropped chunks back, and only those.
    let out2 = swarm.path("again.out");
    let summary = fetch(&holder, &cid, &out2, 60).success().json();
    assert_eq!(file_hash(&out2), file_hash(&src));
    assert_eq!(bytes_from_peers(&summary), MIB + 100, "{summary}");
    holder.cli(&["verify"]).success();
}

#[test]
fn a_no_copy_file_that_changes_is_noticed_withdrawn_shown_and_added_again() {
    let mut swarm = Swarm::new();
    let seeder = swarm.node(&[]);
    let src = swarm.path("tracked.bin");
    random_file(&src, 2 * MIB, 3);
    let original = std::fs::read(&src).unwrap();
    let cid = add(&seeder, &src, &["--no-copy"]);
    seeder.wait_announced(1);
    assert_eq!(seeder.status()["node"]["provided_files"], 1);

    // Changed with nobody asking for it: the daemon notices on its own.
    let added_mtime = std::fs::metadata(&src).unwrap().modified().unwrap();
    random_file(&src, 2 * MIB, 4);
    set_mtime(&src, added_mtime + Duration::from_secs(2));
    wait_until(
        "the changed file to be withdrawn",
        Duration::from_secs(40),
        || seeder.status()["node"]["provided_files"] == 0,
    );
    assert!(seeder.log().contains("file changed on disk"));
    let status = seeder.status();
    assert_eq!(
        status["changed_files"],
        serde_json::json!([cid]),
        "{status}"
    );
    let text = seeder.cli(&["status"]).success().stdout;
    assert!(
        text.contains(&format!("{cid} changed on disk: no longer shared")),
        "{text}"
    );
    assert_eq!(listed(&seeder, &cid)["state"], "changed");
    let ls = seeder.cli(&["ls"]).success().stdout;
    assert!(
        ls.contains("[changed on disk: not shared; add it again]"),
        "{ls}"
    );
    // Verify reports it too.
    let verify = seeder.cli(&["verify"]);
    verify.assert_clean_error(1);
    assert!(verify.stdout.contains("changed on disk"), "{verify:?}");

    // A fetcher gets nothing from it.
    let fetcher = swarm.node(&[]);
    let failed = fetch(&fetcher, &cid, &swarm.path("never.out"), 5);
    failed.assert_clean_error(1);

    // Back to the bytes it had, under a new mtime: still marked until it is added again.
    std::fs::write(&src, &original).unwrap();
    set_mtime(&src, added_mtime + Duration::from_secs(4));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(listed(&seeder, &cid)["state"], "changed");
    assert_eq!(add(&seeder, &src, &["--no-copy"]), cid);
    assert_eq!(listed(&seeder, &cid)["state"], "complete");
    assert_eq!(seeder.status()["changed_files"], serde_json::json!([]));
    seeder.cli(&["verify"]).success();
    let out = swarm.path("readded.out");
    fetch(&fetcher, &cid, &out, 60).success();
    assert_eq!(std::fs::read(&out).unwrap(), original);
}

fn set_mtime(path: &Path, when: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

#[test]
fn a_fetch_onto_a_bad_output_path_is_refused_before_downloading() {
    let mut swarm = Swarm::new();
    let seeder = swarm.node(&[]);
    let fetcher = swarm.node(&[]);
    let src = swarm.path("wanted.bin");
    random_file(&src, MIB, 5);
    let cid = add(&seeder, &src, &[]);

    let dangling = swarm.path("dangling");
    std::os::unix::fs::symlink(swarm.path("nowhere/at/all"), &dangling).unwrap();
    let not_a_dir = swarm.path("plain-file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let cases = [
        (dangling.clone(), "already exists"),
        (swarm.path("plain-file/inside"), "does not exist"),
        (swarm.path("missing-dir/out"), "does not exist"),
        (swarm.dir.path().to_path_buf(), "already exists"),
    ];
    for (output, expected) in &cases {
        let r = fetch(&fetcher, &cid, output, 30);
        r.assert_clean_error(2);
        assert!(r.stderr.contains(expected), "{output:?}: {r:?}");
    }
    // The daemon refuses the same paths itself (another client than the CLI).
    let (addr, token) = http::endpoint(&fetcher.data_dir);
    let r = http::request(&addr, "POST", "/api/fetch")
        .bearer(&token)
        .json(&serde_json::json!({"cid": cid, "output": dangling}))
        .send();
    assert!(r.assert_error(400).contains("already exists"));
    // Nothing was downloaded, and the link is left as it was.
    assert!(fetcher.status()["downloads"].as_array().unwrap().is_empty());
    assert!(listed(&fetcher, &cid).is_null());
    assert!(dangling
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
}

/// A small tmpfs, unmounted when dropped (even when the test fails).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u64) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs: {status}");
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn free(&self) -> u64 {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(self.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

#[test]
fn a_full_disk_fails_a_fetch_up_front_and_rm_and_cancel_give_space_back() {
    if Needs::new().root().skip() {
        return;
    }
    let mut swarm = Swarm::new();
    // Slow enough that a download can be caught half-way.
    let seeder = swarm.node(&["--max-upload-rate", "2MiB"]);
    let big = swarm.path("big.bin");
    random_file(&big, 40 * MIB, 6);
    let big_cid = add(&seeder, &big, &[]);
    let mid = swarm.path("mid.bin");
    random_file(&mid, 12 * MIB, 7);
    let mid_cid = add(&seeder, &mid, &[]);

    let disk = SmallDisk::mount(32);
    let bootstrap = swarm.bootstrap.addr();
    let fetcher = Daemon::start(&disk.path().join("node"), &["--bootstrap", &bootstrap]);

    // Too big: refused once the manifest says how big, before any chunk is fetched.
    let free_before = disk.free();
    let r = fetch(&fetcher, &big_cid, &swarm.path("big.out"), 60);
    r.assert_clean_error(1);
    assert!(
        r.stderr.contains("needs 40 MiB,") && r.stderr.contains("MiB free on"),
        "{r:?}"
    );
    assert!(disk.free() + MIB >= free_before, "space was taken");
    // The API says 507 in the fetch's error line.
    let (addr, token) = http::endpoint(&fetcher.data_dir);
    let r = http::request(&addr, "POST", "/api/fetch")
        .bearer(&token)
        .json(&serde_json::json!({"cid": big_cid, "timeout_secs": 30}))
        .read_until(Duration::from_secs(60), |b| {
            String::from_utf8_lossy(b).contains("\"event\":\"error\"")
        });
    let last = r.text().lines().last().unwrap_or("").to_string();
    assert!(last.contains("\"status\":507"), "{last}");

    // Cancel gives a partial download's space back.
    let free_before = disk.free();
    let child = fetch_in_background(&fetcher, &mid_cid, &swarm.path("mid.out"), 2 * MIB);
    let r = http::request(&addr, "DELETE", &format!("/api/downloads/{mid_cid}"))
        .bearer(&token)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let _ = finish(child);
    wait_until("cancel to free the space", Duration::from_secs(20), || {
        disk.free() + MIB >= free_before
    });

    // So does `rm` of a paused one.
    let child = fetch_in_background(&fetcher, &mid_cid, &swarm.path("mid2.out"), 4 * MIB);
    let r = http::request(&addr, "POST", &format!("/api/downloads/{mid_cid}/pause"))
        .bearer(&token)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let _ = finish(child);
    assert_eq!(listed(&fetcher, &mid_cid)["state"], "partial");
    assert!(
        disk.free() + 3 * MIB < free_before,
        "a partial download holds space"
    );
    fetcher.cli(&["rm", &mid_cid]).success();
    assert!(
        disk.free() + MIB >= free_before,
        "rm did not free the space"
    );

    // And a store write that meets a full disk is a clear 507, then works once freed.
    let local = big;
    let r = fetcher.cli(&["add", local.to_str().unwrap()]);
    r.assert_clean_error(1);
    assert!(
        r.stderr.contains("needs 40 MiB,") && r.stderr.contains("MiB free on"),
        "{r:?}"
    );
    let r = http::request(&addr, "POST", "/api/add")
        .bearer(&token)
        .json(&serde_json::json!({"path": local}))
        .send();
    assert!(r.text().contains("\"status\":507"), "{}", r.text());
    let small = swarm.path("small.bin");
    random_file(&small, MIB, 8);
    add(&fetcher, &small, &[]);
    let out = swarm.path("mid3.out");
    fetch(&fetcher, &mid_cid, &out, 60).success();
    assert_eq!(file_hash(&out), file_hash(&mid));
}
