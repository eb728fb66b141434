//! Issue 16: the configuration file. A daemon takes each option from a flag, else its
//! `P2PD_*` environment variable, else the TOML file (`--config`, `P2PD_CONFIG`, or
//! `config.toml` in the platform config directory), else the default; `p2pd config
//! show` says which; an unknown key or a bad value stops the start with one line naming
//! the key and the line.
#![allow(clippy::unwrap_used)]

mod harness;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use harness::*;
use serde_json::Value;

/// How long a command that must refuse to start may take to do so.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `p2pd args…` with `env` added to the (cleaned) environment, its output
/// captured or not (an output nobody reads must not be a pipe that fills up).
fn spawn_with_env(args: &[&str], env: &[(&str, &str)], output: fn() -> Stdio) -> Child {
    p2pd_command(None)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(output())
        .stderr(output())
        .spawn()
        .unwrap()
}

/// Runs `p2pd args…` with `env` added to the (cleaned) environment.
fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> CliResult {
    wait_output(spawn_with_env(args, env, Stdio::piped), REFUSAL_TIMEOUT).into()
}

/// A daemon started by hand (with an environment of its own), killed when dropped.
struct Running {
    child: Child,
    data_dir: PathBuf,
}

impl Running {
    fn start(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut all = vec!["--data-dir", data_dir.to_str().unwrap()];
        all.extend_from_slice(args);
        let child = spawn_with_env(&all, env, Stdio::null);
        let mut running = Running {
            child,
            data_dir: data_dir.to_path_buf(),
        };
        wait_until("the daemon's API", START_TIMEOUT, || {
            if let Ok(Some(status)) = running.child.try_wait() {
                panic!("the daemon exited early: {status}");
            }
            data_dir.join("api.json").exists() && cli(data_dir, &["id"]).code == 0
        });
        running
    }

    fn cli_json(&self, args: &[&str]) -> Value {
        cli(&self.data_dir, args).success().json()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `config show --json`'s entry for `key`.
fn setting(show: &Value, key: &str) -> Value {
    show["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {show}"))
        .clone()
}

#[test]
fn the_daemon_takes_a_flag_over_the_environment_over_the_file_over_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let (api, in_file, in_env, on_flag) = (free_port(), free_port(), free_port(), free_port());
    let file = dir.path().join("p2pd.toml");
    std::fs::write(
        &file,
        format!(
            "# a node configured by its file\napi = \"127.0.0.1:{api}\"\ndisplay-name = \"from the file\"\nlisten = [\"/ip4/127.0.0.1/tcp/{in_file}\"]\nno-mdns = true\nno-upnp = true\n"
        ),
    )
    .unwrap();
    let env_listen = format!("/ip4/127.0.0.1/tcp/{in_env}");
    let flag_listen = format!("/ip4/127.0.0.1/tcp/{on_flag}");
    let node = Running::start(
        &dir.path().join("data"),
        &[
            "--config",
            file.to_str().unwrap(),
            "daemon",
            "--listen",
            &flag_listen,
        ],
        &[
            ("P2PD_DISPLAY_NAME", "from the environment"),
            ("P2PD_LISTEN", &env_listen),
        ],
    );
    // The file over the default: the API listens where the file says.
    let endpoint: Value =
        serde_json::from_slice(&std::fs::read(node.data_dir.join("api.json")).unwrap()).unwrap();
    assert_eq!(endpoint["addr"], format!("127.0.0.1:{api}"));
    // The environment over the file.
    let status = node.cli_json(&["status", "--json"]);
    assert_eq!(status["display_name"], "from the environment");
    // The flag over both.
    let addrs = node.cli_json(&["id", "--json"])["addrs"].to_string();
    assert!(addrs.contains(&format!("/tcp/{on_flag}/")), "{addrs}");
    for other in [in_file, in_env] {
        assert!(!addrs.contains(&format!("/tcp/{other}/")), "{addrs}");
    }
}

