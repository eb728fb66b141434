//! The fetcher's side of a ticket: dial the provider at the ticket's addresses (no DHT
//! lookup), then ask for access under the ticket's share id (docs/protocol.md §14),
//! proving the password when the provider challenges. Once granted, the provider is a
//! connected peer and the download engine asks it first. [`prove_again`] asks again
//! with the key already derived, before a grant ends (see `renew`).

use std::time::Duration;

use dht_proto::access::{
    derive_key, proof, AccessKey, AccessRequest, AccessResponse, KdfParams, ACCESS_PROTOCOL,
    MAX_ACCESS_RESPONSE_LEN, NONCE_LEN, SALT_LEN,
};
use dht_proto::ticket::{Ticket, SHARE_ID_LEN};
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{Multiaddr, PeerId, StreamProtocol};

use crate::network::Network;

/// Longest one round of the exchange may take, dialing included.
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a ticket could not be opened. Each is one line for the user.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpenError {
    /// The ticket's peer id or an address does not parse.
    #[error("ticket is malformed: {0}")]
    BadTicket(String),
    /// The share needs a password and none was given.
    #[error("this share needs a password")]
    NeedsPassword,
    /// The provider refused the proof.
    #[error("wrong password for this share")]
    WrongPassword,
    /// Too many wrong passwords from this node.
    #[error("too many wrong passwords; the provider refuses for {0} more seconds")]
    RateLimited(u32),
    /// The provider does not know the share (revoked, or never made).
    #[error("the provider no longer shares this (the share was revoked)")]
    Unknown,
    /// The share ended.
    #[error("this share has expired")]
    Expired,
    /// The provider could not be reached, or did not answer.
    #[error("cannot reach the ticket's provider {peer}: {why}")]
    Unreachable {
        /// The provider.
        peer: PeerId,
        /// What went wrong.
        why: String,
    },
    /// The provider answered outside the protocol, or with parameters too weak to use.
    #[error("the provider answered wrongly: {0}")]
    Protocol(String),
}

/// What a fetcher learns from a ticket it opened.
#[derive(Clone)]
pub struct Opened {
    /// The provider.
    pub provider: PeerId,
    /// How long the provider serves us under this ticket.
    pub valid_for: Duration,
    /// What asking again takes (none for our own share).
    pub again: Option<Again>,
}

/// What proving again takes: the share, and for a password share the key derived
/// from the password with the provider's salt and parameters (the password itself is
/// not kept).
#[derive(Clone)]
pub struct Again {
    /// The share asked under.
    pub share_id: [u8; SHARE_ID_LEN],
    key: Option<(AccessKey, [u8; SALT_LEN], KdfParams)>,
}

