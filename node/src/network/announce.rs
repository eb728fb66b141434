//! The keys we provide (files and keywords alike) and how announcing each went: for
//! every key, when its last announcement round ended and how many DHT servers its
//! `ADD_PROVIDER` was written to, whether a round runs, and when the next one is due.
//! A round that reached nobody is a warning and is tried again with growing pauses, so
//! a node that had no peers when a file was added announces it once it has some. The
//! rounds themselves are run by the batched reprovider (`reprovide/`).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use dht_proto::Cid;
use libp2p::kad;

use super::info::{Announcement, KeywordAnnouncements};
use super::keyspace::Point;

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

/// A round in progress: `ADD_PROVIDER`s still being written, and to how many peers one
/// was written so far.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Round {
    pub(super) outstanding: u32,
    pub(super) reached: u32,
}

/// One provided key and how announcing it went.
#[derive(Debug, Clone)]
pub(super) struct ProvidedKey {
    pub(super) subject: ProviderKey,
    pub(super) key: kad::RecordKey,
    /// When the last round ended, and how many peers it reached.
    pub(super) last: Option<(SystemTime, u32)>,
    /// Rounds in a row that reached nobody.
    pub(super) failures: u32,
    /// When the next round is due (the key is then in the reprovider's timetable), or
    /// `None` while a round runs.
    pub(super) next_at: Option<Instant>,
    /// The round running, once its target peers are chosen.
    pub(super) round: Option<Round>,
    /// Announce again as soon as the running round ends (our addresses changed).
    pub(super) again: bool,
}

impl ProvidedKey {
    pub(super) fn new(subject: ProviderKey, now: Instant) -> Self {
        ProvidedKey {
            key: subject.record_key(),
            subject,
            last: None,
            failures: 0,
            next_at: Some(now),
            round: None,
            again: false,
        }
    }

    /// Records the end of a round that reached `peers`, and returns when the next one
    /// is due after a failure (`None`: it succeeded; the timetable says when).
    pub(super) fn finish_round(&mut self, peers: u32, now: Instant) -> Option<Instant> {
        self.round = None;
        self.last = Some((SystemTime::now(), peers));
        if peers > 0 {
            self.failures = 0;
            return None;
        }
        let pause = FIRST_RETRY
            .saturating_mul(1 << self.failures.min(16))
            .min(MAX_RETRY);
        self.failures += 1;
        Some(now + pause)
    }
}

/// Every key we provide, by where it lies in the keyspace.
#[derive(Default)]
pub(super) struct Provided {
    pub(super) keys: HashMap<Point, ProvidedKey>,
    /// Announcement rounds started since the daemon started (one per key per round).
    pub(super) started: u64,
}

impl Provided {
    /// The state of every provided file, sorted by CID.
    pub(super) fn snapshot(&self) -> Vec<Announcement> {
        let now = Instant::now();
        let mut out: Vec<Announcement> = self
            .keys
            .values()
            .filter_map(|k| {
                let ProviderKey::File(cid) = k.subject else {
                    return None;
                };
                Some(Announcement {
                    cid,
                    last_announced: k.last.map(|(at, _)| at),
                    peers: k.last.map(|(_, n)| n),
                    announcing: k.next_at.is_none(),
                    retry_in: match k.next_at {
                        Some(at) if k.failures > 0 => Some(at.saturating_duration_since(now)),
                        _ => None,
                    },
                })
            })
            .collect();
        out.sort_by_key(|a| a.cid.to_string());
        out
    }

    /// How the keyword keys' announcements stand.
    pub(super) fn keywords(&self) -> KeywordAnnouncements {
        let mut summary = KeywordAnnouncements::default();
        for k in self.keys.values() {
            if !matches!(k.subject, ProviderKey::Keyword(_)) {
                continue;
            }
            summary.provided += 1;
            match k.last {
                Some((_, 0)) => summary.unannounced += 1,
                Some(_) => summary.announced += 1,
                None => {}
            }
        }
        summary
    }

    /// Provided files (not keywords).
    pub(super) fn file_count(&self) -> usize {
        self.keys
            .values()
            .filter(|k| matches!(k.subject, ProviderKey::File(_)))
            .count()
    }

    /// Files whose last finished round reached no peer.
    pub(super) fn unannounced(&self) -> usize {
        self.keys
            .values()
            .filter(|k| matches!(k.subject, ProviderKey::File(_)))
            .filter(|k| matches!(k.last, Some((_, 0))))
            .count()
    }
}
