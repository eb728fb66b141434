//! The one Kademlia exchange p2pd speaks outside libp2p-kad: a single `GET_PROVIDERS`
//! to one chosen DHT server, so that `p2pd doctor` can ask another node whether it
//! holds our provider record (libp2p-kad only runs whole lookups, which answer from the
//! local store first). The messages are the Kademlia protobuf (`dht.pb.Message`) that
//! libp2p-kad and every IPFS DHT speak, each framed by an unsigned-varint length.
//!
//! Only what the probe needs is encoded and decoded: the request's type and key; the
//! answer's type, key, provider peers (id and addresses) and the count of closer peers.
//! Unknown fields are skipped, as protobuf wants. A message larger than
//! [`MAX_KAD_MESSAGE_LEN`] (libp2p-kad's own limit) is refused before it is parsed. The
//! writing helpers are [`crate::kademlia`]'s, which writes `ADD_PROVIDER`.

use crate::kademlia::{put_bytes, put_varint, MAX_KAD_MESSAGE_LEN};
use crate::protobuf::{self, Fields, FrameError, Value, WireError};

/// Most provider peers kept from one answer (servers keep 20 per key).
pub const MAX_PROVIDERS: usize = 64;
/// Most addresses kept per provider peer.
pub const MAX_ADDRS_PER_PEER: usize = 16;
/// The `GET_PROVIDERS` message type.
pub const GET_PROVIDERS: u64 = 3;

/// Why a Kademlia answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KadDecodeError {
    /// The message is larger than [`MAX_KAD_MESSAGE_LEN`].
    #[error("Kademlia message of {0} bytes is over the {MAX_KAD_MESSAGE_LEN}-byte limit")]
    TooLarge(u64),
    /// The bytes end in the middle of a field.
    #[error("Kademlia message is truncated")]
    Truncated,
    /// A varint longer than 10 bytes, or a wire type protobuf does not have.
    #[error("Kademlia message is malformed: {0}")]
    Malformed(&'static str),
    /// The answer is not a `GET_PROVIDERS` answer.
    #[error("expected a GET_PROVIDERS answer, got message type {0}")]
    WrongType(u64),
}

/// A peer named in an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KadPeer {
    /// Its peer id, as bytes (a multihash).
    pub id: Vec<u8>,
    /// Its addresses, as multiaddr bytes (not checked here).
    pub addrs: Vec<Vec<u8>>,
}

/// A `GET_PROVIDERS` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvidersAnswer {
    /// The key the answer is about.
    pub key: Vec<u8>,
    /// The providers the server knows (at most [`MAX_PROVIDERS`]).
    pub providers: Vec<KadPeer>,
    /// How many peers closer to the key it named instead.
    pub closer_peers: usize,
}

/// The framed `GET_PROVIDERS` request for `key`: its length as a varint, then the
/// message.
pub fn encode_get_providers(key: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(key.len() + 8);
    put_varint(&mut message, 1 << 3); // field 1 (type), varint
    put_varint(&mut message, GET_PROVIDERS);
    put_bytes(&mut message, 2, key);
    let mut framed = Vec::with_capacity(message.len() + 3);
    put_varint(&mut framed, message.len() as u64);
    framed.extend_from_slice(&message);
    framed
}

/// The framed answer a server would send (for tests and fuzzing): `providers` in field
/// 9, no closer peers.
pub fn encode_providers_answer(answer: &ProvidersAnswer) -> Vec<u8> {
    let mut message = Vec::new();
    put_varint(&mut message, 1 << 3);
    put_varint(&mut message, GET_PROVIDERS);
    put_bytes(&mut message, 2, &answer.key);
    for peer in &answer.providers {
        let mut encoded = Vec::new();
        put_bytes(&mut encoded, 1, &peer.id);
        for addr in &peer.addrs {
            put_bytes(&mut encoded, 2, addr);
        }
        put_bytes(&mut message, 9, &encoded);
    }
    let mut framed = Vec::new();
    put_varint(&mut framed, message.len() as u64);
    framed.extend_from_slice(&message);
    framed
}

/// Reads a frame's length prefix from the start of `bytes`: the message length and the
/// prefix's own length, or `None` if `bytes` ends inside the prefix. A length over
/// [`MAX_KAD_MESSAGE_LEN`] is refused.
pub fn frame_length(bytes: &[u8]) -> Result<Option<(usize, usize)>, KadDecodeError> {
    protobuf::frame_length(bytes, MAX_KAD_MESSAGE_LEN).map_err(|e| match e {
        FrameError::TooLarge(len) => KadDecodeError::TooLarge(len),
        FrameError::Wire(e) => e.into(),
    })
}

