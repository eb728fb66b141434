//! The exchange vectors (`exchanges.json`): requests and the answers a responder
//! holding one file gives.

use super::*;

pub(super) fn exchange_vectors() -> Vec<Value> {
    let f = file_cid();
    let raw = Cid::for_chunk(HELLO);
    let unknown = manifest_of(b"a file the responder does not hold").cid();
    // A raw CID with the file's own digest: a responder that looked files up by digest
    // alone would answer it.
    let same_digest = Cid::new(Codec::Raw, *f.hash());
    let fb = f.to_bytes();
    let indexed = |kind: &str, index: u64| {
        variant(
            kind,
            &[
                [text("cid"), bstr(&fb)].concat(),
                [text("index"), head(0, index)].concat(),
            ],
        )
    };
    let one = |bits: u8, len: u32| {
        let mut have = Bitfield::new(len);
        if bits != 0 {
            have.set(0);
        }
        have
    };
    let answer_manifest = Response::Manifest {
        manifest: ByteBuf::from(manifest_of(HELLO).encode()),
        name: Some("hello.txt".into()),
    };
    let answer_chunk = Response::Chunk {
        data: ByteBuf::from(HELLO.to_vec()),
    };
    let answer_bitfield = Response::Bitfield { have: one(1, 1) };
    use Response::{Ack, NotFound};
    let cases: Vec<(&str, &str, Vec<u8>, Option<Response>)> = vec![
        (
            "Manifest of the file",
            MANIFEST_PROTOCOL,
            Request::Manifest { cid: f }.encode(),
            Some(answer_manifest.clone()),
        ),
        (
            "Manifest of the file, asked on the chunk protocol",
            CHUNK_PROTOCOL,
            Request::Manifest { cid: f }.encode(),
            Some(answer_manifest),
        ),
        (
            "Manifest of a file not held",
            MANIFEST_PROTOCOL,
            Request::Manifest { cid: unknown }.encode(),
            Some(NotFound),
        ),
        (
            "Manifest of a raw CID (the file's only chunk)",
            MANIFEST_PROTOCOL,
            Request::Manifest { cid: raw }.encode(),
            Some(NotFound),
        ),
        (
            "Manifest of a raw CID with the file's digest",
            MANIFEST_PROTOCOL,
            Request::Manifest { cid: same_digest }.encode(),
            Some(NotFound),
        ),
        (
            "Chunk 0 of a raw CID with the file's digest",
            CHUNK_PROTOCOL,
            Request::Chunk {
                cid: same_digest,
                index: 0,
            }
            .encode(),
            Some(NotFound),
        ),
        (
            "Chunk 0",
            CHUNK_PROTOCOL,
            indexed("chunk", 0),
            Some(answer_chunk),
        ),
        (
            "Chunk 1, past the last chunk",
            CHUNK_PROTOCOL,
            indexed("chunk", 1),
            Some(NotFound),
        ),
        (
            "Chunk 2^32 - 1",
            CHUNK_PROTOCOL,
            indexed("chunk", u64::from(u32::MAX)),
            Some(NotFound),
        ),
        (
            "Chunk 2^32",
            CHUNK_PROTOCOL,
            indexed("chunk", 1 << 32),
            Some(NotFound),
        ),
        (
            "Chunk 2^64 - 1",
            CHUNK_PROTOCOL,
            indexed("chunk", u64::MAX),
            Some(NotFound),
        ),
        (
            "Chunk 0 of a raw CID",
            CHUNK_PROTOCOL,
            Request::Chunk { cid: raw, index: 0 }.encode(),
            Some(NotFound),
        ),
        (
            "Chunk 0 of a file not held",
            CHUNK_PROTOCOL,
            Request::Chunk {
                cid: unknown,
                index: 0,
            }
            .encode(),
            Some(NotFound),
        ),
        (
            "Bitfield of the file, holding nothing",
            CHUNK_PROTOCOL,
            Request::Bitfield {
                cid: f,
                have: one(0, 1),
            }
            .encode(),
            Some(answer_bitfield.clone()),
        ),
        (
            "Bitfield of the file, holding everything",
            CHUNK_PROTOCOL,
            Request::Bitfield {
                cid: f,
                have: one(1, 1),
            }
            .encode(),
            Some(answer_bitfield.clone()),
        ),
        (
            "Bitfield whose len (5) is not the file's chunk count (1): answered all the same",
            CHUNK_PROTOCOL,
            Request::Bitfield {
                cid: f,
                have: one(1, 5),
            }
            .encode(),
            Some(answer_bitfield),
        ),
        (
            "Bitfield of a file not held",
            CHUNK_PROTOCOL,
            Request::Bitfield {
                cid: unknown,
                have: one(0, 1),
            }
            .encode(),
            Some(NotFound),
        ),
        (
            "Bitfield of a raw CID",
            CHUNK_PROTOCOL,
            Request::Bitfield {
                cid: raw,
                have: one(0, 1),
            }
            .encode(),
            Some(NotFound),
        ),
        ("Have 0", CHUNK_PROTOCOL, indexed("have", 0), Some(Ack)),
        (
            "Have 2^32",
            CHUNK_PROTOCOL,
            indexed("have", 1 << 32),
            Some(Ack),
        ),
        (
            "Have of a file not held",
            CHUNK_PROTOCOL,
            Request::Have {
                cid: unknown,
                index: 3,
            }
            .encode(),
            Some(Ack),
        ),
        (
            "Have of a raw CID",
            CHUNK_PROTOCOL,
            Request::Have { cid: raw, index: 0 }.encode(),
            Some(Ack),
        ),
        (
            "Cancel 0, never requested",
            CHUNK_PROTOCOL,
            indexed("cancel", 0),
            Some(Ack),
        ),
        (
            "Cancel of a raw CID",
            CHUNK_PROTOCOL,
            Request::Cancel { cid: raw, index: 0 }.encode(),
            Some(Ack),
        ),
        (
            "Cancel 2^32",
            CHUNK_PROTOCOL,
            indexed("cancel", 1 << 32),
            Some(Ack),
        ),
        (
            "Chunk 0 with its index written as 18 00",
            CHUNK_PROTOCOL,
            [indexed("chunk", 0)[..56].to_vec(), vec![0x18, 0]].concat(),
            None,
        ),
        (
            "Chunk 0 followed by a stray byte",
            CHUNK_PROTOCOL,
            [indexed("chunk", 0), vec![0]].concat(),
            None,
        ),
        (
            "garbage",
            CHUNK_PROTOCOL,
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            None,
        ),
        (
            "nothing at all (the requester closes at once)",
            CHUNK_PROTOCOL,
            Vec::new(),
            None,
        ),
        (
            "66561 bytes (over the request limit)",
            CHUNK_PROTOCOL,
            vec![0; MAX_REQUEST_LEN + 1],
            None,
        ),
    ];
    cases
        .into_iter()
        .map(|(name, protocol, request, answer)| {
            let decoded = Request::decode(&request);
            assert_eq!(decoded.is_ok(), answer.is_some(), "{name}");
            let mut v = json!({
                "name": name,
                "protocol": protocol,
                "request": bytes_json(&request),
            });
            match (decoded, answer) {
                (Ok(r), Some(answer)) => {
                    v["outcome"] = json!("answer");
                    v["request_value"] = request_json(&r);
                    v["answer"] = bytes_json(&answer.encode());
                    v["answer_value"] = response_json(&answer);
                }
                _ => v["outcome"] = json!("no_answer"),
            }
            v
        })
        .collect()
}
