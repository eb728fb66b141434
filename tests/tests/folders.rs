//! Issue 13: folders, with real daemons on 127.0.0.1. A tree round-trips byte for byte
//! with its executable bits and empty directories; symbolic links are skipped with a
//! warning unless followed; identical files are stored once; a fetch killed with
//! SIGKILL resumes, and refuses to write through a directory swapped for a symbolic
//! link meanwhile; a folder is fetched by ticket and found by search and browse with
//! its folder marker; a password share keeps a folder and its own files private;
//! `rm`, `unpublish`, `publish`, `list` and `unlist` take a folder's CID, and the
//! folder's files that belong to no other share go with it. (Hostile
//! manifests sent by a peer: `transfer/folder/tests.rs`.)
#![allow(clippy::unwrap_used)]

mod harness;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::*;
use serde_json::Value;

/// Writes `len` pseudo-random bytes to `root/rel`, making its directories.
fn put(root: &Path, rel: &str, len: u64, seed: u64) -> PathBuf {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    random_file(&path, len, seed);
    path
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o111 != 0
}

/// Every regular file under `root` (relative path, BLAKE3, executable), sorted.
fn tree_of(root: &Path) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for item in std::fs::read_dir(&dir).unwrap() {
            let path = item.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, file_hash(&path), is_executable(&path)));
            }
        }
    }
    out.sort();
    out
}

