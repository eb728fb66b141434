//! The transfer protocols' requests and responses: round trips, which answers each
//! request may get, the size limits, the chunk response's header, and hostile input
//! (truncated, garbage, oversized, out of range, non-canonical encodings).

use super::*;

fn cid() -> Cid {
    Cid::for_manifest_bytes(b"m")
}

fn samples() -> (Vec<Request>, Vec<Response>) {
    let mut have = Bitfield::new(20);
    have.set(3);
    let requests = vec![
        Request::Manifest { cid: cid() },
        Request::Chunk {
            cid: cid(),
            index: 7,
        },
        Request::Bitfield {
            cid: cid(),
            have: have.clone(),
        },
        Request::Have {
            cid: cid(),
            index: 19,
        },
        Request::Cancel {
            cid: cid(),
            index: 5,
        },
        Request::Chunks {
            cids: vec![cid(), Cid::for_manifest_bytes(b"n")],
        },
    ];
    let responses = vec![
        Response::Manifest {
            manifest: ByteBuf::from(vec![1, 2, 3]),
            name: Some("a.txt".into()),
        },
        Response::Chunk {
            data: ByteBuf::from(vec![9u8; 1000]),
        },
        Response::Bitfield { have },
        Response::Chunks {
            answers: vec![
                BatchAnswer::Data(ByteBuf::from(vec![4u8; 100])),
                BatchAnswer::NotFound,
            ],
        },
        Response::Ack,
        Response::NotFound,
        Response::Choked,
        Response::Cancelled,
        Response::Error {
            message: "oops".into(),
        },
    ];
    (requests, responses)
}

#[test]
fn round_trips() {
    let (requests, responses) = samples();
    for r in requests {
        assert_eq!(Request::decode(&r.encode()).unwrap(), r);
    }
    for r in responses {
        assert_eq!(Response::decode(&r.encode()).unwrap(), r);
    }
}

#[test]
fn chunk_data_is_a_cbor_byte_string() {
    let data = vec![0xabu8; 256 << 10];
    let encoded = Response::Chunk {
        data: ByteBuf::from(data),
    }
    .encode();
    // An array of integers would take about twice the bytes.
    assert!(encoded.len() < (256 << 10) + 32, "{} bytes", encoded.len());
}

