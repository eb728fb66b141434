//! Wire and record formats of p2pd. Pure data: no I/O, no async runtime, no libp2p.
//!
//! # Layout
//! - [`cid`]: content identifiers (CIDv1, base32, BLAKE3-256 multihash) for chunks and files.
//! - [`manifest`]: the file manifest (size, chunk size, chunk hashes) that a file CID names.
//! - [`message`]: the chunk protocol `/p2pd/chunk/1.0.0`, its requests, responses and limits.
//! - [`bitfield`]: which chunks of a file a peer holds.
//! - [`codec`]: CBOR encoding (cbor4ii) with an explicit size limit on every decode.
//! - [`names`]: file names from peers and users, made safe to show and to create.
//!
//! Every decoder here takes bytes that came from a peer or a user and returns an error,
//! never panics, and refuses input larger than its documented limit before parsing it.
#![deny(missing_docs)]

pub mod bitfield;
pub mod cid;
pub mod codec;
pub mod manifest;
pub mod message;
pub mod names;

pub use bitfield::Bitfield;
pub use cid::{Cid, CidError, Codec};
pub use codec::DecodeError;
pub use manifest::{Manifest, ManifestError};
pub use message::{Request, Response};
