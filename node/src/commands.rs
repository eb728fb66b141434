//! The CLI commands: each turns arguments into an API call and prints the answer, as
//! text for people or as JSON with `--json`. Long operations show a progress bar when
//! stderr is a terminal.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{json, Value};

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
mod relays;
mod standing;
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
            add(&data_dir, json, &path, args).await
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
        } => fetch(&data_dir, json, &cid, output.as_deref(), timeout).await,
        Command::Downloads(command) => downloads::run(command, &data_dir, json).await,
        Command::Network(command) => doctor::run(command, &data_dir, json).await,
        Command::Ls => ls(&data_dir, json).await,
        Command::Status => status(&data_dir, json).await,
        Command::Id => id(&data_dir, json).await,
        Command::Peers => peers(&data_dir, json).await,
        Command::Reputation { mine: false } => reputation(&data_dir, json).await,
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

async fn add(
    data_dir: &Path,
    json: bool,
    path: &Path,
    args: folder::AddArgs,
) -> anyhow::Result<()> {
    let path = paths::absolute(path)?;
    let meta = std::fs::metadata(&path)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
    if meta.is_dir() {
        return folder::add(data_dir, json, path, args).await;
    }
    if !meta.is_file() {
        return Err(UsageError(format!(
            "{} is not a regular file or a directory",
            path.display()
        ))
        .into());
    }
    let folder::AddArgs {
        no_copy,
        unlisted,
        name,
        ..
    } = args;
    let client = ApiClient::for_data_dir(data_dir)?;
    let bar = progress_bar(meta.len(), json);
    let request = AddRequest {
        path: path.clone(),
        no_copy,
        name,
        unlisted,
    };
    let result: Result<AddResponse, _> = client
        .stream("/api/add", &request, |p: AddProgress| {
            if let Some(bar) = &bar {
                bar.set_position(p.bytes);
            }
        })
        .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let r = result?;
    if json {
        out!(
            "{}",
            json!({"cid": r.cid, "name": r.name, "size": r.size, "chunks": r.chunks, "already_present": r.already_present})
        );
    } else {
        eprintln!(
            "{} {} ({}, {} chunks)",
            if r.already_present {
                "already shared:"
            } else {
                "added"
            },
            r.name.as_deref().unwrap_or("file"),
            human_bytes(r.size),
            r.chunks
        );
        out!("{}", r.cid);
    }
    Ok(())
}

