//! Issue 13: share tickets. Fetching by ticket with no DHT at all, expiry, passwords
//! (right, wrong, absent, rate-limited, the file kept private, and proved again while a
//! long download runs), revocation, damaged
//! tickets, and publishing again. Every test starts real `p2pd` processes on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod harness;

use std::path::Path;
use std::time::Duration;

use harness::*;

/// Runs the CLI on `node` with `stdin` as its standard input.
fn cli_with_stdin(node: &Daemon, args: &[&str], stdin: &str) -> CliResult {
    harness::cli_with_stdin(&node.data_dir, args, stdin)
}

/// A node with no bootstrap node: it knows no one.
fn lone_node(dir: &Path, name: &str) -> Daemon {
    Daemon::start(&dir.join(name), &[])
}

/// Shares `cid` on `node` with extra options; returns the ticket (the last line).
fn share(node: &Daemon, cid: &str, extra: &[&str], stdin: &str) -> String {
    let mut args = vec!["share", cid];
    args.extend_from_slice(extra);
    let out = cli_with_stdin(node, &args, stdin).success();
    let ticket = out.last_line().to_string();
    assert!(ticket.starts_with("p2pd1"), "{out:?}");
    ticket
}

fn fetch_ticket(node: &Daemon, ticket: &str, output: &Path, stdin: &str) -> CliResult {
    cli_with_stdin(
        node,
        &[
            "fetch",
            ticket,
            "-o",
            output.to_str().unwrap(),
            "--timeout",
            "20",
        ],
        stdin,
    )
}

#[test]
fn a_ticket_fetches_with_no_bootstrap_node_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let provider = lone_node(dir.path(), "provider");
    let fetcher = lone_node(dir.path(), "fetcher");
    let src = dir.path().join("report.pdf");
    random_file(&src, 3 * (1 << 20) + 11, 13);
    let cid = add(&provider, &src, &[]);

    let ticket = share(&provider, &cid, &[], "");
    // One line, compact: a few addresses on loopback.
    assert!(ticket.len() < 400, "{} characters: {ticket}", ticket.len());
    let listed = provider.cli(&["shares", "--json"]).success().json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["cid"], cid.as_str());
    assert_eq!(listed[0]["name"], "report.pdf");
    assert_eq!(listed[0]["password"], false);
    assert_eq!(listed[0]["ticket"], ticket.as_str());

    // Upper case (as a QR code carries it) reads the same.
    let out = dir.path().join("copy.pdf");
    fetch_ticket(&fetcher, &ticket.to_ascii_uppercase(), &out, "").success();
    assert_eq!(file_hash(&out), file_hash(&src));
    assert!(
        fetcher.log().contains("download finished"),
        "the fetcher's log: {}",
        fetcher.log()
    );

    // --qr draws the code and still ends with the ticket; --json gives the share.
    let drawn = provider.cli(&["share", &cid, "--qr"]).success();
    assert!(drawn.stdout.contains('█'), "{drawn:?}");
    assert!(drawn.last_line().starts_with("p2pd1"));
    let json = provider.cli(&["share", &cid, "--json"]).success().json();
    assert!(json["ticket"].as_str().unwrap().starts_with("p2pd1"));
}

#[test]
fn an_expired_share_is_refused_by_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    let provider = lone_node(dir.path(), "provider");
    let fetcher = lone_node(dir.path(), "fetcher");
    let src = dir.path().join("soon-gone.bin");
    random_file(&src, 100_000, 5);
    let cid = add(&provider, &src, &[]);
    let ticket = share(&provider, &cid, &["--expires", "2s"], "");
    std::thread::sleep(Duration::from_millis(2500));
    let out = dir.path().join("copy.bin");
    let result = fetch_ticket(&fetcher, &ticket, &out, "");
    result.assert_clean_error(1);
    assert!(result.stderr.contains("expired"), "{result:?}");
    assert!(!out.exists(), "nothing is written");
    assert!(provider.log().contains("access refused: the share expired"));
    let listed = provider.cli(&["shares", "--json"]).success().json();
    assert_eq!(listed[0]["expired"], true);
}

