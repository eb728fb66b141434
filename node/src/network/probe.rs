//! Asking one DHT server for the providers of a key, the way another peer's lookup
//! would ask it: one Kademlia `GET_PROVIDERS` over a stream of our Kademlia protocol,
//! answered by the server's own Kademlia. `p2pd doctor` uses it to learn whether others
//! can find our provider records; a lookup through our own Kademlia would answer from
//! our local store first and prove nothing.
//!
//! The question comes from a stranger: a short-lived swarm with a new identity that
//! dials the server, asks, and is dropped. A Kademlia server leaves the asker out of
//! the providers it names (libp2p-kad does), so asked over our own connection it would
//! never name us even when it holds our record. This swarm is not the node's: the
//! node's swarm stays owned by its task. The messages are `dht_proto::kad_probe`'s.

use std::time::Duration;

use dht_proto::kad_probe::{self, KadDecodeError};
use futures::{AsyncReadExt as _, AsyncWriteExt as _, StreamExt as _};
use libp2p::kad::{self, KBucketKey};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId};

use super::behaviour::KAD_PROTOCOL;

/// Longest one probe may take (open, ask, answer).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a probe got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The stream could not be opened (not connected, or no Kademlia there).
    #[error("cannot ask it: {0}")]
    Open(String),
    /// The stream broke.
    #[error("the exchange failed: {0}")]
    Io(#[from] std::io::Error),
    /// The answer is not a `GET_PROVIDERS` answer we can read.
    #[error("unreadable answer: {0}")]
    Answer(#[from] KadDecodeError),
    /// No answer within [`PROBE_TIMEOUT`].
    #[error("no answer within {} s", PROBE_TIMEOUT.as_secs())]
    Timeout,
}

/// Asks `server`, at `addrs`, which providers of `key` it knows, from a new identity;
/// returns their peer ids (ids that do not parse are left out).
pub async fn ask_providers(
    server: PeerId,
    addrs: Vec<Multiaddr>,
    key: &kad::RecordKey,
) -> Result<Vec<PeerId>, ProbeError> {
    let build_error = |e: &dyn std::fmt::Display| ProbeError::Open(e.to_string());
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| build_error(&e))?
        .with_quic()
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .map_err(|e| build_error(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(PROBE_TIMEOUT))
        .build();
    let mut control = swarm.behaviour().new_control();
    swarm
        .dial(DialOpts::peer_id(server).addresses(addrs).build())
        .map_err(|e| build_error(&e))?;
    let probe = async {
        // Connected first: the stream behaviour would dial without the addresses.
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == server => break,
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    return Err(ProbeError::Open(error.to_string()))
                }
                _ => {}
            }
        }
        let exchange = exchange(&mut control, server, key);
        let mut exchange = std::pin::pin!(exchange);
        loop {
            tokio::select! {
                answer = &mut exchange => return answer,
                _ = swarm.select_next_some() => {}
            }
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, probe)
        .await
        .unwrap_or(Err(ProbeError::Timeout))
}

/// One `GET_PROVIDERS` and its answer over a new stream to `server`.
async fn exchange(
    control: &mut libp2p_stream::Control,
    server: PeerId,
    key: &kad::RecordKey,
) -> Result<Vec<PeerId>, ProbeError> {
    let mut stream = control
        .open_stream(server, KAD_PROTOCOL)
        .await
        .map_err(|e| ProbeError::Open(e.to_string()))?;
    stream
        .write_all(&kad_probe::encode_get_providers(key.as_ref()))
        .await?;
    stream.flush().await?;
    // The length prefix, one byte at a time (a varint is at most 10 bytes).
    let mut prefix = Vec::with_capacity(10);
    let (len, _) = loop {
        let mut byte = [0u8];
        stream.read_exact(&mut byte).await?;
        prefix.push(byte[0]);
        if let Some(frame) = kad_probe::frame_length(&prefix)? {
            break frame;
        }
    };
    let mut message = vec![0u8; len];
    stream.read_exact(&mut message).await?;
    let _ = stream.close().await;
    let answer = kad_probe::decode_providers_answer(&message)?;
    Ok(answer
        .providers
        .iter()
        .filter_map(|p| PeerId::from_bytes(&p.id).ok())
        .collect())
}

/// The peer of `peers` closest to `key` in Kademlia's distance: the one most likely to
/// hold the key's records.
pub fn closest_to<'a, T>(
    peers: &'a [(PeerId, T)],
    key: &kad::RecordKey,
) -> Option<&'a (PeerId, T)> {
    let target = KBucketKey::new(key.clone());
    peers
        .iter()
        .min_by_key(|(p, _)| KBucketKey::from(*p).distance(&target))
}
