//! The transfer protocols: one request, one response, over a fresh stream each time
//! (libp2p request-response). `Manifest` requests go over `/p2pd/manifest/1.0.0`
//! ([`MANIFEST_PROTOCOL`]), every other request over `/p2pd/chunk/1.0.0`
//! ([`CHUNK_PROTOCOL`]); the two differ only in their response-size limit, so that a
//! chunk answer can never be as large as the largest manifest.
//!
//! | request | response | meaning |
//! | --- | --- | --- |
//! | `Manifest { cid }` | `Manifest { manifest, name }` / `NotFound` | the file's manifest and the name the provider knows it by |
//! | `Chunk { cid, index }` | `Chunk { data }` / `NotFound` / `Choked` / `Cancelled` | one chunk's bytes; `Choked` means no upload slot for you now; `Cancelled` answers a request its sender cancelled before the chunk was sent |
//! | `Bitfield { cid, have }` | `Bitfield { have }` / `NotFound` | exchange which chunks each side holds |
//! | `Have { cid, index }` | `Ack` | "I now hold chunk `index`" |
//! | `Cancel { cid, index }` | `Ack` | "I no longer need chunk `index` from you" (an endgame duplicate another peer delivered) |
//!
//! Any request may also get `Error { message }`. Limits: a request is at most
//! [`MAX_REQUEST_LEN`] bytes; a response at most [`MAX_MANIFEST_RESPONSE_LEN`] on the
//! manifest protocol and [`MAX_CHUNK_RESPONSE_LEN`] on the chunk protocol. Limits are
//! checked before decoding, and the transport stops reading at the limit.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::bitfield::Bitfield;
use crate::cid::Cid;
use crate::codec::{self, DecodeError};
use crate::manifest::{MAX_CHUNKS, MAX_CHUNK_SIZE, MAX_MANIFEST_LEN};

/// The libp2p protocol name of chunk, bitfield and have requests.
pub const CHUNK_PROTOCOL: &str = "/p2pd/chunk/1.0.0";
/// The libp2p protocol name of manifest requests.
pub const MANIFEST_PROTOCOL: &str = "/p2pd/manifest/1.0.0";
/// The largest request: a bitfield of [`MAX_CHUNKS`] bits plus framing.
pub const MAX_REQUEST_LEN: usize = (MAX_CHUNKS as usize / 8) + 1024;
/// The largest response on the chunk protocol: a chunk of the largest chunk size (or a
/// bitfield, which is smaller) plus framing.
pub const MAX_CHUNK_RESPONSE_LEN: usize = max(MAX_CHUNK_SIZE as usize, MAX_REQUEST_LEN) + 1024;
/// The largest response on the manifest protocol: the largest manifest plus a name.
pub const MAX_MANIFEST_RESPONSE_LEN: usize = MAX_MANIFEST_LEN + 1024;
/// The largest response on either protocol.
pub const MAX_RESPONSE_LEN: usize = max(MAX_CHUNK_RESPONSE_LEN, MAX_MANIFEST_RESPONSE_LEN);
/// The longest file name a provider may send with a manifest.
pub const MAX_NAME_LEN: usize = 255;
/// The longest error message a peer may send.
pub const MAX_ERROR_LEN: usize = 512;
/// The most streams of one transfer protocol open at once on one connection, inbound
/// and outbound together. A requester keeps fewer requests outstanding; a responder
/// resets the streams past it without an answer.
pub const MAX_CONCURRENT_STREAMS: usize = 256;

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// A request of the chunk protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Ask for a file's manifest.
    Manifest {
        /// The file CID.
        cid: Cid,
    },
    /// Ask for one chunk of a file.
    Chunk {
        /// The file CID.
        cid: Cid,
        /// The chunk index; one that does not fit in 32 bits decodes as `u32::MAX`.
        #[serde(deserialize_with = "deserialize_index")]
        index: u32,
    },
    /// Tell the peer which chunks we hold and ask which it holds.
    Bitfield {
        /// The file CID.
        cid: Cid,
        /// What the sender holds.
        have: Bitfield,
    },
    /// Tell the peer we now hold one more chunk.
    Have {
        /// The file CID.
        cid: Cid,
        /// The chunk index; one that does not fit in 32 bits decodes as `u32::MAX`.
        #[serde(deserialize_with = "deserialize_index")]
        index: u32,
    },
    /// Withdraw a `Chunk` request still unanswered (another peer delivered the chunk):
    /// if the chunk is not sent yet, the peer answers that request `Cancelled`.
    Cancel {
        /// The file CID.
        cid: Cid,
        /// The chunk index; one that does not fit in 32 bits decodes as `u32::MAX`.
        #[serde(deserialize_with = "deserialize_index")]
        index: u32,
    },
}

