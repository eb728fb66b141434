//! `POST /api/doctor`: the node checks itself and explains. Three kinds of check, each
//! `ok` or `fail` with one line of advice when it fails:
//! - reachability: reachable directly (a confirmed address that is not relayed), or
//!   through a relay reservation; neither means peers cannot connect to us.
//! - the DHT: peers in the routing table (none means nothing can be found or
//!   announced), and whether we answer DHT queries.
//! - each shared file's provider record: one connected DHT server (the one closest to
//!   the file's key) is asked for the file's providers with a real `GET_PROVIDERS`
//!   (`network::probe`), as another peer's lookup would ask it; the check passes when
//!   this node is among them.

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Api, ApiError};
use crate::network::{ask_providers, closest_to, NatStatus, ProviderKey};

/// Most files whose records one run checks (each costs a request to a DHT server).
pub const MAX_FILES_CHECKED: usize = 32;
/// Probes in flight at once.
const PARALLEL_PROBES: usize = 4;

/// One check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DoctorCheck {
    /// `reachability`, `dht` or `provider-record`.
    pub check: String,
    /// What it is about: the file's CID for `provider-record`.
    pub subject: Option<String>,
    /// Whether it passed.
    pub ok: bool,
    /// What was found, in one line.
    pub summary: String,
    /// What to do about it, when it failed.
    pub advice: Option<String>,
}

/// What a DHT server answered about one file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordProbe {
    /// The file.
    pub cid: String,
    /// The DHT server asked.
    pub asked: Option<String>,
    /// Whether its answer named this node as a provider.
    pub found: bool,
    /// How many providers it named.
    pub providers: usize,
    /// Why there is no answer.
    pub error: Option<String>,
}

/// `POST /api/doctor`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DoctorReport {
    /// Whether every check passed.
    pub healthy: bool,
    /// Every check, failed ones included.
    pub checks: Vec<DoctorCheck>,
    /// `public` or `private`.
    pub nat_status: String,
    /// Addresses confirmed reachable from outside.
    pub external_addrs: Vec<String>,
    /// Our `/p2p-circuit` addresses.
    pub relay_reservations: Vec<String>,
    /// Peers in the DHT routing table.
    pub routing_table_peers: usize,
    /// Whether we answer DHT queries.
    pub dht_server: bool,
    /// Connected peers that answer DHT queries.
    pub dht_servers_connected: usize,
    /// The provider record of each shared file (at most 32 checked per run).
    pub records: Vec<RecordProbe>,
    /// Shared files not checked this run (over the limit).
    pub records_unchecked: usize,
}

fn check(
    check: &str,
    subject: Option<String>,
    ok: bool,
    summary: String,
    advice: &str,
) -> DoctorCheck {
    DoctorCheck {
        check: check.to_string(),
        subject,
        ok,
        summary,
        advice: (!ok).then(|| advice.to_string()),
    }
}

