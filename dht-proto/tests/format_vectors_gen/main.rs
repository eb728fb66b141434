//! Writes the vectors of keyword search, the catalog protocol, share tickets, directory
//! manifests, password access and standing (`vectors/{keywords,catalog,tickets,
//! dirmanifests,access,standing}.json`). Refused cases are built by hand (mirror structs,
//! edited bytes), never by the code under test refusing them; every case is checked
//! against dht-proto while writing.
//!
//! `cargo test -p dht-proto --test format_vectors_gen -- --ignored`. Shared helpers are
//! here; each file's cases are in a module of their own.

mod access;
mod catalog;
#[path = "../common/mod.rs"]
mod common;
mod dirs;
#[path = "../formats_json/mod.rs"]
mod formats_json;
mod keywords;
mod standing;
mod tickets;

use common::{hex, vectors_file as file, write_vectors as write};
use dht_proto::access::{
    derive_key, proof, AccessRequest, AccessResponse, KdfParams, ACCESS_PROTOCOL,
};
use dht_proto::catalog::{CatalogRequest, CatalogResponse, EntryInfo, CATALOG_PROTOCOL};
use dht_proto::codec;
use dht_proto::dirmanifest::{DirEntry, DirManifest, EntryKind};
use dht_proto::identity::{ed25519_peer_id, SigningKey};
use dht_proto::keyword::{keyword_key, keywords};
use dht_proto::standing::{Ban, Standing, StandingRequest, StandingResponse, STANDING_PROTOCOL};
use dht_proto::ticket::{checksum, Ticket, CHECKSUM_LEN};
use dht_proto::{Cid, RelPath};
use formats_json::*;
use serde::Serialize;
use serde_json::{json, Value};

/// The 12-byte file "hello world\n" of docs/protocol.md §3.
const FILE_CID: &str = "bafyr4ih4whrv7mzwlvh34ykp3w7nbk2dimbkqogr7uhatmhz4ujny536py";
const SHARE_ID: [u8; 8] = [0x5e, 0x1f, 0x0a, 0x33, 0x9c, 0x41, 0xd2, 0x07];

fn file_cid() -> Cid {
    FILE_CID.parse().expect("CID")
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn peer(seed: u8) -> Vec<u8> {
    ed25519_peer_id(&key(seed).verifying_key().to_bytes()).to_vec()
}

#[test]
#[ignore = "writes vectors/*.json; run when the vectors change"]
fn write_vectors() {
    write(
        "keywords.json",
        &file("keywords", keywords::keyword_vectors(), json!({})),
    );
    write(
        "catalog.json",
        &file(
            "catalog",
            catalog::catalog_vectors(),
            json!({ "protocols": { "catalog": CATALOG_PROTOCOL } }),
        ),
    );
    write(
        "tickets.json",
        &file("tickets", tickets::ticket_vectors(), json!({})),
    );
    write(
        "dirmanifests.json",
        &file("dirmanifests", dirs::dir_vectors(), json!({})),
    );
    write(
        "access.json",
        &file(
            "access",
            access::access_vectors(),
            json!({ "protocols": { "access": ACCESS_PROTOCOL } }),
        ),
    );
    write(
        "standing.json",
        &file(
            "standing",
            standing::standing_vectors(),
            json!({ "protocols": { "standing": STANDING_PROTOCOL } }),
        ),
    );
}
