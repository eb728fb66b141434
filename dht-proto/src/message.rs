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
//! | `Chunks { cids }` | `Chunks { answers }` / `Choked` | the only chunk of each of many files of one chunk ([`batch`]) |
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

pub mod batch;

pub use batch::{BatchAnswer, MAX_BATCH_DATA, MAX_BATCH_FILES};

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
    /// Ask for the whole of each of these files of one chunk (chunk 0 of each), in one
    /// exchange: 1 to [`MAX_BATCH_FILES`] CIDs.
    Chunks {
        /// The file CIDs.
        #[serde(deserialize_with = "batch::deserialize_batch")]
        cids: Vec<Cid>,
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
    /// One answer per file of a `Chunks` request, in the order asked.
    Chunks {
        /// The answers.
        #[serde(deserialize_with = "batch::deserialize_batch")]
        answers: Vec<BatchAnswer>,
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

    /// Decodes a request of at most [`MAX_REQUEST_LEN`] bytes and checks its fields'
    /// own limits.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let request: Request = codec::decode(bytes, MAX_REQUEST_LEN)?;
        match &request {
            Request::Chunks { cids } if cids.is_empty() => {
                Err(DecodeError::Invalid("a batch of no files".into()))
            }
            _ => Ok(request),
        }
    }

    /// The protocol this request travels on.
    pub fn protocol(&self) -> &'static str {
        match self {
            Request::Manifest { .. } => MANIFEST_PROTOCOL,
            _ => CHUNK_PROTOCOL,
        }
    }

    /// The file this request is about; `None` for a batch, which is about several.
    pub fn cid(&self) -> Option<&Cid> {
        match self {
            Request::Manifest { cid }
            | Request::Chunk { cid, .. }
            | Request::Bitfield { cid, .. }
            | Request::Have { cid, .. }
            | Request::Cancel { cid, .. } => Some(cid),
            Request::Chunks { .. } => None,
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
    /// requests about one file's content, and `Cancelled` only `Chunk`. A batch is
    /// answered `Chunks` with exactly one answer per file asked.
    pub fn answers(&self, request: &Request) -> bool {
        match (request, self) {
            (_, Response::Choked) => true,
            (Request::Have { .. } | Request::Cancel { .. }, response) => {
                matches!(response, Response::Ack)
            }
            (Request::Chunks { cids }, response) => {
                matches!(response, Response::Chunks { answers } if answers.len() == cids.len())
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
        if let Response::Chunks { answers } = &response {
            batch::check_answers(answers).map_err(DecodeError::Invalid)?;
        }
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
mod tests;
