//! Browsing one peer's shares: [`Catalog::browse`] pages through its listed entries
//! over the catalog protocol, by its peer id (reached through the addresses the node
//! knows) or by an address (dialed first when it names no peer id).
//!
//! Every entry must be signed by that peer; one that is not is dropped and costs the
//! peer reputation. A `RateLimited` answer is waited out (within the deadline) and the
//! page asked again. At most [`MAX_PAGES`] pages are read, so a peer claiming millions
//! of entries cannot keep the node busy; the answer says whether it is complete.

use std::str::FromStr;
use std::time::Duration;

use dht_proto::catalog::{CatalogRequest, CatalogResponse, PAGE_SIZE};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::time::Instant;

use super::results::SearchHit;
use super::Catalog;

/// Most pages one browse reads (50 entries each).
pub const MAX_PAGES: u32 = 200;
/// Longest a browse may be asked to run.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// Whose shares to browse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowseTarget {
    /// A peer, reached at the addresses the node knows for it.
    Peer(PeerId),
    /// An address, with or without `/p2p/<peer id>` at its end.
    Address(Multiaddr),
}

impl FromStr for BrowseTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.starts_with('/') {
            return text
                .parse()
                .map(BrowseTarget::Address)
                .map_err(|e| format!("invalid address {text:?}: {e}"));
        }
        text.parse()
            .map(BrowseTarget::Peer)
            .map_err(|_| format!("{text:?} is neither a peer id nor an address (/ip4/…)"))
    }
}

/// One peer's listed files.
#[derive(Debug, Clone)]
pub struct Browsed {
    /// The peer.
    pub peer: PeerId,
    /// Its files, newest first, each with that peer as its one publisher.
    pub files: Vec<SearchHit>,
    /// How many entries it says it lists.
    pub total: u32,
    /// Whether every page was read (false past [`MAX_PAGES`]).
    pub complete: bool,
    /// Entries dropped for a bad signature or another signer.
    pub rejected_entries: usize,
}

/// Why a browse failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrowseError {
    /// The owner turned browsing off (their files can still be found by search).
    #[error("{0} does not allow browsing its files (search still finds them)")]
    Disabled(PeerId),
    /// The peer could not be reached or did not answer.
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, String),
    /// The peer answered with an error or outside the protocol.
    #[error("{0} refused: {1}")]
    Refused(PeerId, String),
    /// The deadline passed.
    #[error("{0} did not answer in time")]
    TimedOut(PeerId),
}

impl Catalog {
    /// Reads `target`'s listed files, giving up at `timeout`.
    pub async fn browse(
        &self,
        target: BrowseTarget,
        timeout: Duration,
    ) -> Result<Browsed, BrowseError> {
        let deadline = Instant::now() + timeout.min(MAX_TIMEOUT);
        let net = &self.inner.net;
        let (peer, addrs) = match target {
            BrowseTarget::Peer(peer) => (peer, vec![]),
            BrowseTarget::Address(addr) => match addr.iter().last() {
                Some(Protocol::P2p(peer)) => (peer, vec![addr]),
                _ => {
                    let dialed = tokio::time::timeout_at(deadline, net.dial(addr.clone()))
                        .await
                        .map_err(|_| {
                            BrowseError::Unreachable(addr.to_string(), "timed out".into())
                        })?
                        .map_err(|e| BrowseError::Unreachable(addr.to_string(), e.to_string()))?;
                    (dialed, vec![addr])
                }
            },
        };
        let local = net.local_peer_id() == peer;
        let mut browsed = Browsed {
            peer,
            files: Vec::new(),
            total: 0,
            complete: false,
            rejected_entries: 0,
        };
        let mut page = 0;
        while page < MAX_PAGES {
            let request = CatalogRequest::Browse { page };
            let answer = if local {
                // Our own catalog, as peers see it.
                Ok(self.answer(&request))
            } else {
                tokio::time::timeout_at(deadline, net.catalog_request(peer, request, addrs.clone()))
                    .await
                    .map_err(|_| BrowseError::TimedOut(peer))?
            };
            let response =
                answer.map_err(|e| BrowseError::Unreachable(peer.to_string(), e.to_string()))?;
            match response {
                CatalogResponse::Page {
                    entries,
                    page: answered,
                    total,
                } if answered == page => {
                    let received = entries.len();
                    let checked = CatalogResponse::Page {
                        entries,
                        page,
                        total,
                    }
                    .into_checked_entries(&peer.to_bytes(), None);
                    if checked.rejected > 0 {
                        browsed.rejected_entries += checked.rejected;
                        self.inner.transfers.note_forged_entries(
                            peer,
                            u32::try_from(checked.rejected).unwrap_or(u32::MAX),
                        );
                    }
                    browsed
                        .files
                        .extend(checked.entries.iter().map(|e| SearchHit {
                            cid: *e.cid(),
                            name: e.name().to_string(),
                            size: e.size(),
                            media_type: e.media_type().to_string(),
                            added: e.added(),
                            publishers: vec![peer],
                            name_match: 1.0,
                        }));
                    browsed.total = total;
                    let seen = u64::from(page) * PAGE_SIZE as u64 + received as u64;
                    if received < PAGE_SIZE || seen >= u64::from(total) {
                        browsed.complete = true;
                        break;
                    }
                    page += 1;
                }
                CatalogResponse::BrowseDisabled => return Err(BrowseError::Disabled(peer)),
                CatalogResponse::RateLimited { retry_after_secs } => {
                    let wait = Duration::from_secs(u64::from(retry_after_secs.clamp(1, 60)));
                    if Instant::now() + wait >= deadline {
                        return Err(BrowseError::TimedOut(peer));
                    }
                    tokio::time::sleep(wait).await;
                }
                CatalogResponse::Error { message } => {
                    return Err(BrowseError::Refused(peer, message));
                }
                other => {
                    return Err(BrowseError::Refused(
                        peer,
                        format!("answered a browse with {other:?}"),
                    ));
                }
            }
        }
        // Pages may shift while they are read (a file added meanwhile): one file, once.
        let mut seen = std::collections::HashSet::new();
        browsed.files.retain(|f| seen.insert(f.cid));
        Ok(browsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_peer_ids_or_addresses() {
        let peer = PeerId::random();
        assert_eq!(
            peer.to_string().parse::<BrowseTarget>(),
            Ok(BrowseTarget::Peer(peer))
        );
        let addr = format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}");
        assert_eq!(
            addr.parse::<BrowseTarget>(),
            Ok(BrowseTarget::Address(addr.parse().unwrap()))
        );
        assert!(matches!(
            "/ip4/127.0.0.1/tcp/4001".parse::<BrowseTarget>(),
            Ok(BrowseTarget::Address(_))
        ));
        assert!("not-a-peer".parse::<BrowseTarget>().is_err());
        assert!("12D3KooW0OIl".parse::<BrowseTarget>().is_err());
        assert!("/ip4/999.0.0.1/tcp/1".parse::<BrowseTarget>().is_err());
        assert!("".parse::<BrowseTarget>().is_err());
    }
}