#[test]
fn a_password_share_is_private_and_needs_the_right_password() {
    let mut swarm = Swarm::new();
    let provider = swarm.node(&[]);
    let fetcher = swarm.node(&[]);
    let src = swarm.path("secret.txt");
    random_file(&src, 300_000, 21);
    let cid = add(&provider, &src, &[]);
    provider.wait_announced(1);
    let ticket = share(&provider, &cid, &["--password"], "hunter22\n");

    // The file is no longer announced.
    let files = provider.cli(&["ls", "--json"]).success().json();
    assert_eq!(files[0]["published"], false, "{files}");

    let out = swarm.path("secret.copy");
    // No password.
    let absent = fetch_ticket(&fetcher, &ticket, &out, "");
    absent.assert_clean_error(1);
    assert!(absent.stderr.contains("needs a password"), "{absent:?}");
    // A wrong one.
    let wrong = fetch_ticket(&fetcher, &ticket, &out, "hunter23\n");
    wrong.assert_clean_error(1);
    assert!(wrong.stderr.contains("wrong password"), "{wrong:?}");
    assert!(!out.exists());
    // The fetcher is connected to the provider now, so the engine asks it by bare CID:
    // it answers as if it did not hold the file.
    let bare = fetcher.cli(&["fetch", &cid, "-o", out.to_str().unwrap(), "--timeout", "4"]);
    bare.assert_clean_error(1);
    assert!(!out.exists());
    // The right one.
    fetch_ticket(&fetcher, &ticket, &out, "hunter22\n").success();
    assert_eq!(file_hash(&out), file_hash(&src));
    // A private file cannot be published while its password share exists.
    provider.cli(&["publish", &cid]).assert_clean_error(2);
}

#[test]
fn wrong_passwords_are_rate_limited_per_peer() {
    let dir = tempfile::tempdir().unwrap();
    let provider = lone_node(dir.path(), "provider");
    let guesser = lone_node(dir.path(), "guesser");
    let src = dir.path().join("vault.bin");
    random_file(&src, 10_000, 3);
    let cid = add(&provider, &src, &[]);
    let ticket = share(&provider, &cid, &["--password"], "right one\n");
    let out = dir.path().join("vault.copy");
    for guess in 0..5 {
        let wrong = fetch_ticket(&guesser, &ticket, &out, &format!("guess {guess}\n"));
        wrong.assert_clean_error(1);
        assert!(wrong.stderr.contains("wrong password"), "{wrong:?}");
    }
    // Even the right password is refused for a while now.
    let locked = fetch_ticket(&guesser, &ticket, &out, "right one\n");
    locked.assert_clean_error(1);
    assert!(
        locked.stderr.contains("too many wrong passwords"),
        "{locked:?}"
    );
    assert!(!out.exists());
}

/// The provider's grants last 2 s here; the download takes several times that, so it
/// completes only if the fetcher proves the password again before each grant ends.
#[test]
fn a_download_longer_than_its_grant_proves_the_password_again() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Daemon::start(&dir.path().join("provider"), &["--test-grant-secs", "2"]);
    let fetcher = Daemon::start(
        &dir.path().join("fetcher"),
        &["--max-download-rate", "1000000"],
    );
    let src = dir.path().join("long.bin");
    random_file(&src, 7 * (1 << 20), 8);
    let cid = add(&provider, &src, &[]);
    let ticket = share(&provider, &cid, &["--password"], "slow and steady\n");
    let out = dir.path().join("long.copy");
    fetch_ticket(&fetcher, &ticket, &out, "slow and steady\n").success();
    assert_eq!(file_hash(&out), file_hash(&src));
    let grants = provider.log().matches("access granted").count();
    assert!(grants >= 3, "{grants} grants in the provider's log");
}

