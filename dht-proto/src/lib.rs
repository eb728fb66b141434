//! Wire and record formats of p2pd. Pure data: no I/O, no async runtime, no libp2p.
//!
//! # Layout
//! - [`cid`]: content identifiers (CIDv1, base32, BLAKE3-256 multihash) for chunks and files.
//! - [`manifest`]: the file manifest (size, chunk size, chunk hashes) that a file CID names.
//! - [`message`]: the chunk protocol `/p2pd/chunk/1.0.0`, its requests, responses and limits.
//! - [`bitfield`]: which chunks of a file a peer holds.
//! - [`codec`]: CBOR encoding (cbor4ii) with an explicit size limit on every decode.
//! - [`names`]: file names from peers and users, made safe to show and to create.
//! - [`dirmanifest`]: the directory manifest that a directory CID names; [`relpath`]: the
//!   validated relative paths in it and the name rules both sides apply.
//! - [`catalog`]: the catalog protocol `/p2pd/catalog/1.0.0` and its signed entries;
//!   [`keyword`]: keywords of a name and their DHT keys; [`media_type`]: type from a name.
//! - [`identity`]: Ed25519 signing keys and the libp2p peer id they give.
//! - [`kademlia`]: the Kademlia `ADD_PROVIDER` message, written for batched reprovides.
//! - [`ticket`]: share tickets (`p2pd1…`); [`qr`]: their QR codes as SVG or terminal text.
//! - [`access`]: the password challenge-response `/p2pd/access/1.0.0`.
//! - [`standing`]: the "how do you see me" query `/p2pd/standing/1.0.0`.
//! - [`kad_probe`]: one Kademlia `GET_PROVIDERS` to one DHT server (`p2pd doctor`).
//! - [`relay_hop`]: a circuit relay v2 `RESERVE` and the relay's answer, read for the
//!   reservation's expiry; both on the bounded protobuf reader of `protobuf`.
//!
//! Every decoder here takes bytes that came from a peer or a user and returns an error,
//! never panics, and refuses input larger than its documented limit before parsing it.
#![deny(missing_docs)]

pub mod access;
pub mod bitfield;
pub mod catalog;
pub mod cid;
pub mod codec;
pub mod dirmanifest;
pub mod identity;
pub mod kad_probe;
pub mod kademlia;
pub mod keyword;
pub mod manifest;
pub mod media_type;
pub mod message;
pub mod names;
mod protobuf;
pub mod qr;
pub mod relay_hop;
pub mod relpath;
pub mod standing;
pub mod ticket;

pub use bitfield::Bitfield;
pub use catalog::{CatalogEntry, CatalogRequest, CatalogResponse};
pub use cid::{Cid, CidError, Codec};
pub use codec::DecodeError;
pub use dirmanifest::{AnyManifest, DirManifest};
pub use manifest::{Manifest, ManifestError};
pub use message::{Request, Response};
pub use relpath::RelPath;
pub use ticket::{Ticket, TicketError};