#[test]
fn config_show_says_where_each_value_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        "# p2pd\nupload-slots = 3\nmax-connections = 100\nrequest-timeout = 10\nbootstrap = [\n  \"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWSr8gwBqtmjbkGq8FEGnVUd6Yx7oNhFgqu3E9YqNCZAmb\",\n  \"/dns4/boot.example/tcp/4001/p2p/12D3KooWSr8gwBqtmjbkGq8FEGnVUd6Yx7oNhFgqu3E9YqNCZAmb\",\n]\nno-mdns = true\n",
    )
    .unwrap();
    let env = [
        ("P2PD_MAX_CONNECTIONS", "200"),
        ("P2PD_REQUEST_TIMEOUT", "20"),
        ("P2PD_NO_MDNS", "false"),
    ];
    let args = [
        "--config",
        file.to_str().unwrap(),
        "config",
        "show",
        "--request-timeout",
        "40",
    ];
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let show = run_with_env(&json_args, &env).success().json();
    assert_eq!(show["file"], file.to_str().unwrap());
    assert_eq!(show["file_found"], true);
    let expect = |key: &str, value: Value, source: &str| {
        let s = setting(&show, key);
        assert_eq!(
            (&s["value"], s["source"].as_str()),
            (&value, Some(source)),
            "{s}"
        );
        assert_eq!(
            s["env"],
            format!("P2PD_{}", key.to_uppercase().replace('-', "_"))
        );
        s
    };
    let slots = expect("upload-slots", 3.into(), "file");
    assert_eq!(slots["line"], 2);
    expect("max-connections", 200.into(), "env");
    expect("request-timeout", 40.into(), "flag");
    expect("relay-max-circuits", 64.into(), "default");
    expect("no-mdns", false.into(), "env");
    let bootstrap = setting(&show, "bootstrap");
    assert_eq!(bootstrap["source"], "file");
    assert_eq!(bootstrap["line"], 5);
    assert_eq!(bootstrap["value"].as_array().unwrap().len(), 2);

    let text = run_with_env(&args, &env).success().stdout;
    let line_of = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_string()
    };
    assert!(
        line_of("upload-slots").ends_with(&format!("# {}:2", file.display())),
        "{text}"
    );
    assert!(
        line_of("max-connections").ends_with("# env P2PD_MAX_CONNECTIONS"),
        "{text}"
    );
    assert!(line_of("request-timeout").ends_with("# flag"), "{text}");
    assert!(
        line_of("relay-max-circuits").ends_with("# default"),
        "{text}"
    );
}

#[test]
fn an_unknown_key_stops_the_start_naming_it_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "upload-slots = 2\n\nuplaod-slots = 3\n").unwrap();
    let data = dir.path().join("never-made");
    for command in [&["daemon"][..], &["config", "show"][..]] {
        let mut args = vec![
            "--data-dir",
            data.to_str().unwrap(),
            "--config",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(command);
        let out = run_with_env(&args, &[]);
        out.assert_clean_error(2);
        assert!(
            out.stderr.contains(&format!(
                "{}:3: unknown key \"uplaod-slots\"",
                file.display()
            )),
            "{out:?}"
        );
        assert!(
            out.stderr.contains("did you mean \"upload-slots\""),
            "{out:?}"
        );
    }
    assert!(!data.exists(), "a refused start created {}", data.display());
}

#[test]
fn a_bad_value_stops_the_start_naming_the_key_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    let data = dir.path().join("never-made");
    for (text, line, needle) in [
        (
            "upload-slots = 4\n\nmax-connections = 0\n",
            3,
            "for max-connections: must be at least 1",
        ),
        (
            "\nlisten = [\"/ip4/127.0.0.1/tcp/0\", \"not an address\"]\n",
            2,
            "\"not an address\" for listen",
        ),
        (
            "dht-mode = \"sometimes\"\n",
            1,
            "for dht-mode: expected one of auto, server, client",
        ),
        (
            "api-public = \"perhaps\"\n",
            1,
            "\"perhaps\" for api-public",
        ),
        ("max-upload-rate = \"fast\"\n", 1, "for max-upload-rate"),
        (
            "api = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n",
            1,
            "\"api\" takes one value",
        ),
        ("upload-slots = 4\nupload-slots = 5\n", 2, "not valid TOML"),
        ("[relay]\nmax-circuits = 3\n", 1, "`relay`"),
    ] {
        std::fs::write(&file, text).unwrap();
        let out = run_with_env(
            &[
                "--data-dir",
                data.to_str().unwrap(),
                "--config",
                file.to_str().unwrap(),
                "daemon",
            ],
            &[],
        );
        out.assert_clean_error(2);
        let at = format!("error: {}:{line}: ", file.display());
        assert!(out.stderr.starts_with(&at), "{text:?}: {out:?}");
        assert!(out.stderr.contains(needle), "{text:?}: {out:?}");
    }
    // A bad value in the environment or on the command line names the variable or flag.
    let daemon = ["--data-dir", data.to_str().unwrap(), "daemon"];
    let out = run_with_env(&daemon, &[("P2PD_UPLOAD_SLOTS", "zero")]);
    out.assert_clean_error(2);
    assert!(
        out.stderr.contains("\"zero\" for P2PD_UPLOAD_SLOTS"),
        "{out:?}"
    );
    let mut flagged = daemon.to_vec();
    flagged.extend(["--upload-slots", "zero"]);
    let out = run_with_env(&flagged, &[("P2PD_UPLOAD_SLOTS", "2")]);
    out.assert_clean_error(2);
    assert!(
        out.stderr.contains("\"zero\" for --upload-slots"),
        "{out:?}"
    );
    // A file named but missing.
    let missing = dir.path().join("missing.toml");
    let out = run_with_env(&["--config", missing.to_str().unwrap(), "daemon"], &[]);
    out.assert_clean_error(2);
    assert!(out.stderr.contains("missing.toml"), "{out:?}");
    assert!(!data.exists(), "a refused start created {}", data.display());
}