#[test]
fn truncated_and_garbage_input_fails() {
    let (requests, responses) = samples();
    for r in requests {
        let bytes = r.encode();
        for len in 0..bytes.len() {
            assert!(Request::decode(&bytes[..len]).is_err());
        }
    }
    for r in responses {
        let bytes = r.encode();
        for len in 0..bytes.len() {
            assert!(Response::decode(&bytes[..len]).is_err());
        }
    }
    for seed in 0..500u32 {
        let garbage: Vec<u8> = (0..(seed % 97))
            .map(|i| (i * 131 + seed * 7) as u8)
            .collect();
        let _ = Request::decode(&garbage);
        let _ = Response::decode(&garbage);
    }
    // A CID field holding bytes that are not a CID.
    let bad = codec::encode(&serde_json_like_bad_cid());
    assert!(Request::decode(&bad).is_err());
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum FakeRequest {
    Manifest { cid: ByteBuf },
}

fn serde_json_like_bad_cid() -> FakeRequest {
    FakeRequest::Manifest {
        cid: ByteBuf::from(vec![1, 2, 3]),
    }
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = vec![0u8; MAX_REQUEST_LEN + 1];
    assert!(matches!(
        Request::decode(&big),
        Err(DecodeError::TooLarge { .. })
    ));
    let big = vec![0u8; MAX_RESPONSE_LEN + 1];
    assert!(matches!(
        Response::decode(&big),
        Err(DecodeError::TooLarge { .. })
    ));
    let long_name = Response::Manifest {
        manifest: ByteBuf::new(),
        name: Some("x".repeat(MAX_NAME_LEN + 1)),
    };
    assert!(Response::decode(&long_name.encode()).is_err());
}

#[test]
fn the_chunk_header_is_the_start_of_the_encoding() {
    for len in [
        0usize,
        1,
        23,
        24,
        255,
        256,
        65_535,
        65_536,
        1 << 20,
        (4 << 20) + 7,
    ] {
        let data = vec![0x5au8; len];
        let encoded = Response::Chunk {
            data: ByteBuf::from(data.clone()),
        }
        .encode();
        let header = chunk_response_header(len);
        assert_eq!(&encoded[..header.len()], &header[..], "len {len}");
        assert_eq!(&encoded[header.len()..], &data[..], "len {len}");
        assert_eq!(
            parse_chunk_response_header(&encoded),
            Some((header.len(), len as u64))
        );
        assert!(header.len() <= MAX_CHUNK_HEADER_LEN);
    }
    // Other responses and truncated headers are not taken for chunks.
    assert_eq!(parse_chunk_response_header(&Response::Ack.encode()), None);
    assert_eq!(
        parse_chunk_response_header(&Response::NotFound.encode()),
        None
    );
    let header = chunk_response_header(1 << 20);
    for cut in 0..header.len() {
        assert_eq!(parse_chunk_response_header(&header[..cut]), None);
    }
}

#[test]
fn chunk_protocol_responses_are_capped_below_manifests() {
    const { assert!(MAX_CHUNK_RESPONSE_LEN < MAX_MANIFEST_RESPONSE_LEN) };
    assert_eq!(MAX_CHUNK_RESPONSE_LEN, (4 << 20) + 1024);
    let big = Response::Chunk {
        data: ByteBuf::from(vec![0u8; MAX_CHUNK_SIZE as usize + 1]),
    }
    .encode();
    assert!(Response::decode_limited(&big, MAX_CHUNK_RESPONSE_LEN).is_err());
    assert_eq!(
        Request::Manifest { cid: cid() }.protocol(),
        MANIFEST_PROTOCOL
    );
    assert_eq!(
        Request::Chunk {
            cid: cid(),
            index: 0
        }
        .protocol(),
        CHUNK_PROTOCOL
    );
}

#[test]
fn each_request_has_its_own_answers() {
    let (requests, responses) = samples();
    let allowed = |request: &Request| -> Vec<&'static str> {
        match request {
            Request::Manifest { .. } => vec!["manifest", "not_found", "choked", "error"],
            Request::Chunk { .. } => {
                vec!["chunk", "not_found", "choked", "cancelled", "error"]
            }
            Request::Bitfield { .. } => vec!["bitfield", "not_found", "choked", "error"],
            Request::Have { .. } | Request::Cancel { .. } => vec!["ack", "choked"],
            Request::Chunks { .. } => vec!["chunks", "choked"],
        }
    };
    let kind = |response: &Response| match response {
        Response::Manifest { .. } => "manifest",
        Response::Chunk { .. } => "chunk",
        Response::Bitfield { .. } => "bitfield",
        Response::Chunks { .. } => "chunks",
        Response::Ack => "ack",
        Response::NotFound => "not_found",
        Response::Choked => "choked",
        Response::Cancelled => "cancelled",
        Response::Error { .. } => "error",
    };
    for request in &requests {
        for response in &responses {
            assert_eq!(
                response.answers(request),
                allowed(request).contains(&kind(response)),
                "{response:?} to {request:?}"
            );
        }
    }
}

/// `{"<kind>": {"cid": C, "index": <index head>}}` with the CID of [`cid`].
fn indexed_request(kind: &str, index: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0xa1, 0x60 | kind.len() as u8];
    bytes.extend_from_slice(kind.as_bytes());
    bytes.extend_from_slice(&[0xa2, 0x63, b'c', b'i', b'd', 0x58, 0x24]);
    bytes.extend_from_slice(&cid().to_bytes());
    bytes.extend_from_slice(&[0x65, b'i', b'n', b'd', b'e', b'x']);
    bytes.extend_from_slice(index);
    bytes
}

