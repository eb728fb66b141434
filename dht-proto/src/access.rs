//! The access protocol `/p2pd/access/1.0.0`: a peer proves it knows a share's password
//! without sending it.
//!
//! 1. The fetcher asks `Challenge { share_id }`. The provider answers `Challenge` with a
//!    fresh random nonce, the share's salt and its Argon2id parameters.
//! 2. The fetcher derives the key `Argon2id(password, salt, params)` ([`derive_key`])
//!    and sends `Prove { share_id, nonce, proof }`, where `proof` is the keyed BLAKE3
//!    MAC of the nonce, both peer ids and the share id ([`proof`]).
//! 3. The provider, which stored only the key (derived once when the share was made),
//!    recomputes the MAC and compares in constant time ([`check_proof`]), then answers
//!    `Granted`, `Denied`, `RateLimited`, `UnknownShare` or `Expired`.
//!
//! The MAC binds the provider's peer id, so a proof made for one peer is worthless to
//! another, and the nonce, so a proof cannot be replayed. A fetcher refuses parameters
//! outside [`KdfParams::check`], so a peer posing as the provider cannot get a proof made
//! with parameters cheap enough to brute-force the password from it; and it answers
//! challenges only from the provider its ticket names.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::codec::{self, DecodeError};
use crate::identity::MAX_PEER_ID_LEN;
use crate::ticket::SHARE_ID_LEN;

/// The libp2p protocol name.
pub const ACCESS_PROTOCOL: &str = "/p2pd/access/1.0.0";
/// Length of a challenge nonce.
pub const NONCE_LEN: usize = 32;
/// Length of a share's salt.
pub const SALT_LEN: usize = 16;
/// Length of the derived key.
pub const KEY_LEN: usize = 32;
/// Length of a proof.
pub const PROOF_LEN: usize = 32;
/// What the MAC covers starts with these bytes.
pub const PROOF_DOMAIN: &[u8] = b"p2pd access proof v1\0";
/// The longest password, in bytes (the web UI password's limit too).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// The largest request (a `Prove` is 106 bytes).
pub const MAX_ACCESS_REQUEST_LEN: usize = 256;
/// The largest response (a `Challenge` is at most 92 bytes).
pub const MAX_ACCESS_RESPONSE_LEN: usize = 256;
/// How long a provider keeps a nonce it sent: a proof must arrive within this time.
pub const NONCE_LIFETIME_SECS: u64 = 60;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// What p2pd uses: 19 MiB, 2 passes, 1 lane (argon2's own defaults, the OWASP
    /// minimum for Argon2id). One derivation took 62-68 ms in a release build on the
    /// 2-core development machine at a load average of 11.
    pub const DEFAULT: KdfParams = KdfParams {
        m: 19 * 1024,
        t: 2,
        p: 1,
    };
    /// The cheapest parameters a fetcher accepts.
    pub const MIN: KdfParams = KdfParams::DEFAULT;
    /// The most expensive parameters a fetcher accepts (256 MiB, 8 passes, 4 lanes).
    pub const MAX: KdfParams = KdfParams {
        m: 256 * 1024,
        t: 8,
        p: 4,
    };

    /// Whether each parameter lies between [`KdfParams::MIN`] and [`KdfParams::MAX`].
    pub fn check(&self) -> Result<(), AccessError> {
        let (min, max) = (KdfParams::MIN, KdfParams::MAX);
        if (min.m..=max.m).contains(&self.m)
            && (min.t..=max.t).contains(&self.t)
            && (min.p..=max.p).contains(&self.p)
        {
            Ok(())
        } else {
            Err(AccessError::Params(*self))
        }
    }
}

/// Why a key or a message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// Argon2 parameters outside the accepted range.
    #[error("Argon2id parameters m={} KiB t={} p={} are outside the accepted range", .0.m, .0.t, .0.p)]
    Params(KdfParams),
    /// An empty password, or one over [`MAX_PASSWORD_LEN`] bytes.
    #[error("the password must have 1 to {MAX_PASSWORD_LEN} bytes")]
    PasswordLength,
    /// A peer id that is empty or too long.
    #[error("bad peer id")]
    PeerId,
}

/// A key derived from a share's password. The provider stores it instead of the
/// password; its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey([u8; KEY_LEN]);

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessKey(..)")
    }
}

impl AccessKey {
    /// A key stored earlier.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        AccessKey(bytes)
    }

    /// The bytes, to store.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0
    }
}

