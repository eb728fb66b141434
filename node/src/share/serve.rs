//! The serving side of `/p2pd/access/1.0.0` (docs/protocol.md §14): answers a ticket's
//! `Challenge` and `Prove`, refusing revoked and expired shares, and grants a peer that
//! proved the password (or asked under a share without one) the share's file for a
//! while. Wrong proofs are rate-limited per peer. One message each way on each stream,
//! framed like the transfer protocols (§5): write, close, read to the end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dht_proto::access::{
    check_proof, AccessKey, AccessRequest, AccessResponse, ACCESS_PROTOCOL, MAX_ACCESS_REQUEST_LEN,
    NONCE_LEN, NONCE_LIFETIME_SECS,
};
use dht_proto::ticket::SHARE_ID_LEN;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::Semaphore;

use super::{unix_now, Share, Shares};

/// Access streams handled at once; more are dropped unanswered.
pub const MAX_ACCESS_STREAMS: usize = 64;
/// Longest one exchange may take (a slow peer holds a slot no longer).
pub const ACCESS_STREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a grant lasts (or until the share expires, if sooner); a fetcher whose
/// download runs longer proves again before it ends (`renew`).
pub const GRANT_DURATION: Duration = Duration::from_secs(3600);
/// Wrong proofs a peer may send within [`GUESS_WINDOW`] before it is refused for
/// [`LOCKOUT`].
pub const MAX_WRONG_GUESSES: u32 = 5;
/// See [`MAX_WRONG_GUESSES`].
pub const GUESS_WINDOW: Duration = Duration::from_secs(60);
/// See [`MAX_WRONG_GUESSES`].
pub const LOCKOUT: Duration = Duration::from_secs(60);
/// Peers (nonces, guess counts) remembered at once; past this, the oldest go.
const MAX_REMEMBERED: usize = 4096;

/// The nonce handed to a peer for a share, and when.
type Nonces = HashMap<(PeerId, [u8; SHARE_ID_LEN]), ([u8; NONCE_LEN], Instant)>;

/// Nonces handed out and wrong guesses counted.
#[derive(Default)]
pub struct AccessState {
    nonces: Mutex<Nonces>,
    guesses: Mutex<HashMap<PeerId, Guesses>>,
}

#[derive(Clone, Copy)]
struct Guesses {
    wrong: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps `map` within [`MAX_REMEMBERED`] by dropping its oldest entry.
fn make_room<K: Copy + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    age: impl Fn(&V) -> Instant,
) {
    if map.len() >= MAX_REMEMBERED {
        if let Some(oldest) = map.iter().min_by_key(|(_, v)| age(v)).map(|(k, _)| *k) {
            map.remove(&oldest);
        }
    }
}

impl AccessState {
    /// Seconds `peer` must still wait, if it guessed wrong too often.
    fn locked(&self, peer: &PeerId, now: Instant) -> Option<u64> {
        let guesses = lock(&self.guesses);
        let until = guesses.get(peer)?.locked_until?;
        (until > now).then(|| (until - now).as_secs().max(1))
    }

    fn wrong_guess(&self, peer: PeerId, now: Instant) {
        let mut guesses = lock(&self.guesses);
        make_room(&mut guesses, |g| g.since);
        let entry = guesses.entry(peer).or_insert(Guesses {
            wrong: 0,
            since: now,
            locked_until: None,
        });
        if now.duration_since(entry.since) > GUESS_WINDOW {
            *entry = Guesses {
                wrong: 0,
                since: now,
                locked_until: None,
            };
        }
        entry.wrong += 1;
        if entry.wrong >= MAX_WRONG_GUESSES {
            entry.locked_until = Some(now + LOCKOUT);
            entry.wrong = 0;
            entry.since = now;
        }
    }

    fn new_nonce(&self, peer: PeerId, share: [u8; SHARE_ID_LEN], now: Instant) -> [u8; NONCE_LEN] {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut nonces = lock(&self.nonces);
        make_room(&mut nonces, |(_, at)| *at);
        nonces.insert((peer, share), (nonce, now));
        nonce
    }

    /// Takes the nonce handed to `peer` for `share` if it is `nonce` and still fresh
    /// (each is good for one `Prove`).
    fn take_nonce(
        &self,
        peer: PeerId,
        share: [u8; SHARE_ID_LEN],
        nonce: &[u8; NONCE_LEN],
        now: Instant,
    ) -> bool {
        match lock(&self.nonces).remove(&(peer, share)) {
            Some((kept, at)) => {
                &kept == nonce && now.duration_since(at) < Duration::from_secs(NONCE_LIFETIME_SECS)
            }
            None => false,
        }
    }
}

