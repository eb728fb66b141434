//! The response vectors of `messages.json`.

use super::*;

use super::messages::{invalid_message, valid_message, Message};

/// Responses, valid and invalid.
pub(super) fn response_vectors() -> Vec<Value> {
    let mut out = Vec::new();
    let resp = |r: Response| Message::Response(r);

    // Valid responses.
    let spec = [
        (
            "Manifest h'0102', name null",
            MANIFEST_PROTOCOL,
            Response::Manifest {
                manifest: ByteBuf::from(vec![1, 2]),
                name: None,
            },
            "a1686d616e6966657374a2686d616e696665737442010264 6e616d65f6",
        ),
        (
            "Chunk \"hello world\\n\"",
            CHUNK_PROTOCOL,
            Response::Chunk {
                data: ByteBuf::from(HELLO.to_vec()),
            },
            "a1656368756e6ba16464617461 4c68656c6c6f20776f726c640a",
        ),
        ("Ack", CHUNK_PROTOCOL, Response::Ack, "6361636b"),
        (
            "NotFound",
            CHUNK_PROTOCOL,
            Response::NotFound,
            "696e6f745f666f756e64",
        ),
        ("Choked", CHUNK_PROTOCOL, Response::Choked, "6663686f6b6564"),
        (
            "Error \"oops\"",
            CHUNK_PROTOCOL,
            Response::Error {
                message: "oops".into(),
            },
            "a1656572726f72a1676d65737361676564 6f6f7073",
        ),
    ];
    for (name, protocol, response, spec_hex) in spec {
        assert_eq!(hex(&response.encode()), spec_hex.replace(' ', ""), "{name}");
        out.push(valid_message(
            name,
            protocol,
            &response.encode(),
            resp(response),
        ));
    }
    let mut more = vec![
        (
            "Manifest of hello world, name \"hello.txt\"",
            MANIFEST_PROTOCOL,
            Response::Manifest {
                manifest: ByteBuf::from(manifest_of(HELLO).encode()),
                name: Some("hello.txt".into()),
            },
        ),
        (
            "Manifest with a 255-byte name (the limit)",
            MANIFEST_PROTOCOL,
            Response::Manifest {
                manifest: ByteBuf::new(),
                name: Some("é".repeat(127) + "x"),
            },
        ),
        (
            "Chunk of 0 bytes",
            CHUNK_PROTOCOL,
            Response::Chunk {
                data: ByteBuf::new(),
            },
        ),
        (
            "Chunk of 4 MiB (the largest)",
            CHUNK_PROTOCOL,
            Response::Chunk {
                data: ByteBuf::from(vec![0xab; MAX_CHUNK_SIZE as usize]),
            },
        ),
        (
            "Bitfield len 10, chunks 0 and 9",
            CHUNK_PROTOCOL,
            Response::Bitfield {
                have: {
                    let mut b = Bitfield::new(10);
                    b.set(0);
                    b.set(9);
                    b
                },
            },
        ),
        ("Cancelled", CHUNK_PROTOCOL, Response::Cancelled),
        (
            "Error with a 512-byte message (the limit)",
            CHUNK_PROTOCOL,
            Response::Error {
                message: "e".repeat(MAX_ERROR_LEN),
            },
        ),
        (
            "Ack on the manifest protocol",
            MANIFEST_PROTOCOL,
            Response::Ack,
        ),
    ];
    // A Manifest response of exactly the manifest protocol's limit.
    let overhead = Response::Manifest {
        manifest: ByteBuf::from(vec![0; 1 << 20]),
        name: None,
    }
    .encode()
    .len()
        - (1 << 20);
    let at_limit = Response::Manifest {
        manifest: ByteBuf::from(vec![0; MAX_MANIFEST_RESPONSE_LEN - overhead]),
        name: None,
    };
    assert_eq!(at_limit.encode().len(), MAX_MANIFEST_RESPONSE_LEN);
    more.push((
        "a Manifest response of exactly 16778304 bytes (the manifest protocol's limit)",
        MANIFEST_PROTOCOL,
        at_limit.clone(),
    ));
    for (name, protocol, response) in more {
        assert_eq!(
            name.contains("255-byte"),
            response_name_len(&response) == Some(MAX_NAME_LEN)
        );
        out.push(valid_message(
            name,
            protocol,
            &response.encode(),
            resp(response),
        ));
    }
    let unit = |s: &str| text(s);
    let chunk_resp = |data_head: Vec<u8>, data: &[u8]| {
        [
            vec![0xa1],
            text("chunk"),
            vec![0xa1],
            text("data"),
            data_head,
            data.to_vec(),
        ]
        .concat()
    };
    let invalid_responses: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "Ack in map form {\"ack\": null}",
            CHUNK_PROTOCOL,
            [vec![0xa1], text("ack"), vec![0xf6]].concat(),
        ),
        ("unknown response \"maybe\"", CHUNK_PROTOCOL, unit("maybe")),
        (
            "Chunk with its length written as 59 00 0c",
            CHUNK_PROTOCOL,
            chunk_resp(vec![0x59, 0, 12], HELLO),
        ),
        (
            "Chunk announcing 13 bytes, holding 12",
            CHUNK_PROTOCOL,
            chunk_resp(vec![0x4d], HELLO),
        ),
        (
            "Chunk with a byte after it",
            CHUNK_PROTOCOL,
            [chunk_resp(vec![0x4c], HELLO), vec![0]].concat(),
        ),
        (
            "Chunk of 4 MiB + 1 byte",
            CHUNK_PROTOCOL,
            Response::Chunk {
                data: ByteBuf::from(vec![0xab; MAX_CHUNK_SIZE as usize + 1]),
            }
            .encode(),
        ),
        (
            "Manifest with a 256-byte name",
            MANIFEST_PROTOCOL,
            Response::Manifest {
                manifest: ByteBuf::new(),
                name: Some("x".repeat(MAX_NAME_LEN + 1)),
            }
            .encode(),
        ),
        (
            "Manifest with a name that is not valid UTF-8",
            MANIFEST_PROTOCOL,
            [
                vec![0xa1],
                text("manifest"),
                vec![0xa2],
                text("manifest"),
                bstr(&[]),
                text("name"),
                vec![0x61, 0xff],
            ]
            .concat(),
        ),
        (
            "Error with a 513-byte message",
            CHUNK_PROTOCOL,
            Response::Error {
                message: "e".repeat(MAX_ERROR_LEN + 1),
            }
            .encode(),
        ),
        (
            "the manifest protocol's largest response, received on the chunk protocol",
            CHUNK_PROTOCOL,
            at_limit.encode(),
        ),
    ];
    let mut one_over = at_limit.encode();
    one_over.push(0);
    for (name, protocol, bytes) in invalid_responses.into_iter().chain([(
        "a Manifest response one byte over the manifest protocol's limit",
        MANIFEST_PROTOCOL,
        one_over,
    )]) {
        out.push(invalid_message(name, "response", protocol, &bytes));
    }
    out
}

/// The length of a response's file name, if it carries one.
fn response_name_len(response: &Response) -> Option<usize> {
    match response {
        Response::Manifest {
            name: Some(name), ..
        } => Some(name.len()),
        _ => None,
    }
}