/// Decodes a `GET_PROVIDERS` answer (the message, without its length prefix).
pub fn decode_providers_answer(message: &[u8]) -> Result<ProvidersAnswer, KadDecodeError> {
    if message.len() > MAX_KAD_MESSAGE_LEN {
        return Err(KadDecodeError::TooLarge(message.len() as u64));
    }
    let mut answer = ProvidersAnswer::default();
    // proto3: a type that is absent is PUT_VALUE (0).
    let mut message_type = 0;
    for field in Fields(message) {
        match field? {
            (1, Value::Varint(t)) => message_type = t,
            (2, Value::Bytes(key)) => answer.key = key.to_vec(),
            (8, Value::Bytes(_)) => answer.closer_peers += 1,
            (9, Value::Bytes(peer)) => {
                let peer = decode_peer(peer)?;
                if answer.providers.len() < MAX_PROVIDERS {
                    answer.providers.push(peer);
                }
            }
            _ => {}
        }
    }
    if message_type != GET_PROVIDERS {
        return Err(KadDecodeError::WrongType(message_type));
    }
    Ok(answer)
}

fn decode_peer(bytes: &[u8]) -> Result<KadPeer, KadDecodeError> {
    let mut peer = KadPeer::default();
    for field in Fields(bytes) {
        match field? {
            (1, Value::Bytes(id)) => peer.id = id.to_vec(),
            (2, Value::Bytes(addr)) if peer.addrs.len() < MAX_ADDRS_PER_PEER => {
                peer.addrs.push(addr.to_vec())
            }
            _ => {}
        }
    }
    Ok(peer)
}

impl From<WireError> for KadDecodeError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => KadDecodeError::Truncated,
            WireError::Malformed(why) => KadDecodeError::Malformed(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unframe(framed: &[u8]) -> &[u8] {
        let (len, used) = frame_length(framed).unwrap().unwrap();
        assert_eq!(framed.len(), used + len);
        &framed[used..]
    }

    #[test]
    fn request_is_the_protobuf_libp2p_kad_expects() {
        // type = 3 (field 1), key = "ab" (field 2), behind a one-byte length.
        assert_eq!(
            encode_get_providers(b"ab"),
            [6, 0x08, 3, 0x12, 2, b'a', b'b']
        );
    }

    #[test]
    fn answer_round_trips_and_skips_unknown_fields() {
        let answer = ProvidersAnswer {
            key: vec![1, 2, 3],
            providers: vec![KadPeer {
                id: vec![0, 36, 8, 1],
                addrs: vec![vec![4, 127, 0, 0, 1]],
            }],
            closer_peers: 0,
        };
        let framed = encode_providers_answer(&answer);
        let mut message = unframe(&framed).to_vec();
        // A closer peer (field 8), a cluster level (field 10, varint), a fixed64 field.
        message.extend_from_slice(&[0x42, 2, 0x0a, 0]);
        message.extend_from_slice(&[0x50, 0]);
        message.extend_from_slice(&[0x09, 1, 2, 3, 4, 5, 6, 7, 8]);
        let decoded = decode_providers_answer(&message).unwrap();
        assert_eq!(decoded.providers, answer.providers);
        assert_eq!(decoded.key, answer.key);
        assert_eq!(decoded.closer_peers, 1);
    }

    #[test]
    fn bad_answers_are_refused() {
        let framed = encode_providers_answer(&ProvidersAnswer::default());
        let message = unframe(&framed);
        assert_eq!(
            decode_providers_answer(&message[..message.len() - 1]),
            Err(KadDecodeError::Truncated)
        );
        assert_eq!(
            decode_providers_answer(&[0x08, 4]),
            Err(KadDecodeError::WrongType(4))
        );
        assert_eq!(
            decode_providers_answer(&[0x0b]),
            Err(KadDecodeError::Malformed("unknown wire type"))
        );
        assert_eq!(
            decode_providers_answer(&[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1
            ]),
            Err(KadDecodeError::Malformed("varint longer than 10 bytes"))
        );
        assert!(matches!(
            frame_length(&[0xff, 0xff, 0x01]),
            Err(KadDecodeError::TooLarge(_))
        ));
        assert_eq!(frame_length(&[0x80]), Ok(None));
    }
}
