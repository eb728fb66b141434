use super::*;
use crate::manifest::MIN_CHUNK_SIZE;
use data_encoding::HEXLOWER;

fn file_cid(content: &[u8]) -> (Cid, u64) {
    let chunks = content
        .chunks(MIN_CHUNK_SIZE as usize)
        .map(|c| *blake3::hash(c).as_bytes())
        .collect();
    let manifest = Manifest::new(content.len() as u64, MIN_CHUNK_SIZE, chunks).unwrap();
    (manifest.cid(), content.len() as u64)
}

fn file(path: &str, content: &[u8], executable: bool) -> DirEntry {
    let (cid, size) = file_cid(content);
    DirEntry {
        path: RelPath::parse(path).unwrap(),
        kind: EntryKind::File {
            cid,
            size,
            executable,
        },
    }
}

fn empty_dir(path: &str) -> DirEntry {
    DirEntry {
        path: RelPath::parse(path).unwrap(),
        kind: EntryKind::EmptyDir,
    }
}

fn tree() -> DirManifest {
    DirManifest::new(vec![
        file("src/main.rs", b"fn main() {}\n", false),
        file("README", b"hello\n", false),
        file("bin/run.sh", b"#!/bin/sh\n", true),
        empty_dir("empty"),
    ])
    .unwrap()
}

/// Encodes entries as a peer could, with no check at all.
fn raw(entries: Vec<WireEntry>) -> Vec<u8> {
    codec::encode(&WireDir {
        t: "dir".into(),
        v: 1,
        entries,
    })
}

fn wire(path: &[&str], c: Option<Cid>, s: u64) -> WireEntry {
    WireEntry {
        c,
        p: path.iter().map(|p| p.to_string()).collect(),
        s,
        x: false,
    }
}

#[test]
fn round_trips_sorted_with_one_cid() {
    let m = tree();
    let paths: Vec<String> = m.entries().iter().map(|e| e.path.to_string()).collect();
    assert_eq!(paths, ["README", "bin/run.sh", "empty", "src/main.rs"]);
    let bytes = m.encode();
    assert!(is_dir_manifest(&bytes));
    assert_eq!(DirManifest::decode(&bytes).unwrap(), m);
    assert_eq!(DirManifest::decode_for(&m.cid(), &bytes).unwrap(), m);
    assert_eq!(m.cid().codec(), Codec::DagCbor);
    assert_eq!(m.total_size(), 13 + 6 + 10);
    assert_eq!(m.files().count(), 3);
    assert!(m
        .files()
        .any(|(p, _, _, x)| p.to_string() == "bin/run.sh" && x));
    // Order of construction does not matter.
    let mut reversed: Vec<DirEntry> = m.entries().to_vec();
    reversed.reverse();
    assert_eq!(DirManifest::new(reversed).unwrap().cid(), m.cid());
    // An empty tree is a valid tree.
    let empty = DirManifest::new(vec![]).unwrap();
    assert_eq!(DirManifest::decode(&empty.encode()).unwrap(), empty);
}

#[test]
fn file_and_dir_manifests_are_told_apart() {
    let m = tree();
    let (file_cid_, _) = file_cid(b"hello\n");
    let file_manifest = Manifest::new(
        6,
        MIN_CHUNK_SIZE,
        vec![*blake3::hash(b"hello\n").as_bytes()],
    )
    .unwrap();
    let file_bytes = file_manifest.encode();
    assert_eq!(file_manifest.cid(), file_cid_);
    assert!(!is_dir_manifest(&file_bytes));
    assert_eq!(
        decode_any_for(&m.cid(), &m.encode()).unwrap(),
        AnyManifest::Dir(m.clone())
    );
    assert_eq!(
        decode_any_for(&file_cid_, &file_bytes).unwrap(),
        AnyManifest::File(file_manifest)
    );
    assert!(DirManifest::decode(&file_bytes).is_err());
    assert!(Manifest::decode(&m.encode()).is_err());
    assert!(decode_any_for(&file_cid_, &m.encode()).is_err());
    assert!(DirManifest::decode_for(&file_cid_, &m.encode()).is_err());
}

