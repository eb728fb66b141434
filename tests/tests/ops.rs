//! Issue 16, the operator's commands: `p2pd completions` and `p2pd man` cover every
//! subcommand; `p2pd stats` reports the bytes a transfer moved; and a downloaded file
//! gets the modes of the umask the daemon was started with, not its private 077.
#![allow(clippy::unwrap_used)]

mod harness;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use harness::*;

/// `p2pd` with `args`, no daemon needed.
fn p2pd(args: &[&str]) -> CliResult {
    run_p2pd(args, CLI_TIMEOUT).into()
}

/// The subcommands `p2pd --help` lists (but `help`).
fn subcommands() -> Vec<String> {
    let help = p2pd(&["--help"]).success().stdout;
    let listed: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect();
    for expected in [
        "daemon",
        "add",
        "fetch",
        "stats",
        "config",
        "completions",
        "man",
    ] {
        assert!(listed.iter().any(|n| n == expected), "{expected} in {help}");
    }
    listed
}

#[test]
fn completions_for_every_shell_cover_every_subcommand() {
    let commands = subcommands();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = p2pd(&["completions", shell]).success().stdout;
        assert!(script.len() > 1000, "{shell}: {script}");
        for command in &commands {
            assert!(script.contains(command.as_str()), "{shell} lacks {command}");
        }
        // Options of subcommands, and the nested `config show`, are there too.
        assert!(script.contains("upload-slots"), "{shell}");
        assert!(script.contains("show"), "{shell}");
    }
    let out = p2pd(&["completions", "tcsh"]);
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn the_man_page_covers_every_subcommand_and_the_configuration() {
    let commands = subcommands();
    let page = p2pd(&["man"]).success().stdout;
    assert!(page.contains("\n.TH p2pd 1"), "{page}");
    assert_eq!(page.matches(".TH ").count(), 1, "{page}");
    for command in &commands {
        assert!(
            page.contains(&format!("p2pd\\-{command}(1)")),
            "{command} in {page}"
        );
    }
    for section in [
        ".SH SYNOPSIS",
        ".SH FILES",
        ".SH ENVIRONMENT",
        ".SH \"EXIT STATUS\"",
    ] {
        assert!(page.contains(section), "{section}");
    }
    assert!(page.contains("P2PD_CONFIG"), "{page}");

    // One page per command, with its options and their environment variables.
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let written = p2pd(&["man", "--out-dir", out_dir.to_str().unwrap()]).success();
    let page_of = |name: &str| {
        std::fs::read_to_string(out_dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    assert!(page_of("p2pd.1").contains(".SH FILES"));
    for command in &commands {
        let name = format!("p2pd-{command}.1");
        assert!(written.stdout.contains(&name), "{written:?}");
        assert!(page_of(&name).contains(&format!("\n.TH p2pd-{command} 1")));
    }
    let daemon = page_of("p2pd-daemon.1");
    assert!(daemon.contains("upload\\-slots"), "{daemon}");
    assert!(daemon.contains("P2PD_UPLOAD_SLOTS"), "{daemon}");
    assert!(page_of("p2pd-config-show.1").contains("P2PD_LISTEN"));
}

/// The fetched file, a second copy written from the store, and the umask the fetching
/// daemon was started with.
#[test]
fn stats_count_a_transfer_and_downloads_get_the_users_modes() {
    let mut swarm = Swarm::new();
    let seeder = swarm.node(&[]);
    // The daemon remembers the umask it starts with; 027 is neither its own 077 nor
    // the usual 022, so the modes below can only come from it.
    let before = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o027));
    let fetcher = swarm.node(&[]);
    rustix::process::umask(before);

    let size: u64 = 3 << 20;
    let src = swarm.path("stats.bin");
    random_file(&src, size, 16);
    let cid = add(&seeder, &src, &[]);
    let out = swarm.path("fetched.bin");
    fetch(&fetcher, &cid, &out, 60).success();
    assert_eq!(file_hash(&out), file_hash(&src));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&out), 0o640, "a downloaded file");
    // Already in the store: written out again (the store's export).
    let copy = swarm.path("copy.bin");
    fetch(&fetcher, &cid, &copy, 60).success();
    assert_eq!(mode(&copy), 0o640, "a file written from the store");
    // The data directory stays private.
    assert_eq!(mode(&fetcher.data_dir.join("p2pd.log")), 0o600);

    let stats = |node: &Daemon| node.cli(&["stats", "--json"]).success().json();
    wait_until(
        "the transfer in the totals",
        Duration::from_secs(30),
        || {
            stats(&fetcher)["total_received"].as_u64().unwrap() >= size
                && stats(&seeder)["total_sent"].as_u64().unwrap() >= size
        },
    );
    let summary = stats(&fetcher);
    for field in [
        "down_rate",
        "up_rate",
        "down_average",
        "up_average",
        "down_peak",
        "up_peak",
    ] {
        assert!(
            summary[field].as_f64().unwrap() >= 0.0,
            "{field}: {summary}"
        );
    }
    assert!(summary["window_secs"].as_u64().unwrap() >= 1, "{summary}");
    // The live monitor samples once a second: the transfer shows as a peak.
    wait_until(
        "the transfer in the rate history",
        Duration::from_secs(30),
        || stats(&fetcher)["down_peak"].as_f64().unwrap() > 0.0,
    );
    let text = fetcher.cli(&["stats"]).success().stdout;
    let received = text
        .lines()
        .find(|l| l.starts_with("received"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(received.contains("MiB"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("sent")), "{text}");
    // No daemon: one error line.
    let dir = tempfile::tempdir().unwrap();
    cli(dir.path(), &["stats"]).assert_clean_error(1);
}