/// `add <dir> --json`: the folder's summary.
fn add_folder(node: &Daemon, dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["add", dir.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    node.cli(&args).success().json()
}

/// A small tree: text, an executable script, a binary of several chunks, two identical
/// files, an empty directory and a symbolic link.
fn sample_tree(root: &Path) {
    put(root, "README.md", 1500, 1);
    let script = put(root, "bin/run.sh", 300, 2);
    set_mode(&script, 0o755);
    put(root, "data/deep/er/blob.bin", 3 * (1 << 20) + 17, 3);
    put(root, "same/one.dat", 40_000, 4);
    put(root, "same/two.dat", 40_000, 4);
    std::fs::create_dir_all(root.join("empty/inside")).unwrap();
    std::os::unix::fs::symlink("README.md", root.join("link-to-readme")).unwrap();
}

#[test]
fn a_folder_round_trips_byte_for_byte_with_its_executable_bits() {
    let mut swarm = Swarm::new();
    let provider = swarm.node(&[]);
    let fetcher = swarm.node(&[]);
    let src = swarm.path("project");
    sample_tree(&src);

    // Text output: the warning about the link on stderr, the CID as the last line.
    let out = provider.cli(&["add", src.to_str().unwrap()]).success();
    assert!(
        out.stderr
            .contains("warning: link-to-readme: a symbolic link"),
        "{out:?}"
    );
    let cid = out.last_line().to_string();
    // The same tree again: the same CID, already present; --json says it all.
    let added = add_folder(&provider, &src, &[]);
    assert_eq!(added["cid"], cid.as_str());
    assert_eq!(added["already_present"], true);
    assert_eq!(added["files"], 5);
    assert_eq!(added["unique_files"], 4, "identical files are one: {added}");
    assert_eq!(added["empty_dirs"], 1);
    assert_eq!(added["skipped"].as_array().unwrap().len(), 1, "{added}");

    // Identical files are stored once: four blobs for five files.
    let blobs = std::fs::read_dir(provider.data_dir.join("store/blobs"))
        .unwrap()
        .count();
    assert_eq!(blobs, 4);
    // The files listing shows the folder, marked; `ls` too.
    let ls = provider.cli(&["ls", "--json"]).success().json();
    let folders: Vec<&Value> = ls
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["folder"] == true)
        .collect();
    assert_eq!(folders.len(), 1, "{ls}");
    assert_eq!(folders[0]["cid"], cid.as_str());
    assert_eq!(folders[0]["name"], "project");
    assert_eq!(folders[0]["chunks"], 5);
    let text = provider.cli(&["ls"]).success();
    assert!(text.stdout.contains("[folder, 5 files]"), "{text:?}");

    // Fetch through the DHT into a new directory.
    let dest = swarm.path("copy");
    let done = fetch(&fetcher, &cid, &dest, 30).success().json();
    assert_eq!(done["folder"], true, "{done}");
    assert_eq!(done["files"], 5);
    let mut expected = tree_of(&src);
    // The link was left out.
    expected.retain(|(p, _, _)| p != "link-to-readme");
    assert_eq!(tree_of(&dest), expected);
    assert!(is_executable(&dest.join("bin/run.sh")));
    assert!(!is_executable(&dest.join("README.md")));
    assert!(dest.join("empty/inside").is_dir());
    assert!(std::fs::symlink_metadata(dest.join("link-to-readme")).is_err());

    // Fetching it again over the finished copy is refused, and changes nothing.
    let again = fetcher.cli(&["fetch", &cid, "-o", dest.to_str().unwrap()]);
    again.assert_clean_error(2);
    assert!(again.stderr.contains("already exists"), "{again:?}");
    assert_eq!(tree_of(&dest), expected);
    // Without -o, the tree goes under the folder's name in the current directory.
    let here = swarm.path("here");
    std::fs::create_dir_all(&here).unwrap();
    let out = harness::p2pd_command(None)
        .current_dir(&here)
        .args([
            "--data-dir",
            fetcher.data_dir.to_str().unwrap(),
            "fetch",
            &cid,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(tree_of(&here.join("project")), expected);
}

#[test]
fn symbolic_links_are_followed_only_when_asked() {
    let mut swarm = Swarm::new();
    let node = swarm.node(&[]);
    let src = swarm.path("tree");
    put(&src, "a.txt", 100, 1);
    let outside = swarm.path("outside");
    put(&outside, "b.txt", 200, 2);
    std::os::unix::fs::symlink(&outside, src.join("linked-dir")).unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("linked-file")).unwrap();
    // A loop back into the tree is never followed.
    std::os::unix::fs::symlink(&src, src.join("loop")).unwrap();

    let skipped = add_folder(&node, &src, &[]);
    assert_eq!(skipped["files"], 1, "{skipped}");
    assert_eq!(skipped["skipped"].as_array().unwrap().len(), 3);

    let followed = add_folder(&node, &src, &["--follow-symlinks"]);
    assert_eq!(followed["files"], 3, "{followed}");
    assert_eq!(followed["unique_files"], 2);
    let skipped_lines = followed["skipped"].as_array().unwrap();
    assert_eq!(skipped_lines.len(), 1, "{followed}");
    assert!(skipped_lines[0].as_str().unwrap().contains("loop"));
    assert_ne!(followed["cid"], skipped["cid"]);
    let listing = node.cli(&["ls", "--json"]).success().json();
    assert_eq!(
        listing
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["folder"] == true)
            .count(),
        2
    );
}