#[test]
fn hostile_manifests_never_decode() {
    let (cid, size) = file_cid(b"x");
    let hostile: Vec<Vec<WireEntry>> = vec![
        vec![wire(&["..", "etc", "passwd"], Some(cid), size)],
        vec![wire(&["a", "..", "..", "b"], Some(cid), size)],
        vec![wire(&["", "etc", "passwd"], Some(cid), size)],
        vec![wire(&["/etc/passwd"], Some(cid), size)],
        vec![wire(&["..\\..\\x"], Some(cid), size)],
        vec![wire(&["."], Some(cid), size)],
        vec![wire(&[], Some(cid), size)],
        vec![wire(&["a\0b"], Some(cid), size)],
        vec![wire(&["a\nb"], Some(cid), size)],
        vec![wire(&[&"x".repeat(256)], Some(cid), size)],
        vec![wire(&["d"; 33], Some(cid), size)],
        // Duplicates, a file used as a directory, a non-empty "empty" directory.
        vec![wire(&["a"], Some(cid), size), wire(&["a"], Some(cid), size)],
        vec![
            wire(&["a"], Some(cid), size),
            wire(&["a", "b"], Some(cid), size),
        ],
        vec![wire(&["a"], None, 0), wire(&["a", "b"], Some(cid), size)],
        vec![wire(&["a"], None, 5)],
        // A chunk CID where a file CID belongs.
        vec![wire(&["a"], Some(Cid::for_chunk(b"x")), size)],
        // Sizes past the limits.
        vec![wire(&["a"], Some(cid), MAX_FILE_SIZE + 1)],
        (0..9)
            .map(|i| wire(&[&format!("f{i}")], Some(cid), MAX_FILE_SIZE))
            .collect(),
    ];
    for entries in hostile {
        let shown: Vec<String> = entries.iter().map(|e| e.p.join("/")).collect();
        let bytes = raw(entries);
        assert!(
            matches!(DirManifest::decode(&bytes), Err(DecodeError::Invalid(_))),
            "{shown:?}"
        );
    }
}

#[test]
fn only_the_canonical_encoding_decodes() {
    let (cid, size) = file_cid(b"x");
    // Unsorted entries.
    let unsorted = raw(vec![
        wire(&["b"], Some(cid), size),
        wire(&["a"], Some(cid), size),
    ]);
    assert!(DirManifest::decode(&unsorted).is_err());
    let sorted = raw(vec![
        wire(&["a"], Some(cid), size),
        wire(&["b"], Some(cid), size),
    ]);
    assert!(DirManifest::decode(&sorted).is_ok());
    // An extra key at the top.
    #[derive(Serialize)]
    struct Extra {
        t: &'static str,
        v: u32,
        entries: Vec<WireEntry>,
        z: u8,
    }
    let extra = codec::encode(&Extra {
        t: "dir",
        v: 1,
        entries: vec![wire(&["a"], Some(cid), size)],
        z: 0,
    });
    assert!(DirManifest::decode(&extra).is_err());
    // A wider integer than needed: size 1 written as 0x1a 00000001.
    let narrow = raw(vec![wire(&["a"], Some(cid), 1)]);
    let at = narrow
        .windows(3)
        .position(|w| w == [0x61, b's', 0x01])
        .unwrap();
    let mut wide = narrow[..at + 2].to_vec();
    wide.extend_from_slice(&[0x1a, 0, 0, 0, 1]);
    wide.extend_from_slice(&narrow[at + 3..]);
    assert!(DirManifest::decode(&narrow).is_ok());
    assert!(DirManifest::decode(&wide).is_err());
    // Other tags and versions.
    let other = codec::encode(&WireDir {
        t: "file".into(),
        v: 1,
        entries: vec![],
    });
    assert!(DirManifest::decode(&other).is_err());
    let v2 = codec::encode(&WireDir {
        t: "dir".into(),
        v: 2,
        entries: vec![],
    });
    assert!(DirManifest::decode(&v2).is_err());
}

