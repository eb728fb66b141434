//! Checks shared by several targets.
#![allow(dead_code)]

use dht_proto::manifest::{MAX_CHUNKS, MAX_CHUNK_SIZE, MAX_FILE_SIZE, MIN_CHUNK_SIZE};
use dht_proto::{Bitfield, Manifest};

/// Every invariant a valid bitfield must keep: each `get()` within `len` agrees with
/// `count()` and `iter_set()`, nothing reads as set at or past `len`, and the raw bytes
/// rebuild the same bitfield.
pub fn check_bitfield(field: &Bitfield) {
    let len = field.len();
    let mut set = 0u32;
    for i in 0..len {
        if field.get(i) {
            set += 1;
        }
    }
    assert_eq!(
        set,
        field.count(),
        "get() disagrees with count() for {field:?}"
    );
    assert_eq!(
        field.iter_set().count() as u32,
        set,
        "iter_set() disagrees with count()"
    );
    assert!(field.iter_set().all(|i| i < len && field.get(i)));
    assert_eq!(field.is_complete(), set == len);
    assert_eq!(field.is_empty(), len == 0);
    for past in [len, len.saturating_add(1), len.saturating_add(8), u32::MAX] {
        assert!(!field.get(past), "get({past}) is set past len {len}");
    }
    assert_eq!(field.as_bytes().len(), (len as usize).div_ceil(8));
    let rebuilt = Bitfield::from_parts(len, field.as_bytes().to_vec())
        .expect("the bytes of a valid bitfield must rebuild it");
    assert_eq!(&rebuilt, field);
    // The kept count of set bits matches the bits.
    assert_eq!(field.count(), field.iter_set().count() as u32);
}

/// Checks a bitfield that came off the wire inside a Request or Response. Decoding
/// validates a bitfield with `from_parts` (since commit ee7ee4c), so whatever the peer
/// sent, a decoded bitfield must keep every invariant and be safe to index.
pub fn check_wire_bitfield(field: &Bitfield) {
    assert!(
        Bitfield::from_parts(field.len(), field.as_bytes().to_vec()).is_some(),
        "a decoded bitfield breaks from_parts' rules: len {}, {} bytes",
        field.len(),
        field.as_bytes().len()
    );
    check_bitfield(field);
}

/// Invariants of a manifest that decoded: encode() decodes back to an equal manifest,
/// the encoding is stable, decode_for accepts it under its own CID, and the chunk
/// lengths add up to the size.
pub fn check_manifest(m: &Manifest) {
    let encoded = m.encode();
    let again = Manifest::decode(&encoded).expect("encode() output must decode");
    assert_eq!(&again, m, "manifest does not round-trip through encode()");
    assert_eq!(again.encode(), encoded, "encode() is not stable");
    let by_cid = Manifest::decode_for(&m.cid(), &encoded).expect("decode_for its own CID");
    assert_eq!(&by_cid, m);
    let total: u64 = (0..m.chunk_count())
        .map(|i| u64::from(m.chunk_len(i)))
        .sum();
    assert_eq!(total, m.size(), "chunk lengths do not add up to the size");
    assert_eq!(m.chunk_len(m.chunk_count()), 0);
    assert!(u64::from(m.chunk_count()) <= MAX_CHUNKS);
    assert!(m.size() <= MAX_FILE_SIZE);
    assert!((MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&m.chunk_size()));
    assert!(m.chunk_size().is_power_of_two());
    assert!(m.chunk_hash(m.chunk_count()).is_none());
}
