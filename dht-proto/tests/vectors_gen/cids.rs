//! The CID vectors (`cids.json`).

use super::*;

pub(super) fn cid_vectors() -> Vec<Value> {
    let mut out = Vec::new();
    let valid = |name: &str, content: &[u8], cid: Cid| {
        json!({
            "name": name,
            "valid": true,
            "content": bytes_json(content),
            "codec": match cid.codec() { Codec::Raw => "raw", Codec::DagCbor => "dag-cbor" },
            "digest": hex(cid.hash()),
            "binary": hex(&cid.to_bytes()),
            "string": cid.to_string(),
            "provider_key": hex(&cid.multihash_bytes()),
        })
    };
    out.push(valid("the empty chunk", b"", Cid::for_chunk(b"")));
    out.push(valid(
        "the chunk 'hello world\\n'",
        HELLO,
        Cid::for_chunk(HELLO),
    ));
    let m = manifest_of(HELLO).encode();
    out.push(valid(
        "the file 'hello world\\n' (its manifest)",
        &m,
        Cid::for_manifest_bytes(&m),
    ));
    let empty = manifest_of(b"").encode();
    out.push(valid(
        "the empty file (its manifest)",
        &empty,
        Cid::for_manifest_bytes(&empty),
    ));
    // Spec examples, typed from docs/protocol.md.
    assert_eq!(
        Cid::for_chunk(HELLO).to_string(),
        "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku"
    );
    assert_eq!(
        file_cid().to_string(),
        "bafyr4ih4whrv7mzwlvh34ykp3w7nbk2dimbkqogr7uhatmhz4ujny536py"
    );
    let good = file_cid().to_string();
    let good_bytes = file_cid().to_bytes();
    for (name, string) in [
        ("empty string", String::new()),
        ("multibase prefix only", "b".into()),
        ("upper-case multibase B", good.to_uppercase()),
        ("base58btc multibase z", format!("z{}", &good[1..])),
        (
            "CIDv0",
            "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG".into(),
        ),
        ("character outside base32", format!("{}1", &good[..58])),
        (
            "upper case in the body",
            format!("b{}", good[1..].to_uppercase()),
        ),
        ("one character short", good[..58].to_string()),
        ("bytes after the digest", format!("{good}aa")),
        ("over 256 characters", format!("b{}", "a".repeat(300))),
        (
            "non-canonical base32: a padding bit set",
            format!("{}v", &good[..58]),
        ),
    ] {
        assert!(string.parse::<Cid>().is_err(), "{name}");
        out.push(json!({ "name": name, "valid": false, "string": string }));
    }
    let mut edits: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut b = good_bytes.clone();
    b[0] = 0;
    edits.push(("version 0", b));
    let mut b = good_bytes.clone();
    b[1] = 0x70;
    edits.push(("codec dag-pb (0x70)", b));
    let mut b = good_bytes.clone();
    b[2] = 0x12;
    edits.push(("hash sha2-256 (0x12)", b));
    let mut b = good_bytes.clone();
    b[3] = 0x1f;
    edits.push(("digest length 31", b));
    edits.push(("digest one byte short", good_bytes[..35].to_vec()));
    edits.push((
        "a byte after the digest",
        [good_bytes.clone(), vec![0]].concat(),
    ));
    edits.push((
        "non-minimal varint for the version (0x81 0x00)",
        [vec![0x81, 0x00], good_bytes[1..].to_vec()].concat(),
    ));
    edits.push(("empty", Vec::new()));
    for (name, binary) in edits {
        assert!(Cid::from_bytes(&binary).is_err(), "{name}");
        out.push(json!({ "name": name, "valid": false, "binary": hex(&binary) }));
    }
    out
}