/// Reads a chunk index: any CBOR unsigned integer. One that does not fit in 32 bits reads
/// as `u32::MAX`, an index past the last chunk of every manifest ([`MAX_CHUNKS`] is
/// 2^19), so the request is answered like any other out-of-range index (`NotFound` for
/// `Chunk`, `Ack` for `Have` and `Cancel`) rather than dropped as undecodable.
fn deserialize_index<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let index = u64::deserialize(deserializer)?;
    Ok(u32::try_from(index).unwrap_or(u32::MAX))
}

/// A response of the chunk protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// The encoded manifest (verified by the receiver against the CID it asked for).
    Manifest {
        /// Manifest bytes.
        manifest: ByteBuf,
        /// The provider's name for the file, if any (a hint for the output file name).
        name: Option<String>,
    },
    /// The bytes of the requested chunk.
    Chunk {
        /// Chunk bytes.
        data: ByteBuf,
    },
    /// Which chunks the responder holds.
    Bitfield {
        /// What the responder holds.
        have: Bitfield,
    },
    /// Acknowledges a `Have`.
    Ack,
    /// The responder does not have what was asked for.
    NotFound,
    /// The responder has it but gives no upload slot to the requester now.
    Choked,
    /// The requester cancelled this chunk request before the chunk was sent.
    Cancelled,
    /// The request failed on the responder's side.
    Error {
        /// What went wrong.
        message: String,
    },
}

impl Request {
    /// Encodes the request.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a request of at most [`MAX_REQUEST_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes, MAX_REQUEST_LEN)
    }

    /// The protocol this request travels on.
    pub fn protocol(&self) -> &'static str {
        match self {
            Request::Manifest { .. } => MANIFEST_PROTOCOL,
            _ => CHUNK_PROTOCOL,
        }
    }

    /// The file this request is about.
    pub fn cid(&self) -> &Cid {
        match self {
            Request::Manifest { cid }
            | Request::Chunk { cid, .. }
            | Request::Bitfield { cid, .. }
            | Request::Have { cid, .. }
            | Request::Cancel { cid, .. } => cid,
        }
    }
}

/// The CBOR bytes that precede a chunk's data in an encoded `Response::Chunk`:
/// `{"chunk": {"data": <byte string header>`. Lets a transport write the header and then
/// the chunk straight from its buffer, instead of copying it into an encoding first.
const CHUNK_PREFIX: &[u8] = &[
    0xa1, 0x65, b'c', b'h', b'u', b'n', b'k', 0xa1, 0x64, b'd', b'a', b't', b'a',
];
/// The longest chunk-response header: the prefix and a byte-string header with an
/// 8-byte length.
pub const MAX_CHUNK_HEADER_LEN: usize = 13 + 9;

/// The header of an encoded `Response::Chunk` whose data is `len` bytes long; the
/// header followed by the data is exactly `Response::Chunk { data }.encode()`.
pub fn chunk_response_header(len: usize) -> Vec<u8> {
    let mut out = CHUNK_PREFIX.to_vec();
    let len = len as u64;
    match len {
        0..=23 => out.push(0x40 | len as u8),
        24..=0xff => out.extend([0x58, len as u8]),
        0x100..=0xffff => {
            out.push(0x59);
            out.extend((len as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0x5a);
            out.extend((len as u32).to_be_bytes());
        }
        _ => {
            out.push(0x5b);
            out.extend(len.to_be_bytes());
        }
    }
    out
}

/// If `bytes` starts with a chunk-response header, returns the header's length and the
/// data length it declares. `None` when it is some other response, a header whose length
/// is not in its shortest form, or too short to tell; such input is then decoded the
/// ordinary way (and a non-shortest length is refused there, as everywhere).
pub fn parse_chunk_response_header(bytes: &[u8]) -> Option<(usize, u64)> {
    let rest = bytes.strip_prefix(CHUNK_PREFIX)?;
    let (&first, rest) = rest.split_first()?;
    let (extra, len, shortest_from) = match first {
        0x40..=0x57 => (0, u64::from(first & 0x1f), 0),
        0x58 => (1, u64::from(*rest.first()?), 24),
        0x59 => (
            2,
            u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            0x100,
        ),
        0x5a => (
            4,
            u64::from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)),
            0x1_0000,
        ),
        0x5b => (
            8,
            u64::from_be_bytes(rest.get(..8)?.try_into().ok()?),
            0x1_0000_0000,
        ),
        _ => return None,
    };
    if len < shortest_from {
        return None;
    }
    Some((CHUNK_PREFIX.len() + 1 + extra, len))
}

