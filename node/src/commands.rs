//! The CLI commands: each turns arguments into an API call and prints the answer, as
//! text for people or as JSON with `--json`. Long operations show a progress bar when
//! stderr is a terminal.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::json;

use crate::api::types::*;
use crate::client::ApiClient;
use crate::{paths, Cli, Command, UsageError};

mod folder;
pub mod share;

/// Prints a line to stdout, like `println!`, except that a reader that went away
/// (`p2pd ls | head -1`) ends the command quietly instead of with a panic.
macro_rules! out {
    ($($arg:tt)*) => {
        print_line(format_args!($($arg)*))
    };
}

pub(crate) fn print_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

pub mod doctor;
pub mod downloads;
mod fetch_bar;
mod info;
mod relays;
mod standing;
mod transfer;
mod verify;

/// Runs one CLI invocation.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let data_dir = paths::data_dir(cli.data_dir.as_deref())?;
    let json = cli.json;
    match cli.command {
        Command::Daemon(args) => crate::daemon::start(data_dir, args).await,
        Command::Add {
            path,
            no_copy,
            name,
            unlisted,
            follow_symlinks,
        } => {
            let args = folder::AddArgs {
                no_copy,
                unlisted,
                follow_symlinks,
                name,
            };
            transfer::add(&data_dir, json, &path, args).await
        }
        Command::Fetch {
            cid,
            timeout,
            detach: true,
            ..
        } => downloads::detach(&data_dir, json, &cid, timeout).await,
        Command::Fetch {
            cid,
            output,
            timeout,
            detach: false,
        } => transfer::fetch(&data_dir, json, &cid, output.as_deref(), timeout).await,
        Command::Downloads(command) => downloads::run(command, &data_dir, json).await,
        Command::Network(command) => doctor::run(command, &data_dir, json).await,
        Command::Ls => info::ls(&data_dir, json).await,
        Command::Status => info::status(&data_dir, json).await,
        Command::Id => info::id(&data_dir, json).await,
        Command::Peers => info::peers(&data_dir, json).await,
        Command::Reputation { mine: false } => info::reputation(&data_dir, json).await,
        Command::Reputation { mine: true } => standing::mine(&data_dir, json).await,
        Command::Unpublish { cid } => {
            check_cid(&cid)?;
            let client = ApiClient::for_data_dir(&data_dir)?;
            let r: CidResponse = client
                .send::<(), _>(Method::POST, &format!("/api/files/{cid}/unpublish"), None)
                .await?;
            print_or_json(json, &r, || format!("{} is no longer announced", r.cid))
        }
        Command::Passwd => passwd(&data_dir, json),
        Command::Verify { repair } => verify::run(&data_dir, json, repair).await,
        Command::Ops(command) => crate::ops::run(command, &data_dir, json).await,
        Command::Share(command) => share::run(command, &data_dir, json).await,
        Command::Rm { cid } => {
            check_cid(&cid)?;
            let client = ApiClient::for_data_dir(&data_dir)?;
            let r: CidResponse = client
                .send::<(), _>(Method::DELETE, &format!("/api/files/{cid}"), None)
                .await?;
            print_or_json(json, &r, || format!("removed {}", r.cid))
        }
        Command::Search { words, timeout } => {
            crate::find::search(&data_dir, json, &words, timeout).await
        }
        Command::Browse { peer, timeout } => {
            crate::find::browse(&data_dir, json, &peer, timeout).await
        }
        Command::List { cid } => crate::find::set_listed(&data_dir, json, &cid, true).await,
        Command::Unlist { cid } => crate::find::set_listed(&data_dir, json, &cid, false).await,
        Command::Catalog { browse } => {
            crate::find::catalog(&data_dir, json, browse.as_deref()).await
        }
    }
}

/// Rejects a malformed CID before bothering the daemon.
pub(crate) fn check_cid(cid: &str) -> anyhow::Result<()> {
    crate::api::parse_cid(cid).map_err(|e| UsageError(e.message))?;
    Ok(())
}

fn print_or_json<T: serde::Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if json {
        out!("{}", serde_json::to_string_pretty(value)?);
    } else {
        out!("{}", text());
    }
    Ok(())
}

fn progress_bar(total: u64, json: bool) -> Option<ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `p2pd passwd`: asks twice on a terminal (without echo), or reads one line of stdin.
fn passwd(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let password = share::read_password("New web UI password: ", true)?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    crate::password::store(data_dir, &password).map_err(|e| -> anyhow::Error {
        if e.is_bad_input() {
            UsageError(e.to_string()).into()
        } else {
            e.into()
        }
    })?;
    let url = crate::control::ApiEndpoint::read(data_dir)
        .ok()
        .map(|e| format!("http://{}/", e.addr));
    if json {
        out!("{}", json!({"password_set": true, "web_ui": url}));
    } else {
        match url {
            Some(url) => out!("password set; log in at {url}"),
            None => out!("password set; the web UI is at the daemon's --api address"),
        }
    }
    Ok(())
}
