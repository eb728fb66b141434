//! The share commands: `share`, `shares`, `unshare`, `publish`, and opening a ticket
//! for `fetch`. A ticket is checked here before the daemon is asked, so that a
//! mistyped one is a usage error (exit 2) that changes nothing; a refusal by the
//! provider (wrong password, expired, revoked, unreachable) is a failure (exit 1).

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use dht_proto::ticket::Ticket;
use reqwest::Method;

use super::{human_bytes, print_or_json};
use crate::api::share::{OpenTicketRequest, OpenedTicket, ShareInfo, ShareRequest};
use crate::api::types::CidResponse;
use crate::client::ApiClient;
use crate::UsageError;

/// `p2pd share …` and its neighbours.
#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// Share a file with someone: print a ticket (its last line of output) that
    /// `p2pd fetch <ticket>` downloads from this node directly.
    Share {
        /// The file's CID.
        cid: String,
        /// End the share after this long: 90s, 10m, 2h, 7d.
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// Ask for a password (on the terminal, else the first line of stdin). The file
        /// then becomes private: no longer announced, served only to peers that prove
        /// they know the password.
        #[arg(long)]
        password: bool,
        /// Also draw the ticket as a QR code.
        #[arg(long)]
        qr: bool,
    },
    /// List active shares and their tickets.
    Shares,
    /// Revoke a share: by ticket or share id, or every share of a file by CID.
    Unshare {
        /// A ticket, a share id or a CID.
        what: String,
    },
    /// Announce a file (or a folder and its files) again after `unpublish`.
    Publish {
        /// The file's or folder's CID.
        cid: String,
    },
}

/// Runs a share command.
pub async fn run(command: ShareCommand, data_dir: &Path, json: bool) -> anyhow::Result<()> {
    match command {
        ShareCommand::Share {
            cid,
            expires,
            password,
            qr,
        } => share(data_dir, json, cid, expires.as_deref(), password, qr).await,
        ShareCommand::Shares => shares(data_dir, json).await,
        ShareCommand::Unshare { what } => {
            let what = what.trim().to_string();
            if dht_proto::ticket::looks_like_ticket(&what) {
                Ticket::decode(&what).map_err(|e| UsageError(e.to_string()))?;
            }
            let client = ApiClient::for_data_dir(data_dir)?;
            let path = format!(
                "/api/shares/{}",
                what.split_whitespace().collect::<String>()
            );
            let revoked: Vec<ShareInfo> = client.send::<(), _>(Method::DELETE, &path, None).await?;
            print_or_json(json, &revoked, || {
                let names: Vec<&str> = revoked.iter().map(|s| s.name.as_str()).collect();
                format!(
                    "revoked {} share{} ({})",
                    revoked.len(),
                    if revoked.len() == 1 { "" } else { "s" },
                    names.join(", ")
                )
            })
        }
        ShareCommand::Publish { cid } => {
            crate::api::parse_cid(&cid).map_err(|e| UsageError(e.message))?;
            let client = ApiClient::for_data_dir(data_dir)?;
            let r: CidResponse = client
                .send::<(), _>(Method::POST, &format!("/api/files/{cid}/publish"), None)
                .await?;
            print_or_json(json, &r, || format!("{} is announced again", r.cid))
        }
    }
}

/// `90s`, `10m`, `2h`, `7d` (or plain seconds).
pub fn parse_duration(text: &str) -> Result<Duration, UsageError> {
    let bad = || {
        UsageError(format!(
            "bad duration {text:?}: use a number and s, m, h or d, e.g. 90s, 10m, 2h, 7d"
        ))
    };
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(scale).ok_or_else(bad)?;
    if secs == 0 {
        return Err(UsageError("the expiry must be at least 1 second".into()));
    }
    Ok(Duration::from_secs(secs))
}

