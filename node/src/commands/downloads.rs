//! The CLI's daemon-managed downloads: `fetch --detach` starts one and returns at once;
//! `downloads` lists them (and clears the history of ended ones); `pause`, `resume` and
//! `cancel` act on one. The daemon keeps them across restarts.

use std::path::Path;

use reqwest::Method;

use super::{check_cid, human_bytes, print_line, print_or_json};
use crate::api::ops::ClearedHistory;
use crate::api::transfers::DownloadState;
use crate::api::types::{DownloadInfo, StartDownload};
use crate::client::ApiClient;
use crate::UsageError;

/// `p2pd pause|resume|cancel <cid>`, `p2pd downloads`.
#[derive(Debug, clap::Subcommand)]
pub enum DownloadCommand {
    /// Daemon-managed downloads: each with its CID, state, bytes done and total.
    Downloads {
        /// Forget the ended ones (done, failed, cancelled) instead of listing.
        #[arg(long)]
        clear: bool,
    },
    /// Pause a download, keeping its verified chunks.
    Pause {
        /// The file's CID.
        cid: String,
    },
    /// Resume a paused or failed download.
    Resume {
        /// The file's CID.
        cid: String,
    },
    /// Cancel a download and delete what it fetched.
    Cancel {
        /// The file's CID.
        cid: String,
    },
}

/// Runs one of the download commands.
pub async fn run(command: DownloadCommand, data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::for_data_dir(data_dir)?;
    let (cid, method, path, verb) = match command {
        DownloadCommand::Downloads { clear: false } => return list(&client, json).await,
        DownloadCommand::Downloads { clear: true } => {
            let r: ClearedHistory = client
                .send::<(), _>(Method::DELETE, "/api/downloads", None)
                .await?;
            return print_or_json(json, &r, || {
                format!("forgot {} ended download(s)", r.cleared)
            });
        }
        DownloadCommand::Pause { cid } => {
            let path = format!("/api/downloads/{cid}/pause");
            (cid, Method::POST, path, "paused")
        }
        DownloadCommand::Resume { cid } => {
            let path = format!("/api/downloads/{cid}/resume");
            (cid, Method::POST, path, "resumed")
        }
        DownloadCommand::Cancel { cid } => {
            let path = format!("/api/downloads/{cid}");
            (cid, Method::DELETE, path, "cancelled")
        }
    };
    check_cid(&cid)?;
    let d: DownloadInfo = client.send::<(), _>(method, &path, None).await?;
    print_or_json(json, &d, || {
        format!("{verb} {}  {}", d.progress.cid, line(&d))
    })
}

/// `p2pd fetch <cid> --detach`: starts a daemon-managed download into the store.
pub async fn detach(data_dir: &Path, json: bool, cid: &str, timeout: u64) -> anyhow::Result<()> {
    check_cid(cid)?;
    if timeout == 0 {
        return Err(UsageError("--timeout must be at least 1 second".into()).into());
    }
    let client = ApiClient::for_data_dir(data_dir)?;
    let request = StartDownload {
        cid: cid.to_string(),
        timeout_secs: Some(timeout),
    };
    let d: DownloadInfo = client
        .send(Method::POST, "/api/downloads", Some(&request))
        .await?;
    print_or_json(json, &d, || {
        format!(
            "downloading {} in the background; `p2pd downloads` shows it",
            d.progress.cid
        )
    })
}

async fn list(client: &ApiClient, json: bool) -> anyhow::Result<()> {
    let all: Vec<DownloadInfo> = client.get("/api/downloads").await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if all.is_empty() {
        out!("no downloads");
    }
    for d in &all {
        out!("{}  {}", d.progress.cid, line(d));
    }
    Ok(())
}

/// `downloading  1.5 MiB/10.0 MiB  name`.
fn line(d: &DownloadInfo) -> String {
    let p = &d.progress;
    let state = serde_json::to_value(p.state).unwrap_or_default();
    let mut text = format!(
        "{:<11}  {}/{}  {}",
        state.as_str().unwrap_or("?"),
        human_bytes(p.bytes_done),
        if p.size > 0 {
            human_bytes(p.size)
        } else {
            "?".into()
        },
        p.name.as_deref().unwrap_or("-"),
    );
    if let Some(error) = p
        .error
        .as_deref()
        .filter(|_| p.state == DownloadState::Failed)
    {
        text.push_str(&format!("  ({error})"));
    }
    text
}