/// The provider and addresses a ticket names.
pub fn provider_of(ticket: &Ticket) -> Result<(PeerId, Vec<Multiaddr>), OpenError> {
    let provider = PeerId::from_bytes(&ticket.provider)
        .map_err(|e| OpenError::BadTicket(format!("bad peer id: {e}")))?;
    let addrs = ticket
        .addrs
        .iter()
        .map(|a| {
            Multiaddr::try_from(a.clone())
                .map_err(|e| OpenError::BadTicket(format!("bad address: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((provider, addrs))
}

/// Dials the ticket's provider and asks it for access; `password` answers its
/// challenge.
pub async fn open(
    net: &Network,
    ticket: &Ticket,
    password: Option<&str>,
) -> Result<Opened, OpenError> {
    let (provider, addrs) = provider_of(ticket)?;
    if provider == net.local_peer_id() {
        // Our own share: the file is in our store already.
        return Ok(Opened {
            provider,
            valid_for: Duration::ZERO,
            again: None,
        });
    }
    net.dial_at(provider, addrs).await;
    let share_id = ticket.share_id;
    let first = round(net, provider, AccessRequest::Challenge { share_id }).await?;
    let (nonce, salt, kdf) = match first {
        AccessResponse::Challenge { nonce, salt, kdf } => (nonce, salt, kdf),
        other => {
            let again = Again {
                share_id,
                key: None,
            };
            return verdict(provider, other, again);
        }
    };
    let password = password.ok_or(OpenError::NeedsPassword)?.to_string();
    // Checks the parameters first: a peer posing as the provider gets no cheap proof.
    let key = tokio::task::spawn_blocking(move || derive_key(&password, &salt, kdf))
        .await
        .map_err(|e| OpenError::Protocol(e.to_string()))?
        .map_err(|e| OpenError::Protocol(e.to_string()))?;
    let again = Again {
        share_id,
        key: Some((key, salt, kdf)),
    };
    prove(net, provider, &again, nonce).await
}

/// Asks the provider for access again under the share `again` names, proving with the
/// key derived the first time. Fails if the provider now asks with another salt or
/// other parameters (the share was made again): that needs the password.
pub async fn prove_again(
    net: &Network,
    provider: PeerId,
    again: &Again,
) -> Result<Opened, OpenError> {
    let share_id = again.share_id;
    let first = round(net, provider, AccessRequest::Challenge { share_id }).await?;
    match (first, &again.key) {
        (AccessResponse::Challenge { nonce, salt, kdf }, Some((_, was_salt, was_kdf)))
            if salt == *was_salt && kdf == *was_kdf =>
        {
            prove(net, provider, again, nonce).await
        }
        (AccessResponse::Challenge { .. }, _) => Err(OpenError::NeedsPassword),
        (other, _) => verdict(provider, other, again.clone()),
    }
}

/// Answers a challenge's `nonce` with the key in `again`.
async fn prove(
    net: &Network,
    provider: PeerId,
    again: &Again,
    nonce: [u8; NONCE_LEN],
) -> Result<Opened, OpenError> {
    let share_id = again.share_id;
    let Some((key, _, _)) = &again.key else {
        return Err(OpenError::NeedsPassword);
    };
    let proof = proof(
        key,
        &nonce,
        &provider.to_bytes(),
        &net.local_peer_id().to_bytes(),
        &share_id,
    )
    .map_err(|e| OpenError::Protocol(e.to_string()))?;
    let second = round(
        net,
        provider,
        AccessRequest::Prove {
            share_id,
            nonce,
            proof,
        },
    )
    .await?;
    verdict(provider, second, again.clone())
}

/// What a final answer means.
fn verdict(provider: PeerId, response: AccessResponse, again: Again) -> Result<Opened, OpenError> {
    match response {
        AccessResponse::Granted { valid_secs } => Ok(Opened {
            provider,
            valid_for: Duration::from_secs(valid_secs.into()),
            again: Some(again),
        }),
        AccessResponse::Denied => Err(OpenError::WrongPassword),
        AccessResponse::RateLimited { retry_after_secs } => {
            Err(OpenError::RateLimited(retry_after_secs))
        }
        AccessResponse::UnknownShare => Err(OpenError::Unknown),
        AccessResponse::Expired => Err(OpenError::Expired),
        AccessResponse::Challenge { .. } => Err(OpenError::Protocol("a second challenge".into())),
    }
}

/// One request and its answer, on a fresh stream.
async fn round(
    net: &Network,
    provider: PeerId,
    request: AccessRequest,
) -> Result<AccessResponse, OpenError> {
    let unreachable = |why: String| OpenError::Unreachable {
        peer: provider,
        why,
    };
    let exchange = async {
        let mut control = net.streams();
        let mut stream = control
            .open_stream(provider, StreamProtocol::new(ACCESS_PROTOCOL))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        stream
            .write_all(&request.encode())
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        stream
            .close()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_ACCESS_RESPONSE_LEN as u64 + 1)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if answer.is_empty() {
            return Err(unreachable("no answer".into()));
        }
        AccessResponse::decode(&answer).map_err(|e| OpenError::Protocol(e.to_string()))
    };
    tokio::time::timeout(ROUND_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(unreachable(format!(
                "no answer within {}s",
                ROUND_TIMEOUT.as_secs()
            )))
        })
}