#[test]
fn a_killed_folder_fetch_resumes_and_never_writes_through_a_planted_link() {
    let mut swarm = Swarm::new();
    // 2 MiB/s: the tree takes several seconds.
    let provider = swarm.node(&["--max-upload-rate", "2MiB"]);
    let mut fetcher = swarm.node(&[]);
    let src = swarm.path("tree");
    for d in 0..6 {
        for f in 0..4 {
            put(&src, &format!("d{d}/f{f}.bin"), 400_000, d * 10 + f + 1);
        }
    }
    let cid = add_folder(&provider, &src, &[])["cid"]
        .as_str()
        .unwrap()
        .to_string();
    let dest = swarm.path("copy");
    let cli = spawn_cli(
        &fetcher.data_dir,
        &["fetch", &cid, "-o", dest.to_str().unwrap(), "--json"],
    );
    wait_until("three files in place", Duration::from_secs(60), || {
        tree_of_quiet(&dest) >= 3
    });
    fetcher.kill();
    let _ = finish(cli);
    let placed = tree_of_quiet(&dest);
    assert!(placed < 24, "the fetch ended before the kill");

    // A directory not complete yet is swapped for a link to outside the target.
    let victim = (0..6)
        .map(|d| dest.join(format!("d{d}")))
        .rev()
        .find(|d| std::fs::read_dir(d).map_or(true, |r| r.count() < 4))
        .unwrap();
    let outside = swarm.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let _ = std::fs::remove_dir_all(&victim);
    std::os::unix::fs::symlink(&outside, &victim).unwrap();
    fetcher.restart();
    let refused = fetcher.cli(&[
        "fetch",
        &cid,
        "-o",
        dest.to_str().unwrap(),
        "--timeout",
        "30",
    ]);
    refused.assert_clean_error(2);
    assert!(refused.stderr.contains("is not a directory"), "{refused:?}");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing outside"
    );

    // Put right, the same command resumes and completes the tree.
    std::fs::remove_file(&victim).unwrap();
    let done = fetch(&fetcher, &cid, &dest, 30).success().json();
    assert_eq!(done["files"], 24, "{done}");
    assert_eq!(tree_of(&dest), tree_of(&src));
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

/// Files under `root` so far (0 if it is not there yet).
fn tree_of_quiet(root: &Path) -> usize {
    let mut count = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(listing) = std::fs::read_dir(&dir) else {
            continue;
        };
        for item in listing.flatten() {
            match item.file_type() {
                Ok(t) if t.is_dir() => stack.push(item.path()),
                Ok(t) if t.is_file() => count += 1,
                _ => {}
            }
        }
    }
    count
}

#[test]
fn a_folder_is_fetched_by_ticket_and_found_by_search_and_browse() {
    let mut swarm = Swarm::new();
    let alice = swarm.node(&["--dht-mode", "server"]);
    let bob = swarm.node(&["--dht-mode", "server"]);
    let src = swarm.path("Holiday Album");
    put(&src, "day1/beach.jpg", 70_000, 1);
    put(&src, "day2/mountain.jpg", 80_000, 2);
    let cid = add_folder(&alice, &src, &[])["cid"]
        .as_str()
        .unwrap()
        .to_string();
    let hidden = swarm.path("secret stuff");
    put(&hidden, "x.txt", 10, 3);
    let hidden_cid = add_folder(&alice, &hidden, &["--unlisted"])["cid"]
        .as_str()
        .unwrap()
        .to_string();

    // Search: the folder is one result, marked as a folder; the unlisted one is not.
    let results = wait_for_search(&bob, &["holiday", "album"], 1);
    assert_eq!(results[0]["cid"], cid.as_str());
    assert_eq!(results[0]["folder"], true);
    assert_eq!(results[0]["media_type"], "inode/directory");
    assert_eq!(results[0]["size"], 150_000);
    let text = bob
        .cli(&["search", "holiday", "album", "--timeout", "20"])
        .success();
    assert!(text.stdout.contains("Holiday Album/"), "{text:?}");
    assert!(search_json(&bob, &["secret", "stuff"]).is_empty());
    // Browse lists it too, and only it.
    let browsed = bob
        .cli(&["browse", "--json", &alice.peer_id()])
        .success()
        .json();
    let files = browsed.as_array().unwrap();
    assert_eq!(files.len(), 1, "{browsed}");
    assert_eq!(files[0]["folder"], true);
    assert_ne!(files[0]["cid"], hidden_cid.as_str());

    // A ticket for the folder fetches it from a node that knows no one.
    let ticket = alice
        .cli(&["share", &cid])
        .success()
        .last_line()
        .to_string();
    let loner = Daemon::start(&swarm.path("loner"), &[]);
    let dest = swarm.path("by-ticket");
    loner
        .cli(&[
            "fetch",
            &ticket,
            "-o",
            dest.to_str().unwrap(),
            "--timeout",
            "20",
        ])
        .success();
    assert_eq!(tree_of(&dest), tree_of(&src));
}