#[test]
fn the_file_is_found_in_the_platform_config_directory_or_through_p2pd_config() {
    let dir = tempfile::tempdir().unwrap();
    let config_home = dir.path().join("xdg");
    std::fs::create_dir_all(config_home.join("p2pd")).unwrap();
    let default_file = config_home.join("p2pd/config.toml");
    std::fs::write(&default_file, "data-dir = \"node\"\nupload-slots = 5\n").unwrap();
    let xdg = [("XDG_CONFIG_HOME", config_home.to_str().unwrap())];
    let show = run_with_env(&["config", "show", "--json"], &xdg)
        .success()
        .json();
    assert_eq!(show["file"], default_file.to_str().unwrap());
    assert_eq!(show["file_found"], true);
    assert_eq!(setting(&show, "upload-slots")["value"], 5);
    // A relative path is taken from the file's directory.
    let data_dir = config_home.join("p2pd/node");
    assert_eq!(
        setting(&show, "data-dir")["value"],
        data_dir.to_str().unwrap()
    );
    // The other commands find the daemon through the file's data directory.
    let out = run_with_env(&["ls"], &xdg);
    out.assert_clean_error(1);
    assert!(out.stderr.contains(data_dir.to_str().unwrap()), "{out:?}");

    // P2PD_CONFIG names another file, which then replaces the default one.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "upload-slots = 6\n").unwrap();
    let mut env = xdg.to_vec();
    env.push(("P2PD_CONFIG", other.to_str().unwrap()));
    let show = run_with_env(&["config", "show", "--json"], &env)
        .success()
        .json();
    assert_eq!(show["file"], other.to_str().unwrap());
    assert_eq!(setting(&show, "upload-slots")["value"], 6);
    assert_eq!(setting(&show, "data-dir")["source"], "default");

    // No file at the default place is no error.
    let empty = [("XDG_CONFIG_HOME", dir.path().to_str().unwrap())];
    let show = run_with_env(&["config", "show", "--json"], &empty)
        .success()
        .json();
    assert_eq!(show["file_found"], false);
    assert_eq!(setting(&show, "upload-slots")["source"], "default");
}

#[test]
fn the_configuration_files_in_deploy_are_valid() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let show = |file: &Path, env: &[(&str, &str)]| {
        run_with_env(
            &[
                "--config",
                file.to_str().unwrap(),
                "config",
                "show",
                "--json",
            ],
            env,
        )
        .success()
        .json()
    };
    let bootstrap = show(&deploy.join("bootstrap.toml"), &[]);
    assert_eq!(setting(&bootstrap, "dht-mode")["value"], "server");
    assert_eq!(setting(&bootstrap, "relay-server")["value"], true);
    assert_eq!(setting(&bootstrap, "external-addr")["source"], "file");
    assert_eq!(
        setting(&bootstrap, "data-dir")["value"],
        "/var/lib/p2pd-bootstrap"
    );

    let public = "/ip4/203.0.113.7/tcp/5891,/ip4/203.0.113.7/udp/5891/quic-v1";
    let container = show(
        &deploy.join("container/config.toml"),
        &[("P2PD_EXTERNAL_ADDR", public)],
    );
    let external = setting(&container, "external-addr");
    assert_eq!(external["source"], "env");
    assert_eq!(external["value"].as_array().unwrap().len(), 2);
    assert_eq!(setting(&container, "data-dir")["value"], "/data");

    // The example for a home node sets nothing until a line is uncommented; with every
    // example line uncommented it is still valid.
    let example = deploy.join("config.toml");
    let home = show(&example, &[]);
    for s in home["settings"].as_array().unwrap() {
        assert_eq!(s["source"], "default", "{s}");
    }
    let text = std::fs::read_to_string(&example).unwrap();
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest.split_once(" = ").is_some_and(|(key, _)| {
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                }) =>
            {
                rest
            }
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.toml");
    std::fs::write(&all, uncommented).unwrap();
    let all_set = show(&all, &[]);
    let from_file = all_set["settings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["source"] == "file")
        .count();
    assert!(from_file >= 9, "{all_set}");
}
