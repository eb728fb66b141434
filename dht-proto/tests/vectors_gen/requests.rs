//! The request vectors of `messages.json`.

use super::*;

use super::messages::{invalid_message, valid_message, Message};

/// Requests, valid (canonical and other spellings) and invalid.
pub(super) fn request_vectors() -> Vec<Value> {
    let c = file_cid();
    let cb = c.to_bytes();
    let cid_field = [text("cid"), bstr(&cb)].concat();
    let index_field = |head_bytes: &[u8]| [text("index"), head_bytes.to_vec()].concat();
    let mut out = Vec::new();
    let req = |r: Request| Message::Request(r);
    let chunk = |index| Request::Chunk { cid: c, index };

    // Valid requests in their canonical encoding.
    let spec_chunk = chunk(7).encode();
    assert_eq!(spec_chunk.len(), 57);
    assert_eq!(
        hex(&spec_chunk[..14]),
        "a1656368756e6ba263636964582401711e20"[..28]
    );
    out.push(valid_message(
        "Manifest",
        MANIFEST_PROTOCOL,
        &Request::Manifest { cid: c }.encode(),
        req(Request::Manifest { cid: c }),
    ));
    for index in [7u32, 0, 23, 24, 255, 256, 65_535, 65_536, u32::MAX] {
        out.push(valid_message(
            &format!("Chunk index {index}"),
            CHUNK_PROTOCOL,
            &chunk(index).encode(),
            req(chunk(index)),
        ));
    }
    let mut have = Bitfield::new(10);
    have.set(0);
    have.set(9);
    let bitfield = Request::Bitfield {
        cid: c,
        have: have.clone(),
    };
    assert_eq!(bitfield.encode().len(), 72);
    out.push(valid_message(
        "Bitfield len 10, chunks 0 and 9",
        CHUNK_PROTOCOL,
        &bitfield.encode(),
        req(bitfield),
    ));
    let empty = Request::Bitfield {
        cid: c,
        have: Bitfield::new(0),
    };
    out.push(valid_message(
        "Bitfield len 0",
        CHUNK_PROTOCOL,
        &empty.encode(),
        req(empty),
    ));
    let full = Request::Bitfield {
        cid: c,
        have: Bitfield::full(MAX_CHUNKS as u32),
    };
    assert_eq!(full.encode().len(), 65_614);
    out.push(valid_message(
        "the largest Bitfield request: 2^19 chunks, all held",
        CHUNK_PROTOCOL,
        &full.encode(),
        req(full.clone()),
    ));
    let have_req = Request::Have { cid: c, index: 300 };
    out.push(valid_message(
        "Have 300",
        CHUNK_PROTOCOL,
        &have_req.encode(),
        req(have_req),
    ));
    let cancel = Request::Cancel { cid: c, index: 5 };
    out.push(valid_message(
        "Cancel 5",
        CHUNK_PROTOCOL,
        &cancel.encode(),
        req(cancel),
    ));
    let raw = Request::Chunk {
        cid: Cid::for_chunk(HELLO),
        index: 0,
    };
    out.push(valid_message(
        "Chunk naming a raw CID (decodes; answered NotFound)",
        CHUNK_PROTOCOL,
        &raw.encode(),
        req(raw),
    ));

    // Valid requests in another spelling.
    for (name, kind, index_head) in [
        (
            "Chunk index 2^32 (reads as 4294967295)",
            "chunk",
            head(0, 1 << 32),
        ),
        (
            "Chunk index 2^64-1 (reads as 4294967295)",
            "chunk",
            head(0, u64::MAX),
        ),
        (
            "Have index 2^32 (reads as 4294967295)",
            "have",
            head(0, 1 << 32),
        ),
        (
            "Cancel index 2^40 (reads as 4294967295)",
            "cancel",
            head(0, 1 << 40),
        ),
    ] {
        let bytes = variant(kind, &[cid_field.clone(), index_field(&index_head)]);
        let r = match kind {
            "chunk" => chunk(u32::MAX),
            "have" => Request::Have {
                cid: c,
                index: u32::MAX,
            },
            _ => Request::Cancel {
                cid: c,
                index: u32::MAX,
            },
        };
        out.push(valid_message(name, CHUNK_PROTOCOL, &bytes, req(r)));
    }
    let reordered = variant("chunk", &[index_field(&[7]), cid_field.clone()]);
    out.push(valid_message(
        "Chunk with \"index\" before \"cid\"",
        CHUNK_PROTOCOL,
        &reordered,
        req(chunk(7)),
    ));
    let unknown = variant(
        "chunk",
        &[
            cid_field.clone(),
            index_field(&[7]),
            [
                text("priority"),
                vec![0xa1],
                text("x"),
                vec![0x82, 0xf6, 0xf5],
            ]
            .concat(),
        ],
    );
    out.push(valid_message(
        "Chunk with an unknown key (ignored)",
        CHUNK_PROTOCOL,
        &unknown,
        req(chunk(7)),
    ));
    // 14 arrays inside an unknown key: depth 16 with the two maps around them.
    let deep = variant(
        "chunk",
        &[
            cid_field.clone(),
            index_field(&[7]),
            [text("x"), vec![0x81; 13], vec![0x80]].concat(),
        ],
    );
    out.push(valid_message(
        "Chunk with an unknown key nesting to depth 16 (the limit)",
        CHUNK_PROTOCOL,
        &deep,
        req(chunk(7)),
    ));
    // Exactly MAX_REQUEST_LEN bytes: the largest bitfield plus a padding key.
    let full_fields = |pad: usize| {
        variant(
            "bitfield",
            &[
                cid_field.clone(),
                [
                    text("have"),
                    vec![0xa2],
                    text("len"),
                    head(0, MAX_CHUNKS),
                    text("bits"),
                    bstr(&vec![0xff; MAX_CHUNKS as usize / 8]),
                ]
                .concat(),
                [text("pad"), bstr(&vec![0; pad])].concat(),
            ],
        )
    };
    let base = full_fields(1000).len() - 1000;
    let at_limit = full_fields(MAX_REQUEST_LEN - base);
    assert_eq!(at_limit.len(), MAX_REQUEST_LEN);
    out.push(valid_message(
        "a request of exactly 66560 bytes (the limit)",
        CHUNK_PROTOCOL,
        &at_limit,
        req(full),
    ));
    let over = full_fields(MAX_REQUEST_LEN - base + 1);
    assert_eq!(over.len(), MAX_REQUEST_LEN + 1);
    out.push(invalid_message(
        "a request of 66561 bytes (one over the limit)",
        "request",
        CHUNK_PROTOCOL,
        &over,
    ));

    // Invalid requests.
    let good = chunk(7).encode();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated by one byte", good[..good.len() - 1].to_vec()),
        ("a byte after the request", [good.clone(), vec![0]].concat()),
        (
            "index 7 written as 18 07",
            variant("chunk", &[cid_field.clone(), index_field(&[0x18, 7])]),
        ),
        (
            "index 7 written in 8 bytes",
            variant(
                "chunk",
                &[
                    cid_field.clone(),
                    index_field(&[0x1b, 0, 0, 0, 0, 0, 0, 0, 7]),
                ],
            ),
        ),
        (
            "index 2^32-1 written in 8 bytes",
            variant(
                "chunk",
                &[
                    cid_field.clone(),
                    index_field(&[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
                ],
            ),
        ),
        (
            "negative index -1",
            variant("chunk", &[cid_field.clone(), index_field(&[0x20])]),
        ),
        (
            "index as a float 7.0",
            variant(
                "chunk",
                &[cid_field.clone(), index_field(&[0xf9, 0x47, 0x00])],
            ),
        ),
        (
            "index as a text string",
            variant("chunk", &[cid_field.clone(), index_field(&text("7"))]),
        ),
        (
            "CID length written as 59 00 24",
            variant(
                "chunk",
                &[
                    [text("cid"), vec![0x59, 0, 0x24], cb.clone()].concat(),
                    index_field(&[7]),
                ],
            ),
        ),
        (
            "key \"chunk\" length written as 78 05",
            [vec![0xa1, 0x78, 5], b"chunk".to_vec(), good[7..].to_vec()].concat(),
        ),
        (
            "outer map length written as b8 01",
            [vec![0xb8, 1], good[1..].to_vec()].concat(),
        ),
        (
            "indefinite-length inner map",
            [
                good[..7].to_vec(),
                vec![0xbf],
                good[8..].to_vec(),
                vec![0xff],
            ]
            .concat(),
        ),
        (
            "CID as an indefinite-length byte string",
            variant(
                "chunk",
                &[
                    [
                        text("cid"),
                        vec![0x5f],
                        bstr(&cb[..4]),
                        bstr(&cb[4..]),
                        vec![0xff],
                    ]
                    .concat(),
                    index_field(&[7]),
                ],
            ),
        ),
        (
            "CID as a tag-42 link",
            variant(
                "chunk",
                &[
                    [text("cid"), vec![0xd8, 0x2a], bstr(&cb)].concat(),
                    index_field(&[7]),
                ],
            ),
        ),
        (
            "CID hashed with sha2-256 (0x12)",
            variant(
                "chunk",
                &[
                    [text("cid"), bstr(&[&cb[..2], &[0x12], &cb[3..]].concat())].concat(),
                    index_field(&[7]),
                ],
            ),
        ),
        (
            "CID of 35 bytes",
            variant(
                "chunk",
                &[[text("cid"), bstr(&cb[..35])].concat(), index_field(&[7])],
            ),
        ),
        (
            "\"index\" twice",
            variant(
                "chunk",
                &[cid_field.clone(), index_field(&[7]), index_field(&[8])],
            ),
        ),
        (
            "\"index\" missing",
            variant("chunk", std::slice::from_ref(&cid_field)),
        ),
        (
            "unknown request kind \"delete\"",
            variant("delete", &[cid_field.clone(), index_field(&[7])]),
        ),
        (
            "two request kinds in one map",
            [
                vec![0xa2],
                good[1..].to_vec(),
                text("have"),
                good[7..].to_vec(),
            ]
            .concat(),
        ),
        ("\"manifest\" as a bare text string", text("manifest")),
        (
            "an unknown key nesting to depth 17",
            variant(
                "chunk",
                &[
                    cid_field.clone(),
                    index_field(&[7]),
                    [text("x"), vec![0x81; 14], vec![0x80]].concat(),
                ],
            ),
        ),
        (
            "undefined (f7) in an unknown key",
            variant(
                "chunk",
                &[
                    cid_field.clone(),
                    index_field(&[7]),
                    [text("x"), vec![0xf7]].concat(),
                ],
            ),
        ),
        (
            "a key that is not valid UTF-8",
            variant(
                "chunk",
                &[cid_field.clone(), index_field(&[7]), vec![0x61, 0xff, 0x00]],
            ),
        ),
    ];
    let bits = |len: u64, bits: &[u8]| {
        variant(
            "bitfield",
            &[
                cid_field.clone(),
                [
                    text("have"),
                    vec![0xa2],
                    text("len"),
                    head(0, len),
                    text("bits"),
                    bstr(bits),
                ]
                .concat(),
            ],
        )
    };
    assert_eq!(
        hex(&bits(10, &[0x80, 0x40])),
        hex(&Request::Bitfield { cid: c, have }.encode())
    );
    cases.push((
        "Bitfield with a bit set past len (len 10, bits 80 60)",
        bits(10, &[0x80, 0x60]),
    ));
    cases.push((
        "Bitfield with 3 bytes for len 10",
        bits(10, &[0x80, 0x40, 0]),
    ));
    cases.push((
        "Bitfield with len 2^19 + 1",
        bits(MAX_CHUNKS + 1, &vec![0; MAX_CHUNKS as usize / 8 + 1]),
    ));
    for (name, bytes) in cases {
        let protocol = if name.contains("manifest") {
            MANIFEST_PROTOCOL
        } else {
            CHUNK_PROTOCOL
        };
        out.push(invalid_message(name, "request", protocol, &bytes));
    }
    out
}
