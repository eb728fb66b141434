//! The files and keywords we provide and how announcing each went: every provider
//! announcement (`ADD_PROVIDER` round) is followed to its end, and the number of DHT
//! servers the record was sent to is kept per key with the time. A round that reached
//! nobody is a warning and is tried again with growing pauses, so a node that had no
//! peers when a file was added announces it once it has some. Keyword keys (one per
//! distinct word of the catalog's listed names) go through exactly the same rounds as
//! file keys.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use dht_proto::Cid;
use libp2p::kad;

use super::actor::NetworkActor;
use super::info::{Announcement, KeywordAnnouncements};

/// Pause before the first retry of an announcement that reached no peer; it doubles
/// with each further failure up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(30 * 60);

/// The provider key of a file: the multihash bytes of its CID (what an IPFS node would
/// look up for the same CID).
pub(super) fn provider_key(cid: &Cid) -> kad::RecordKey {
    kad::RecordKey::new(&cid.multihash_bytes())
}

/// What a DHT provider record says we have.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProviderKey {
    /// A file (or directory), by CID.
    File(Cid),
    /// Listed files whose names hold this keyword (as `dht_proto::keyword::keywords`
    /// makes them); the key is `dht_proto::keyword::keyword_key`.
    Keyword(String),
}

impl ProviderKey {
    /// The Kademlia key of the record.
    pub fn record_key(&self) -> kad::RecordKey {
        match self {
            ProviderKey::File(cid) => provider_key(cid),
            ProviderKey::Keyword(word) => {
                kad::RecordKey::new(&dht_proto::keyword::keyword_key(word))
            }
        }
    }
}

impl std::fmt::Display for ProviderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderKey::File(cid) => write!(f, "file {cid}"),
            ProviderKey::Keyword(word) => write!(f, "keyword {word:?}"),
        }
    }
}

/// How many peers an announcement's `ADD_PROVIDER` messages went to.
///
/// libp2p-kad 0.49 reports one [`kad::QueryStats`] for the whole announcement: the
/// lookup of the closest peers merged with the sending phase. The sending phase sends
/// to the peers that answered the lookup, at most K of them, and counts each as one
/// request and one success the moment it is sent (`ADD_PROVIDER` has no answer). With
/// `s` lookup successes the merged count is `s + min(s, K)`, so the peers reached are
/// `min(successes / 2, K)`. A timed-out announcement never reached its sending phase.
pub(super) fn peers_reached(stats: &kad::QueryStats, completed: bool) -> u32 {
    if !completed {
        return 0;
    }
    (stats.num_successes() / 2).min(kad::K_VALUE.get() as u32)
}

/// What we know of one provided key's announcements.
#[derive(Debug, Clone)]
pub(super) struct FileAnnouncements {
    pub(super) subject: ProviderKey,
    /// When the last round ended, and how many peers it reached.
    pub(super) last: Option<(SystemTime, u32)>,
    /// A round runs now.
    pub(super) running: bool,
    /// Rounds in a row that reached nobody.
    pub(super) failures: u32,
    /// When to try again after such a round.
    pub(super) retry_at: Option<Instant>,
}

/// Every file and keyword we provide, by provider key.
#[derive(Default)]
pub(super) struct Provided {
    pub(super) files: HashMap<kad::RecordKey, FileAnnouncements>,
    /// Announcements started since the daemon started.
    pub(super) started: u64,
}

impl Provided {
    /// The state of every provided file, sorted by CID.
    pub(super) fn snapshot(&self) -> Vec<Announcement> {
        let now = Instant::now();
        let mut out: Vec<Announcement> = self
            .files
            .values()
            .filter_map(|f| {
                let ProviderKey::File(cid) = f.subject else {
                    return None;
                };
                Some(Announcement {
                    cid,
                    last_announced: f.last.map(|(at, _)| at),
                    peers: f.last.map(|(_, n)| n),
                    announcing: f.running,
                    retry_in: f.retry_at.map(|at| at.saturating_duration_since(now)),
                })
            })
            .collect();
        out.sort_by_key(|a| a.cid.to_string());
        out
    }

    /// How the keyword keys' announcements stand.
    pub(super) fn keywords(&self) -> KeywordAnnouncements {
        let mut summary = KeywordAnnouncements::default();
        for f in self.files.values() {
            if !matches!(f.subject, ProviderKey::Keyword(_)) {
                continue;
            }
            summary.provided += 1;
            match f.last {
                Some((_, 0)) => summary.unannounced += 1,
                Some(_) => summary.announced += 1,
                None => {}
            }
        }
        summary
    }

    /// Provided files (not keywords).
    pub(super) fn file_count(&self) -> usize {
        self.files
            .values()
            .filter(|f| matches!(f.subject, ProviderKey::File(_)))
            .count()
    }

    /// Files whose last finished round reached no peer.
    pub(super) fn unannounced(&self) -> usize {
        self.files
            .values()
            .filter(|f| matches!(f.subject, ProviderKey::File(_)))
            .filter(|f| matches!(f.last, Some((_, 0))))
            .count()
    }

    /// Keys due for a retry.
    fn due(&self, now: Instant) -> Vec<ProviderKey> {
        self.files
            .values()
            .filter(|f| !f.running && f.retry_at.is_some_and(|at| at <= now))
            .map(|f| f.subject.clone())
            .collect()
    }
}

impl NetworkActor {
    /// Starts an announcement round for `subject` (which must be provided).
    pub(super) fn announce(&mut self, subject: &ProviderKey) {
        let key = subject.record_key();
        let Some(file) = self.dht.provided.files.get_mut(&key) else {
            return;
        };
        file.running = true;
        file.retry_at = None;
        self.dht.provided.started += 1;
        match self.swarm.behaviour_mut().kad.start_providing(key.clone()) {
            Ok(_) => tracing::debug!(%subject, "provider announcement started"),
            Err(e) => {
                // The record store is full: nothing to send.
                tracing::warn!(%subject, "cannot announce provider record: {e}");
                self.announcement_done(key, 0);
            }
        }
    }

    pub(super) fn retry_failed_announcements(&mut self, now: Instant) {
        for subject in self.dht.provided.due(now) {
            self.announce(&subject);
        }
    }

    /// Records the end of a round (ours or Kademlia's periodic republication).
    pub(super) fn announcement_done(&mut self, key: kad::RecordKey, peers: u32) {
        let Some(file) = self.dht.provided.files.get_mut(&key) else {
            // Stopped providing meanwhile.
            return;
        };
        file.running = false;
        file.last = Some((SystemTime::now(), peers));
        if peers > 0 {
            file.failures = 0;
            file.retry_at = None;
            tracing::info!(subject = %file.subject, peers, "provider record sent to DHT servers");
        } else {
            let pause = FIRST_RETRY
                .saturating_mul(1 << file.failures.min(16))
                .min(MAX_RETRY);
            file.failures += 1;
            file.retry_at = Some(Instant::now() + pause);
            tracing::warn!(
                subject = %file.subject,
                retry_in_secs = pause.as_secs(),
                "provider record reached no DHT server: the file cannot be found yet"
            );
        }
    }
}
