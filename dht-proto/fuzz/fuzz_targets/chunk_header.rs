//! parse_chunk_response_header on arbitrary bytes: the fast path the node takes for chunk
//! responses. If it takes a header, that header must be the one chunk_response_header
//! writes for that length (one form), and when the data that follows is complete and
//! within the chunk limit, the ordinary decoder must read the same chunk.
#![no_main]

use dht_proto::manifest::MAX_CHUNK_SIZE;
use dht_proto::message::{
    chunk_response_header, parse_chunk_response_header, MAX_CHUNK_HEADER_LEN,
};
use dht_proto::Response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_chunk_response_header(data) {
        Some((header_len, len)) => {
            assert!(header_len <= data.len() && header_len <= MAX_CHUNK_HEADER_LEN);
            assert_eq!(
                chunk_response_header(len as usize),
                &data[..header_len],
                "a second form of the chunk header"
            );
            let body = &data[header_len..];
            if body.len() as u64 == len && len <= u64::from(MAX_CHUNK_SIZE) {
                match Response::decode(data) {
                    Ok(Response::Chunk { data: decoded }) => assert_eq!(&decoded[..], body),
                    other => panic!("fast path took a chunk the decoder reads as {other:?}"),
                }
            }
        }
        None => {
            // The decoder may still read a chunk response that is not in the canonical
            // form of the fast path (other key order, extra keys); if so, its re-encoding
            // is canonical and the fast path must take that.
            if let Ok(response @ Response::Chunk { .. }) = Response::decode(data) {
                let canonical = response.encode();
                assert!(parse_chunk_response_header(&canonical).is_some());
            }
        }
    }
});
