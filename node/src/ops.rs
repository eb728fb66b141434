//! Commands for the operator: `p2pd stats` (bandwidth, from the daemon's API),
//! `p2pd config show` (the effective configuration, without a daemon), and
//! `p2pd completions` and `p2pd man`, generated from the clap definition that parses
//! the command line (so they cannot drift from it).

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clap_mangen::roff::{bold, italic, roman, Roff};
use serde::Serialize;

use crate::api::types::StatsResponse;
use crate::cli::{ConfigCommand, OpsCommand};
use crate::client::ApiClient;
use crate::commands::human_bytes;
use crate::config;

/// Runs one operator command.
pub async fn run(command: OpsCommand, data_dir: &Path, json: bool) -> anyhow::Result<()> {
    match command {
        OpsCommand::Stats => stats(data_dir, json).await,
        OpsCommand::Config(ConfigCommand::Show(args)) => {
            let text = if json {
                serde_json::to_string_pretty(&config::show::json(&args.config))? + "\n"
            } else {
                config::show::text(&args.config)
            };
            write_stdout(text.as_bytes())
        }
        OpsCommand::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut config::command(), "p2pd", &mut script);
            write_stdout(&script)
        }
        OpsCommand::Man { out_dir: None } => write_stdout(&main_page()?),
        OpsCommand::Man { out_dir: Some(dir) } => {
            let written = write_pages(&dir)?;
            if json {
                write_stdout(&serde_json::to_vec_pretty(&written)?)
            } else {
                let list: Vec<String> = written.iter().map(|p| format!("{p}\n")).collect();
                write_stdout(list.concat().as_bytes())
            }
        }
    }
}

/// Writes to stdout; a reader that went away (`p2pd man | head`) is not an error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// What `p2pd stats --json` prints: the API's figures, and the average and peak rates
/// over the history it keeps.
#[derive(Debug, Serialize)]
struct StatsSummary {
    total_received: u64,
    total_sent: u64,
    down_rate: f64,
    up_rate: f64,
    window_secs: usize,
    down_average: f64,
    up_average: f64,
    down_peak: f64,
    up_peak: f64,
}

impl StatsSummary {
    fn of(stats: &StatsResponse) -> StatsSummary {
        let samples = stats.history.len();
        let sum = |f: fn(&crate::api::types::RateSample) -> f64| {
            stats.history.iter().map(f).sum::<f64>() / samples.max(1) as f64
        };
        let peak = |f: fn(&crate::api::types::RateSample) -> f64| {
            stats.history.iter().map(f).fold(0.0, f64::max)
        };
        StatsSummary {
            total_received: stats.total_received,
            total_sent: stats.total_sent,
            down_rate: stats.down_rate,
            up_rate: stats.up_rate,
            window_secs: samples,
            down_average: sum(|s| s.down),
            up_average: sum(|s| s.up),
            down_peak: peak(|s| s.down),
            up_peak: peak(|s| s.up),
        }
    }

    fn text(&self) -> String {
        let rate = |r: f64| format!("{}/s", human_bytes(r.max(0.0) as u64));
        let window = if self.window_secs >= 120 {
            format!("last {} min", self.window_secs / 60)
        } else {
            format!("last {} s", self.window_secs)
        };
        let average = format!("average ({window})");
        let peak = format!("peak ({window})");
        let mut out = format!(
            "{:<10}{:>12}{:>14}{:>24}{:>22}\n",
            "", "in all", "now", average, peak
        );
        for (name, total, now, avg, top) in [
            (
                "received",
                self.total_received,
                self.down_rate,
                self.down_average,
                self.down_peak,
            ),
            (
                "sent",
                self.total_sent,
                self.up_rate,
                self.up_average,
                self.up_peak,
            ),
        ] {
            out.push_str(&format!(
                "{name:<10}{:>12}{:>14}{:>24}{:>22}\n",
                human_bytes(total),
                rate(now),
                rate(avg),
                rate(top)
            ));
        }
        out
    }
}

