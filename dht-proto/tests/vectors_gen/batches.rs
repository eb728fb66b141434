//! The `Chunks` vectors of `messages.json`.

use super::*;

use super::messages::{invalid_message, valid_message, Message};

/// `Chunks` requests and responses: valid ones at the limits, and those past them.
pub(super) fn batch_vectors() -> Vec<Value> {
    let c = file_cid();
    let other = manifest_of(b"another file").cid();
    let mut out = Vec::new();
    let many = |n: usize| -> Vec<Cid> {
        (0..n)
            .map(|i| manifest_of(&i.to_le_bytes()).cid())
            .collect()
    };
    let valid = [
        (
            "Chunks of two files",
            Message::Request(Request::Chunks {
                cids: vec![c, other],
            }),
        ),
        (
            "Chunks of 128 files, the most",
            Message::Request(Request::Chunks {
                cids: many(MAX_BATCH_FILES),
            }),
        ),
        (
            "Chunks answers: data, not_found, choked",
            Message::Response(Response::Chunks {
                answers: vec![
                    BatchAnswer::Data(ByteBuf::from(HELLO.to_vec())),
                    BatchAnswer::NotFound,
                    BatchAnswer::Choked,
                ],
            }),
        ),
        (
            "Chunks answer of 1 MiB, the most data",
            Message::Response(Response::Chunks {
                answers: vec![BatchAnswer::Data(ByteBuf::from(vec![0x5a; MAX_BATCH_DATA]))],
            }),
        ),
    ];
    for (name, message) in valid {
        let bytes = match &message {
            Message::Request(r) => r.encode(),
            Message::Response(r) => r.encode(),
        };
        out.push(valid_message(name, CHUNK_PROTOCOL, &bytes, message));
    }
    for (name, bytes) in [
        (
            "Chunks of no file",
            Request::Chunks { cids: vec![] }.encode(),
        ),
        (
            "Chunks of 129 files",
            Request::Chunks {
                cids: many(MAX_BATCH_FILES + 1),
            }
            .encode(),
        ),
        (
            "Chunks with a CID that is not a CID",
            variant(
                "chunks",
                &[[text("cids"), vec![0x81], bstr(&[1, 2, 3])].concat()],
            ),
        ),
    ] {
        out.push(invalid_message(name, "request", CHUNK_PROTOCOL, &bytes));
    }
    for (name, bytes) in [
        (
            "Chunks answers with 1 MiB and 1 byte of data",
            Response::Chunks {
                answers: vec![
                    BatchAnswer::Data(ByteBuf::from(vec![0x5a; MAX_BATCH_DATA])),
                    BatchAnswer::Data(ByteBuf::from(vec![0x5a])),
                ],
            }
            .encode(),
        ),
        (
            "Chunks with 129 answers",
            Response::Chunks {
                answers: vec![BatchAnswer::NotFound; MAX_BATCH_FILES + 1],
            }
            .encode(),
        ),
        (
            "Chunks with an answer of an unknown kind",
            variant(
                "chunks",
                &[[text("answers"), vec![0x81], text("maybe")].concat()],
            ),
        ),
    ] {
        out.push(invalid_message(name, "response", CHUNK_PROTOCOL, &bytes));
    }
    out
}
