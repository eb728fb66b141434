//! The round trip every message target checks on a value that decoded: its encoding is
//! within the limit, decodes back to an equal value, and encodes again to the same bytes.

use std::fmt::Debug;

use dht_proto::DecodeError;

/// Checks the round trip of `value` and returns its encoding.
pub fn check<T: PartialEq + Debug>(
    value: &T,
    encode: impl Fn(&T) -> Vec<u8>,
    decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
    limit: usize,
) -> Vec<u8> {
    let encoded = encode(value);
    assert!(
        encoded.len() <= limit,
        "encoding of {} bytes over {limit}",
        encoded.len()
    );
    let again = decode(&encoded).expect("encode() output must decode");
    assert_eq!(&again, value, "value does not round-trip");
    assert_eq!(encode(&again), encoded, "encode() is not stable");
    encoded
}
