//! `p2pd verify [--repair]`: asks the daemon to re-hash its store, prints what is wrong
//! per file and a summary, and fails (exit 1) if anything was.

use std::path::Path;

use reqwest::Method;

use super::print_line;
use crate::api::store::{VerifiedFile, VerifyRequest, VerifyResponse};
use crate::client::ApiClient;

pub(super) async fn run(data_dir: &Path, json: bool, repair: bool) -> anyhow::Result<()> {
    let client = ApiClient::for_data_dir(data_dir)?;
    let report: VerifyResponse = client
        .send(Method::POST, "/api/verify", Some(&VerifyRequest { repair }))
        .await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for file in &report.damaged {
            out!("{}", damage_line(file));
        }
        out!(
            "checked {} file(s): {} bad chunk(s), {} missing chunk(s), {} changed on disk, {} repaired",
            report.files_checked,
            report.bad_chunks,
            report.missing_chunks,
            report.changed_on_disk,
            report.repaired
        );
    }
    if report.ok {
        return Ok(());
    }
    let files = report.damaged.len();
    if repair {
        anyhow::bail!("{files} damaged file(s) found and repaired where no download ran: fetch them again to get the dropped chunks back")
    }
    anyhow::bail!("{files} damaged file(s) found: `p2pd verify --repair` drops the bad parts so that a fetch gets them again")
}

fn damage_line(file: &VerifiedFile) -> String {
    let mut what = Vec::new();
    if !file.bad_chunks.is_empty() {
        what.push(format!(
            "{} bad chunk(s) {}",
            file.bad_chunks.len(),
            indexes(&file.bad_chunks)
        ));
    }
    if !file.missing_chunks.is_empty() {
        what.push(format!(
            "{} missing chunk(s) {}",
            file.missing_chunks.len(),
            indexes(&file.missing_chunks)
        ));
    }
    if file.changed_on_disk {
        what.push("changed on disk".into());
    }
    let repair = match file.repair.as_deref() {
        Some("back_to_partial") => " — repaired: now a partial download",
        Some("dropped_from_partial") => " — repaired: dropped from the partial download",
        Some("marked_changed") => " — repaired: no longer served; add it again",
        _ => "",
    };
    format!(
        "{}  {}  ({}): {}{repair}",
        file.cid,
        file.name.as_deref().unwrap_or("-"),
        file.location,
        what.join(", ")
    )
}

/// The first few chunk indexes, for a line a person reads.
fn indexes(list: &[u32]) -> String {
    const SHOWN: usize = 8;
    let shown: Vec<String> = list.iter().take(SHOWN).map(u32::to_string).collect();
    let more = if list.len() > SHOWN { ", …" } else { "" };
    format!("[{}{more}]", shown.join(", "))
}