#[test]
fn an_index_past_32_bits_decodes_out_of_range() {
    for kind in ["chunk", "have", "cancel"] {
        let expect = |index| match kind {
            "chunk" => Request::Chunk { cid: cid(), index },
            "have" => Request::Have { cid: cid(), index },
            _ => Request::Cancel { cid: cid(), index },
        };
        let at = |head: &[u8]| Request::decode(&indexed_request(kind, head));
        assert_eq!(at(&[0x07]).unwrap(), expect(7));
        assert_eq!(
            at(&[0x1a, 0xff, 0xff, 0xff, 0xff]).unwrap(),
            expect(u32::MAX)
        );
        assert_eq!(
            at(&[0x1b, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap(),
            expect(u32::MAX)
        );
        assert_eq!(
            at(&[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap(),
            expect(u32::MAX)
        );
        // Not an unsigned integer, or not in its shortest form: no request at all.
        assert!(at(&[0x20]).is_err(), "{kind}: negative index");
        assert!(at(&[0x18, 0x07]).is_err(), "{kind}: non-shortest index");
        assert!(at(&[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(at(&[0xf9, 0x47, 0x00]).is_err(), "{kind}: float index");
    }
}

#[test]
fn key_order_and_unknown_keys_do_not_matter_but_the_encoding_does() {
    let expected = Request::Chunk {
        cid: cid(),
        index: 7,
    };
    // "index" first, then "cid".
    let mut reordered = vec![0xa1, 0x65];
    reordered.extend_from_slice(b"chunk");
    reordered.extend_from_slice(&[0xa2, 0x65]);
    reordered.extend_from_slice(b"index");
    reordered.extend_from_slice(&[0x07, 0x63, b'c', b'i', b'd', 0x58, 0x24]);
    reordered.extend_from_slice(&cid().to_bytes());
    assert_eq!(Request::decode(&reordered).unwrap(), expected);
    // An extra key, whatever it holds, is ignored.
    let mut extra = indexed_request("chunk", &[0x07]);
    extra[7] = 0xa3;
    extra.extend_from_slice(&[0x63, b'f', b'o', b'o', 0x82, 0xf5, 0xa0]);
    assert_eq!(Request::decode(&extra).unwrap(), expected);
    // A repeated key is not.
    let mut repeated = indexed_request("chunk", &[0x07]);
    repeated[7] = 0xa3;
    repeated.extend_from_slice(&[0x65, b'i', b'n', b'd', b'e', b'x', 0x08]);
    assert!(Request::decode(&repeated).is_err());
    // The CID's byte-string length in a longer form than needed.
    let mut long_cid = indexed_request("chunk", &[0x07]);
    long_cid.splice(12..14, [0x59, 0x00, 0x24]);
    assert!(Request::decode(&long_cid).is_err());
    // The CID as a dag-cbor link (tag 42) rather than a plain byte string.
    let mut tagged = indexed_request("chunk", &[0x07]);
    tagged.splice(12..12, [0xd8, 0x2a]);
    assert!(Request::decode(&tagged).is_err());
    // A unit response in map form is not the text string it must be.
    assert!(Response::decode(&[0xa1, 0x63, b'a', b'c', b'k', 0xf6]).is_err());
}

#[test]
fn a_chunk_header_with_a_long_form_length_is_not_taken() {
    let data = [0x5au8; 30];
    let mut encoded = CHUNK_PREFIX.to_vec();
    encoded.extend_from_slice(&[0x59, 0x00, 30]);
    encoded.extend_from_slice(&data);
    assert_eq!(parse_chunk_response_header(&encoded), None);
    assert!(Response::decode(&encoded).is_err());
    for (head, len) in [
        (&[0x5a, 0, 0, 0x01, 0][..], 256usize),
        (&[0x5b, 0, 0, 0, 0, 0, 0x01, 0, 0][..], 65_536),
    ] {
        let mut encoded = CHUNK_PREFIX.to_vec();
        encoded.extend_from_slice(head);
        assert_eq!(parse_chunk_response_header(&encoded), None, "len {len}");
        encoded.extend(std::iter::repeat_n(0u8, len));
        assert!(Response::decode(&encoded).is_err(), "len {len}");
    }
}

#[test]
fn a_huge_declared_length_does_not_allocate_it() {
    // A byte string header that claims 2^60 bytes, with none following.
    let mut bytes = vec![0xa1, 0x65];
    bytes.extend_from_slice(b"chunk");
    bytes.extend_from_slice(&[0xa1, 0x64]);
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&[0x5b, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    assert!(Response::decode(&bytes).is_err());
}

fn cids(n: usize) -> Vec<Cid> {
    (0..n)
        .map(|i| Cid::for_manifest_bytes(&i.to_le_bytes()))
        .collect()
}

#[test]
fn a_batch_request_names_one_to_the_limit_of_files() {
    let most = Request::Chunks {
        cids: cids(MAX_BATCH_FILES),
    };
    let bytes = most.encode();
    assert!(bytes.len() < MAX_REQUEST_LEN, "{} bytes", bytes.len());
    assert_eq!(Request::decode(&bytes).unwrap(), most);
    assert_eq!(most.protocol(), CHUNK_PROTOCOL);
    assert_eq!(most.cid(), None);
    for refused in [0, MAX_BATCH_FILES + 1, 1000] {
        let bytes = Request::Chunks {
            cids: cids(refused),
        }
        .encode();
        assert!(
            matches!(
                Request::decode(&bytes),
                Err(DecodeError::Invalid(_) | DecodeError::Malformed(_))
            ),
            "{refused} cids"
        );
    }
}

#[test]
fn a_batch_response_is_bounded_in_answers_and_bytes_and_fits_the_chunk_protocol() {
    // The largest: every answer carries data, together the limit.
    let each = MAX_BATCH_DATA / MAX_BATCH_FILES;
    let largest = Response::Chunks {
        answers: (0..MAX_BATCH_FILES)
            .map(|i| BatchAnswer::Data(ByteBuf::from(vec![i as u8; each])))
            .collect(),
    };
    let bytes = largest.encode();
    assert!(
        bytes.len() <= MAX_CHUNK_RESPONSE_LEN,
        "{} bytes",
        bytes.len()
    );
    assert_eq!(
        Response::decode_limited(&bytes, MAX_CHUNK_RESPONSE_LEN).unwrap(),
        largest
    );
    // One file of the largest size on its own fits too.
    let one = Response::Chunks {
        answers: vec![BatchAnswer::Data(ByteBuf::from(vec![1u8; MAX_BATCH_DATA]))],
    };
    assert!(Response::decode_limited(&one.encode(), MAX_CHUNK_RESPONSE_LEN).is_ok());
    // One byte more than the data limit, in one answer or spread over two.
    for answers in [
        vec![BatchAnswer::Data(ByteBuf::from(vec![
            1u8;
            MAX_BATCH_DATA + 1
        ]))],
        vec![
            BatchAnswer::Data(ByteBuf::from(vec![1u8; MAX_BATCH_DATA])),
            BatchAnswer::Data(ByteBuf::from(vec![1u8; 1])),
        ],
    ] {
        let bytes = Response::Chunks { answers }.encode();
        assert!(matches!(
            Response::decode_limited(&bytes, MAX_CHUNK_RESPONSE_LEN),
            Err(DecodeError::Invalid(_))
        ));
    }
    // More answers than a request may ask for, even without data.
    let many = Response::Chunks {
        answers: vec![BatchAnswer::Choked; MAX_BATCH_FILES + 1],
    };
    assert!(Response::decode(&many.encode()).is_err());
    // Answers must match the files asked, one for one.
    let asked = Request::Chunks { cids: cids(3) };
    let answer = |n| Response::Chunks {
        answers: vec![BatchAnswer::NotFound; n],
    };
    assert!(answer(3).answers(&asked));
    assert!(!answer(2).answers(&asked));
    assert!(!answer(4).answers(&asked));
    assert!(!answer(1).answers(&Request::Chunk {
        cid: cid(),
        index: 0
    }));
}

#[test]
fn a_batch_has_a_fixed_encoding() {
    // {"chunks": {"cids": [C]}} and {"chunks": {"answers": [{"data": h'01'}, "not_found", "choked"]}}
    let request = Request::Chunks { cids: vec![cid()] };
    let mut expected = vec![0xa1, 0x66];
    expected.extend_from_slice(b"chunks");
    expected.extend_from_slice(&[0xa1, 0x64]);
    expected.extend_from_slice(b"cids");
    expected.extend_from_slice(&[0x81, 0x58, 0x24]);
    expected.extend_from_slice(&cid().to_bytes());
    assert_eq!(request.encode(), expected);
    let response = Response::Chunks {
        answers: vec![
            BatchAnswer::Data(ByteBuf::from(vec![1u8])),
            BatchAnswer::NotFound,
            BatchAnswer::Choked,
        ],
    };
    let mut expected = vec![0xa1, 0x66];
    expected.extend_from_slice(b"chunks");
    expected.extend_from_slice(&[0xa1, 0x67]);
    expected.extend_from_slice(b"answers");
    expected.extend_from_slice(&[0x83, 0xa1, 0x64]);
    expected.extend_from_slice(b"data");
    expected.extend_from_slice(&[0x41, 0x01, 0x69]);
    expected.extend_from_slice(b"not_found");
    expected.push(0x66);
    expected.extend_from_slice(b"choked");
    assert_eq!(response.encode(), expected);
    // An answer of another shape is refused.
    let mut odd = expected.clone();
    let at = odd.len() - 7;
    odd.splice(at.., [0x63, b'y', b'e', b's']);
    assert!(Response::decode(&odd).is_err());
}
