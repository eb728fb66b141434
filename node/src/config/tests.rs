//! Precedence between the command line, the file and the defaults, and the errors that
//! name a line. (The environment is the process's own, shared by every test thread, so
//! its precedence is shown by the multi-process tests in tests/tests/config.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::refusal::edit_distance;
use super::*;

/// Runs `config::parse` on `p2pd --config <file with text> <args…>`.
fn parse_with(text: &str, args: &[&str]) -> (Result<Cli, Refusal>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p2pd.toml");
    std::fs::write(&path, text).unwrap();
    let mut argv = vec!["p2pd", "--config", path.to_str().unwrap()];
    argv.extend_from_slice(args);
    (parse(argv), dir)
}

fn daemon_args(cli: Cli) -> DaemonArgs {
    match cli.command {
        Command::Daemon(args) => args,
        Command::Ops(OpsCommand::Config(ConfigCommand::Show(args))) => args,
        other => panic!("not the daemon: {other:?}"),
    }
}

fn refusal(result: Result<Cli, Refusal>) -> String {
    match result {
        Err(Refusal::Usage(message)) => message,
        Err(Refusal::Clap(e)) => panic!("clap refused instead: {e}"),
        Ok(cli) => panic!("accepted: {cli:?}"),
    }
}

fn setting<'a>(args: &'a DaemonArgs, key: &str) -> &'a Setting {
    args.config
        .settings
        .iter()
        .find(|s| s.key == key)
        .unwrap_or_else(|| panic!("no setting {key}"))
}

#[test]
fn every_daemon_option_is_a_key_with_an_environment_variable() {
    let mut command = command();
    command.build();
    let daemon = command.find_subcommand("daemon").unwrap();
    let show = command
        .find_subcommand("config")
        .and_then(|c| c.find_subcommand("show"))
        .unwrap();
    let keys = |c: &clap::Command| -> Vec<String> {
        c.get_arguments()
            .filter(|a| is_setting(a))
            .map(|a| {
                let long = a.get_long().unwrap();
                assert_eq!(
                    a.get_env().and_then(|e| e.to_str()),
                    Some(env_name(long).as_str()),
                    "--{long}"
                );
                long.to_string()
            })
            .collect()
    };
    let daemon_keys = keys(daemon);
    assert_eq!(daemon_keys, keys(show));
    // Every option in --help is a setting (the hidden test-only ones are not).
    let shown: Vec<&str> = daemon
        .get_arguments()
        .filter(|a| !a.is_hide_set() && a.get_long().is_some())
        .filter_map(|a| a.get_long())
        .filter(|l| !["help", "version", "json", "config"].contains(l))
        .collect();
    assert_eq!(daemon_keys, shown);
    for key in [
        "data-dir",
        "listen",
        "upload-slots",
        "no-mdns",
        "relay-max-circuit-bytes",
    ] {
        assert!(daemon_keys.iter().any(|k| k == key), "{key}");
    }
    assert_eq!(env_name("max-upload-rate"), "P2PD_MAX_UPLOAD_RATE");
}

#[test]
fn the_file_fills_in_what_the_command_line_leaves_and_says_where() {
    let text = "# p2pd\nupload-slots = 3\nlisten = [\"/ip4/127.0.0.1/tcp/7\", \"/ip4/127.0.0.1/udp/7/quic-v1\"]\nno-mdns = true\nmax-upload-rate = \"2MiB\"\n";
    let (cli, dir) = parse_with(text, &["daemon", "--upload-slots", "5"]);
    let args = daemon_args(cli.unwrap_or_else(|_| panic!("refused")));
    assert_eq!(args.upload_slots, 5);
    assert_eq!(setting(&args, "upload-slots").source, Source::Flag);
    assert_eq!(args.listen.len(), 2);
    assert!(args.no_mdns);
    assert_eq!(args.max_upload_rate, Some(2 << 20));
    let file = dir.path().join("p2pd.toml");
    assert_eq!(
        setting(&args, "listen").source,
        Source::File {
            path: file.clone(),
            line: 3
        }
    );
    assert_eq!(
        setting(&args, "no-mdns").source,
        Source::File {
            path: file,
            line: 4
        }
    );
    assert_eq!(args.max_connections, 2048);
    assert_eq!(setting(&args, "max-connections").source, Source::Default);
    assert!(args.config.file_found);
}

#[test]
fn a_flag_overrides_a_list_and_a_boolean_of_the_file() {
    let text = "listen = [\"/ip4/127.0.0.1/tcp/7\", \"/ip4/127.0.0.1/tcp/8\"]\nno-mdns = true\n";
    let (cli, _dir) = parse_with(
        text,
        &[
            "daemon",
            "--listen",
            "/ip4/127.0.0.1/tcp/9",
            "--no-mdns=false",
        ],
    );
    let args = daemon_args(cli.unwrap_or_else(|_| panic!("refused")));
    assert_eq!(args.listen, vec!["/ip4/127.0.0.1/tcp/9".parse().unwrap()]);
    assert!(!args.no_mdns);
    assert_eq!(setting(&args, "no-mdns").values, vec!["false"]);
    // A bare boolean flag is true.
    let (cli, _dir) = parse_with("no-mdns = false\n", &["daemon", "--no-mdns"]);
    assert!(daemon_args(cli.unwrap_or_else(|_| panic!("refused"))).no_mdns);
}

