//! The one Kademlia message p2pd writes itself: `ADD_PROVIDER`, as libp2p's Kademlia
//! (and go-libp2p's, and js-libp2p's) reads it on `/p2pd/kad/1.0.0`.
//!
//! libp2p-kad sends `ADD_PROVIDER` only at the end of a lookup of its own, one lookup per
//! key. p2pd's batched reprovide finds the closest peers of a whole keyspace region once
//! and sends every key of the region to them on one stream, so it writes the messages
//! itself. Everything else on the Kademlia protocol stays libp2p's.
//!
//! The message is the `dht.pb.Message` protobuf of the libp2p Kademlia specification
//! with only the fields `ADD_PROVIDER` uses, preceded by its length as an unsigned
//! varint (the framing of every libp2p Kademlia message):
//!
//! ```text
//! Message { type (1) = ADD_PROVIDER (2), key (2) = the provider key,
//!           providerPeers (9) = [ Peer { id (1), addrs (2)…, connection (3) = CONNECTED (1) } ] }
//! ```
//!
//! Only encoding lives here: p2pd never reads an `ADD_PROVIDER` itself (libp2p-kad does,
//! within its own packet limit).

/// The largest Kademlia message libp2p-kad accepts by default (its `max_packet_size`);
/// a longer one is refused by the receiver, so it is never written.
pub const MAX_KAD_MESSAGE_LEN: usize = 16 * 1024;

/// Why an `ADD_PROVIDER` message cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddProviderError {
    /// The key, peer id and addresses together exceed [`MAX_KAD_MESSAGE_LEN`].
    #[error(
        "ADD_PROVIDER message of {0} bytes exceeds the Kademlia limit of {MAX_KAD_MESSAGE_LEN}"
    )]
    TooLarge(usize),
}

const MESSAGE_TYPE_ADD_PROVIDER: u64 = 2;
const CONNECTION_CONNECTED: u64 = 1;

/// Protobuf wire types.
const VARINT: u64 = 0;
const LENGTH_DELIMITED: u64 = 2;

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_tag(out: &mut Vec<u8>, field: u64, wire_type: u64) {
    put_varint(out, (field << 3) | wire_type);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_tag(out, field, LENGTH_DELIMITED);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One framed `ADD_PROVIDER` message (length prefix included) saying that `provider`
/// (a peer id's bytes) provides `key`, reachable at `addrs` (multiaddr bytes; none is
/// allowed: the receiver then answers finders with the addresses it knows).
pub fn add_provider(
    key: &[u8],
    provider: &[u8],
    addrs: &[Vec<u8>],
) -> Result<Vec<u8>, AddProviderError> {
    let mut peer =
        Vec::with_capacity(provider.len() + 4 + addrs.iter().map(Vec::len).sum::<usize>());
    put_bytes(&mut peer, 1, provider);
    for addr in addrs {
        put_bytes(&mut peer, 2, addr);
    }
    put_tag(&mut peer, 3, VARINT);
    put_varint(&mut peer, CONNECTION_CONNECTED);

    let mut message = Vec::with_capacity(key.len() + peer.len() + 8);
    put_tag(&mut message, 1, VARINT);
    put_varint(&mut message, MESSAGE_TYPE_ADD_PROVIDER);
    put_bytes(&mut message, 2, key);
    put_bytes(&mut message, 9, &peer);
    if message.len() > MAX_KAD_MESSAGE_LEN {
        return Err(AddProviderError::TooLarge(message.len()));
    }

    let mut framed = Vec::with_capacity(message.len() + 3);
    put_varint(&mut framed, message.len() as u64);
    framed.extend_from_slice(&message);
    Ok(framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_the_protobuf_of_the_specification() {
        let framed = add_provider(&[0x1e, 0x20, 7], &[0, 1, 9], &[vec![4, 127, 0, 0, 1]]).unwrap();
        let expected = [
            23, // length of what follows
            0x08, 2, // type = ADD_PROVIDER
            0x12, 3, 0x1e, 0x20, 7, // key
            0x4a, 14, // providerPeers[0], 14 bytes:
            0x0a, 3, 0, 1, 9, //   id
            0x12, 5, 4, 127, 0, 0, 1, //   addrs[0]
            0x18, 1, //   connection = CONNECTED
        ];
        assert_eq!(framed, expected);
    }

    #[test]
    fn no_address_is_a_peer_with_an_id_only() {
        let framed = add_provider(b"k", b"p", &[]).unwrap();
        assert_eq!(
            framed,
            [12, 0x08, 2, 0x12, 1, b'k', 0x4a, 5, 0x0a, 1, b'p', 0x18, 1]
        );
    }

    #[test]
    fn lengths_past_127_take_two_varint_bytes() {
        let key = vec![0xab; 300];
        let framed = add_provider(&key, b"p", &[]).unwrap();
        // 0x12, then 300 as a varint: 0xac 0x02.
        assert_eq!(&framed[2..7], &[0x08, 2, 0x12, 0xac, 0x02]);
        let body = framed.len() - 2;
        assert_eq!(
            &framed[..2],
            &[(body as u8 & 0x7f) | 0x80, (body >> 7) as u8]
        );
    }

    #[test]
    fn a_message_past_the_kademlia_limit_is_refused() {
        let addrs = vec![vec![0u8; 1024]; 16];
        assert!(matches!(
            add_provider(b"key", b"peer", &addrs),
            Err(AddProviderError::TooLarge(n)) if n > MAX_KAD_MESSAGE_LEN
        ));
    }
}
