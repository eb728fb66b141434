//! `p2pd doctor`: asks the daemon to check itself (`POST /api/doctor`) and prints each
//! check with its advice; exits 1 naming the failed checks. Also holds the clap
//! definition of the operator's network commands (`doctor`, `relays`).

use std::path::Path;

use reqwest::Method;

use super::print_line;
use crate::api::doctor::DoctorReport;
use crate::client::ApiClient;

/// `p2pd doctor`, `p2pd relays …`.
#[derive(Debug, clap::Subcommand)]
pub enum NetworkCommand {
    /// Check reachability, the DHT and whether other peers can find each shared file
    /// (asks a connected DHT server); exit 1 naming the failed checks.
    Doctor,
    /// The relays in use and, on a relay node, the circuits it carries against its
    /// limits; add or drop a relay.
    Relays {
        #[command(subcommand)]
        action: Option<super::relays::RelaysAction>,
    },
}

/// Runs one of the network commands.
pub async fn run(command: NetworkCommand, data_dir: &Path, json: bool) -> anyhow::Result<()> {
    match command {
        NetworkCommand::Doctor => doctor(data_dir, json).await,
        NetworkCommand::Relays { action } => super::relays::run(action, data_dir, json).await,
    }
}

async fn doctor(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::for_data_dir(data_dir)?;
    let report: DoctorReport = client
        .send::<(), _>(Method::POST, "/api/doctor", None)
        .await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for c in &report.checks {
            let name = match &c.subject {
                Some(subject) => format!("{} {subject}", c.check),
                None => c.check.clone(),
            };
            out!(
                "[{}] {name}: {}",
                if c.ok { " ok " } else { "FAIL" },
                c.summary
            );
            if let Some(advice) = &c.advice {
                out!("       advice: {advice}");
            }
        }
        if report.records_unchecked > 0 {
            out!(
                "(the records of {} more shared file(s) were not checked)",
                report.records_unchecked
            );
        }
    }
    let failed: Vec<String> = (report.checks.iter())
        .filter(|c| !c.ok)
        .map(|c| match &c.subject {
            Some(subject) => format!("{} {subject}", c.check),
            None => c.check.clone(),
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} check(s) failed: {}", failed.len(), failed.join(", "))
    }
}