#[test]
fn limits_are_enforced() {
    let (cid, size) = file_cid(b"x");
    let too_many: Vec<DirEntry> = (0..=MAX_DIR_ENTRIES)
        .map(|i| DirEntry {
            path: RelPath::new(vec![format!("{i:06}")]).unwrap(),
            kind: EntryKind::File {
                cid,
                size,
                executable: false,
            },
        })
        .collect();
    assert_eq!(
        DirManifest::new(too_many.clone()),
        Err(DirManifestError::TooManyEntries(MAX_DIR_ENTRIES + 1))
    );
    let most = DirManifest::new(too_many[..MAX_DIR_ENTRIES].to_vec()).unwrap();
    let bytes = most.encode();
    assert!(bytes.len() <= MAX_DIR_MANIFEST_LEN, "{}", bytes.len());
    assert_eq!(
        DirManifest::decode(&bytes).unwrap().entries().len(),
        MAX_DIR_ENTRIES
    );
    assert!(matches!(
        DirManifest::decode(&vec![0u8; MAX_DIR_MANIFEST_LEN + 1]),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn truncated_and_garbage_input_fails() {
    let bytes = tree().encode();
    for len in 0..bytes.len() {
        assert!(DirManifest::decode(&bytes[..len]).is_err(), "cut to {len}");
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(DirManifest::decode(&trailing).is_err());
    for seed in 0..300u32 {
        let garbage: Vec<u8> = (0..seed % 150)
            .map(|i| (i * 59 + seed * 11) as u8)
            .collect();
        let _ = DirManifest::decode(&garbage);
    }
}

#[test]
fn collisions_are_reported_for_the_tree() {
    let m = DirManifest::new(vec![
        file("Photos/a.jpg", b"a", false),
        file("photos/b.jpg", b"b", false),
        file("notes.txt", b"n", false),
    ])
    .unwrap();
    let pairs = m.case_collisions();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].0.to_string(), "Photos");
    assert_eq!(pairs[0].1.to_string(), "photos");
    assert!(tree().case_collisions().is_empty());
}

/// The worked example of docs/protocol.md, pinned.
#[test]
fn worked_example() {
    // The 12-byte file "hello world\n" of the file-manifest example (1 MiB chunks).
    let cid: Cid = "bafyr4ih4whrv7mzwlvh34ykp3w7nbk2dimbkqogr7uhatmhz4ujny536py"
        .parse()
        .unwrap();
    let size = 12;
    let m = DirManifest::new(vec![
        DirEntry {
            path: RelPath::parse("docs/hello.txt").unwrap(),
            kind: EntryKind::File {
                cid,
                size,
                executable: false,
            },
        },
        empty_dir("tmp"),
    ])
    .unwrap();
    assert_eq!(
        HEXLOWER.encode(&m.encode()),
        concat!(
            "a3",
            "6174",
            "63646972",
            "6176",
            "01",
            "67656e7472696573",
            "82",
            "a4",
            "6163",
            "582401711e20fcb1e35fb3365d4fbe614fddbed0ab434302a838d1fd0e09b0f9e512dc777e7e",
            "6170",
            "82",
            "64646f6373",
            "6968656c6c6f2e747874",
            "6173",
            "0c",
            "6178",
            "f4",
            "a4",
            "6163",
            "f6",
            "6170",
            "81",
            "63746d70",
            "6173",
            "00",
            "6178",
            "f4"
        )
    );
    assert_eq!(m.encode().len(), 101);
    assert_eq!(
        m.cid().to_string(),
        "bafyr4idromnyuicjz7fzuex5trr6lm5qwdaxlibo7vonlw467wtaawnj5i"
    );
}