#[test]
fn unknown_keys_and_bad_values_name_the_file_and_line() {
    let message = refusal(parse_with("upload-slots = 2\n\nuplod-slots = 3\n", &["daemon"]).0);
    assert!(
        message
            .ends_with("p2pd.toml:3: unknown key \"uplod-slots\" (did you mean \"upload-slots\"?)"),
        "{message}"
    );
    let message = refusal(parse_with("nonsense = 1\n", &["config", "show"]).0);
    assert!(
        message.contains("p2pd.toml:1: unknown key \"nonsense\""),
        "{message}"
    );
    // (The multi-process tests go through every kind of bad value; these two are the
    // ones only this module's rules produce.)
    for (text, line, needle) in [
        (
            "\nupload-slots = 0\n",
            2,
            "invalid value \"0\" for upload-slots: must be at least 1",
        ),
        ("listen = []\n", 1, "\"listen\" needs at least one value"),
    ] {
        let message = refusal(parse_with(text, &["daemon"]).0);
        assert!(
            message.contains(&format!("p2pd.toml:{line}: ")),
            "{text:?}: {message}"
        );
        assert!(message.contains(needle), "{text:?}: {message}");
        assert!(!message.contains('\n'), "{message}");
    }
}

#[test]
fn bad_flag_values_are_one_line_naming_the_flag() {
    let (result, _dir) = parse_with("", &["daemon", "--max-connections", "0"]);
    assert_eq!(
        refusal(result),
        "invalid value \"0\" for --max-connections: must be at least 1"
    );
    // Usage errors stay clap's (with the usage summary).
    let (result, _dir) = parse_with("", &["daemon", "--no-such-flag"]);
    assert!(matches!(result, Err(Refusal::Clap(_))));
}

#[test]
fn relative_paths_in_the_file_are_taken_from_its_directory() {
    let (cli, dir) = parse_with("data-dir = \"node-data\"\n", &["daemon"]);
    let cli = cli.unwrap_or_else(|_| panic!("refused"));
    assert_eq!(cli.data_dir, Some(dir.path().join("node-data")));
    // Other commands read the data directory from the file too (and nothing else).
    let (cli, dir) = parse_with("data-dir = \"d\"\nnot-a-key = 1\n", &["ls"]);
    assert_eq!(
        cli.unwrap_or_else(|_| panic!("refused")).data_dir,
        Some(dir.path().join("d"))
    );
    // The command line wins.
    let (cli, _dir) = parse_with("data-dir = \"d\"\n", &["--data-dir", "/x", "ls"]);
    assert_eq!(
        cli.unwrap_or_else(|_| panic!("refused")).data_dir,
        Some(PathBuf::from("/x"))
    );
}

#[test]
fn config_show_prints_toml_that_reads_back_the_same() {
    let text = "upload-slots = 3\nlisten = [\"/ip4/127.0.0.1/tcp/7\"]\ndisplay-name = \"a \\\"quoted\\\" name\"\n";
    let (cli, dir) = parse_with(text, &["config", "show", "--no-upnp"]);
    let args = daemon_args(cli.unwrap_or_else(|_| panic!("refused")));
    let shown = show::text(&args.config);
    assert!(shown.contains("upload-slots = 3"), "{shown}");
    assert!(shown.contains("no-upnp = true"), "{shown}");
    assert!(shown.contains("# flag"), "{shown}");
    assert!(shown.contains("p2pd.toml:1"), "{shown}");
    assert!(shown.contains("# max-upload-rate: not set"), "{shown}");
    // The printed configuration, used as a file, gives the same values.
    let again = dir.path().join("again.toml");
    std::fs::write(&again, &shown).unwrap();
    let cli = parse(["p2pd", "--config", again.to_str().unwrap(), "daemon"])
        .unwrap_or_else(|_| panic!("refused"));
    let reread = daemon_args(cli);
    assert_eq!(reread.upload_slots, 3);
    assert!(reread.no_upnp);
    assert_eq!(reread.display_name.as_deref(), Some("a \"quoted\" name"));
    let json = show::json(&args.config);
    let slots = json["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "upload-slots")
        .unwrap();
    assert_eq!(slots["value"], 3);
    assert_eq!(slots["source"], "file");
    assert_eq!(slots["line"], 1);
    assert_eq!(slots["env"], "P2PD_UPLOAD_SLOTS");
}

#[test]
fn keys_a_few_edits_away_are_suggested() {
    assert_eq!(edit_distance("uplod-slots", "upload-slots"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}