/// Derives the key of `password` (normalized to Unicode NFC first, so the same password
/// typed on systems that compose accents differently gives the same key).
pub fn derive_key(
    password: &str,
    salt: &[u8; SALT_LEN],
    params: KdfParams,
) -> Result<AccessKey, AccessError> {
    params.check()?;
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return Err(AccessError::PasswordLength);
    }
    let password: String = password.nfc().collect();
    let argon_params = argon2::Params::new(params.m, params.t, params.p, Some(KEY_LEN))
        .map_err(|_| AccessError::Params(params))?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon_params,
    );
    let mut key = [0u8; KEY_LEN];
    argon
        .hash_password_into(password.as_bytes(), salt, &mut key)
        .map_err(|_| AccessError::Params(params))?;
    Ok(AccessKey(key))
}

/// The proof: keyed BLAKE3 (key = the derived key) of `PROOF_DOMAIN ‖ nonce ‖
/// len(provider) ‖ provider ‖ len(fetcher) ‖ fetcher ‖ share_id`, the peer ids binary
/// (`PeerId::to_bytes`) with one length byte each.
pub fn proof(
    key: &AccessKey,
    nonce: &[u8; NONCE_LEN],
    provider: &[u8],
    fetcher: &[u8],
    share_id: &[u8; SHARE_ID_LEN],
) -> Result<[u8; PROOF_LEN], AccessError> {
    Ok(*mac(key, nonce, provider, fetcher, share_id)?.as_bytes())
}

/// Whether `claimed` is the proof for these values, compared in constant time.
pub fn check_proof(
    key: &AccessKey,
    nonce: &[u8; NONCE_LEN],
    provider: &[u8],
    fetcher: &[u8],
    share_id: &[u8; SHARE_ID_LEN],
    claimed: &[u8; PROOF_LEN],
) -> bool {
    // blake3::Hash's equality is constant-time.
    mac(key, nonce, provider, fetcher, share_id)
        .is_ok_and(|expected| expected == blake3::Hash::from_bytes(*claimed))
}

fn mac(
    key: &AccessKey,
    nonce: &[u8; NONCE_LEN],
    provider: &[u8],
    fetcher: &[u8],
    share_id: &[u8; SHARE_ID_LEN],
) -> Result<blake3::Hash, AccessError> {
    let valid = |peer: &[u8]| !peer.is_empty() && peer.len() <= MAX_PEER_ID_LEN;
    if !valid(provider) || !valid(fetcher) {
        return Err(AccessError::PeerId);
    }
    let mut hasher = blake3::Hasher::new_keyed(&key.0);
    hasher.update(PROOF_DOMAIN);
    hasher.update(nonce);
    hasher.update(&[provider.len() as u8]);
    hasher.update(provider);
    hasher.update(&[fetcher.len() as u8]);
    hasher.update(fetcher);
    hasher.update(share_id);
    Ok(hasher.finalize())
}

/// A request of the access protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessRequest {
    /// Ask for a challenge for a share.
    Challenge {
        /// The share id from the ticket.
        #[serde(with = "serde_bytes")]
        share_id: [u8; SHARE_ID_LEN],
    },
    /// Answer a challenge.
    Prove {
        /// The share id from the ticket.
        #[serde(with = "serde_bytes")]
        share_id: [u8; SHARE_ID_LEN],
        /// The nonce of the challenge answered.
        #[serde(with = "serde_bytes")]
        nonce: [u8; NONCE_LEN],
        /// [`proof`] for it.
        #[serde(with = "serde_bytes")]
        proof: [u8; PROOF_LEN],
    },
}

/// A response of the access protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessResponse {
    /// Answers `Challenge` for a password-protected share.
    Challenge {
        /// Fresh random bytes, valid for [`NONCE_LIFETIME_SECS`] and one `Prove`.
        #[serde(with = "serde_bytes")]
        nonce: [u8; NONCE_LEN],
        /// The share's salt.
        #[serde(with = "serde_bytes")]
        salt: [u8; SALT_LEN],
        /// The share's Argon2id parameters.
        kdf: KdfParams,
    },
    /// The proof is right (or the share needs no password): the provider serves the
    /// share's content to this peer for `valid_secs` seconds (then prove again).
    Granted {
        /// Seconds the grant lasts.
        valid_secs: u32,
    },
    /// The proof is wrong, or its nonce unknown, used or stale.
    Denied,
    /// Too many wrong proofs from this peer: ask again after this many seconds.
    RateLimited {
        /// Seconds to wait.
        retry_after_secs: u32,
    },
    /// No such share (never, or revoked).
    UnknownShare,
    /// The share has expired.
    Expired,
}

impl AccessRequest {
    /// Encodes the request.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a request of at most [`MAX_ACCESS_REQUEST_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes, MAX_ACCESS_REQUEST_LEN)
    }
}

impl AccessResponse {
    /// Encodes the response.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a response of at most [`MAX_ACCESS_RESPONSE_LEN`] bytes. A challenge's
    /// parameters are checked by [`derive_key`], so that the caller can tell a hostile
    /// challenge (with its own error) from a malformed message.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes, MAX_ACCESS_RESPONSE_LEN)
    }
}

#[cfg(test)]
mod tests;