impl Api {
    /// Runs every check (asking DHT servers over the network for the records).
    pub async fn doctor(&self) -> Result<DoctorReport, ApiError> {
        let internal = |e: anyhow::Error| ApiError::internal(e.to_string());
        let info = self.net.info().await.map_err(internal)?;
        let announced = self.net.announcements().await.map_err(internal)?;
        // Kademlia puts only peers that answer DHT queries in its routing table.
        let connected = self.net.connected_peers().await;
        let servers: Vec<_> = (self.net.routing_table().await.map_err(internal)?)
            .into_iter()
            .filter(|(peer, _)| connected.contains(peer))
            .collect();
        let mut checks = Vec::new();

        let reachable = info.nat_status == NatStatus::Public;
        let relayed = !info.relay_reservations.is_empty();
        checks.push(check(
            "reachability",
            None,
            reachable || relayed,
            match (reachable, relayed) {
                (true, _) => format!(
                    "reachable directly at {} confirmed address(es)",
                    info.external_addrs.len()
                ),
                (false, true) => format!(
                    "not reachable directly; reachable through {} relay reservation(s)",
                    info.relay_reservations.len()
                ),
                (false, false) => {
                    "not reachable: no confirmed public address and no relay reservation".into()
                }
            },
            "forward the listen port on the router, pass --external-addr if this host is \
             public, or add a relay with `p2pd relays add <multiaddr>`",
        ));

        let role = if info.dht_role == crate::network::DhtRole::Server {
            "server: answers DHT queries".to_string()
        } else {
            match info.dht_client_reason {
                Some(reason) => {
                    format!("client ({})", crate::network::describe_cannot_serve(reason))
                }
                None => "client".to_string(),
            }
        };
        checks.push(check(
            "dht",
            None,
            info.routing_table_peers > 0,
            format!(
                "{} peer(s) in the routing table, {} DHT server(s) connected; {role}",
                info.routing_table_peers,
                servers.len()
            ),
            "no DHT peers: nothing can be found or announced; check the --bootstrap \
             addresses (`p2pd config show`) and that this host can reach them",
        ));

        let local = self.net.local_peer_id();
        // Records carry only confirmed addresses; a server leaves out records without
        // any (libp2p-kad finds none for a peer outside its routing table).
        let addressed = !info.external_addrs.is_empty();
        let unchecked = announced.len().saturating_sub(MAX_FILES_CHECKED);
        let probes: Vec<RecordProbe> =
            futures::stream::iter(announced.into_iter().take(MAX_FILES_CHECKED))
                .map(|a| {
                    let servers = &servers;
                    async move {
                        let key = ProviderKey::File(a.cid).record_key();
                        let mut probe = RecordProbe {
                            cid: a.cid.to_string(),
                            asked: None,
                            found: false,
                            providers: 0,
                            error: None,
                        };
                        let Some((server, addrs)) = closest_to(servers, &key) else {
                            probe.error = Some("no connected DHT server to ask".into());
                            return (probe, a.peers);
                        };
                        probe.asked = Some(server.to_string());
                        match ask_providers(*server, addrs.clone(), &key).await {
                            Ok(providers) => {
                                probe.found = providers.contains(&local);
                                probe.providers = providers.len();
                            }
                            Err(e) => probe.error = Some(e.to_string()),
                        }
                        (probe, a.peers)
                    }
                })
                .buffered(PARALLEL_PROBES)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .map(|(probe, reached)| {
                    checks.push(record_check(&probe, reached, addressed));
                    probe
                })
                .collect();

        Ok(DoctorReport {
            healthy: checks.iter().all(|c| c.ok),
            checks,
            nat_status: match info.nat_status {
                NatStatus::Public => "public",
                NatStatus::Private => "private",
            }
            .into(),
            external_addrs: info
                .external_addrs
                .iter()
                .map(ToString::to_string)
                .collect(),
            relay_reservations: (info.relay_reservations.iter())
                .map(ToString::to_string)
                .collect(),
            routing_table_peers: info.routing_table_peers,
            dht_server: info.dht_role == crate::network::DhtRole::Server,
            dht_servers_connected: servers.len(),
            records: probes,
            records_unchecked: unchecked,
        })
    }
}

/// The check of one file's record. `reached`: how many DHT servers its last
/// announcement was sent to.
fn record_check(probe: &RecordProbe, reached: Option<u32>, addressed: bool) -> DoctorCheck {
    let subject = Some(probe.cid.clone());
    let asked = probe.asked.as_deref().unwrap_or("-");
    let (summary, advice) = match (&probe.error, probe.found) {
        (None, true) => (
            format!("found: DHT server {asked} names this node as a provider"),
            "",
        ),
        (Some(error), _) => (
            format!("cannot check: {error}"),
            "see the dht check: a record can be checked (and found) only through a \
             connected DHT server",
        ),
        (None, false) if !addressed => (
            format!(
                "not found: DHT server {asked} does not name this node; this node has no \
                 confirmed address yet (its records carry its listen addresses until one \
                 is)"
            ),
            "see the reachability check: once an address is confirmed the records are \
             announced again with it",
        ),
        (None, false) if reached.unwrap_or(0) == 0 => (
            format!(
                "not found: DHT server {asked} does not name this node; its last \
                 announcement reached no DHT server"
            ),
            "it is announced again with growing pauses; wait, or see the dht check",
        ),
        (None, false) => (
            format!(
                "not found: DHT server {asked} does not name this node (the record was \
                 sent to {} server(s))",
                reached.unwrap_or(0)
            ),
            "the server did not keep the record (its store may be full, or it restarted); \
             it is announced again at the next round, or at once when this daemon restarts",
        ),
    };
    check(
        "provider-record",
        subject,
        probe.error.is_none() && probe.found,
        summary,
        advice,
    )
}
