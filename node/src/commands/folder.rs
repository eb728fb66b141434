//! The folder side of `p2pd add <dir>` and `p2pd fetch <dir-cid>`: each asks the daemon
//! (`POST /api/folders`, `POST /api/folders/fetch`) and shows the whole operation's
//! progress on a terminal, the fetch also the files arriving now; `--json` prints one
//! object at the end.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::human_bytes;
use crate::api::folders::{FolderAddProgress, FolderAddRequest, FolderAddResponse, FolderProgress};
use crate::client::ApiClient;

/// How a directory is added.
pub struct AddArgs {
    /// Track the files in place.
    pub no_copy: bool,
    /// Keep the folder out of the catalog.
    pub unlisted: bool,
    /// Follow symbolic links.
    pub follow_symlinks: bool,
    /// The folder's name.
    pub name: Option<String>,
}

fn bar(json: bool, template: &str) -> Option<ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

/// `p2pd add <dir>`: the directory (absolute, checked to be one) as one folder.
pub async fn add(data_dir: &Path, json: bool, path: PathBuf, args: AddArgs) -> anyhow::Result<()> {
    let client = ApiClient::for_data_dir(data_dir)?;
    let bar = bar(
        json,
        "{spinner} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
    );
    let request = FolderAddRequest {
        path,
        no_copy: args.no_copy,
        unlisted: args.unlisted,
        follow_symlinks: args.follow_symlinks,
        name: args.name,
    };
    let result: anyhow::Result<FolderAddResponse> = client
        .stream("/api/folders", &request, |p: FolderAddProgress| {
            if let Some(line) = &p.skipped {
                // A warning, as it happens (also in the final summary with --json).
                match &bar {
                    Some(bar) => bar.println(format!("warning: {line}")),
                    None if !json => eprintln!("warning: {line}"),
                    None => {}
                }
                return;
            }
            if let Some(bar) = &bar {
                bar.set_length(p.size);
                bar.set_position(p.bytes);
                bar.set_message(format!("{}/{} files", p.files_done, p.files));
            }
        })
        .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let r = result?;
    if json {
        super::print_line(format_args!("{}", serde_json::to_string(&r)?));
    } else {
        eprintln!(
            "{} folder {} ({} files, {} distinct, {})",
            if r.already_present {
                "already shared:"
            } else {
                "added"
            },
            r.name.as_deref().unwrap_or("-"),
            r.files,
            r.unique_files,
            human_bytes(r.size),
        );
        super::print_line(format_args!("{}", r.cid));
    }
    Ok(())
}

/// `p2pd fetch <dir-cid>`: the tree into `output`, or into the current directory under
/// the folder's name.
pub async fn fetch(
    data_dir: &Path,
    json: bool,
    cid: &str,
    output: Option<PathBuf>,
    output_dir: Option<PathBuf>,
    timeout: u64,
) -> anyhow::Result<()> {
    let client = ApiClient::for_data_dir(data_dir)?;
    let bar = bar(
        json,
        "{spinner} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
    );
    let request = crate::api::types::FetchRequest {
        cid: cid.to_string(),
        output,
        output_dir,
        timeout_secs: Some(timeout),
    };
    let result: anyhow::Result<FolderProgress> = client
        .stream("/api/folders/fetch", &request, |p: FolderProgress| {
            if let Some(bar) = &bar {
                bar.set_length(p.bytes_total);
                bar.set_position(p.bytes_done);
                let now: Vec<String> = p
                    .active
                    .iter()
                    .take(3)
                    .map(|a| format!("{} {}%", a.path, percent(a.bytes_done, a.size)))
                    .collect();
                bar.set_message(format!(
                    "{}/{} files  {}",
                    p.files_done,
                    p.files_total,
                    now.join("  ")
                ));
            }
        })
        .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let done = result?;
    let output = done
        .output
        .as_deref()
        .map_or_else(|| "-".to_string(), |p| p.display().to_string());
    if json {
        super::print_line(format_args!(
            "{}",
            json!({
                "cid": done.cid,
                "folder": true,
                "files": done.files_total,
                "size": done.bytes_total,
                "seconds": done.elapsed_secs,
                "output": output,
            })
        ));
    } else {
        super::print_line(format_args!(
            "saved {output} ({} files, {}, {:.1}s)",
            done.files_total,
            human_bytes(done.bytes_total),
            done.elapsed_secs
        ));
    }
    Ok(())
}

fn percent(done: u64, total: u64) -> u64 {
    (done * 100).checked_div(total).unwrap_or(100)
}
