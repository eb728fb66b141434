//! The relays operations (`GET/POST /api/relays`, `DELETE /api/relays/{peer}`) and
//! their wire types: the network's [`RelaysReport`](crate::network::RelaysReport) as
//! strings, seconds and Unix times.

use std::time::{SystemTime, UNIX_EPOCH};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Api, ApiError};
use crate::network::{
    self, describe_cannot_serve, is_relayed, split_peer_addr, RelayChoiceError, RelayOrigin,
    RelayServer, ReservationState,
};

/// One relay this node holds, seeks or routes through.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RelayView {
    /// The relay's peer id.
    pub peer_id: String,
    /// A direct address of it, if known.
    pub addr: Option<String>,
    /// `configured` (`--relay`), `found` (a peer that offers relaying), `added` (by the
    /// owner: held even while reachable directly) or `other` (only circuits went through
    /// it).
    pub origin: String,
    /// Our reservation: `idle` (none wanted now), `requested`, `accepted` or `failed`.
    pub reservation: String,
    /// Why the last request failed or the reservation ended.
    pub error: Option<String>,
    /// When the current reservation was accepted (seconds since the Unix epoch). libp2p
    /// renews it before it expires.
    pub accepted_unix: Option<u64>,
    /// Renewals of the current reservation.
    pub renewals: u32,
    /// When the current reservation expires unless renewed (seconds since the Unix
    /// epoch), as the relay named it in the answer to this node's own `RESERVE`, sent
    /// after each acceptance and renewal (a refresh on the same connection). Absent
    /// while no reservation is held, or until it is read.
    pub expires_unix: Option<u64>,
    /// Why the expiry could not be read, when the last attempt failed.
    pub expiry_error: Option<String>,
    /// Longest life of a circuit through it, as the relay announced (seconds).
    pub circuit_limit_secs: Option<u64>,
    /// Most bytes through a circuit, as the relay announced.
    pub circuit_limit_bytes: Option<u64>,
    /// Our `/p2p-circuit` addresses on it.
    pub circuit_addrs: Vec<String>,
    /// Connections through it now.
    pub circuits_open: usize,
    /// Connections through it since the daemon started.
    pub circuits_total: u64,
    /// Bytes this node's streams through it sent since the daemon started.
    pub bytes_sent: u64,
    /// Bytes this node's streams through it received since the daemon started.
    pub bytes_received: u64,
}

/// A circuit a relay node carries.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CircuitView {
    /// The peer that opened it.
    pub src: String,
    /// The peer it reaches.
    pub dst: String,
    /// Since when (seconds since the Unix epoch).
    pub since_unix: u64,
}

/// A reservation this node holds, as a relay, for a peer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HeldReservationView {
    /// The peer it is for.
    pub peer_id: String,
    /// When it was last accepted, taken or renewed (seconds since the Unix epoch).
    pub accepted_unix: u64,
    /// When it expires unless renewed: accepted plus `reservation_secs`.
    pub expires_unix: u64,
}

/// What this node carries as a relay, against its limits.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RelayServerView {
    /// `serving`, or `disabled` (asked for, see the reason).
    pub state: String,
    /// Why it is disabled.
    pub reason: Option<String>,
    /// Peers holding a reservation now.
    pub reservations: usize,
    /// Most reservations at once (`--relay-max-reservations`).
    pub max_reservations: usize,
    /// How long a reservation lasts unless renewed (seconds).
    pub reservation_secs: u64,
    /// The reservations held now, sorted by peer id.
    pub held: Vec<HeldReservationView>,
    /// Circuits open now.
    pub circuits_open: usize,
    /// Most circuits at once (`--relay-max-circuits`).
    pub max_circuits: usize,
    /// Longest life of one circuit (seconds).
    pub max_circuit_secs: u64,
    /// Most bytes through one circuit (0: no limit).
    pub max_circuit_bytes: u64,
    /// The open circuits.
    pub circuits: Vec<CircuitView>,
    /// Reservation requests accepted (renewals included) since the daemon started.
    pub reservations_accepted: u64,
    /// Of those, renewals: refreshes on a connection that already held a reservation.
    pub reservations_renewed: u64,
    /// Reservation requests refused.
    pub reservations_denied: u64,
    /// Circuits accepted since the daemon started.
    pub circuits_accepted: u64,
    /// Circuit requests refused.
    pub circuits_denied: u64,
}

/// `GET /api/relays`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RelaysView {
    /// Relays in use, sorted by peer id.
    pub relays: Vec<RelayView>,
    /// This node as a relay (absent when it was not asked to relay).
    pub server: Option<RelayServerView>,
}

/// `POST /api/relays`: a relay to hold a reservation on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddRelay {
    /// Its direct address, ending in `/p2p/<peer id>`.
    pub addr: String,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn choice_error(e: RelayChoiceError) -> ApiError {
    match e {
        RelayChoiceError::TooMany => ApiError::conflict(e.to_string()),
        RelayChoiceError::Ourselves => ApiError::bad_request(e.to_string()),
        RelayChoiceError::Unknown => ApiError::not_found(e.to_string()),
        RelayChoiceError::Stopped => ApiError::internal(e.to_string()),
    }
}

