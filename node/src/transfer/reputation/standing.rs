//! Standing, both ways: what this node tells a peer that asks how it is seen
//! ([`standing_of`], from the ledger), and what the peers this node deals with say of
//! it ([`Transfers::standing_at_peers`], `p2pd reputation --mine`). The answers are only
//! each peer's claim; they change nothing here.

use std::time::Instant;

use dht_proto::standing::{Ban, Standing, StandingRequest, StandingResponse, MAX_BAN_REASON_LEN};
use futures::StreamExt;
use libp2p::PeerId;

use super::{now_unix, PeerRecord};
use crate::network::standing::{ask, AskError};
use crate::transfer::{lock, Transfers};

/// Peers asked at once.
pub const ASK_CONCURRENCY: usize = 16;
/// Peers asked at most (the connected ones, best known first).
pub const MAX_ASKED: usize = 128;

/// What this node keeps about a peer, as the standing protocol tells it.
pub fn standing_of(record: &PeerRecord, now: u64) -> Standing {
    let ban = record.is_banned_at(now).then(|| Ban {
        reason: clip(record.ban_reason.as_deref().unwrap_or("misbehaved")),
        until: record.banned_until.unwrap_or(now),
    });
    let last_seen = record.last_seen.max(record.first_seen);
    Standing {
        sent_to_you: record.sent,
        received_from_you: record.received,
        corrupt_chunks: record.corrupt_chunks,
        timeouts: record.failures,
        // The protocol's refusals are requests refused for any reason.
        refusals: record.refusals.saturating_add(record.chokes),
        score_hundredths: Standing::hundredths(record.score_at(now)),
        ban,
        first_seen: (record.first_seen > 0).then_some(record.first_seen),
        last_seen: (last_seen > 0).then_some(last_seen),
    }
}

/// A ban reason within the protocol's limit, cut at a character boundary.
fn clip(reason: &str) -> String {
    let mut end = reason.len().min(MAX_BAN_REASON_LEN);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].chars().filter(|c| !c.is_control()).collect()
}

/// One peer's answer to "how do you see me?".
#[derive(Debug, Clone, PartialEq)]
pub struct StandingAt {
    /// The peer asked.
    pub peer: PeerId,
    /// What it said, or why it said nothing.
    pub answer: Result<StandingResponse, AskError>,
    /// How long it took to answer.
    pub took: std::time::Duration,
}

impl Transfers {
    /// The answer to `peer`'s question, from the ledger.
    pub fn answer_standing(&self, peer: PeerId, request: StandingRequest) -> StandingResponse {
        let nonce = request.nonce;
        match lock(&self.inner.reputation).get(&peer) {
            Some(record) => StandingResponse::Known {
                nonce,
                standing: standing_of(record, now_unix()),
            },
            None => StandingResponse::Unknown { nonce },
        }
    }

    /// Asks every connected peer (at most [`MAX_ASKED`], [`ASK_CONCURRENCY`] at once,
    /// each within the protocol's timeout) how it sees this node. Peers in the ledger
    /// come first, best known first; answers are in the order asked.
    pub async fn standing_at_peers(&self) -> Vec<StandingAt> {
        let mut peers = self.net().connected_peers().await;
        {
            let table = lock(&self.inner.reputation);
            let dealt = |p: &PeerId| table.get(p).map_or(0, |r| r.sent + r.received);
            peers.sort_by(|a, b| dealt(b).cmp(&dealt(a)).then(a.cmp(b)));
        }
        peers.truncate(MAX_ASKED);
        let net = self.net().clone();
        futures::stream::iter(peers)
            .map(|peer| {
                let net = net.clone();
                async move {
                    let start = Instant::now();
                    let answer = ask(&net, peer).await;
                    StandingAt {
                        peer,
                        answer,
                        took: start.elapsed(),
                    }
                }
            })
            .buffered(ASK_CONCURRENCY)
            .collect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_is_told_as_the_protocol_names_it() {
        let now = 1_700_000_000;
        let record = PeerRecord {
            received: 3 << 20,
            sent: 10 << 20,
            corrupt_chunks: 1,
            failures: 2,
            refusals: 1,
            chokes: 4,
            banned_until: Some(now + 60),
            ban_reason: Some("sent a corrupt chunk".into()),
            first_seen: now - 100,
            last_seen: now,
            ..PeerRecord::default()
        };
        let standing = standing_of(&record, now);
        assert_eq!(standing.sent_to_you, 10 << 20);
        assert_eq!(standing.received_from_you, 3 << 20);
        assert_eq!(standing.timeouts, 2);
        assert_eq!(standing.refusals, 5);
        assert_eq!(standing.score_hundredths, -10_000);
        assert_eq!(
            standing.ban,
            Some(Ban {
                reason: "sent a corrupt chunk".into(),
                until: now + 60
            })
        );
        // Once the ban is over, it is not told, and the score is the counters'.
        let later = standing_of(&record, now + 60);
        assert_eq!(later.ban, None);
        assert!(later.score_hundredths > -10_000);
        // Every answer passes the asker's checks, even with odd times or reasons.
        let odd = PeerRecord {
            first_seen: now,
            last_seen: 0,
            ban_reason: Some(format!("{}\u{7}", "é".repeat(MAX_BAN_REASON_LEN))),
            ..record
        };
        let answer = StandingResponse::Known {
            nonce: None,
            standing: standing_of(&odd, now),
        };
        assert_eq!(StandingResponse::decode(&answer.encode()).unwrap(), answer);
    }
}