#[test]
fn a_revoked_share_is_refused_and_unshare_takes_ticket_or_cid() {
    let dir = tempfile::tempdir().unwrap();
    let provider = lone_node(dir.path(), "provider");
    let fetcher = lone_node(dir.path(), "fetcher");
    let src = dir.path().join("draft.txt");
    random_file(&src, 50_000, 8);
    let cid = add(&provider, &src, &[]);
    let first = share(&provider, &cid, &[], "");
    let second = share(&provider, &cid, &["--expires", "1h"], "");

    let gone = provider
        .cli(&["unshare", &first, "--json"])
        .success()
        .json();
    assert_eq!(gone.as_array().unwrap().len(), 1);
    let out = dir.path().join("draft.copy");
    let refused = fetch_ticket(&fetcher, &first, &out, "");
    refused.assert_clean_error(1);
    assert!(refused.stderr.contains("revoked"), "{refused:?}");
    assert!(!out.exists());

    // The other share still works, until every share of the file is revoked by CID.
    let listed = provider.cli(&["shares", "--json"]).success().json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    provider.cli(&["unshare", &cid]).success();
    assert_eq!(
        provider.cli(&["shares"]).success().stdout.trim(),
        "no shares"
    );
    fetch_ticket(&fetcher, &second, &out, "").assert_clean_error(1);
    provider.cli(&["unshare", &cid]).assert_clean_error(1);

    // Shares survive a restart (and revocations stay revoked).
    let third = share(&provider, &cid, &[], "");
    let mut provider = provider;
    provider.restart();
    let listed = provider.cli(&["shares", "--json"]).success().json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let restarted_ticket = listed[0]["ticket"].as_str().unwrap().to_string();
    // Same share id, new addresses (the port changed).
    assert_ne!(restarted_ticket, third);
    fetch_ticket(&fetcher, &restarted_ticket, &out, "").success();
    assert_eq!(file_hash(&out), file_hash(&src));
}

#[test]
fn damaged_tickets_are_usage_errors_that_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let provider = lone_node(dir.path(), "provider");
    let src = dir.path().join("a.txt");
    random_file(&src, 1000, 1);
    let cid = add(&provider, &src, &[]);
    let ticket = share(&provider, &cid, &[], "");
    let out = dir.path().join("a.copy");

    let mut typo = ticket.clone().into_bytes();
    let at = typo.len() / 2;
    typo[at] = if typo[at] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let truncated = &ticket[..ticket.len() - 7];
    let cases = [
        (typo.as_str(), "mistyped"),
        (truncated, "truncated"),
        ("p2pd1", "truncated"),
        ("p2pd9abc", "version"),
        ("p2pd1abc!def", "cannot occur"),
    ];
    for (bad, says) in cases {
        let result = fetch_ticket(&provider, bad, &out, "");
        result.assert_clean_error(2);
        assert!(result.stderr.contains(says), "{bad}: {result:?}");
        let unshare = provider.cli(&["unshare", bad]);
        unshare.assert_clean_error(2);
    }
    assert!(!out.exists());
    provider
        .cli(&["share", &cid, "--expires", "soon"])
        .assert_clean_error(2);
    assert_eq!(
        provider.cli(&["shares"]).success().stdout.lines().count(),
        2
    );
}

#[test]
fn publish_announces_a_file_again_after_unpublish() {
    let mut swarm = Swarm::new();
    let provider = swarm.node(&[]);
    let src = swarm.path("again.bin");
    random_file(&src, 200_000, 4);
    let cid = add(&provider, &src, &[]);
    provider.wait_announced(1);
    provider.cli(&["unpublish", &cid]).success();
    let files = provider.cli(&["ls", "--json"]).success().json();
    assert_eq!(files[0]["published"], false);

    let out = provider.cli(&["publish", &cid, "--json"]).success().json();
    assert_eq!(out["cid"], cid.as_str());
    let files = provider.cli(&["ls", "--json"]).success().json();
    assert_eq!(files[0]["published"], true);
    provider.wait_announced(1);
    // Found through the DHT by a node that knows only the bootstrap node.
    let fetcher = swarm.node(&[]);
    let copy = swarm.path("again.copy");
    fetch(&fetcher, &cid, &copy, 60).success();
    assert_eq!(file_hash(&copy), file_hash(&src));
    // And it stays published after a restart.
    let mut provider = provider;
    provider.restart();
    let files = provider.cli(&["ls", "--json"]).success().json();
    assert_eq!(files[0]["published"], true);
}