impl From<network::RelayUse> for RelayView {
    fn from(r: network::RelayUse) -> Self {
        RelayView {
            peer_id: r.peer.to_string(),
            addr: r.addr.map(|a| a.to_string()),
            origin: match r.origin {
                RelayOrigin::Configured => "configured",
                RelayOrigin::Found => "found",
                RelayOrigin::Added => "added",
                RelayOrigin::Other => "other",
            }
            .into(),
            reservation: match r.reservation {
                ReservationState::Idle => "idle",
                ReservationState::Requested => "requested",
                ReservationState::Accepted => "accepted",
                ReservationState::Failed => "failed",
            }
            .into(),
            error: r.error,
            accepted_unix: r.accepted_at.map(unix),
            renewals: r.renewals,
            expires_unix: r.expires_at.map(unix),
            expiry_error: r.expiry_error,
            circuit_limit_secs: r
                .circuit_limit
                .and_then(|l| l.duration)
                .map(|d| d.as_secs()),
            circuit_limit_bytes: r.circuit_limit.and_then(|l| l.bytes),
            circuit_addrs: r.circuit_addrs.iter().map(ToString::to_string).collect(),
            circuits_open: r.circuits_open,
            circuits_total: r.circuits_total,
            bytes_sent: r.bytes_sent,
            bytes_received: r.bytes_received,
        }
    }
}

impl From<network::RelayLoad> for RelayServerView {
    fn from(l: network::RelayLoad) -> Self {
        RelayServerView {
            state: match l.state {
                RelayServer::Serving => "serving",
                RelayServer::Disabled(_) | RelayServer::Off => "disabled",
            }
            .into(),
            reason: match l.state {
                RelayServer::Disabled(reason) => Some(format!(
                    "{}; pass --external-addr",
                    describe_cannot_serve(reason)
                )),
                _ => None,
            },
            reservations: l.reservations,
            max_reservations: l.max_reservations,
            reservation_secs: l.reservation_duration.as_secs(),
            held: (l.held.into_iter())
                .map(|h| HeldReservationView {
                    peer_id: h.peer.to_string(),
                    accepted_unix: unix(h.accepted_at),
                    expires_unix: unix(h.expires_at),
                })
                .collect(),
            circuits_open: l.circuits.len(),
            max_circuits: l.max_circuits,
            max_circuit_secs: l.max_circuit_duration.as_secs(),
            max_circuit_bytes: l.max_circuit_bytes,
            circuits: (l.circuits.into_iter())
                .map(|c| CircuitView {
                    src: c.src.to_string(),
                    dst: c.dst.to_string(),
                    since_unix: unix(c.since),
                })
                .collect(),
            reservations_accepted: l.reservations_accepted,
            reservations_renewed: l.reservations_renewed,
            reservations_denied: l.reservations_denied,
            circuits_accepted: l.circuits_accepted,
            circuits_denied: l.circuits_denied,
        }
    }
}

/// A relay address from a user: a direct address ending in `/p2p/<peer id>`.
pub fn parse_relay_addr(text: &str) -> Result<(PeerId, Multiaddr), ApiError> {
    let addr: Multiaddr = text
        .trim()
        .parse()
        .map_err(|e| ApiError::bad_request(format!("not a multiaddr: {text:?}: {e}")))?;
    if is_relayed(&addr) {
        return Err(ApiError::bad_request(
            "a relay address must reach the relay directly (no /p2p-circuit)",
        ));
    }
    match split_peer_addr(&addr) {
        // `/p2p/<a>/p2p/<b>`: no dial can use it, and the reservation would fail with
        // no reason given.
        Some((_, rest)) if rest.iter().any(|p| matches!(p, Protocol::P2p(_))) => Err(
            ApiError::bad_request("a relay address has one /p2p/<peer id>, at its end"),
        ),
        Some((peer, rest)) if !rest.is_empty() => Ok((peer, rest)),
        _ => Err(ApiError::bad_request(
            "a relay address must be an address ending in /p2p/<peer id>",
        )),
    }
}

impl Api {
    /// The relays in use and, on a relay node, what it carries.
    pub async fn relays(&self) -> Result<RelaysView, ApiError> {
        let report = self
            .net
            .relays()
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(RelaysView {
            relays: report.relays.into_iter().map(RelayView::from).collect(),
            server: report.server.map(RelayServerView::from),
        })
    }

    /// Holds a reservation on the relay at `addr` from now on.
    pub async fn add_relay(&self, request: AddRelay) -> Result<RelaysView, ApiError> {
        let (peer, addr) = parse_relay_addr(&request.addr)?;
        self.net.add_relay(peer, addr).await.map_err(choice_error)?;
        self.relays().await
    }

    /// Gives back the reservation on relay `peer` and stops picking it.
    pub async fn drop_relay(&self, peer: &str) -> Result<RelaysView, ApiError> {
        let peer: PeerId = peer
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_request(format!("not a peer id: {peer:?}")))?;
        self.net.drop_relay(peer).await.map_err(choice_error)?;
        self.relays().await
    }
}
