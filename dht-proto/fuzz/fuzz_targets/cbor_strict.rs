//! codec::check_strict, the gate in front of every decoder, against cbor4ii as a second
//! parser: whatever the gate accepts, cbor4ii must decode as one generic value whose
//! re-encoding is byte-identical (the strict subset has one encoding per value).
#![no_main]

use cbor4ii::core::dec::Decode;
use cbor4ii::core::enc::Encode;
use cbor4ii::core::utils::{BufWriter, SliceReader};
use cbor4ii::core::Value;
use dht_proto::codec::check_strict;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if check_strict(data).is_err() {
        return;
    }
    let mut reader = SliceReader::new(data);
    let value = Value::decode(&mut reader).expect("the strict gate passed bytes cbor4ii refuses");
    let mut writer = BufWriter::new(Vec::new());
    value.encode(&mut writer).expect("encoding into memory");
    assert_eq!(writer.buffer(), data, "strict CBOR with two encodings");
});