/// Serves the access protocol until the daemon stops (the caller bounds it).
pub async fn run(shares: Shares) {
    let mut control = shares.net().streams();
    let mut incoming = match control.accept(StreamProtocol::new(ACCESS_PROTOCOL)) {
        Ok(incoming) => incoming,
        Err(e) => {
            tracing::error!("cannot serve the access protocol: {e}");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_ACCESS_STREAMS));
    while let Some((peer, mut stream)) = incoming.next().await {
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "access stream dropped: too many at once");
            continue;
        };
        let shares = shares.clone();
        tokio::spawn(async move {
            let exchange = async {
                let mut request = Vec::new();
                (&mut stream)
                    .take(MAX_ACCESS_REQUEST_LEN as u64 + 1)
                    .read_to_end(&mut request)
                    .await?;
                let Ok(request) = AccessRequest::decode(&request) else {
                    // Over the limit or malformed: no answer (docs/protocol.md §5).
                    return Ok(());
                };
                let response = shares.answer(peer, request);
                stream.write_all(&response.encode()).await?;
                stream.close().await
            };
            match tokio::time::timeout(ACCESS_STREAM_TIMEOUT, exchange).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, "access stream failed: {e}"),
                Err(_) => tracing::debug!(%peer, "access stream timed out"),
            }
            drop(slot);
        });
    }
}

impl Shares {
    /// The answer to one access request from `peer`.
    pub(crate) fn answer(&self, peer: PeerId, request: AccessRequest) -> AccessResponse {
        let now = Instant::now();
        let share_id = match &request {
            AccessRequest::Challenge { share_id } | AccessRequest::Prove { share_id, .. } => {
                *share_id
            }
        };
        let Some(share) = self.get(&share_id) else {
            return AccessResponse::UnknownShare;
        };
        if share.is_expired_at(unix_now()) {
            tracing::info!(%peer, id = %share.id_hex(), "access refused: the share expired");
            return AccessResponse::Expired;
        }
        let Some(secret) = share.secret.clone() else {
            return self.grant(peer, &share, now);
        };
        if let Some(wait) = self.access().locked(&peer, now) {
            return AccessResponse::RateLimited {
                retry_after_secs: u32::try_from(wait).unwrap_or(u32::MAX),
            };
        }
        match request {
            AccessRequest::Challenge { .. } => AccessResponse::Challenge {
                nonce: self.access().new_nonce(peer, share_id, now),
                salt: secret.salt,
                kdf: secret.kdf,
            },
            AccessRequest::Prove { nonce, proof, .. } => {
                let fresh = self.access().take_nonce(peer, share_id, &nonce, now);
                let key = AccessKey::from_bytes(secret.key);
                let provider = self.net().local_peer_id().to_bytes();
                if fresh
                    && check_proof(&key, &nonce, &provider, &peer.to_bytes(), &share_id, &proof)
                {
                    self.grant(peer, &share, now)
                } else {
                    tracing::info!(%peer, id = %share.id_hex(), "access denied: wrong password or stale nonce");
                    self.access().wrong_guess(peer, now);
                    AccessResponse::Denied
                }
            }
        }
    }

    /// Lets `peer` fetch the share's file for the grant duration ([`GRANT_DURATION`]
    /// unless the daemon was told otherwise), or until the share expires if sooner.
    fn grant(&self, peer: PeerId, share: &Share, now: Instant) -> AccessResponse {
        let most = self.grant_duration();
        let left = share
            .expires_unix
            .map_or(most, |end| {
                Duration::from_secs(end.saturating_sub(unix_now()))
            })
            .min(most);
        self.gate().grant(peer, share.cid, now + left);
        tracing::info!(%peer, id = %share.id_hex(), secs = left.as_secs(), "access granted");
        AccessResponse::Granted {
            valid_secs: u32::try_from(left.as_secs()).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_guesses_lock_a_peer_out_for_a_while() {
        let state = AccessState::default();
        let peer = PeerId::random();
        let now = Instant::now();
        for _ in 0..MAX_WRONG_GUESSES - 1 {
            state.wrong_guess(peer, now);
        }
        assert_eq!(state.locked(&peer, now), None);
        state.wrong_guess(peer, now);
        assert_eq!(state.locked(&peer, now), Some(LOCKOUT.as_secs()));
        assert_eq!(state.locked(&peer, now + LOCKOUT), None);
        assert_eq!(state.locked(&PeerId::random(), now), None, "per peer");
    }

    #[test]
    fn a_nonce_is_good_once_for_its_peer_and_share_while_fresh() {
        let state = AccessState::default();
        let (peer, other) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        let nonce = state.new_nonce(peer, [1; SHARE_ID_LEN], now);
        assert!(!state.take_nonce(other, [1; SHARE_ID_LEN], &nonce, now));
        assert!(state.take_nonce(peer, [1; SHARE_ID_LEN], &nonce, now));
        assert!(
            !state.take_nonce(peer, [1; SHARE_ID_LEN], &nonce, now),
            "used"
        );
        let nonce = state.new_nonce(peer, [1; SHARE_ID_LEN], now);
        let stale = now + Duration::from_secs(NONCE_LIFETIME_SECS);
        assert!(!state.take_nonce(peer, [1; SHARE_ID_LEN], &nonce, stale));
    }
}