async fn stats(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::for_data_dir(data_dir)?;
    let stats: StatsResponse = client.get("/api/stats").await?;
    let summary = StatsSummary::of(&stats);
    if json {
        write_stdout(format!("{}\n", serde_json::to_string_pretty(&summary)?).as_bytes())
    } else {
        write_stdout(summary.text().as_bytes())
    }
}

/// p2pd(1): clap's page for the top command, with FILES, ENVIRONMENT and EXIT STATUS
/// before its VERSION section.
fn main_page() -> anyhow::Result<Vec<u8>> {
    let mut command = config::command();
    command.build();
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    let mut page = String::from_utf8(page).context("the man page is not UTF-8")?;
    let at = page.find(".SH VERSION").unwrap_or(page.len());
    page.insert_str(at, &files_and_environment());
    Ok(page.into_bytes())
}

/// The sections a man page of a daemon is expected to have that clap does not know.
fn files_and_environment() -> String {
    let mut roff = Roff::new();
    roff.control("SH", ["FILES"]);
    roff.control("TP", []);
    roff.text([italic("~/.config/p2pd/config.toml")]);
    roff.text([roman(
        "The configuration file on Linux (macOS: ~/Library/Application Support/p2pd/config.toml; \
         Windows: %APPDATA%\\p2pd\\config\\config.toml), read when present; --config or \
         P2PD_CONFIG names another. TOML, one key per option of p2pd daemon, named like \
         its flag: ",
    )]);
    roff.text([bold("upload-slots = 4"), roman(", "), bold("listen = [\"/ip4/0.0.0.0/tcp/5891\"]"), roman(". A flag overrides the environment, which overrides the file, which overrides the default; p2pd config show prints the result.")]);
    roff.control("TP", []);
    roff.text([italic("~/.local/share/p2pd")]);
    roff.text([roman(
        "The data directory on Linux (--data-dir, P2PD_DATA_DIR, or data-dir in the file): \
         the node key, the store, the log p2pd.log, and api.json, where the CLI finds the daemon.",
    )]);
    roff.control("SH", ["ENVIRONMENT"]);
    roff.control("TP", []);
    roff.text([bold("P2PD_CONFIG")]);
    roff.text([roman("The configuration file, like --config.")]);
    roff.control("TP", []);
    roff.text([bold("P2PD_"), italic("OPTION")]);
    roff.text([roman(
        "Each option of p2pd daemon, named after its flag in capitals with underscores: \
         P2PD_DATA_DIR, P2PD_UPLOAD_SLOTS, P2PD_NO_MDNS=true. A list is comma-separated: \
         P2PD_BOOTSTRAP=/ip4/…/p2p/…,/ip4/…/p2p/….",
    )]);
    roff.control("TP", []);
    roff.text([bold("RUST_LOG")]);
    roff.text([roman("The log level, e.g. debug or p2pd=debug,info.")]);
    roff.control("SH", ["EXIT STATUS"]);
    roff.text([roman(
        "0 on success, 1 when the operation failed, 2 for bad usage or bad input (a bad \
         value or key of the configuration file included).",
    )]);
    roff.to_roff()
}

/// Writes p2pd.1 and a page per command (p2pd-daemon.1, p2pd-config-show.1, …) into
/// `dir`; returns their paths.
fn write_pages(dir: &Path) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let main = dir.join("p2pd.1");
    std::fs::write(&main, main_page()?).with_context(|| format!("writing {}", main.display()))?;
    let mut written = vec![main.display().to_string()];
    let mut command = config::command().disable_help_subcommand(true);
    command.build();
    let not_help = |c: &&clap::Command| c.get_name() != "help";
    let mut stack: Vec<clap::Command> = command
        .get_subcommands()
        .filter(not_help)
        .cloned()
        .collect();
    while let Some(sub) = stack.pop() {
        stack.extend(sub.get_subcommands().filter(not_help).cloned());
        let path = clap_mangen::Man::new(sub)
            .generate_to(dir)
            .with_context(|| format!("writing a page into {}", dir.display()))?;
        written.push(path.display().to_string());
    }
    written.sort();
    Ok(written)
}
