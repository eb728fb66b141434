//! `p2pd relays`: the relays in use (reservation, circuits) and this node's load as a
//! relay (`GET /api/relays`); `relays add <multiaddr>` holds a reservation on a relay
//! (waiting a few seconds for its answer) and `relays drop <peer id>` gives one back.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Method;

use super::print_or_json;
use crate::api::relays::{parse_relay_addr, AddRelay, RelayView, RelaysView};
use crate::client::ApiClient;
use crate::UsageError;

/// How long `relays add` waits for the relay's answer before it reports "requested".
const ADD_WAIT: Duration = Duration::from_secs(15);

/// `p2pd relays add|drop`.
#[derive(Debug, clap::Subcommand)]
pub enum RelaysAction {
    /// Hold a reservation on a relay, even while reachable directly (until dropped or the
    /// daemon restarts; `--relay` keeps one across restarts).
    Add {
        /// The relay's direct address, ending in /p2p/<peer id>.
        addr: String,
    },
    /// Give back the reservation on a relay; it is not picked again until added.
    Drop {
        /// The relay's peer id.
        peer: String,
    },
}

/// Runs `p2pd relays [add|drop]`.
pub async fn run(action: Option<RelaysAction>, data_dir: &Path, json: bool) -> anyhow::Result<()> {
    match action {
        None => {
            let client = ApiClient::for_data_dir(data_dir)?;
            let view: RelaysView = client.get("/api/relays").await?;
            print_or_json(json, &view, || describe(&view))
        }
        Some(RelaysAction::Add { addr }) => {
            let (peer, _) = parse_relay_addr(&addr).map_err(|e| UsageError(e.message))?;
            let client = ApiClient::for_data_dir(data_dir)?;
            let request = AddRelay { addr };
            let mut view: RelaysView = client
                .send(Method::POST, "/api/relays", Some(&request))
                .await?;
            let peer = peer.to_string();
            let deadline = Instant::now() + ADD_WAIT;
            while Instant::now() < deadline
                && find(&view, &peer).is_some_and(|r| r.reservation == "requested")
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
                view = client.get("/api/relays").await?;
            }
            let relay = find(&view, &peer).cloned();
            print_or_json(json, &relay, || match &relay {
                Some(r) => format!("relay {}: {}", r.peer_id, state(r)),
                None => format!("relay {peer}: not kept"),
            })?;
            match relay {
                Some(r) if r.reservation == "failed" => anyhow::bail!(
                    "the relay refused or could not be reached: {}",
                    r.error.as_deref().unwrap_or("no reason given")
                ),
                _ => Ok(()),
            }
        }
        Some(RelaysAction::Drop { peer }) => {
            let client = ApiClient::for_data_dir(data_dir)?;
            let path = format!("/api/relays/{}", peer.trim());
            let view: RelaysView = client.send::<(), _>(Method::DELETE, &path, None).await?;
            print_or_json(json, &view, || format!("dropped relay {}", peer.trim()))
        }
    }
}

fn find<'a>(view: &'a RelaysView, peer: &str) -> Option<&'a RelayView> {
    view.relays.iter().find(|r| r.peer_id == peer)
}

/// `accepted (added), 1 circuit open, 3 in all`.
fn state(r: &RelayView) -> String {
    let mut text = format!("{} ({})", r.reservation, r.origin);
    if let Some(error) = &r.error {
        text.push_str(&format!(": {error}"));
    }
    text.push_str(&format!(
        ", {} circuit(s) open, {} in all, carried {} up and {} down",
        r.circuits_open,
        r.circuits_total,
        super::human_bytes(r.bytes_sent),
        super::human_bytes(r.bytes_received)
    ));
    text
}

/// `in 58m`, `in 1h 05m`, `in 40s`, or `expired 3m ago`, from Unix seconds.
fn until(at: u64, now: u64) -> String {
    let words = |secs: u64| match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        _ => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
    };
    if at >= now {
        format!("in {}", words(at - now))
    } else {
        format!("expired {} ago", words(now - at))
    }
}

fn describe(view: &RelaysView) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut lines = Vec::new();
    if view.relays.is_empty() {
        lines.push("no relays in use".to_string());
    }
    for r in &view.relays {
        lines.push(format!("{}  {}", r.peer_id, state(r)));
        if let Some(addr) = &r.addr {
            lines.push(format!("    at {addr}"));
        }
        if let Some(at) = r.accepted_unix {
            lines.push(format!(
                "    accepted at {at} (Unix time), renewed {} time(s)",
                r.renewals
            ));
        }
        match (r.expires_unix, &r.expiry_error) {
            (Some(at), _) => lines.push(format!("    expires at {at} ({})", until(at, now))),
            (None, Some(why)) => lines.push(format!("    expiry unknown: {why}")),
            (None, None) => {}
        }
    }
    if let Some(s) = &view.server {
        lines.push(format!(
            "relay server: {}{}",
            s.state,
            s.reason
                .as_deref()
                .map_or(String::new(), |r| format!(" ({r})"))
        ));
        lines.push(format!(
            "    reservations {}/{}, circuits {}/{} ({} reservations and {} circuits accepted, {} and {} refused)",
            s.reservations,
            s.max_reservations,
            s.circuits_open,
            s.max_circuits,
            s.reservations_accepted,
            s.circuits_accepted,
            s.reservations_denied,
            s.circuits_denied
        ));
        for h in &s.held {
            lines.push(format!(
                "    reservation for {}: expires at {} ({}) unless renewed",
                h.peer_id,
                h.expires_unix,
                until(h.expires_unix, now)
            ));
        }
        for c in &s.circuits {
            lines.push(format!("    circuit {} -> {}", c.src, c.dst));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::until;

    #[test]
    fn expiry_reads_as_time_left() {
        assert_eq!(until(1000 + 58 * 60 + 30, 1000), "in 58m");
        assert_eq!(until(1000 + 3900, 1000), "in 1h 05m");
        assert_eq!(until(1040, 1000), "in 40s");
        assert_eq!(until(1000, 1000), "in 0s");
        assert_eq!(until(1000, 1180), "expired 3m ago");
    }
}
