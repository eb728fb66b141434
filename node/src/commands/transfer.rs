//! `p2pd add` and `p2pd fetch` of a single file: the request to the daemon, the progress
//! bar while it runs, and the one-line result (the CID alone on stdout for `add`). A
//! directory or a folder CID is handed on to `folder`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::{check_cid, fetch_bar, folder, human_bytes, print_line, progress_bar, share};
use crate::api::types::*;
use crate::client::ApiClient;
use crate::{paths, UsageError};

pub(super) async fn add(
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

pub(super) async fn fetch(
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
