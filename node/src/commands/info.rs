//! The commands that show this node's state: `ls`, `status`, `id`, `peers` and
//! `reputation`, each one API read printed as text or, with `--json`, as the API's JSON.

use std::path::Path;

use serde_json::Value;

use super::{human_bytes, print_line};
use crate::api::types::*;
use crate::client::ApiClient;

pub(super) async fn ls(data_dir: &Path, json: bool) -> anyhow::Result<()> {
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

pub(super) async fn status(data_dir: &Path, json: bool) -> anyhow::Result<()> {
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

pub(super) async fn id(data_dir: &Path, json: bool) -> anyhow::Result<()> {
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

pub(super) async fn peers(data_dir: &Path, json: bool) -> anyhow::Result<()> {
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

pub(super) async fn reputation(data_dir: &Path, json: bool) -> anyhow::Result<()> {
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
