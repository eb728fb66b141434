//! Bitfield::from_parts with an arbitrary len and arbitrary bytes. If it gives a
//! bitfield, every get() within len must agree with count() (common::check_bitfield).
//!
//! Input layout: byte 0 picks how len is made, bytes 1..5 are a little-endian u32, the
//! rest are the bits. Mode 0 uses the u32 as len unchanged (fully arbitrary); the other
//! modes derive len from the number of bit bytes, minus 0..=7, so that most inputs get
//! past the length check and reach the stray-bit check and the accessors.
#![no_main]

mod common;

use dht_proto::Bitfield;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let raw = u32::from_le_bytes([data[1], data[2], data[3], data[4]]);
    let bits = data[5..].to_vec();
    let len = if data[0] % 4 == 0 {
        raw
    } else {
        (bits.len() as u32 * 8).saturating_sub(raw % 8)
    };
    let nbytes = bits.len();
    match Bitfield::from_parts(len, bits) {
        Some(field) => {
            assert_eq!(field.len(), len);
            common::check_bitfield(&field);
        }
        None => {
            // Refused: the parts disagree, len is too large, or a bit past len is set.
            assert!(
                nbytes != (len as usize).div_ceil(8)
                    || u64::from(len) > dht_proto::manifest::MAX_CHUNKS
                    || (len % 8 != 0 && data[data.len() - 1] & (0xff >> (len % 8)) != 0),
                "from_parts refused consistent parts: len {len}, {nbytes} bytes"
            );
        }
    }
});