/// Reads a password the way `p2pd passwd` does: asked on a terminal (twice when it is
/// new), else the first line of stdin.
pub fn read_password(prompt: &str, confirm: bool) -> anyhow::Result<String> {
    use std::io::BufRead;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt).context("reading the password")?;
        if confirm {
            let again =
                rpassword::prompt_password("Repeat it: ").context("reading the password")?;
            if first != again {
                return Err(UsageError("the passwords differ".into()).into());
            }
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

async fn share(
    data_dir: &Path,
    json: bool,
    cid: String,
    expires: Option<&str>,
    password: bool,
    qr: bool,
) -> anyhow::Result<()> {
    crate::api::parse_cid(&cid).map_err(|e| UsageError(e.message))?;
    let expires_secs = expires
        .map(parse_duration)
        .transpose()?
        .map(|d| d.as_secs());
    let password = if password {
        let password = read_password("Password for this share: ", true)?;
        if password.is_empty() {
            return Err(UsageError("the password must not be empty".into()).into());
        }
        Some(password)
    } else {
        None
    };
    let client = ApiClient::for_data_dir(data_dir)?;
    let request = ShareRequest {
        cid,
        expires_secs,
        password,
    };
    let info: ShareInfo = client
        .send(Method::POST, "/api/shares", Some(&request))
        .await?;
    if json {
        return print_or_json(true, &info, String::new);
    }
    eprintln!("{}", describe(&info));
    if qr {
        // Dark modules as block characters; on a terminal in black on white whatever its
        // colours, since scanners want dark modules on a light ground.
        let code = dht_proto::qr::qr_terminal(&info.ticket.to_ascii_uppercase(), false)
            .map_err(|e| anyhow::anyhow!("cannot draw the QR code: {e}"))?;
        let colour = std::io::stdout().is_terminal();
        for line in code.lines() {
            if colour {
                super::print_line(format_args!("\x1b[30;47m{line}\x1b[0m"));
            } else {
                super::print_line(format_args!("{line}"));
            }
        }
    }
    super::print_line(format_args!("{}", info.ticket));
    Ok(())
}

/// `shared notes.txt (1.2 MiB), expires 2026-…, password needed`.
fn describe(info: &ShareInfo) -> String {
    let mut line = format!("shared {} ({})", info.name, human_bytes(info.size));
    if let Some(end) = info.expires_unix {
        let left = end.saturating_sub(crate::share::unix_now());
        if info.expired {
            line.push_str(", expired");
        } else {
            line.push_str(&format!(", expires in {}", human_duration(left)));
        }
    }
    if info.password {
        line.push_str(", password needed");
    }
    line
}

/// `3700` → `1h 1m`.
fn human_duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

async fn shares(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::for_data_dir(data_dir)?;
    let list: Vec<ShareInfo> = client.get("/api/shares").await?;
    if json {
        return print_or_json(true, &list, String::new);
    }
    if list.is_empty() {
        super::print_line(format_args!("no shares"));
    }
    for info in list {
        super::print_line(format_args!(
            "{}  {}  {}",
            info.id,
            info.cid,
            describe(&info)
        ));
        super::print_line(format_args!("  {}", info.ticket));
    }
    Ok(())
}

/// Opens a ticket for `fetch`: checks it (a usage error if it is damaged), reads the
/// password if it needs one, and asks the daemon to reach the provider. Returns the
/// CID to fetch.
pub async fn open_ticket(data_dir: &Path, json: bool, text: &str) -> anyhow::Result<String> {
    let ticket = Ticket::decode(text).map_err(|e| UsageError(e.to_string()))?;
    crate::share::open::provider_of(&ticket).map_err(|e| UsageError(e.to_string()))?;
    let password = if ticket.password {
        Some(read_password(
            &format!("Password for {}: ", ticket.name),
            false,
        )?)
        .filter(|p| !p.is_empty())
    } else {
        None
    };
    let client = ApiClient::for_data_dir(data_dir)?;
    let request = OpenTicketRequest {
        ticket: text.to_string(),
        password,
    };
    // Whatever the provider answers is an operation failure, not the user's typing.
    let opened: OpenedTicket = client
        .send(Method::POST, "/api/tickets/open", Some(&request))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !json {
        eprintln!(
            "ticket for {} ({}) from {}",
            opened.name,
            human_bytes(opened.size),
            opened.provider
        );
    }
    Ok(opened.cid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        for bad in ["", "0s", "10x", "h", "-5m", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