async fn fetch(
    data_dir: &Path,
    json: bool,
    cid: &str,
    output: Option<&Path>,
    timeout: u64,
) -> anyhow::Result<()> {
    // A ticket: reach its provider first (no DHT), then fetch its CID.
    let from_ticket;
    let cid = if dht_proto::ticket::looks_like_ticket(cid) {
        from_ticket = share::open_ticket(data_dir, json, cid).await?;
        from_ticket.as_str()
    } else {
        cid
    };
    check_cid(cid)?;
    if timeout == 0 {
        return Err(UsageError("--timeout must be at least 1 second".into()).into());
    }
    let (output, output_dir) = match output {
        // Whether `o` may be written is the daemon's to say: it may be the file of this
        // very fetch, finished by a download the daemon resumed after a restart.
        Some(o) => (Some(paths::absolute(o)?), None),
        None => (
            None,
            Some(std::env::current_dir().context("current directory")?),
        ),
    };
    let client = ApiClient::for_data_dir(data_dir)?;
    let request = FetchRequest {
        cid: cid.to_string(),
        output: output.clone(),
        output_dir: output_dir.clone(),
        timeout_secs: Some(timeout),
    };
    let mut bar = fetch_bar::FetchBar::new(json);
    let (latest_tx, mut latest) = tokio::sync::watch::channel(Value::Null);
    let mut stream = std::pin::pin!(client.stream("/api/fetch", &request, |p: Value| {
        latest_tx.send_replace(p);
    }));
    // The latest progress line comes through `latest`; between lines the sources'
    // paths are looked up for the bar.
    let result: Result<Value, _> = loop {
        tokio::select! {
            done = &mut stream => break done,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if latest.has_changed().unwrap_or(false) {
            let p = latest.borrow_and_update().clone();
            bar.update(&p);
        }
        if bar.paths_due() {
            bar.refresh_paths(&client).await;
        }
    };
    bar.finish();
    let done = result?;
    if done["folder"].as_bool() == Some(true) {
        return folder::fetch(data_dir, json, cid, output, output_dir, timeout).await;
    }
    if json {
        let summary = json!({
            "cid": done["cid"],
            "size": done["size"],
            "seconds": done["elapsed_secs"],
            "output": done["output"],
            "bytes_received": done["bytes_received"],
            "peers": done["per_peer"],
        });
        out!("{summary}");
    } else {
        let size = done["size"].as_u64().unwrap_or(0);
        let secs = done["elapsed_secs"].as_f64().unwrap_or(0.0);
        let peers = done["per_peer"].as_array().map_or(0, |a| a.len());
        let output = done["output"].as_str().unwrap_or("the store");
        out!(
            "saved {output} ({}, {:.1}s, from {peers} peer{})",
            human_bytes(size),
            secs,
            if peers == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

async fn ls(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::for_data_dir(data_dir)?;
    let files: Vec<FileInfo> = client.get("/api/files").await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&files)?);
        return Ok(());
    }
    if files.is_empty() {
        out!("no files");
    }
    for f in files {
        let mut state = if f.state == "complete" {
            String::new()
        } else if f.state == "changed" {
            "  [changed on disk: not shared; add it again]".to_string()
        } else {
            format!("  [{}/{} chunks]", f.have_chunks, f.chunks)
        };
        if f.folder {
            state = if f.state == "complete" {
                format!("  [folder, {} files]", f.chunks)
            } else {
                format!("  [folder, {} files, fetch unfinished]", f.chunks)
            };
        }
        if !f.listed {
            state.push_str("  [unlisted]");
        }
        out!(
            "{}  {:>10}  {}{}",
            f.cid,
            human_bytes(f.size),
            f.name.as_deref().unwrap_or("-"),
            state
        );
    }
    Ok(())
}

async fn status(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::for_data_dir(data_dir)?;
    let s: StatusResponse = client.get("/api/status").await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let node = &s.node;
    out!("peer id:     {}", node.peer_id);
    if let Some(name) = &s.display_name {
        out!("name:        {name}");
    }
    out!("version:     {} (up {}s)", s.version, s.uptime_secs);
    out!("data dir:    {}", s.data_dir.display());
    out!("NAT status:  {}", node.nat_status);
    out!(
        "DHT mode:    {}{}",
        if node.dht_server { "server" } else { "client" },
        node.dht_client_reason
            .as_deref()
            .map_or(String::new(), |r| format!(" — {r}"))
    );
    match (
        node.relay_server.as_str(),
        node.relay_server_reason.as_deref(),
    ) {
        ("serving", _) => out!("relay:       serving"),
        ("disabled", reason) => {
            out!("relay:       disabled — {}", reason.unwrap_or("?"))
        }
        _ => {}
    }
    for cid in &s.changed_files {
        out!("warning:     {cid} changed on disk: no longer shared (add it again)");
    }
    if let Some(n) = Some(node.unannounced_files).filter(|n| *n > 0) {
        out!("warning:     {n} file(s) announced to no DHT server yet (retrying)");
    }
    out!(
        "peers:       {} connected, {} in routing table",
        node.connected_peers,
        node.routing_table_peers
    );
    out!(
        "files:       {} ({} announced)",
        s.files,
        node.provided_files
    );
    for (label, addrs) in [
        ("listening:", &node.listen_addrs),
        ("external:", &node.external_addrs),
        ("relayed via:", &node.relay_reservations),
    ] {
        for (i, a) in addrs.iter().enumerate() {
            out!("{:<12} {a}", if i == 0 { label } else { "" });
        }
    }
    for d in &s.downloads {
        let p = &d.progress;
        let state = serde_json::to_value(p.state).unwrap_or_default();
        out!(
            "download:    {} {} {}/{} chunks",
            p.cid,
            state.as_str().unwrap_or(""),
            p.chunks_done,
            p.chunks_total
        );
    }
    Ok(())
}

async fn id(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::for_data_dir(data_dir)?;
    let r: IdResponse = client.get("/api/id").await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        out!("{}", r.peer_id);
        for a in r.addrs {
            out!("{a}");
        }
    }
    Ok(())
}

async fn peers(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::for_data_dir(data_dir)?;
    let peers: Vec<Value> = client.get("/api/peers").await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&peers)?);
        return Ok(());
    }
    if peers.is_empty() {
        out!("no peers");
    }
    for p in peers {
        let rtt = p["rtt_ms"]
            .as_f64()
            .map_or("-".to_string(), |r| format!("{r:.1} ms"));
        let kind = if p["direct"].as_bool().unwrap_or(false) {
            "direct"
        } else {
            "relayed"
        };
        let addr = p["addrs"].get(0).and_then(|a| a.as_str()).unwrap_or("");
        out!(
            "{}  {kind:<7}  {rtt:>9}  {addr}",
            p["peer_id"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

async fn reputation(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::for_data_dir(data_dir)?;
    let table: Vec<PeerReputation> = client.get("/api/reputation").await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&table)?);
        return Ok(());
    }
    if table.is_empty() {
        out!("no peers yet");
    }
    for p in table {
        out!(
            "{}  {:>6.1}{}  recv {:>10}  sent {:>10}  corrupt {}  failed {}  refused {}",
            p.peer_id,
            p.score,
            match (&p.ban_reason, p.banned, p.taker) {
                (Some(reason), true, _) => format!(" banned ({reason})"),
                (None, true, _) => " banned".to_string(),
                (_, false, true) => " takes, gives nothing".to_string(),
                _ => String::new(),
            },
            human_bytes(p.received),
            human_bytes(p.sent),
            p.corrupt_chunks,
            p.failures,
            p.refusals
        );
    }
    Ok(())
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
