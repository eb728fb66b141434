//! The manifest vectors (`manifests.json`).

use super::*;

pub(super) fn manifest_vectors() -> Vec<Value> {
    let mut out = Vec::new();
    let valid = |name: &str, file: Value, m: &Manifest, chunk_cids: Option<Vec<String>>| {
        let encoded = m.encode();
        let mut v = json!({
            "name": name,
            "valid": true,
            "file": file,
            "size": m.size(),
            "chunk_size": m.chunk_size(),
            "chunk_hashes": bytes_json(&m.chunk_hashes().concat()),
            "manifest": bytes_json(&encoded),
            "manifest_blake3": hex(blake3::hash(&encoded).as_bytes()),
            "cid": m.cid().to_string(),
            "provider_key": hex(&m.cid().multihash_bytes()),
            "made_by_p2pd": chunk_size_for(m.size()) == Some(m.chunk_size()),
        });
        if let Some(cids) = chunk_cids {
            v["chunk_cids"] = json!(cids);
        }
        v
    };
    let hello = manifest_of(HELLO);
    assert_eq!(
        hex(&hello.encode()),
        "a46176016473697a650c666368756e6b735820dc5a4edb8240b018124052c330270696f96771a63b45250a5c17d3000e8233556a6368756e6b5f73697a651a00100000"
    );
    out.push(valid(
        "hello world",
        bytes_json(HELLO),
        &hello,
        Some(vec![Cid::for_chunk(HELLO).to_string()]),
    ));
    let empty = manifest_of(b"");
    assert_eq!(
        hex(&empty.encode()),
        "a46176016473697a6500666368756e6b73406a6368756e6b5f73697a651a00100000"
    );
    out.push(valid(
        "the empty file",
        bytes_json(b""),
        &empty,
        Some(vec![]),
    ));
    // Three chunks of 1 MiB, the last one short.
    let size = (2 << 20) + 1000;
    let data = pattern(size);
    let three = manifest_of(&data);
    let cids = data
        .chunks(1 << 20)
        .map(|c| Cid::for_chunk(c).to_string())
        .collect();
    out.push(valid(
        "2 MiB + 1000 bytes of the pattern i mod 251: three chunks",
        json!({ "pattern": "index_mod_251", "size": size }),
        &three,
        Some(cids),
    ));
    // Valid, but not what p2pd makes for a file this small (chunk_size_for says 1 MiB).
    let data = pattern(40_000);
    let hashes = data
        .chunks(16 << 10)
        .map(|c| *blake3::hash(c).as_bytes())
        .collect();
    let small = Manifest::new(40_000, 16 << 10, hashes).expect("valid");
    out.push(valid(
        "40000 bytes in chunks of 16 KiB: valid, though p2pd would use 1 MiB",
        json!({ "pattern": "index_mod_251", "size": 40_000 }),
        &small,
        None,
    ));
    // The largest manifest: 2^19 chunks of 4 MiB (all hashes zero; no file is given).
    let largest = Manifest::new(
        MAX_FILE_SIZE,
        MAX_CHUNK_SIZE,
        vec![[0u8; 32]; MAX_CHUNKS as usize],
    )
    .expect("valid");
    assert_eq!(largest.encode().len(), 16_777_262);
    out.push(valid(
        "the largest manifest (2 TiB, 2^19 chunks of 4 MiB, zero hashes)",
        Value::Null,
        &largest,
        None,
    ));

    // Invalid manifests, built by hand from the canonical layout.
    let canon = |v: u64, size: u64, chunks: &[u8], chunk_size: u64| {
        [
            vec![0xa4],
            text("v"),
            head(0, v),
            text("size"),
            head(0, size),
            text("chunks"),
            bstr(chunks),
            text("chunk_size"),
            head(0, chunk_size),
        ]
        .concat()
    };
    let h = hello.chunk_hashes().concat();
    assert_eq!(canon(1, 12, &h, 1 << 20), hello.encode());
    let mut invalid: Vec<(&str, Vec<u8>)> = vec![
        ("version 2", canon(2, 12, &h, 1 << 20)),
        ("hash list of 31 bytes", canon(1, 12, &h[..31], 1 << 20)),
        (
            "two hashes for one chunk",
            canon(1, 12, &[h.clone(), h.clone()].concat(), 1 << 20),
        ),
        ("no hash for a 12-byte file", canon(1, 12, &[], 1 << 20)),
        ("a hash for the empty file", canon(1, 0, &h, 1 << 20)),
        ("chunk size not a power of two", canon(1, 12, &h, 1_000_000)),
        (
            "chunk size 8 KiB, below the minimum",
            canon(1, 12, &h, 8 << 10),
        ),
        (
            "chunk size 8 MiB, above the maximum",
            canon(1, 12, &h, 8 << 20),
        ),
        ("size above 2 TiB", canon(1, MAX_FILE_SIZE + 1, &h, 4 << 20)),
        (
            "a byte after the manifest",
            [canon(1, 12, &h, 1 << 20), vec![0]].concat(),
        ),
        ("truncated", canon(1, 12, &h, 1 << 20)[..60].to_vec()),
        ("not a map", text("manifest")),
    ];
    let mut reordered = vec![0xa4];
    for part in [
        [text("size"), head(0, 12)].concat(),
        [text("v"), head(0, 1)].concat(),
        [text("chunks"), bstr(&h)].concat(),
        [text("chunk_size"), head(0, 1 << 20)].concat(),
    ] {
        reordered.extend(part);
    }
    invalid.push((
        "keys in another order (not canonical, would be a second CID)",
        reordered,
    ));
    let mut extra = canon(1, 12, &h, 1 << 20);
    extra[0] = 0xa5;
    extra.extend([text("name"), text("hello.txt")].concat());
    invalid.push(("an extra key (not canonical, would be a second CID)", extra));
    let mut long_size = canon(1, 12, &h, 1 << 20);
    let at = long_size
        .windows(4)
        .position(|w| w == b"size")
        .expect("size key")
        + 4;
    long_size.splice(at..at + 1, [0x18, 0x0c]);
    invalid.push(("size 12 written in two bytes (18 0c)", long_size));
    let mut indefinite = canon(1, 12, &h, 1 << 20);
    indefinite[0] = 0xbf;
    indefinite.push(0xff);
    invalid.push(("indefinite-length map", indefinite));
    for (name, bytes) in invalid {
        assert!(Manifest::decode(&bytes).is_err(), "{name}");
        out.push(json!({ "name": name, "valid": false, "manifest": bytes_json(&bytes) }));
    }
    out
}