/// `fetch <ticket> -o <dest>` with `stdin` as the password's line.
fn fetch_ticket(node: &Daemon, ticket: &str, dest: &Path, stdin: &str) -> CliResult {
    let args = [
        "fetch",
        ticket,
        "-o",
        dest.to_str().unwrap(),
        "--timeout",
        "20",
    ];
    harness::cli_with_stdin(&node.data_dir, &args, stdin)
}

#[test]
fn a_password_share_of_a_folder_keeps_the_folder_and_its_own_files_private() {
    let mut swarm = Swarm::new();
    let alice = swarm.node(&[]);
    let bob = swarm.node(&[]);
    let src = swarm.path("private album");
    put(&src, "own/a.bin", 3 * (1 << 20) + 5, 31);
    put(&src, "own/b.txt", 2_000, 32);
    let public = put(&src, "public.bin", 50_000, 33);
    let cid = add_folder(&alice, &src, &[])["cid"]
        .as_str()
        .unwrap()
        .to_string();
    // public.bin is also shared on its own: it stays public.
    alice.cli(&["add", public.to_str().unwrap()]).success();
    let cid_of = |name: &str| {
        ls_row(&alice, "name", name).unwrap()["cid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (own_a, public_cid) = (cid_of("a.bin"), cid_of("public.bin"));
    let ticket = harness::cli_with_stdin(&alice.data_dir, &["share", &cid, "--password"], "pw 1\n")
        .success()
        .last_line()
        .to_string();
    assert!(ticket.starts_with("p2pd1"), "{ticket}");

    // The folder and its own files are withdrawn; the file shared on its own is not.
    for c in [&cid, &own_a] {
        let row = ls_row(&alice, "cid", c).unwrap();
        assert!(row["published"] == false && !announced(&row), "{row}");
    }
    let row = ls_row(&alice, "cid", &public_cid).unwrap();
    assert_eq!(row["published"], true, "{row}");

    let dest = swarm.path("bob-album");
    let absent = fetch_ticket(&bob, &ticket, &dest, "");
    absent.assert_clean_error(1);
    assert!(absent.stderr.contains("needs a password"), "{absent:?}");
    let wrong = fetch_ticket(&bob, &ticket, &dest, "pw 2\n");
    wrong.assert_clean_error(1);
    assert!(wrong.stderr.contains("wrong password"), "{wrong:?}");
    assert!(!dest.exists(), "nothing written");
    // Bob is connected to alice now, so a bare CID goes straight to her: she answers as
    // if she held neither the folder nor its own file.
    fetch(&bob, &cid, &dest, 4).assert_clean_error(1);
    let file_dest = swarm.path("a.copy");
    fetch(&bob, &own_a, &file_dest, 4).assert_clean_error(1);
    assert!(!dest.exists() && !file_dest.exists());
    // The file shared on its own is served by bare CID as before.
    fetch(&bob, &public_cid, &swarm.path("public.copy"), 20).success();

    // The right password: the whole tree.
    fetch_ticket(&bob, &ticket, &dest, "pw 1\n").success();
    assert_eq!(tree_of(&dest), tree_of(&src));
    // Private while the share lasts: publish is refused, for the folder and its file.
    alice.cli(&["publish", &cid]).assert_clean_error(2);
    alice.cli(&["publish", &own_a]).assert_clean_error(2);
    // Revoked: publish works again.
    alice.cli(&["unshare", &cid]).success();
    alice.cli(&["publish", &cid]).success();
    assert!(announced(&ls_row(&alice, "cid", &cid).unwrap()));
}

fn search_json(node: &Daemon, words: &[&str]) -> Vec<Value> {
    let mut args = vec!["search", "--json", "--timeout", "10"];
    args.extend_from_slice(words);
    let out = node.cli(&args).success();
    out.json()
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {out:?}"))
        .clone()
}

fn wait_for_search(node: &Daemon, words: &[&str], results: usize) -> Vec<Value> {
    let mut found = Vec::new();
    wait_until("the folder is found", Duration::from_secs(60), || {
        found = search_json(node, words);
        found.len() >= results
    });
    found
}

/// `ls --json` of `node`.
fn ls(node: &Daemon) -> Vec<Value> {
    node.cli(&["ls", "--json"])
        .success()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

/// The row of `ls --json` whose `field` is `value` (a CID, a name), if any.
fn ls_row(node: &Daemon, field: &str, value: &str) -> Option<Value> {
    ls(node).into_iter().find(|f| f[field] == value)
}

fn announced(row: &Value) -> bool {
    !row["announcement"].is_null()
}

fn blob_count(node: &Daemon) -> usize {
    std::fs::read_dir(node.data_dir.join("store/blobs"))
        .unwrap()
        .count()
}

#[test]
fn rm_unpublish_publish_list_and_unlist_take_a_folder_cid() {
    let mut swarm = Swarm::new();
    let mut alice = swarm.node(&[]);
    let bob = swarm.node(&[]);
    let src = swarm.path("album");
    put(&src, "own.bin", 50_000, 11);
    let alone = put(&src, "alone.bin", 60_000, 12);
    put(&src, "both.bin", 70_000, 13);
    let hidden = put(&src, "hidden.bin", 80_000, 14);
    let other_src = swarm.path("other");
    put(&other_src, "both.bin", 70_000, 13);
    let cid = add_folder(&alice, &src, &[])["cid"]
        .as_str()
        .unwrap()
        .to_string();
    let other = add_folder(&alice, &other_src, &[])["cid"]
        .as_str()
        .unwrap()
        .to_string();
    // alone.bin is also shared on its own.
    alice.cli(&["add", alone.to_str().unwrap()]).success();
    // hidden.bin too, but unlisted: still a share of its own.
    alice
        .cli(&["add", hidden.to_str().unwrap(), "--unlisted"])
        .success();
    assert_eq!(
        ls_row(&alice, "name", "hidden.bin").unwrap()["listed"],
        false
    );
    assert_eq!(blob_count(&alice), 4);
    wait_until("the folder in the catalog", Duration::from_secs(30), || {
        ls_row(&alice, "cid", &cid).unwrap()["in_catalog"] == true
    });

    // unlist / list switch the folder's catalog entry, not its files'.
    let out = alice.cli(&["unlist", &cid]).success();
    assert!(out.stdout.contains("is unlisted"), "{out:?}");
    let row = ls_row(&alice, "cid", &cid).unwrap();
    assert_eq!(
        (&row["listed"], &row["in_catalog"]),
        (&false.into(), &false.into())
    );
    assert_eq!(ls_row(&alice, "name", "alone.bin").unwrap()["listed"], true);
    let listed = alice.cli(&["list", &cid, "--json"]).success().json();
    assert_eq!(listed["in_catalog"], true, "{listed}");
    assert_eq!(ls_row(&alice, "cid", &cid).unwrap()["listed"], true);

    // unpublish: the folder and its own file are no longer announced; the files other
    // shares have still are.
    alice.cli(&["unpublish", &cid]).success();
    let row = ls_row(&alice, "cid", &cid).unwrap();
    assert_eq!(row["published"], false, "{row}");
    assert!(!announced(&row), "{row}");
    assert_eq!(row["in_catalog"], false);
    let own = ls_row(&alice, "name", "own.bin").unwrap();
    assert_eq!(own["published"], false);
    assert!(!announced(&own), "{own}");
    for name in ["alone.bin", "both.bin", "hidden.bin"] {
        let row = ls_row(&alice, "name", name).unwrap();
        assert!(row["published"] == true && announced(&row), "{row}");
    }
    // The choice survives a restart; the other folder is announced again on start.
    alice.restart();
    assert!(!announced(&ls_row(&alice, "cid", &cid).unwrap()));
    assert!(!announced(&ls_row(&alice, "name", "own.bin").unwrap()));
    assert!(announced(&ls_row(&alice, "cid", &other).unwrap()));
    // publish undoes it.
    alice.cli(&["publish", &cid]).success();
    let row = ls_row(&alice, "cid", &cid).unwrap();
    assert!(row["published"] == true && announced(&row), "{row}");
    assert!(announced(&ls_row(&alice, "name", "own.bin").unwrap()));

    // Bob fetches the folder, then removes it: his tree stays on disk.
    let dest = swarm.path("bob-album");
    fetch(&bob, &cid, &dest, 60).success();
    let fetched = tree_of(&dest);
    assert_eq!(fetched, tree_of(&src));
    let out = bob.cli(&["rm", &cid]).success();
    assert!(out.stdout.contains(&format!("removed {cid}")), "{out:?}");
    assert!(ls(&bob).is_empty(), "{:?}", ls(&bob));
    assert_eq!(tree_of(&dest), fetched);

    // rm on alice: the folder and its own file go (its copy too); the files other shares
    // have, and the other folder, stay.
    let own_cid = ls_row(&alice, "name", "own.bin").unwrap()["cid"]
        .as_str()
        .unwrap()
        .to_string();
    alice.cli(&["rm", &cid]).success();
    assert!(ls_row(&alice, "cid", &cid).is_none());
    assert!(ls_row(&alice, "cid", &own_cid).is_none());
    assert!(ls_row(&alice, "name", "alone.bin").is_some());
    assert!(ls_row(&alice, "name", "both.bin").is_some());
    let kept = ls_row(&alice, "name", "hidden.bin").expect("hidden.bin was added on its own");
    assert!(kept["state"] == "complete" && announced(&kept), "{kept}");
    assert!(announced(&ls_row(&alice, "cid", &other).unwrap()));
    assert_eq!(blob_count(&alice), 3);
    // Gone: a second rm, unpublish or unlist fails cleanly.
    for verb in ["rm", "unpublish", "unlist"] {
        let again = alice.cli(&[verb, &cid]);
        again.assert_clean_error(1);
    }
    // both.bin belongs to no other share now: it goes with the other folder.
    alice.cli(&["rm", &other]).success();
    assert!(ls_row(&alice, "name", "both.bin").is_none());
    assert_eq!(blob_count(&alice), 2);
}

/// Without the folder's providers as sources, each file of a folder made its own DHT
/// provider lookup before it started: at least one lookup per file.
#[test]
fn a_folder_fetch_does_not_make_a_provider_lookup_per_file() {
    const FILES: u64 = 12;
    let mut swarm = Swarm::new();
    let alice = swarm.node(&[]);
    let bob = swarm.node(&[]);
    let src = swarm.path("small files");
    for i in 0..FILES {
        put(&src, &format!("f{i:02}.txt"), 1000 + i, 200 + i);
    }
    let cid = add_folder(&alice, &src, &[])["cid"]
        .as_str()
        .unwrap()
        .to_string();
    let lookups = |node: &Daemon| node.status()["node"]["provider_lookups"].as_u64().unwrap();
    let before = lookups(&bob);
    let dest = swarm.path("copy");
    fetch(&bob, &cid, &dest, 60).success();
    assert_eq!(tree_of(&dest), tree_of(&src));
    let made = lookups(&bob) - before;
    eprintln!("{made} provider lookups for a folder of {FILES} files");
    assert!(made >= 1, "the folder itself is looked up");
    assert!(made < FILES, "{made} provider lookups for {FILES} files");
}
