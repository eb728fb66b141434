//! This node's standing at the peers it deals with (`GET /api/reputation/mine`,
//! `p2pd reputation --mine`): each connected peer is asked "how do you see me?" and its
//! answer, or why there is none, becomes a [`StandingAtPeer`].

use dht_proto::standing::StandingResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Api;
use crate::transfer::reputation::standing::StandingAt;

/// What a peer said of this node.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StandingAnswer {
    /// It keeps counters about this node (below).
    Known,
    /// It keeps nothing about this node.
    Unknown,
    /// It was asked too often; see `retry_after_secs`.
    RateLimited,
    /// It did not answer, or not in the protocol; see `error`.
    NoAnswer,
}

/// One peer's view of this node, as that peer claims it. Counters are from this node's
/// side: `sent_to_me` are bytes the peer sent us.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct StandingAtPeer {
    /// The peer asked.
    pub peer_id: String,
    /// What kind of answer it gave.
    pub answer: StandingAnswer,
    /// Its score for this node, -100 to 100 (`known` only).
    pub score: Option<f64>,
    /// Bytes it says it sent this node.
    pub sent_to_me: u64,
    /// Verified bytes it says it received from this node.
    pub received_from_me: u64,
    /// Chunks from this node that failed its verification.
    pub corrupt_chunks: u32,
    /// Its requests to this node that timed out.
    pub timeouts: u32,
    /// Its requests this node refused (choked, or did not have).
    pub refusals: u32,
    /// Whether it bans this node now.
    pub banned: bool,
    /// Why it bans this node.
    pub ban_reason: Option<String>,
    /// Until when (Unix seconds).
    pub banned_until: Option<u64>,
    /// When it first dealt with this node (Unix seconds), if it says.
    pub first_seen: Option<u64>,
    /// When it last did.
    pub last_seen: Option<u64>,
    /// Seconds to wait before asking again (`rate_limited` only).
    pub retry_after_secs: Option<u32>,
    /// Why there is no answer (`no_answer` only).
    pub error: Option<String>,
    /// Milliseconds the answer took.
    pub took_ms: u64,
}

impl From<&StandingAt> for StandingAtPeer {
    fn from(at: &StandingAt) -> Self {
        let mut row = StandingAtPeer {
            peer_id: at.peer.to_string(),
            answer: StandingAnswer::NoAnswer,
            score: None,
            sent_to_me: 0,
            received_from_me: 0,
            corrupt_chunks: 0,
            timeouts: 0,
            refusals: 0,
            banned: false,
            ban_reason: None,
            banned_until: None,
            first_seen: None,
            last_seen: None,
            retry_after_secs: None,
            error: None,
            took_ms: u64::try_from(at.took.as_millis()).unwrap_or(u64::MAX),
        };
        match &at.answer {
            Ok(StandingResponse::Known { standing: s, .. }) => {
                row.answer = StandingAnswer::Known;
                row.score = Some(s.score());
                row.sent_to_me = s.sent_to_you;
                row.received_from_me = s.received_from_you;
                row.corrupt_chunks = s.corrupt_chunks;
                row.timeouts = s.timeouts;
                row.refusals = s.refusals;
                row.banned = s.ban.is_some();
                row.ban_reason = s.ban.as_ref().map(|b| b.reason.clone());
                row.banned_until = s.ban.as_ref().map(|b| b.until);
                row.first_seen = s.first_seen;
                row.last_seen = s.last_seen;
            }
            Ok(StandingResponse::Unknown { .. }) => row.answer = StandingAnswer::Unknown,
            Ok(StandingResponse::RateLimited { retry_after_secs }) => {
                row.answer = StandingAnswer::RateLimited;
                row.retry_after_secs = Some(*retry_after_secs);
            }
            Err(e) => row.error = Some(e.to_string()),
        }
        row
    }
}

impl Api {
    /// Asks the connected peers how they see this node.
    pub async fn standing_at_peers(&self) -> Vec<StandingAtPeer> {
        self.transfers
            .standing_at_peers()
            .await
            .iter()
            .map(StandingAtPeer::from)
            .collect()
    }
}
