//! `p2pd reputation --mine`: how the peers this node deals with see it, each asked now
//! through the daemon (`GET /api/reputation/mine`).

use std::path::Path;

use super::{human_bytes, print_line};
use crate::api::standing::{StandingAnswer, StandingAtPeer};
use crate::client::ApiClient;

/// Prints each connected peer's view of this node (or, with `json`, the API's answer).
pub async fn mine(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::for_data_dir(data_dir)?;
    let table: Vec<StandingAtPeer> = client.get("/api/reputation/mine").await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&table)?);
        return Ok(());
    }
    if table.is_empty() {
        out!("no connected peers to ask");
    }
    for p in table {
        out!("{}  {}", p.peer_id, describe(&p));
    }
    Ok(())
}

/// One peer's view, in words.
fn describe(p: &StandingAtPeer) -> String {
    match p.answer {
        StandingAnswer::Known => {
            let ban = match (&p.ban_reason, p.banned) {
                (Some(reason), true) => format!("  banned ({reason})"),
                (None, true) => "  banned".into(),
                _ => String::new(),
            };
            format!(
                "score {:>6.1}{ban}  it sent me {:>10}  it got from me {:>10}  corrupt {}  timeouts {}  refused {}",
                p.score.unwrap_or(0.0),
                human_bytes(p.sent_to_me),
                human_bytes(p.received_from_me),
                p.corrupt_chunks,
                p.timeouts,
                p.refusals
            )
        }
        StandingAnswer::Unknown => "does not know this node yet".into(),
        StandingAnswer::RateLimited => format!(
            "asked too often; try again in {} s",
            p.retry_after_secs.unwrap_or(0)
        ),
        StandingAnswer::NoAnswer => format!(
            "no answer ({})",
            p.error.as_deref().unwrap_or("unknown reason")
        ),
    }
}