impl Response {
    /// Whether this is one of the answers the protocol allows to `request`; any other is
    /// an unexpected answer, which fails the request. `Choked` may answer anything,
    /// `Ack` only the notifications `Have` and `Cancel`, `NotFound` and `Error` only the
    /// requests about a file's content, and `Cancelled` only `Chunk`.
    pub fn answers(&self, request: &Request) -> bool {
        match (request, self) {
            (_, Response::Choked) => true,
            (Request::Have { .. } | Request::Cancel { .. }, response) => {
                matches!(response, Response::Ack)
            }
            (_, Response::NotFound | Response::Error { .. }) => true,
            (Request::Manifest { .. }, Response::Manifest { .. })
            | (Request::Chunk { .. }, Response::Chunk { .. } | Response::Cancelled)
            | (Request::Bitfield { .. }, Response::Bitfield { .. }) => true,
            _ => false,
        }
    }

    /// Encodes the response.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a response of at most [`MAX_RESPONSE_LEN`] bytes and checks its fields'
    /// own limits.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Response::decode_limited(bytes, MAX_RESPONSE_LEN)
    }

    /// Decodes a response of at most `limit` bytes (the limit of the protocol it came
    /// on) and checks its fields' own limits.
    pub fn decode_limited(bytes: &[u8], limit: usize) -> Result<Self, DecodeError> {
        let response: Response = codec::decode(bytes, limit.min(MAX_RESPONSE_LEN))?;
        match &response {
            Response::Manifest {
                name: Some(name), ..
            } if name.len() > MAX_NAME_LEN => {
                Err(DecodeError::Invalid("file name too long".into()))
            }
            Response::Chunk { data } if data.len() > MAX_CHUNK_SIZE as usize => Err(
                DecodeError::Invalid("chunk larger than the chunk size limit".into()),
            ),
            Response::Error { message } if message.len() > MAX_ERROR_LEN => {
                Err(DecodeError::Invalid("error message too long".into()))
            }
            _ => Ok(response),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid() -> Cid {
        Cid::for_manifest_bytes(b"m")
    }

    fn samples() -> (Vec<Request>, Vec<Response>) {
        let mut have = Bitfield::new(20);
        have.set(3);
        let requests = vec![
            Request::Manifest { cid: cid() },
            Request::Chunk {
                cid: cid(),
                index: 7,
            },
            Request::Bitfield {
                cid: cid(),
                have: have.clone(),
            },
            Request::Have {
                cid: cid(),
                index: 19,
            },
            Request::Cancel {
                cid: cid(),
                index: 5,
            },
        ];
        let responses = vec![
            Response::Manifest {
                manifest: ByteBuf::from(vec![1, 2, 3]),
                name: Some("a.txt".into()),
            },
            Response::Chunk {
                data: ByteBuf::from(vec![9u8; 1000]),
            },
            Response::Bitfield { have },
            Response::Ack,
            Response::NotFound,
            Response::Choked,
            Response::Cancelled,
            Response::Error {
                message: "oops".into(),
            },
        ];
        (requests, responses)
    }

    #[test]
    fn round_trips() {
        let (requests, responses) = samples();
        for r in requests {
            assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        }
        for r in responses {
            assert_eq!(Response::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn chunk_data_is_a_cbor_byte_string() {
        let data = vec![0xabu8; 256 << 10];
        let encoded = Response::Chunk {
            data: ByteBuf::from(data),
        }
        .encode();
        // An array of integers would take about twice the bytes.
        assert!(encoded.len() < (256 << 10) + 32, "{} bytes", encoded.len());
    }

    #[test]
    fn truncated_and_garbage_input_fails() {
        let (requests, responses) = samples();
        for r in requests {
            let bytes = r.encode();
            for len in 0..bytes.len() {
                assert!(Request::decode(&bytes[..len]).is_err());
            }
        }
        for r in responses {
            let bytes = r.encode();
            for len in 0..bytes.len() {
                assert!(Response::decode(&bytes[..len]).is_err());
            }
        }
        for seed in 0..500u32 {
            let garbage: Vec<u8> = (0..(seed % 97))
                .map(|i| (i * 131 + seed * 7) as u8)
                .collect();
            let _ = Request::decode(&garbage);
            let _ = Response::decode(&garbage);
        }
        // A CID field holding bytes that are not a CID.
        let bad = codec::encode(&serde_json_like_bad_cid());
        assert!(Request::decode(&bad).is_err());
    }

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum FakeRequest {
        Manifest { cid: ByteBuf },
    }

    fn serde_json_like_bad_cid() -> FakeRequest {
        FakeRequest::Manifest {
            cid: ByteBuf::from(vec![1, 2, 3]),
        }
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let big = vec![0u8; MAX_REQUEST_LEN + 1];
        assert!(matches!(
            Request::decode(&big),
            Err(DecodeError::TooLarge { .. })
        ));
        let big = vec![0u8; MAX_RESPONSE_LEN + 1];
        assert!(matches!(
            Response::decode(&big),
            Err(DecodeError::TooLarge { .. })
        ));
        let long_name = Response::Manifest {
            manifest: ByteBuf::new(),
            name: Some("x".repeat(MAX_NAME_LEN + 1)),
        };
        assert!(Response::decode(&long_name.encode()).is_err());
    }

    #[test]
    fn the_chunk_header_is_the_start_of_the_encoding() {
        for len in [
            0usize,
            1,
            23,
            24,
            255,
            256,
            65_535,
            65_536,
            1 << 20,
            (4 << 20) + 7,
        ] {
            let data = vec![0x5au8; len];
            let encoded = Response::Chunk {
                data: ByteBuf::from(data.clone()),
            }
            .encode();
            let header = chunk_response_header(len);
            assert_eq!(&encoded[..header.len()], &header[..], "len {len}");
            assert_eq!(&encoded[header.len()..], &data[..], "len {len}");
            assert_eq!(
                parse_chunk_response_header(&encoded),
                Some((header.len(), len as u64))
            );
            assert!(header.len() <= MAX_CHUNK_HEADER_LEN);
        }
        // Other responses and truncated headers are not taken for chunks.
        assert_eq!(parse_chunk_response_header(&Response::Ack.encode()), None);
        assert_eq!(
            parse_chunk_response_header(&Response::NotFound.encode()),
            None
        );
        let header = chunk_response_header(1 << 20);
        for cut in 0..header.len() {
            assert_eq!(parse_chunk_response_header(&header[..cut]), None);
        }
    }

    #[test]
    fn chunk_protocol_responses_are_capped_below_manifests() {
        const { assert!(MAX_CHUNK_RESPONSE_LEN < MAX_MANIFEST_RESPONSE_LEN) };
        assert_eq!(MAX_CHUNK_RESPONSE_LEN, (4 << 20) + 1024);
        let big = Response::Chunk {
            data: ByteBuf::from(vec![0u8; MAX_CHUNK_SIZE as usize + 1]),
        }
        .encode();
        assert!(Response::decode_limited(&big, MAX_CHUNK_RESPONSE_LEN).is_err());
        assert_eq!(
            Request::Manifest { cid: cid() }.protocol(),
            MANIFEST_PROTOCOL
        );
        assert_eq!(
            Request::Chunk {
                cid: cid(),
                index: 0
            }
            .protocol(),
            CHUNK_PROTOCOL
        );
    }

    #[test]
    fn each_request_has_its_own_answers() {
        let (requests, responses) = samples();
        let allowed = |request: &Request| -> Vec<&'static str> {
            match request {
                Request::Manifest { .. } => vec!["manifest", "not_found", "choked", "error"],
                Request::Chunk { .. } => {
                    vec!["chunk", "not_found", "choked", "cancelled", "error"]
                }
                Request::Bitfield { .. } => vec!["bitfield", "not_found", "choked", "error"],
                Request::Have { .. } | Request::Cancel { .. } => vec!["ack", "choked"],
            }
        };
        let kind = |response: &Response| match response {
            Response::Manifest { .. } => "manifest",
            Response::Chunk { .. } => "chunk",
            Response::Bitfield { .. } => "bitfield",
            Response::Ack => "ack",
            Response::NotFound => "not_found",
            Response::Choked => "choked",
            Response::Cancelled => "cancelled",
            Response::Error { .. } => "error",
        };
        for request in &requests {
            for response in &responses {
                assert_eq!(
                    response.answers(request),
                    allowed(request).contains(&kind(response)),
                    "{response:?} to {request:?}"
                );
            }
        }
    }

    /// `{"<kind>": {"cid": C, "index": <index head>}}` with the CID of [`cid`].
    fn indexed_request(kind: &str, index: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0xa1, 0x60 | kind.len() as u8];
        bytes.extend_from_slice(kind.as_bytes());
        bytes.extend_from_slice(&[0xa2, 0x63, b'c', b'i', b'd', 0x58, 0x24]);
        bytes.extend_from_slice(&cid().to_bytes());
        bytes.extend_from_slice(&[0x65, b'i', b'n', b'd', b'e', b'x']);
        bytes.extend_from_slice(index);
        bytes
    }

    #[test]
    fn an_index_past_32_bits_decodes_out_of_range() {
        for kind in ["chunk", "have", "cancel"] {
            let expect = |index| match kind {
                "chunk" => Request::Chunk { cid: cid(), index },
                "have" => Request::Have { cid: cid(), index },
                _ => Request::Cancel { cid: cid(), index },
            };
            let at = |head: &[u8]| Request::decode(&indexed_request(kind, head));
            assert_eq!(at(&[0x07]).unwrap(), expect(7));
            assert_eq!(
                at(&[0x1a, 0xff, 0xff, 0xff, 0xff]).unwrap(),
                expect(u32::MAX)
            );
            assert_eq!(
                at(&[0x1b, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap(),
                expect(u32::MAX)
            );
            assert_eq!(
                at(&[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap(),
                expect(u32::MAX)
            );
            // Not an unsigned integer, or not in its shortest form: no request at all.
            assert!(at(&[0x20]).is_err(), "{kind}: negative index");
            assert!(at(&[0x18, 0x07]).is_err(), "{kind}: non-shortest index");
            assert!(at(&[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
            assert!(at(&[0xf9, 0x47, 0x00]).is_err(), "{kind}: float index");
        }
    }

    #[test]
    fn key_order_and_unknown_keys_do_not_matter_but_the_encoding_does() {
        let expected = Request::Chunk {
            cid: cid(),
            index: 7,
        };
        // "index" first, then "cid".
        let mut reordered = vec![0xa1, 0x65];
        reordered.extend_from_slice(b"chunk");
        reordered.extend_from_slice(&[0xa2, 0x65]);
        reordered.extend_from_slice(b"index");
        reordered.extend_from_slice(&[0x07, 0x63, b'c', b'i', b'd', 0x58, 0x24]);
        reordered.extend_from_slice(&cid().to_bytes());
        assert_eq!(Request::decode(&reordered).unwrap(), expected);
        // An extra key, whatever it holds, is ignored.
        let mut extra = indexed_request("chunk", &[0x07]);
        extra[7] = 0xa3;
        extra.extend_from_slice(&[0x63, b'f', b'o', b'o', 0x82, 0xf5, 0xa0]);
        assert_eq!(Request::decode(&extra).unwrap(), expected);
        // A repeated key is not.
        let mut repeated = indexed_request("chunk", &[0x07]);
        repeated[7] = 0xa3;
        repeated.extend_from_slice(&[0x65, b'i', b'n', b'd', b'e', b'x', 0x08]);
        assert!(Request::decode(&repeated).is_err());
        // The CID's byte-string length in a longer form than needed.
        let mut long_cid = indexed_request("chunk", &[0x07]);
        long_cid.splice(12..14, [0x59, 0x00, 0x24]);
        assert!(Request::decode(&long_cid).is_err());
        // The CID as a dag-cbor link (tag 42) rather than a plain byte string.
        let mut tagged = indexed_request("chunk", &[0x07]);
        tagged.splice(12..12, [0xd8, 0x2a]);
        assert!(Request::decode(&tagged).is_err());
        // A unit response in map form is not the text string it must be.
        assert!(Response::decode(&[0xa1, 0x63, b'a', b'c', b'k', 0xf6]).is_err());
    }

    #[test]
    fn a_chunk_header_with_a_long_form_length_is_not_taken() {
        let data = [0x5au8; 30];
        let mut encoded = CHUNK_PREFIX.to_vec();
        encoded.extend_from_slice(&[0x59, 0x00, 30]);
        encoded.extend_from_slice(&data);
        assert_eq!(parse_chunk_response_header(&encoded), None);
        assert!(Response::decode(&encoded).is_err());
        for (head, len) in [
            (&[0x5a, 0, 0, 0x01, 0][..], 256usize),
            (&[0x5b, 0, 0, 0, 0, 0, 0x01, 0, 0][..], 65_536),
        ] {
            let mut encoded = CHUNK_PREFIX.to_vec();
            encoded.extend_from_slice(head);
            assert_eq!(parse_chunk_response_header(&encoded), None, "len {len}");
            encoded.extend(std::iter::repeat_n(0u8, len));
            assert!(Response::decode(&encoded).is_err(), "len {len}");
        }
    }

    #[test]
    fn a_huge_declared_length_does_not_allocate_it() {
        // A byte string header that claims 2^60 bytes, with none following.
        let mut bytes = vec![0xa1, 0x65];
        bytes.extend_from_slice(b"chunk");
        bytes.extend_from_slice(&[0xa1, 0x64]);
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&[0x5b, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        assert!(Response::decode(&bytes).is_err());
    }
}
